"""What a poll costs the server, against a real Dovecot: one STATUS when nothing is new, no body
fetched for mail the search picked but that cannot be Meta's, and the header-fetch fallback.
(Timings are in bench/, never asserted here.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dovecot import DovecotServer
from test_imap_integration import write_config

from watcher.config import Config, load_config, package_file
from watcher.daemon.ingest import RunReport, settings_of
from watcher.daemon.runner import poll_account, search_plan
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources import imap
from watcher.sources.imap.search import _header_candidates
from watcher.store.store import Store

CORPUS = Path(__file__).parent / "corpus"
BAIT = (
    b"From: Metallbau Schmidt <info@metallbau-schmidt.de>\r\n"
    b"To: anna@example.org\r\n"
    b"Subject: Metadaten-Export abgeschlossen\r\n"
    b"Message-ID: <bait@metallbau-schmidt.de>\r\n"
    b"Date: Mon, 3 Jun 2024 10:00:00 +0000\r\n"
    b"\r\n" + b"Lieferschein im Anhang.\r\n" * 2000
)
ORDINARY = (
    b"From: Karl <karl@example.org>\r\nTo: anna@example.org\r\nSubject: Kino und Wiki\r\n"
    b"Message-ID: <kino@example.org>\r\n\r\nHeute Abend?\r\n"
)


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


@pytest.fixture
def setup(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> Iterator[tuple[Config, Store]]:
    user, password = dovecot_user
    config = load_config(write_config(tmp_path, dovecot, user, password))
    with Store.open(config.database) as store:
        yield config, store


def test_poll_with_nothing_new_on_a_kept_connection_sends_only_status(
    dovecot: DovecotServer,
    dovecot_user: tuple[str, str],
    setup: tuple[Config, Store],
    pack: RulePack,
) -> None:
    config, store = setup
    account, settings = config.accounts[0], settings_of(config)
    dovecot.append(dovecot_user[0], "INBOX", (CORPUS / "en-2024-policy-facebook.eml").read_bytes())
    first = RunReport()
    poll_account(account, store, pack, settings, first)
    assert first.recorded == 1
    client = imap.connect(account)
    try:
        before = client._imap.tagnum
        for _ in range(5):
            report = RunReport()
            poll_account(account, store, pack, settings, report, client=client)
            assert report.fetched == 0
        assert client._imap.tagnum - before == 5  # one command per poll: STATUS
        # New mail on the same connection is still found (the folder was left unselected).
        dovecot.append(
            dovecot_user[0], "INBOX", (CORPUS / "de-2024-code-facebook.eml").read_bytes()
        )
        report = RunReport()
        poll_account(account, store, pack, settings, report, client=client)
        assert report.recorded == 1
    finally:
        imap.logout(client)


def test_searched_mail_that_cannot_be_meta_is_not_fetched_whole(
    dovecot: DovecotServer,
    dovecot_user: tuple[str, str],
    setup: tuple[Config, Store],
    pack: RulePack,
) -> None:
    config, store = setup
    user = dovecot_user[0]
    dovecot.append(user, "INBOX", BAIT)  # the search for "meta" picks it
    dovecot.append(user, "INBOX", (CORPUS / "spoof-display-name-lookalike-domain.eml").read_bytes())
    report = RunReport()
    poll_account(config.accounts[0], store, pack, settings_of(config), report)
    assert report.fetched == 1  # the look-alike only
    rows = store.query("SELECT sender, suspicious FROM messages")
    assert [(r["sender"].split("<")[1], r["suspicious"]) for r in rows] == [
        ("privacy@meta-support-center.com>", 1)
    ]
    assert store.cursor(config.accounts[0].identity, "INBOX").last_uid == 2  # type: ignore[union-attr]


def test_two_letter_subject_words_are_left_out_of_the_server_search(pack: RulePack) -> None:
    plan = search_plan(pack)
    assert plan.subject_words  # rules.yaml has some
    assert all(len(w) >= imap.MIN_SUBJECT_WORD for w in plan.subject_words)
    assert "KI" in pack.search_subject_words or "IA" in pack.search_subject_words
    assert not plan.is_candidate("Karl <karl@example.org>", "Kino und Wiki")


def test_header_fetch_fallback_picks_candidates(
    dovecot: DovecotServer,
    dovecot_user: tuple[str, str],
    setup: tuple[Config, Store],
    pack: RulePack,
) -> None:
    config, _store = setup
    user = dovecot_user[0]
    uids = [
        dovecot.append(user, "INBOX", ORDINARY),
        dovecot.append(user, "INBOX", (CORPUS / "en-2024-policy-facebook.eml").read_bytes()),
        dovecot.append(user, "INBOX", ORDINARY.replace(b"<kino@", b"<kino2@")),
    ]
    client = imap.connect(config.accounts[0])
    try:
        imap.examine(client, config.accounts[0], "INBOX")
        found = _header_candidates(client, search_plan(pack), uids[1])
    finally:
        imap.logout(client)
    assert found == [uids[1]]
