"""Notifications: planning from outcomes (pure), reminders, text limits, real delivery to a
local HTTP receiver through Apprise, the outbox across failures."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemonproc import accepted_mail, code_mail
from httpreceiver import Receiver

from watcher.config import Config, NotifyTarget, parse_config
from watcher.errors import ConfigError
from watcher.notify.apprise import Sender, fit, retry_delay, send_test_notifications, truncate_utf8
from watcher.notify.plan import (
    NotifySettings,
    due_reminders,
    notify_settings,
    plan_notifications,
    plan_reminders,
    reminder_items,
)
from watcher.notify.texts import form_link
from watcher.pipeline.process import Settings, process
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources.base import RawMessage, SourceKey
from watcher.store.rows import CountedMail, StatusRow
from watcher.store.store import Store

CORPUS = Path(__file__).resolve().parent / "corpus"
NOW = datetime.now(UTC)
SETTINGS = Settings(trusted_authserv_ids=("mx.home.example",))


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(Config().rules_path)


def outcome_of(raw: bytes, pack: RulePack, uid: int = 7):
    key = SourceKey("home", "anna@127.0.0.1", "INBOX", 1, uid)
    return process(RawMessage(key, raw, NOW), pack, SETTINGS)


def two_targets(**kw) -> NotifySettings:
    return NotifySettings(targets=(("phone", ()), ("desk", ("suspicious",))), **kw)


def test_code_notification_carries_masked_text_and_the_code_as_secret(pack):
    items = plan_notifications(outcome_of(code_mail("913482"), pack), [], two_targets(), NOW)
    assert [(i.event, i.target) for i in items] == [("verification_code", "phone")]
    item = items[0]
    assert item.secret == "913482"
    assert "913482" not in item.title + item.body
    assert "91****" in item.title
    assert "anna.beispiel@example.org" in item.body
    assert item.dedupe_key == "msg:anna@127.0.0.1/INBOX/1/7:verification_code"


def test_notify_codes_off_leaves_no_secret_anywhere(pack):
    items = plan_notifications(
        outcome_of(code_mail("913482"), pack), [], two_targets(notify_codes=False), NOW
    )
    assert items[0].secret is None
    assert "913482" not in items[0].title + items[0].body
    assert "notify_codes is off" in items[0].body


def test_old_mail_from_a_first_scan_is_not_announced(pack):
    outcome = outcome_of((CORPUS / "de-2024-code-facebook.eml").read_bytes(), pack)
    assert outcome.mail_at is not None
    assert outcome.mail_at.year == 2024
    assert plan_notifications(outcome, [], two_targets(), NOW) == []


def test_accepted_mail_is_announced_with_account(pack):
    items = plan_notifications(outcome_of(accepted_mail(), pack), [], two_targets(), NOW)
    assert [i.event for i in items] == ["objection_accepted"]
    assert "Instagram" in items[0].title
    assert "anna.insta@example.org" in items[0].body


def test_spoofed_mail_goes_only_as_suspicious_with_sender_and_reason(pack):
    raw = (CORPUS / "spoof-display-name-lookalike-domain.eml").read_bytes()
    outcome = outcome_of(raw, pack)
    outcome = outcome.__class__(**{**outcome.__dict__, "mail_at": NOW})
    assert outcome.suspicious
    items = plan_notifications(outcome, [], two_targets(), NOW)
    assert {i.event for i in items} == {"suspicious"}
    assert {i.target for i in items} == {"phone", "desk"}
    assert outcome.message.from_addr in items[0].body
    assert "Why:" in items[0].body


def test_unrecognized_meta_mail_hints_at_rules_test(pack):
    raw = (CORPUS / "unrecognized-meta-privacy-mail.eml").read_bytes()
    outcome = outcome_of(raw, pack)
    outcome = outcome.__class__(**{**outcome.__dict__, "mail_at": NOW})
    items = plan_notifications(outcome, [], two_targets(), NOW)
    assert [i.event for i in items] == ["unrecognized"]
    assert "meta-watcher rules test" in items[0].body
    assert outcome.message.subject in items[0].body


def test_policy_update_names_effective_date_and_form_link(pack):
    raw = (CORPUS / "de-2025-policy-facebook.eml").read_bytes()
    outcome = outcome_of(raw, pack)
    outcome = outcome.__class__(
        **{**outcome.__dict__, "mail_at": NOW, "fields": {"effective_date": "2025-05-27"}}
    )
    items = plan_notifications(outcome, [], two_targets(), NOW)
    assert [i.event for i in items] == ["policy_update"]
    assert "2025-05-27" in items[0].title
    assert "https://www.facebook.com/help/contact/712876720715583" in items[0].body


def test_form_link_prefers_the_objection_form():
    links = ["https://www.facebook.com/o.php?k=1", "https://www.facebook.com/help/contact/123"]
    assert form_link(links) == "https://www.facebook.com/help/contact/123"
    assert form_link(["https://www.facebook.com/o.php?k=1"]) is None


def test_truncation_never_splits_a_character_and_fits_bytes():
    text = "Überprüfung 🎉" * 40
    for limit in range(0, 60):
        cut = truncate_utf8(text, limit)
        assert len(cut.encode("utf-8")) <= limit
        assert text.startswith(cut.removesuffix("…").rstrip()) or cut.endswith("…")
    assert truncate_utf8("short", 100) == "short"


def test_fit_merges_title_into_body_for_targets_without_titles():
    title, body = fit("Facebook verification code 123456", "x" * 5000, 0, 100)
    assert title == ""
    assert body.startswith("Facebook verification code 123456\r\n")
    assert len(body.encode()) <= 100


def test_retry_delay_grows_and_is_capped():
    delays = [retry_delay(n) for n in range(1, 20)]
    assert 1.6 <= delays[0] <= 2.4
    assert delays[3] > delays[0]
    assert max(delays) <= 600 * 1.2


def test_policy_reminders_fire_before_effective_date_until_accepted():
    effective = (NOW + timedelta(days=3)).date().isoformat()
    mails = [
        CountedMail(
            "facebook", "a@example.org", "policy_update", NOW - timedelta(days=20), effective
        )
    ]
    statuses = [StatusRow("facebook", "a@example.org", "notified", "", None, "", None)]
    reminders = plan_reminders(mails, statuses, (7, 1), UTC)
    assert sorted(r.dedupe_key.rsplit(":", 1)[1] for r in reminders) == ["1d", "7d"]
    due = due_reminders(reminders, NOW)
    assert [r.dedupe_key.rsplit(":", 1)[1] for r in due] == ["7d"]
    assert effective in due[0].notice.title
    later = due_reminders(reminders, NOW + timedelta(days=2, hours=23, minutes=59))
    assert [r.dedupe_key.rsplit(":", 1)[1] for r in later] == ["1d"]
    after = due_reminders(reminders, NOW + timedelta(days=5))
    assert after == []
    accepted = [StatusRow("facebook", "a@example.org", "accepted", "", None, "", None)]
    assert plan_reminders(mails, accepted, (7, 1), UTC) == []


def test_code_without_answer_reminds_after_one_month():
    sent = NOW - timedelta(days=40)
    mails = [CountedMail("facebook", "a@example.org", "verification_code", sent, None)]
    waiting = [StatusRow("facebook", "a@example.org", "code_received", "", None, "", None)]
    reminders = plan_reminders(mails, waiting, (7, 1), UTC)
    assert len(reminders) == 1
    assert timedelta(days=28) <= reminders[0].fire_at - sent <= timedelta(days=31)
    assert due_reminders(reminders, NOW) == reminders
    assert "Art. 12(3)" in reminders[0].notice.body
    decided = [StatusRow("facebook", "a@example.org", "rejected", "", None, "", None)]
    assert plan_reminders(mails, decided, (7, 1), UTC) == []


def test_answer_reminder_counts_from_the_last_code():
    first, last = NOW - timedelta(days=40), NOW - timedelta(days=20)
    mails = [
        CountedMail("facebook", "a@example.org", "verification_code", first, None),
        CountedMail("facebook", "a@example.org", "verification_code", last, None),
    ]
    waiting = [StatusRow("facebook", "a@example.org", "code_received", "", None, "", None)]
    (reminder,) = plan_reminders(mails, waiting, (7, 1), UTC)
    assert timedelta(days=28) <= reminder.fire_at - last <= timedelta(days=31)
    assert due_reminders([reminder], NOW) == []


def test_config_notify_entries_take_urls_or_mappings(tmp_path):
    config = parse_config(
        {
            "notify": [
                "ntfy://example-topic",
                {"url": "json://127.0.0.1:9/x", "name": "desk", "events": ["suspicious"]},
            ]
        },
        tmp_path / "c.yaml",
    )
    first, second = config.notify
    assert first.key.startswith("ntfy-")
    assert "example-topic" not in repr(config)
    assert second.wants("suspicious")
    assert not second.wants("verification_code")
    settings = notify_settings(config)
    assert settings.keys_for("verification_code") == [first.key]
    assert settings.reminder_days == (7, 1)
    with pytest.raises(ConfigError, match="notify"):
        parse_config({"notify": [{"url": "json://x", "events": ["nope"]}]}, tmp_path / "c.yaml")


def test_sender_rejects_an_url_apprise_does_not_know():
    with pytest.raises(ConfigError, match=r"notify\[0\].*nosuchscheme://"):
        Sender([NotifyTarget.model_validate("nosuchscheme://secret-token")])


def test_delivery_reaches_the_http_receiver_with_title_and_code():
    with Receiver() as receiver:
        target = NotifyTarget.model_validate(receiver.url)
        sender = Sender([target])
        assert sender.send(target.key, "Facebook verification code 482913", "Body <b>&</b>") is None
        got = receiver.wait_for(1, 10)
    assert got[0].title == "Facebook verification code 482913"
    assert got[0].message == "Body <b>&</b>"


def test_notify_test_names_the_failing_target_and_why():
    with Receiver() as up:
        down = Receiver().start()
        down.stop()  # a port where nothing listens any more
        targets = [
            NotifyTarget.model_validate({"url": up.url, "name": "up"}),
            NotifyTarget.model_validate({"url": down.url, "name": "down"}),
        ]
        results = dict((t.label, e) for t, e in send_test_notifications(targets))
        assert len(up.wait_for(1, 10)) == 1
    assert results["up"] is None
    assert results["down"] is not None
    assert "refused" in results["down"].lower() or "connect" in results["down"].lower()


def test_outbox_retries_while_target_is_down_then_delivers_once(tmp_path, pack):
    receiver = Receiver().start()
    port = receiver.port
    receiver.stop()
    target = NotifyTarget.model_validate({"url": f"json://127.0.0.1:{port}/notify", "name": "r"})
    settings = NotifySettings(targets=(("r", ()),))
    with Store.open(tmp_path / "log.sqlite3") as store:
        outcome = outcome_of(code_mail("654321"), pack)
        with store.recording(outcome) as recording:
            recording.notify(
                plan_notifications(outcome, recording.transitions, settings, datetime.now(UTC))
            )
        row = store.query("SELECT secret, state FROM outbox")[0]
        assert tuple(row) == ("654321", "pending")
        sender = Sender([target])
        assert sender.drain(store).failed == 1
        failed = store.query("SELECT attempts, last_error, next_attempt_at FROM outbox")[0]
        assert failed[0] == 1
        assert failed[1]
        assert sender.drain(store).sent == 0  # not due yet: backoff
        receiver = Receiver(port=port).start()
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not receiver.received:
                sender.drain(store)
                time.sleep(0.2)
            got = receiver.wait_for(1, 1)
        finally:
            receiver.stop()
        assert len(got) == 1
        assert "654321" in got[0].title
        assert sender.drain(store).sent == 0
        done = store.query("SELECT state, secret, title FROM outbox")[0]
        assert tuple(done[:2]) == ("sent", None)
        assert "654321" not in done[2]


def test_same_notification_planned_twice_is_stored_once(tmp_path, pack):
    settings = NotifySettings(targets=(("r", ()),))
    reminders = plan_reminders(
        [
            CountedMail(
                "facebook",
                "a@example.org",
                "verification_code",
                NOW - timedelta(days=40),
                None,
            )
        ],
        [StatusRow("facebook", "a@example.org", "code_received", "", None, "", None)],
        (7, 1),
        UTC,
    )
    items = reminder_items(due_reminders(reminders, NOW), settings)
    with Store.open(tmp_path / "log.sqlite3") as store:
        assert store.add_notifications(items) == 1
        assert store.add_notifications(items) == 0
        assert store.query("SELECT count(*) FROM outbox")[0][0] == 1
