"""The rule pack kept between runs (watcher.pipeline.rules.cache): a pack read back classifies
every mail exactly as a fresh build does, any change to a rules file builds anew, and a bad,
foreign or unwritable cache never changes a result or raises."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from watcher.config import package_file
from watcher.errors import RulesError
from watcher.pipeline import dates
from watcher.pipeline.process import Settings, process
from watcher.pipeline.rules import RulePack, load_rules
from watcher.pipeline.rules.cache import load_rules_cached, pack_key
from watcher.sources.base import RawMessage, SourceKey

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
LANG = HERE / "lang"
MANIFEST = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
SETTINGS = Settings(trusted_authserv_ids=tuple(MANIFEST["trusted_authserv_ids"]))


def _mails() -> list[Path]:
    return sorted(CORPUS.glob("*.eml")) + sorted(LANG.glob("*/*.eml"))


def _verdicts(pack: RulePack) -> list[tuple[object, ...]]:
    out = []
    for path in _mails():
        raw = RawMessage(SourceKey("t", "t", path.name, 0, 1), path.read_bytes())
        o = process(raw, pack, SETTINGS)
        m = o.match
        out.append((path.name, m.kind, m.rule_id, m.language, m.account, m.platform, o.fields))
    return out


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "rules").glob("*.pickle"))


def test_a_pack_read_back_classifies_every_mail_as_a_fresh_build(tmp_path: Path) -> None:
    rules = package_file("rules.yaml")
    built = load_rules_cached(rules, (), tmp_path)
    assert len(_entries(tmp_path)) == 1
    read_back = load_rules_cached(rules, (), tmp_path)
    assert read_back is not built  # really read from the file
    fresh = load_rules(rules)
    assert len(_mails()) > 150
    assert _verdicts(read_back) == _verdicts(fresh)
    assert [r.id for r in read_back.rules] == [r.id for r in fresh.rules]


def test_an_edited_rules_file_is_built_anew(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    shutil.copy(package_file("rules.yaml"), rules)
    cache = tmp_path / "cache"
    first = load_rules_cached(rules, (), cache)
    data = yaml.safe_load(rules.read_text(encoding="utf-8"))
    victim = data["rules"][0]["id"]
    data["disable"] = [*data.get("disable", []), victim]
    rules.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    second = load_rules_cached(rules, (), cache)
    assert victim in {r.id for r in first.rules}
    assert victim not in {r.id for r in second.rules}
    assert len(_entries(cache)) == 2


def test_user_rules_are_part_of_the_key(tmp_path: Path) -> None:
    rules = package_file("rules.yaml")
    user = tmp_path / "mine.yaml"
    user.write_text("disable: []\n", encoding="utf-8")
    assert pack_key(rules, ()) != pack_key(rules, (user,))
    before = pack_key(rules, (user,))
    user.write_text("disable: [nothing-here]\n", encoding="utf-8")
    assert pack_key(rules, (user,)) != before
    assert pack_key(rules, (tmp_path / "missing.yaml",)) is None


def test_a_broken_rules_file_raises_every_time_and_is_not_cached(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        package_file("rules.yaml").read_text(encoding="utf-8") + "\n  - id: [broken\n",
        encoding="utf-8",
    )
    for _ in range(2):
        with pytest.raises(RulesError):
            load_rules_cached(rules, (), tmp_path / "cache")
    assert _entries(tmp_path / "cache") == []


@pytest.mark.parametrize("damage", ["garbage", "empty", "other-object", "group-writable"])
def test_a_damaged_or_foreign_entry_is_ignored_and_rebuilt(tmp_path: Path, damage: str) -> None:
    rules = package_file("rules.yaml")
    load_rules_cached(rules, (), tmp_path)
    (entry,) = _entries(tmp_path)
    if damage == "garbage":
        entry.write_bytes(b"\x80\x05not a pickle at all")
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "other-object":
        import pickle

        entry.write_bytes(pickle.dumps({"rules": "not a pack"}))
    else:
        # Writable by the group: another user could have planted it; pickle would run it.
        marker = tmp_path / "ran"
        payload = (
            b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
        )  # a pickle that runs a command when loaded
        entry.write_bytes(payload)
        entry.chmod(0o660)
    pack = load_rules_cached(rules, (), tmp_path)
    assert isinstance(pack, RulePack)
    assert len(pack.rules) == len(load_rules(rules).rules)
    if damage == "group-writable":
        assert not (tmp_path / "ran").exists()
        assert entry.stat().st_mode & 0o077 == 0  # replaced by a private entry


def test_an_unwritable_cache_folder_still_gives_the_pack(tmp_path: Path) -> None:
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the folder should be", encoding="utf-8")
    pack = load_rules_cached(package_file("rules.yaml"), (), blocked)
    assert len(pack.rules) == len(load_rules(package_file("rules.yaml")).rules)


def test_entries_are_private(tmp_path: Path) -> None:
    load_rules_cached(package_file("rules.yaml"), (), tmp_path)
    assert (tmp_path / "rules").stat().st_mode & 0o077 == 0
    (entry,) = _entries(tmp_path)
    assert entry.stat().st_mode & 0o077 == 0


_CHILD = """
import json, sys
from pathlib import Path
from watcher.pipeline.process import Settings, process
from watcher.pipeline.rules.cache import load_rules_cached
from watcher.pipeline.rules.text import compile_phrase
from watcher.sources.base import RawMessage, SourceKey
pack = load_rules_cached(Path(sys.argv[2]), (), Path(sys.argv[1]))
phrases = {p.written for r in pack.rules for g in (r.subject, r.decisive, r.supporting,
           r.negatives, *r.all) for p in g}
for name in sys.argv[3:]:
    raw = RawMessage(SourceKey("t", "t", name, 0, 1), Path(name).read_bytes())
    kind = process(raw, pack, Settings()).match.kind
from watcher.pipeline.dates import month_names
months = {lang: month_names(lang) for lang in ("de", "pl", "el", "fi", "en")}
print(json.dumps({"compiled": compile_phrase.cache_info().currsize, "phrases": len(phrases),
                  "pydantic": "pydantic" in sys.modules, "yaml": "yaml" in sys.modules,
                  "babel": "babel" in sys.modules, "months": months}))
"""


def test_a_cached_pack_compiles_only_what_mail_needs_and_skips_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a fresh process reading a cached pack, one Meta mail compiles a small part of the
    phrases; neither pydantic nor YAML nor babel is imported, and the month names the entry
    brings are those babel's CLDR data gives."""
    load_rules_cached(package_file("rules.yaml"), (), tmp_path)
    mail = CORPUS / sorted(n for n, e in MANIFEST["messages"].items() if e["kind"] != "other")[0]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path), str(package_file("rules.yaml")), str(mail)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    seen = json.loads(done.stdout)
    assert seen["phrases"] > 500
    assert 0 < seen["compiled"] < seen["phrases"] / 3, seen
    assert seen["pydantic"] is False, seen
    assert seen["yaml"] is False, seen
    assert seen["babel"] is False, seen
    monkeypatch.setattr(dates, "_REMEMBERED", {})
    dates.month_names.cache_clear()
    from_cldr = {lang: dates.month_names(lang) for lang in seen["months"]}
    dates.month_names.cache_clear()
    assert seen["months"] == from_cldr
    assert from_cldr["pl"]["czerwca"] == 6


def test_build_warnings_are_said_again_when_the_pack_is_read_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text("disable: [no.such.rule]\n", encoding="utf-8")
    rules = package_file("rules.yaml")
    for round_ in ("built", "read back"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            load_rules_cached(rules, (user,), tmp_path / "cache")
        said = [r.getMessage() for r in caplog.records if "no.such.rule" in r.getMessage()]
        assert len(said) == 1, (round_, said)
    assert len(_entries(tmp_path / "cache")) == 1


def test_a_bad_month_table_changes_nothing_and_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    monkeypatch.setattr(dates, "_REMEMBERED", {})
    dates.month_names.cache_clear()
    rules = package_file("rules.yaml")
    load_rules_cached(rules, (), tmp_path)
    (entry,) = _entries(tmp_path)
    kept = pickle.loads(entry.read_bytes())
    # The first table is well formed but wrong, the second is not a table of months at all.
    kept["months"] = {"de": {"zzz": 1}, "el": {"x": 13}}
    entry.write_bytes(pickle.dumps(kept))
    entry.chmod(0o600)
    dates._REMEMBERED.clear()
    dates.month_names.cache_clear()
    load_rules_cached(rules, (), tmp_path)
    assert "zzz" not in dates.month_names("de")
    rebuilt = pickle.loads(entry.read_bytes())["months"]
    assert "zzz" not in rebuilt["de"]
    assert rebuilt["de"]["juni"] == 6
    dates.month_names.cache_clear()


def test_half_written_entries_of_killed_runs_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir(mode=0o700)
    old, recent = folder / ".pack-old.tmp", folder / ".pack-recent.tmp"
    old.write_bytes(b"half")
    recent.write_bytes(b"half")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    load_rules_cached(package_file("rules.yaml"), (), tmp_path)
    assert not old.exists()
    assert recent.exists()  # may be another process's write in progress
