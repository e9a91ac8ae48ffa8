"""The account checklist (issue 14.2): ``meta_accounts:`` lists the user's Meta accounts;
``status`` shows each one, also those without mail; an acceptance that says it covers the
whole Accounts Center moves the linked accounts to accepted, and ``log`` says why. Runs the
real CLI (``run --once`` on a local Maildir, ``status``, ``log``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemonproc import cli

from watcher.config import Config, package_file
from watcher.pipeline.rules import load_rules
from watcher.pipeline.rules.text import normalise

CORPUS = Path(__file__).parent / "corpus"
COVERING = "en-uk-2024-accepted-facebook.eml"  # ben.sample@example.net, Facebook
CODE = "de-2024-code-facebook.eml"  # anna.beispiel@example.org, Facebook
POLICY_IG = "de-2024-policy-instagram.eml"

ACCOUNTS = [
    {"platform": "facebook", "address": "ben.sample@example.net", "name": "Ben privat"},
    {
        "platform": "instagram",
        "address": "Ben.Insta@example.net",
        "name": "Ben Insta",
        "linked": "Ben privat",
    },
    {
        "platform": "instagram",
        "address": "firma@example.net",
        "name": "Firmen-Instagram",
        "business": True,
    },
    {"platform": "facebook", "address": "anna.beispiel@example.org", "name": "Anna"},
]


def _setup(tmp_path: Path, mails: list[str], meta_accounts: list[dict[str, Any]] | None) -> Path:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(mails):
        shutil.copy(CORPUS / name, maildir / "new" / f"{n}.mail")
    config: dict[str, Any] = {
        "database": str(tmp_path / "log.sqlite3"),
        "trusted_authserv_ids": ["mx.home.example"],
        "local": [{"name": "mail", "path": str(maildir)}],
    }
    if meta_accounts is not None:
        config["meta_accounts"] = meta_accounts
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _status(config: Path) -> list[dict[str, Any]]:
    done = cli("status", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_four_accounts_listed_and_the_accounts_center_acceptance_moves_the_linked_one(
    tmp_path: Path,
) -> None:
    config = _setup(tmp_path, [CODE, COVERING], ACCOUNTS)
    run = cli("run", "--once", "--config", str(config))
    assert run.returncode == 0, run.stderr

    rows = {(r["platform"], r["account"]): r for r in _status(config)}
    assert set(rows) == {
        ("facebook", "ben.sample@example.net"),
        ("instagram", "ben.insta@example.net"),
        ("instagram", "firma@example.net"),
        ("facebook", "anna.beispiel@example.org"),
    }
    assert rows[("facebook", "ben.sample@example.net")]["status"] == "accepted"
    assert rows[("instagram", "ben.insta@example.net")]["status"] == "accepted"
    assert rows[("facebook", "anna.beispiel@example.org")]["status"] == "code_received"
    firma = rows[("instagram", "firma@example.net")]
    assert firma["status"] == "no_notice"
    assert firma["next_step"].startswith("no notice yet: object anyway at https://")
    assert "instagram.com" in firma["next_step"]
    assert firma["name"] == "Firmen-Instagram"

    table = cli("status", "--config", str(config))
    assert table.returncode == 0, table.stderr
    assert "firma@example.net (Firmen-Instagram, business)" in table.stdout
    assert "no notice yet: object anyway at" in table.stdout
    assert "does not list" not in table.stdout

    log = cli("log", "--config", str(config))
    assert log.returncode == 0, log.stderr
    linked = [line for line in log.stdout.splitlines() if "ben.insta@example.net" in line]
    assert len(linked) == 1, log.stdout
    assert "accepted" in linked[0]
    assert "covered by the acceptance for facebook ben.sample@example.net" in linked[0]
    assert "Accounts Center" in linked[0]
    events = [
        json.loads(x) for x in cli("log", "--json", "--config", str(config)).stdout.split("\n") if x
    ]
    covered = [e for e in events if e["account"] == "ben.insta@example.net"]
    assert covered[0]["from"] is None
    assert covered[0]["to"] == "accepted"
    own = [e for e in events if e["account"] == "ben.sample@example.net"]
    # The linked account's transition names the mail that covered it.
    assert covered[0]["message_id"] == own[-1]["message_id"]
    assert covered[0]["mail_date"] == own[-1]["mail_date"]


def test_an_unlinked_account_is_not_moved_and_unlisted_mail_suggests_adding_it(
    tmp_path: Path,
) -> None:
    unlinked = [dict(a) for a in ACCOUNTS if a["name"] != "Anna"]
    unlinked[1].pop("linked")
    config = _setup(tmp_path, [CODE, COVERING], unlinked)
    assert cli("run", "--once", "--config", str(config)).returncode == 0
    rows = {(r["platform"], r["account"]): r["status"] for r in _status(config)}
    assert rows[("instagram", "ben.insta@example.net")] == "no_notice"
    table = cli("status", "--config", str(config)).stdout
    assert "facebook anna.beispiel@example.org, which meta_accounts does not list" in table


def test_without_meta_accounts_everything_is_as_before(tmp_path: Path) -> None:
    config = _setup(tmp_path, [CODE, COVERING], None)
    assert cli("run", "--once", "--config", str(config)).returncode == 0
    rows = {(r["platform"], r["account"]): r["status"] for r in _status(config)}
    assert rows == {
        ("facebook", "anna.beispiel@example.org"): "code_received",
        ("facebook", "ben.sample@example.net"): "accepted",
    }
    table = cli("status", "--config", str(config)).stdout
    assert "no_notice" not in table
    assert "meta_accounts" not in table


def test_linked_must_name_a_listed_account(tmp_path: Path) -> None:
    bad = [{"platform": "facebook", "address": "a@example.org", "linked": "Nobody"}]
    with pytest.raises(ValueError, match="Nobody"):
        Config.model_validate({"meta_accounts": bad})


@pytest.mark.parametrize(
    "sentence",
    [
        "We will also honour your objection for any other accounts that you've added to the "
        "same Accounts Centre as this account.",
        "We will also honor your objection for any other accounts you have in the same "
        "Accounts Center.",
        "Dein Widerspruch gilt auch für alle anderen Konten, die du derselben "
        "Kontenübersicht hinzugefügt hast.",
        "Nous appliquerons également votre opposition à tous les autres comptes que vous avez "
        "ajoutés au même Espace Comptes.",
        "Applicheremo anche la tua opposizione a tutti gli altri account che hai aggiunto allo "
        "stesso Centro gestione account.",
        "También aplicaremos tu oposición a las demás cuentas que hayas añadido al mismo "
        "Centro de cuentas.",
        "We passen je bezwaar ook toe op alle andere accounts die je aan hetzelfde "
        "Accountcentrum hebt toegevoegd.",
    ],
)
def test_covers_accounts_center_phrases_per_language(sentence: str) -> None:
    pack = load_rules(package_file("rules.yaml"))
    text = normalise(sentence)
    assert any(p.search(text) for p in pack.covers_accounts_center), sentence


@pytest.mark.parametrize(
    "sentence",
    [
        "Your objection applies only to this account, not to other accounts in your Accounts "
        "Centre.",
        "You can add other accounts to the same Accounts Centre in Settings.",
        "Dein Widerspruch gilt nur für dieses Konto.",
    ],
)
def test_covers_accounts_center_phrases_leave_other_sentences_alone(sentence: str) -> None:
    pack = load_rules(package_file("rules.yaml"))
    text = normalise(sentence)
    assert not any(p.search(text) for p in pack.covers_accounts_center), sentence
