"""Tools for the person whose mail was not recognised: `rules test`, `rules check`, user
rules, and `reclassify` over the raw copies the database keeps.

Commands run in process (click's CliRunner) with a config file in tmp_path, and the usage
errors once as a user runs them (a subprocess); the store is a real SQLite file.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from daemonproc import run_in_process

from watcher.config import package_file
from watcher.pipeline.explain import explain
from watcher.pipeline.explain_text import render
from watcher.pipeline.message import parse
from watcher.pipeline.process import Settings, process
from watcher.pipeline.rules import RulePack, classify, load_rules, rules_file_problems
from watcher.sources.base import RawMessage, SourceKey
from watcher.store.store import Store

TESTS = Path(__file__).parent
LANG = TESTS / "lang"
CORPUS = TESTS / "corpus"
NEW_WORDING = LANG / "de" / "de-2025-new-wording-unrecognized.eml"
SETTINGS = Settings(trusted_authserv_ids=("mx.home.example",))

USER_RULES = r"""
# Meta's new German acceptance wording (my mail of 5 May 2025).
rules:
  - id: my.de.objection_accepted.2025b
    kind: objection_accepted
    language: de
    confidence: low
    source: my own mail of 5 May 2025
    all:
      - ['\bdein Widerspruch war erfolgreich\b']
      - ['\bKI bei Meta\b']
"""


def cli(*args: str | Path, cwd: Path) -> Result:
    """`meta-watcher ARGS` in this process, in the folder *cwd*."""
    return run_in_process(*args, cwd=cwd, expect=None)


def cli_process(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m watcher ARGS` as a user runs it, in the folder *cwd*."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def setup(tmp_path: Path) -> Path:
    """A config (database in tmp_path, the corpus's trusted server) without user rules, one
    with them, and the user rules file."""
    (tmp_path / "my-rules.yaml").write_text(USER_RULES, encoding="utf-8")
    base = "database: watcher.db\ntrusted_authserv_ids: [mx.home.example]\n"
    (tmp_path / "config.yaml").write_text(base, encoding="utf-8")
    (tmp_path / "config-user.yaml").write_text(
        base + "user_rules: [my-rules.yaml]\n", encoding="utf-8"
    )
    return tmp_path


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def _outcome(path: Path, pack: RulePack) -> object:
    return process(
        RawMessage(SourceKey("t", str(path), "", 0, 1), path.read_bytes()), pack, SETTINGS
    )


# ---------------------------------------------------------------------- rules test


def test_rules_test_explains_a_match_by_its_evidence(setup: Path) -> None:
    done = cli(
        "rules",
        "test",
        "--config",
        "config.yaml",
        CORPUS / "de-2024-accepted-instagram.eml",
        cwd=setup,
    )
    assert done.exit_code == 0, done.stderr
    out = done.stdout
    assert "Result: objection_accepted, by rule de.objection_accepted" in out
    # The decisive phrase that decided, the supporting evidence (own and shared) and the score.
    assert "decisive  true  '\\berkennen (?:wir )?(?:deinen|Ihren|den|euren)" in out
    assert 'found "erkennen deinen Einspruch an"' in out
    assert "Why: objection_accepted by de.objection_accepted: decisive" in out
    assert '(shared any) found "privacy/genai"' in out
    assert "negatives none found" in out
    score = int(out.split("Why: ")[1].split("(score ")[1].split(" ")[0])
    assert score > 100  # a decision (100) plus supporting evidence
    # Why the other rules of the language did not decide.
    assert "de.policy_update (policy_update): 1 of 2 requirements hold; missing all[2]" in out
    assert "Platform:  instagram (sender domain mail.instagram.com)" in out
    assert "Authenticity: pass" in out
    assert "Counted: yes" in out


def test_rules_test_shows_extracted_values_and_codes_in_full(setup: Path) -> None:
    done = cli(
        "rules",
        "test",
        "--config",
        "config.yaml",
        LANG / "pl" / "pl-2024-policy-facebook.eml",
        cwd=setup,
    )
    assert "Extracted: effective_date=2024-06-26" in done.stdout
    done = cli(
        "rules",
        "test",
        "--config",
        "config.yaml",
        LANG / "el" / "el-2024-code-facebook.eml",
        cwd=setup,
    )
    assert "Extracted: code=284519" in done.stdout


def test_rules_test_shows_the_closest_rules_and_what_they_missed(setup: Path) -> None:
    done = cli("rules", "test", "--config", "config.yaml", NEW_WORDING, cwd=setup)
    assert done.exit_code == 0, done.stderr
    out = done.stdout
    assert "Result: unrecognized" in out
    assert "Closest rules (what they missed):" in out
    closest = out.split("Closest rules (what they missed):")[1].split("To teach")[0]
    assert "de.objection_accepted (objection_accepted, language de): 0 of 1" in closest
    assert "Widerspruch) an" in closest  # the accepted phrases it would need
    assert "FALSE none of these phrases found in subject + body:" in closest
    assert "rules test FILE --rules my-rules.yaml" in out


def test_rules_test_with_a_user_rules_file_tries_the_new_rule(setup: Path) -> None:
    done = cli(
        "rules",
        "test",
        "--config",
        "config.yaml",
        "--rules",
        "my-rules.yaml",
        NEW_WORDING,
        cwd=setup,
    )
    assert done.exit_code == 0, done.stderr
    assert "Result: objection_accepted, by rule my.de.objection_accepted.2025b" in done.stdout
    assert "from my-rules.yaml" in done.stdout


def test_rules_test_explains_why_a_look_alike_rule_did_not_fire(setup: Path) -> None:
    ban = LANG / "en" / "en-neg-appeal-rejected-ban.eml"
    done = cli(
        "rules",
        "test",
        "--config",
        "config.yaml",
        "--rule",
        "en.objection_rejected",
        ban,
        cwd=setup,
    )
    out = done.stdout
    assert "Result: other" in out
    # The refusal names no objection, and the ban vetoes the rule anyway.
    assert "decisive  FALSE none of these phrases found" in out
    assert "negative  VETO" in out
    assert '"Your account has been disabled"' in out
    assert '"Community Standards"' in out


def test_rules_test_usage_errors_are_one_sentence_with_exit_2(setup: Path) -> None:
    done = cli_process(
        "rules", "test", "--config", "config.yaml", "--rule", "xx.nope", NEW_WORDING, cwd=setup
    )
    assert done.returncode == 2
    assert "no rule with id xx.nope" in done.stderr
    done = cli_process("rules", "test", "--config", "config.yaml", cwd=setup)
    assert done.returncode == 2
    assert "give either a mail FILE or --db ID" in done.stderr
    assert "Traceback" not in done.stderr


def test_explanation_agrees_with_classification_on_every_test_mail(pack: RulePack) -> None:
    """explain() and classify() share one matcher and one choice: the rule explain names is
    the rule that classified, it fires, and no other rule classification tried ranks above it
    (score, then kind order, then file order)."""
    from watcher.pipeline.rules import rank

    paths = sorted(LANG.glob("*/*.eml")) + sorted(CORPUS.glob("*.eml"))
    for path in paths:
        outcome = process(
            RawMessage(SourceKey("t", str(path), "", 0, 1), path.read_bytes()), pack, SETTINGS
        )
        e = explain(outcome, pack)
        if outcome.match.rule_id is None or not outcome.match.claims_meta:
            assert e.decided_by is None, path.name
            continue
        if e.decided_by is None:  # classified from a forwarded copy: another path
            assert outcome.verdict.result == "fail", path.name
            continue
        assert e.decided_by.check.rule.id == outcome.match.rule_id, path.name
        assert e.decided_by.matched
        best = rank(e.decided_by.check)
        tried = [r for r in e.reports if r.matched and not r.skipped]
        assert all(rank(r.check) <= best for r in tried), path.name
        assert render(e, path.name)  # renders without error


# ---------------------------------------------------------------------- rules check


def test_rules_check_accepts_the_shipped_pack(setup: Path) -> None:
    done = cli("rules", "check", "--config", "config.yaml", cwd=setup)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert "in 16 language(s)" in done.stdout
    assert "ok: 80 rule(s) in use" in done.stdout


BAD_RULES = r"""
rules:
  - id: a.one
    kind: objection_acepted
    language: de
    all: [['\bok\b']]
  - id: a.two
    kind: policy_update
    language: de
    all: [['(unclosed']]
  - id: a.two
    kind: policy_update
    language: en
    all: [['\bfine\b']]
  - id: a.three
    kind: info_requested
    language: de
    phrases: [['\bx\b']]
  - id: a.four
    kind: info_requested
    language: no
    all: [['\bx\b']]
  - id: a.six
    kind: info_requested
    language: de
  - id: a.five
    kind: verification_code
    language: en
    all: [['\bcode\b']]
    extract:
      code: '\d{6}'
"""


def test_rules_check_names_the_rule_id_and_key_of_every_problem(setup: Path) -> None:
    bad = setup / "bad.yaml"
    bad.write_text(BAD_RULES, encoding="utf-8")
    problems = rules_file_problems(bad)
    text = "\n".join(problems)
    assert "rule a.one, key kind: unknown kind 'objection_acepted'" in text
    assert "rule a.two, key all: group 1: pattern '(unclosed' does not compile" in text
    assert "duplicate rule id a.two" in text
    assert "rule a.three, key phrases: unknown key" in text
    assert "rule a.four, key language" in text
    assert "put it in quotes" in text
    assert (
        "rule a.six, key (rule): a rule needs 'decisive' phrases, 'all' phrase groups or "
        "'subject' phrases" in text
    )
    assert "rule a.five, key extract: extractor code needs a named group (?P<code>...)" in text
    done = cli("rules", "check", "--config", "config.yaml", bad, cwd=setup)
    assert done.exit_code == 1
    assert done.stdout.count("FAIL:") == len(problems)


def test_rules_check_of_a_user_file_notes_replacements_and_unknown_disables(setup: Path) -> None:
    (setup / "user.yaml").write_text(
        "rules:\n"
        "  - id: de.objection_accepted\n"
        "    kind: objection_accepted\n"
        "    language: de\n"
        "    all: [['\\berkennen deinen Einspruch an\\b']]\n"
        "disable: [en.policy_update, xx.gone]\n",
        encoding="utf-8",
    )
    done = cli("rules", "check", "--config", "config.yaml", "user.yaml", cwd=setup)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert "rule de.objection_accepted replaces the rule of the same id" in done.stdout
    assert "rule en.policy_update is switched off (disable)" in done.stdout
    assert "warning: user.yaml: disable names unknown rule id xx.gone" in done.stdout
    assert "ok: 79 rule(s) in use" in done.stdout


def test_rules_check_reports_unreadable_yaml_in_one_sentence(setup: Path) -> None:
    (setup / "broken.yaml").write_text("rules: [\n  - id: x\n", encoding="utf-8")
    done = cli("rules", "check", "--config", "config.yaml", "broken.yaml", cwd=setup)
    assert done.exit_code == 1
    assert "FAIL: rules file broken.yaml is not valid YAML at line" in done.stdout


# ---------------------------------------------------------------------- user rules


def test_user_rule_with_a_shipped_id_replaces_it_in_place(tmp_path: Path, pack: RulePack) -> None:
    user = tmp_path / "u.yaml"
    user.write_text(
        "rules:\n  - id: de.objection_accepted\n    kind: objection_accepted\n    language: de\n"
        "    all: [['\\bdein Widerspruch war erfolgreich\\b']]\n",
        encoding="utf-8",
    )
    merged = load_rules(package_file("rules.yaml"), (user,))
    assert [r.id for r in merged.rules] == [r.id for r in pack.rules]
    replaced = next(r for r in merged.rules if r.id == "de.objection_accepted")
    assert replaced.origin == str(user)
    # The replacement decides now: the new wording is accepted, the old one no longer.
    assert classify(parse(NEW_WORDING.read_bytes()), merged).kind == "objection_accepted"
    old = parse((CORPUS / "de-2024-accepted-instagram.eml").read_bytes())
    assert classify(old, merged).kind == "unrecognized"


def test_user_rules_can_switch_shipped_rules_off(tmp_path: Path) -> None:
    policy = parse((CORPUS / "en-2024-policy-facebook.eml").read_bytes())
    for text in (
        "disable: [en.policy_update]\n",
        "rules:\n  - id: en.policy_update\n    kind: policy_update\n    language: en\n"
        "    enabled: false\n    all: [['x']]\n",
    ):
        user = tmp_path / "off.yaml"
        user.write_text(text, encoding="utf-8")
        merged = load_rules(package_file("rules.yaml"), (user,))
        assert "en.policy_update" not in {r.id for r in merged.rules}
        assert classify(policy, merged).kind == "unrecognized"


def test_new_user_rule_is_tried_just_before_the_shipped_rules_of_its_kind(setup: Path) -> None:
    merged = load_rules(package_file("rules.yaml"), (setup / "my-rules.yaml",))
    ids = [r.id for r in merged.rules]
    kinds = [r.kind for r in merged.rules]
    at = ids.index("my.de.objection_accepted.2025b")
    assert kinds.index("objection_accepted") == at  # first of its kind
    assert all(k != "policy_update" for k in kinds[:at])


def test_config_user_rules_are_loaded_after_the_shipped_pack(setup: Path) -> None:
    done = cli("rules", "test", "--config", "config-user.yaml", NEW_WORDING, cwd=setup)
    assert done.exit_code == 0, done.stderr
    assert "by rule my.de.objection_accepted.2025b" in done.stdout


# ---------------------------------------------------------------------- raw copies, reclassify


def _scan(setup: Path, config: str, *files: Path) -> None:
    done = cli("scan", "--config", config, "--db", "watcher.db", *files, cwd=setup)
    assert done.exit_code == 0, done.stderr


def test_only_unrecognized_and_suspicious_mail_keeps_a_raw_copy(setup: Path) -> None:
    spoof = CORPUS / "spoof-display-name-lookalike-domain.eml"
    code = LANG / "de" / "de-2024-code-instagram.eml"
    policy = LANG / "de" / "de-at-2024-policy-facebook.eml"
    _scan(setup, "config.yaml", NEW_WORDING, spoof, code, policy)
    with Store.open(setup / "watcher.db") as store:
        kept = {k.kind: k for k in store.kept_messages()}
        assert set(kept) == {"unrecognized", "policy_update"}
        assert kept["policy_update"].suspicious
        assert kept["unrecognized"].raw == NEW_WORDING.read_bytes()
        rows = store.query("SELECT kind FROM messages WHERE kind = 'verification_code'")
        assert len(rows) == 1  # recorded, but no copy: its raw text holds the code
        assert store.uncopied_count() == 0


def test_unrecognized_mail_holding_a_code_like_number_keeps_no_copy(tmp_path: Path) -> None:
    """A code mail in a wording no rule knows is unrecognized; its code must not be stored."""
    user = tmp_path / "u.yaml"
    user.write_text("disable: [de.verification_code]\n", encoding="utf-8")
    pack = load_rules(package_file("rules.yaml"), (user,))
    code = LANG / "de" / "de-2024-code-instagram.eml"
    outcome = process(RawMessage(SourceKey("t", "t", "", 0, 1), code.read_bytes()), pack, SETTINGS)
    assert outcome.match.kind == "unrecognized"
    with Store.open(tmp_path / "a.db") as store:
        store.record(outcome)
        assert store.kept_messages() == []
        assert store.uncopied_count() == 1
        (fields,) = store.query("SELECT fields FROM messages")
        assert "731904" not in fields[0]
    with Store.open(tmp_path / "b.db", store_codes=True) as store:
        store.record(outcome)  # the user asked to keep codes: the copy is kept
        assert len(store.kept_messages()) == 1


def test_reclassify_into_a_code_mail_drops_the_copy(tmp_path: Path) -> None:
    user = tmp_path / "u.yaml"
    user.write_text("disable: [de.verification_code]\n", encoding="utf-8")
    without = load_rules(package_file("rules.yaml"), (user,))
    full = load_rules(package_file("rules.yaml"))
    raw = (LANG / "de" / "de-2024-code-instagram.eml").read_bytes()
    key = SourceKey("t", "t", "INBOX", 1, 7)
    with Store.open(tmp_path / "c.db", store_codes=True) as store:
        store.record(process(RawMessage(key, raw), without, SETTINGS))
        (kept,) = store.kept_messages()
        added = store.reclassify(kept.id, process(RawMessage(key, raw), full, SETTINGS))
        assert [t.to_status for t in added] == ["code_received"]
        assert store.kept_messages() == []
        (row,) = store.query("SELECT kind, counted FROM messages")
        assert tuple(row) == ("verification_code", 1)


def test_reclassify_applies_a_rule_change_to_stored_mail_and_replays_the_status(
    setup: Path,
) -> None:
    _scan(setup, "config.yaml", NEW_WORDING, LANG / "de" / "de-2024-code-instagram.eml")
    status = cli("status", "--config", "config.yaml", cwd=setup)
    assert "jonas.muster@example.de  code_received" in status.stdout
    assert "accepted" not in status.stdout

    dry = cli("reclassify", "--config", "config-user.yaml", "--dry-run", cwd=setup)
    assert dry.exit_code == 0, dry.stderr
    assert "unrecognized -> objection_accepted by my.de.objection_accepted.2025b" in dry.stdout
    assert "1 would change" in dry.stderr
    assert "accepted" not in cli("status", "--config", "config.yaml", cwd=setup).stdout

    done = cli("reclassify", "--config", "config-user.yaml", cwd=setup)
    assert done.exit_code == 0, done.stderr
    assert "status facebook:jonas.muster@example.de: (none) -> accepted" in done.stdout
    assert "1 changed, 1 status change(s)" in done.stderr
    status = cli("status", "--config", "config.yaml", cwd=setup)
    assert "facebook   jonas.muster@example.de  accepted" in status.stdout

    again = cli("reclassify", "--config", "config-user.yaml", cwd=setup)
    assert "0 changed, 0 status change(s)" in again.stderr

    # Without the user rule the mail is unrecognized again and the status it set goes away.
    back = cli("reclassify", "--config", "config.yaml", cwd=setup)
    assert "status facebook:jonas.muster@example.de: accepted -> (none)" in back.stdout
    assert (
        "facebook   jonas.muster@example.de"
        not in cli("status", "--config", "config.yaml", cwd=setup).stdout
    )


def test_rules_test_db_reruns_the_current_rules_on_a_stored_message(setup: Path) -> None:
    _scan(setup, "config.yaml", NEW_WORDING, LANG / "de" / "de-2024-code-instagram.eml")
    with Store.open(setup / "watcher.db") as store:
        (kept,) = store.kept_messages()
        (code_row,) = store.query("SELECT id FROM messages WHERE kind = 'verification_code'")
    done = cli("rules", "test", "--config", "config-user.yaml", "--db", str(kept.id), cwd=setup)
    assert done.exit_code == 0, done.stderr
    assert f"Mail: database message {kept.id}" in done.stdout
    assert "by rule my.de.objection_accepted.2025b" in done.stdout
    missing = cli("rules", "test", "--config", "config.yaml", "--db", str(code_row[0]), cwd=setup)
    assert missing.exit_code == 2
    assert "never of verification-code mail" in missing.stderr
    none = cli("rules", "test", "--config", "config.yaml", "--db", "999", cwd=setup)
    assert none.exit_code == 2
    assert "there is no message with that id" in none.stderr


def test_explain_is_pure_and_needs_no_database(pack: RulePack) -> None:
    outcome = process(
        RawMessage(SourceKey("t", "t", "", 0, 1), NEW_WORDING.read_bytes()), pack, SETTINGS
    )
    first = render(explain(outcome, pack), "x")
    assert first == render(explain(outcome, pack), "x")
    unfiltered = dataclasses.replace(pack, languages={})
    e = explain(outcome, unfiltered)
    assert e.gate is None
    assert not any(r.skipped for r in e.reports)


def test_rules_test_explains_every_message_of_an_mbox(setup: Path) -> None:
    import mailbox

    box = mailbox.mbox(setup / "two.mbox")
    for path in (LANG / "nl" / "nl-2025-accepted-facebook.eml", NEW_WORDING):
        box.add(path.read_bytes())
    box.flush()
    box.close()
    done = cli("rules", "test", "--config", "config.yaml", "two.mbox", cwd=setup)
    assert done.exit_code == 0, done.stderr
    results = [line for line in done.stdout.splitlines() if line.startswith("Result:")]
    assert len(results) == 2
    assert "by rule nl.objection_accepted" in results[0]
    assert results[1].startswith("Result: unrecognized")
    assert "two.mbox#2" in done.stdout
