"""Exactly once, across crashes: nothing lost, nothing twice.

* The watcher (`meta-watcher run --once`, a real process) is SIGKILLed at chosen points of a
  first scan of a generated mailbox (``META_WATCHER_CRASH_AT``, watcher/crashpoint.py: fetch,
  parse, commit, committed, notify, notified) and restarted each time; the final database and
  the notifications received must equal those of a run that was never interrupted. Always on:
  600 messages, 30 kills. META_WATCHER_LONG=1: 3,000 messages, 60 hook kills plus 20 kills
  after a random delay.
* Two watchers on one database: the second is refused with one clear sentence.
* Message identity: a re-uploaded mail, one notice in two watched accounts, a folder deleted
  and recreated, an account pointed at another server under the same name, expunges that
  renumber sequence numbers.
* A fresh database over a mailbox that already holds Meta mail processes all of it (backfill).
"""

from __future__ import annotations

import email.header
import email.utils
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemonproc import REPO, DaemonProcess, _env, cli, write_config
from dovecot import DovecotServer
from httpreceiver import Receiver
from test_server_faults import mailbox_state

from watcher.pipeline.message import parse

LONG = os.environ.get("META_WATCHER_LONG") == "1"
CORPUS = Path(__file__).resolve().parent / "corpus"
AUTH = (
    "mx.home.example; dkim=pass header.d=facebookmail.com; spf=pass "
    "smtp.mailfrom=facebookmail.com; dmarc=pass header.from=facebookmail.com"
)
UIDVALIDITY = 1_700_000_000


# ----------------------------------------------------------------- generated mailboxes


def _template(name: str, account: str) -> tuple[str, str]:
    msg = parse((CORPUS / name).read_bytes())
    return msg.subject, msg.text.replace(account, "{account}")


TEMPLATES: dict[str, tuple[str, str]] = {
    "verification_code": _template("de-2024-code-facebook.eml", "anna.beispiel@example.org"),
    "policy_update": _template("de-2024-policy-facebook.eml", "anna.beispiel@example.org"),
    "objection_accepted": _template("en-uk-2024-accepted-facebook.eml", "ben.sample@example.net"),
    "objection_rejected": _template("en-2024-rejected-facebook.eml", "ben.sample@example.net"),
    "info_requested": _template("en-2024-third-party-info-requested.eml", "ben.sample@example.net"),
    "unrecognized": _template("unrecognized-meta-privacy-mail.eml", "anna.beispiel@example.org"),
}
# Per 100 messages: what a busy mailbox with Meta mail in it looks like.
MIX = {
    "verification_code": 20,
    "policy_update": 8,
    "objection_accepted": 7,
    "objection_rejected": 5,
    "info_requested": 5,
    "unrecognized": 3,
    "suspicious": 6,
    "broken": 1,
    "reupload": 5,
    "other": 40,
}


def meta_mail(
    kind: str,
    account: str,
    message_id: str,
    date: datetime,
    *,
    code: str = "000000",
    sender: str = "Facebook <notification@facebookmail.com>",
    auth: str = AUTH,
) -> bytes:
    """A plain-text Meta privacy mail of *kind* for *account*, authenticated by
    mx.home.example unless *auth*/*sender* say otherwise."""
    subject, text = TEMPLATES[kind]
    text = text.replace("{account}", account).replace("482913", code)
    head = [
        "Return-Path: <notification@facebookmail.com>",
        f"Delivered-To: {account}",
        f"Authentication-Results: {auth}",
        f"Date: {email.utils.format_datetime(date)}",
        f"To: {account}",
        f"From: {sender}",
        f"Subject: {email.header.Header(subject, 'utf-8').encode()}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + text.replace("\n", "\r\n") + "\r\n").encode()


def other_mail(n: int, date: datetime) -> bytes:
    return (
        f"From: Karl <karl@example.com>\r\nTo: anna@example.org\r\nSubject: Treffen {n}\r\n"
        f"Message-ID: <other-{n}@example.com>\r\nDate: {email.utils.format_datetime(date)}\r\n"
        f"\r\nBis Samstag!\r\n"
    ).encode()


def broken_mail(n: int, date: datetime) -> bytes:
    """A Meta-looking mail whose 3,000 nested multiparts the parser cannot read."""
    head = (
        f"From: Facebook <notification@facebookmail.com>\r\nTo: anna@example.org\r\n"
        f"Subject: Datenschutzrichtlinie\r\nMessage-ID: <broken-{n}@facebookmail.com>\r\n"
        f"Date: {email.utils.format_datetime(date)}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    )
    body = "".join(
        f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n' for i in range(3000)
    )
    return (head + body + "--b3000--\r\n").encode()


def generate(count: int, rng: random.Random, now: datetime) -> list[bytes]:
    """*count* messages in UID order: Meta mails of every kind for 15 accounts, spoofs,
    unreadable mail, re-uploads of earlier mails, and ordinary mail. Dates lie within the last
    36 hours in random order, so replay order differs from UID order and every Meta mail is
    recent enough to be notified."""
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    accounts = [f"user{n}@example.org" for n in range(15)]
    out: list[bytes] = []
    for n in range(count):
        kind = rng.choices(kinds, weights)[0]
        date = now - timedelta(seconds=rng.randrange(36 * 3600))
        account = rng.choice(accounts)
        mid = f"<gen-{n}-{rng.getrandbits(32):08x}@facebookmail.com>"
        if kind == "reupload" and out:
            out.append(rng.choice(out))  # same bytes, same Message-ID, a new UID
        elif kind == "other" or kind == "reupload":
            out.append(other_mail(n, date))
        elif kind == "broken":
            out.append(broken_mail(n, date))
        elif kind == "suspicious":
            out.append(
                meta_mail(
                    "objection_accepted",
                    account,
                    mid,
                    date,
                    sender="Meta <meta.privacy@gmail.com>",
                    auth="mx.home.example; dkim=pass header.d=gmail.com",
                )
            )
        else:
            code = f"{rng.randrange(100_000, 1_000_000)}"
            out.append(meta_mail(kind, account, mid, date, code=code))
    return out


def write_maildir(
    server: DovecotServer,
    user: str,
    mails: list[bytes],
    first: int = 1,
    uidvalidity: int = UIDVALIDITY,
    folder: str = "INBOX",
) -> None:
    """Put *mails* into *folder* (INBOX or a Maildir++ subfolder) with UIDs from *first* on,
    before Dovecot ever opened it: the Maildir files plus a dovecot-uidlist that assigns the
    UIDs and the UIDVALIDITY. Much faster than APPENDing thousands of messages."""
    root = server.maildir(user)
    maildir = root if folder == "INBOX" else root / f".{folder}"
    owner = os.stat(server.home(user))
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    lines = []
    for n, raw in enumerate(mails):
        name = f"1700000000.M{n}P{first}.test"
        (maildir / "cur" / f"{name}:2,").write_bytes(raw)
        lines.append(f"{first + n} :{name}:2,")
    header = f"3 V{uidvalidity} N{first + len(mails)} G{os.urandom(16).hex()}"
    (maildir / "dovecot-uidlist").write_text(header + "\n" + "\n".join(lines) + "\n")
    if folder != "INBOX":
        (maildir / "maildirfolder").touch()
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(base, name), owner.st_uid, owner.st_gid)
    os.chown(root, owner.st_uid, owner.st_gid)


# ----------------------------------------------------------------- running the watcher


def config_for(
    tmp: Path,
    server: DovecotServer,
    user: str,
    password: str,
    notify: list[str],
    **top: Any,
) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    top.setdefault("reminder_days", [])
    return write_config(tmp, server, user, password, notify, **top)


def run_once(config: Path, crash_at: str | None = None, timeout: float = 600) -> int:
    """`meta-watcher run --once`; returns the exit status (-9 when the crash point fired)."""
    env = _env()
    if crash_at:
        env["META_WATCHER_CRASH_AT"] = crash_at
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "run", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
        check=False,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"run --once exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.returncode


def run_killed_after(config: Path, seconds: float) -> int:
    """Start `run --once` and SIGKILL it after *seconds* (if still running)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "--once", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
        cwd=REPO,
    )
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=30)


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Everything that must not depend on crashes: messages, transitions, statuses, cursors,
    the outbox (without times, attempts and target keys)."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        queries = {
            "messages": "SELECT source, identity, folder, uidvalidity, uid, message_id, sha256, "
            "mail_date, date_source, sender, subject, kind, platform, account, language, "
            "authenticity, auth_reasons, authserv_id, suspicious, counted, rule_id, fields, "
            "error FROM messages ORDER BY identity, folder, uidvalidity, uid",
            "transitions": "SELECT t.platform, t.account, t.seq, t.from_status, t.to_status, "
            "t.mail_date, t.rule_id, m.uid FROM transitions t JOIN messages m "
            "ON m.id = t.message_ref ORDER BY t.platform, t.account, t.seq",
            "status": "SELECT platform, account, status, since, message_id FROM current_status "
            "ORDER BY platform, account",
            "cursors": "SELECT identity, folder, uidvalidity, last_uid FROM cursors "
            "ORDER BY identity, folder",
            "outbox": "SELECT dedupe_key, event, title, body, state, secret FROM outbox "
            "ORDER BY dedupe_key",
        }
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}
    finally:
        conn.close()


def notifications(receiver: Receiver) -> Counter[tuple[str, str]]:
    return Counter((r.title, r.message) for r in receiver.received)


def remaining_candidates(db: Path, candidate_uids: list[int]) -> int:
    if not db.exists():
        return len(candidate_uids)
    conn = sqlite3.connect(db, timeout=30)
    try:
        row = conn.execute("SELECT last_uid FROM cursors").fetchone()
    except sqlite3.OperationalError:
        row = None
    finally:
        conn.close()
    last = row[0] if row else 0
    return sum(1 for uid in candidate_uids if uid > last)


def pending_notifications(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(
            conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
        )
    finally:
        conn.close()


def drain(config: Path) -> None:
    """Clean runs until nothing is left to send: one run sends at most one page (100) of
    the outbox, the rest waits for the next run."""
    db = config.parent / "log.sqlite3"
    for _ in range(100):
        assert run_once(config) == 0
        if pending_notifications(db) == 0:
            return
    pytest.fail("the outbox never drained")


SCAN_POINTS = ("fetch", "parse", "commit", "committed")
NOTIFY_POINTS = ("notify", "notified")


@pytest.mark.timeout(3600 if LONG else 600)
def test_sigkill_at_30_points_of_a_first_scan_loses_and_repeats_nothing(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    seed = int(os.environ.get("META_WATCHER_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    count, hook_kills, delay_kills = (3000, 60, 20) if LONG else (600, 30, 0)
    user, password = dovecot_user
    mails = generate(count, rng, datetime.now(UTC))
    write_maildir(dovecot, user, mails)
    before = mailbox_state(dovecot, user)
    # Which UIDs the server's search will offer: everything claiming to be Meta.
    candidate_uids = [
        uid
        for uid, raw in enumerate(mails, start=1)
        if b"facebookmail.com>" in raw.split(b"\r\n\r\n")[0]
        or b"Meta <" in raw.split(b"\r\n\r\n")[0]
    ]
    with Receiver() as base_rx, Receiver() as kill_rx:
        base = config_for(tmp_path / "base", dovecot, user, password, [base_rx.url])
        kill = config_for(tmp_path / "kill", dovecot, user, password, [kill_rx.url])
        drain(base)
        expected = snapshot(tmp_path / "base" / "log.sqlite3")
        expected_notes = notifications(base_rx)
        assert len(expected["messages"]) > count // 3, "the generated mailbox is too tame"
        assert sum(expected_notes.values()) > count // 3

        kills: Counter[str] = Counter()
        random_kills = 0
        db = tmp_path / "kill" / "log.sqlite3"
        # Scan phase: hook kills spread so each run gets through a share of what is left;
        # in the long run, kills after a random delay are mixed in (any point at all).
        scan_budget = hook_kills * 2 // 3
        plan = ["hook"] * scan_budget + ["delay"] * delay_kills
        rng.shuffle(plan)
        hooks_done = 0
        for kind in plan:
            left = remaining_candidates(db, candidate_uids)
            if left < 3:
                break
            if kind == "delay":
                if run_killed_after(kill, rng.uniform(0.8, 2.5)) == -signal.SIGKILL:
                    random_kills += 1
                continue
            point = rng.choice(SCAN_POINTS)
            share = max(1, 2 * left // (scan_budget - hooks_done + 2))
            hooks_done += 1
            nth = rng.randint(1, min(left - 1, share))
            if run_once(kill, f"{point}:{nth}") == -signal.SIGKILL:
                kills[point] += 1
        # Drain phase: the outbox fills during the scan; a run sends up to 100 at its end.
        drain_budget = hook_kills - sum(kills.values())
        for planned in range(drain_budget):
            pending = pending_notifications(db) if db.exists() else 0
            point = rng.choice(NOTIFY_POINTS)
            share = max(1, pending // (drain_budget - planned + 1))
            nth = rng.randint(1, max(1, min(pending, share, 100)))
            if run_once(kill, f"{point}:{nth}") == -signal.SIGKILL:
                kills[point] += 1
        drain(kill)
        got = snapshot(db)
        got_notes = notifications(kill_rx)
    assert mailbox_state(dovecot, user) == before  # read-only through every crash

    where = f"(seed {seed}, kills {dict(kills)}; rerun with META_WATCHER_SEED={seed})"
    assert sum(kills.values()) >= hook_kills, where
    assert all(kills[p] for p in ("fetch", "parse", "commit", "committed")), where
    assert kills["notify"] + kills["notified"] >= 1, where
    for table in expected:
        assert got[table] == expected[table], f"{table} differs {where}"
    lost = expected_notes - got_notes
    twice = got_notes - expected_notes
    print(  # the figures for the report (pytest -s)
        f"exactly-once: {count} messages, {len(expected['messages'])} recorded, "
        f"{sum(expected_notes.values())} notifications; hook kills {dict(kills)}, "
        f"random-delay kills {random_kills}; lost {sum(lost.values())}, "
        f"twice {sum(twice.values())}"
    )
    assert not lost, f"{sum(lost.values())} notification(s) lost {where}"
    # Only a kill landing between the target's answer and the commit can repeat one.
    assert sum(twice.values()) <= random_kills, f"{sum(twice.values())} sent twice {where}"


# ----------------------------------------------------------------- two watchers


def test_second_watcher_on_the_same_database_is_refused_with_a_clear_message(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    now = datetime.now(UTC)
    for n in range(3):
        dovecot.append(
            user, "INBOX", meta_mail("policy_update", f"a{n}@example.org", f"<two-{n}@f>", now)
        )
    config = config_for(tmp_path, dovecot, user, password, [])
    with DaemonProcess(config, tmp_path / "first.log") as first:
        assert first.wait_log("idling", 20), first.log()
        second = cli("run", "--once", "--config", str(config))
        daemon2 = cli("run", "--config", str(config), timeout=30)
        assert first.proc is not None
        assert first.proc.poll() is None
        first.signal(signal.SIGTERM)
        assert first.wait(15) == 0
    for done in (second, daemon2):
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert lines[-1] == (
            f"meta-watcher: another meta-watcher is already processing mail into "
            f"{tmp_path / 'log.sqlite3'}"
        ), done.stderr
        assert "Traceback" not in done.stderr
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    try:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    finally:
        conn.close()


def test_watchers_started_at_the_same_moment_on_a_fresh_database(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    """Four `run --once` at once on a database that does not exist yet: each either processes
    mail or is refused with the lock sentence; no other error (the schema is created once)."""
    user, password = dovecot_user
    now = datetime.now(UTC)
    write_maildir(
        dovecot,
        user,
        [meta_mail("verification_code", "a@example.org", f"<m-{n}@f>", now) for n in range(40)],
    )
    config = config_for(tmp_path, dovecot, user, password, [])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--once", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=REPO,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes
    for code, (_out, err) in zip(codes, results, strict=True):
        if code != 0:
            assert "another meta-watcher is already processing mail" in err, err
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    try:
        rows = conn.execute("SELECT count(*), count(DISTINCT message_id) FROM messages").fetchone()
    finally:
        conn.close()
    assert rows == (40, 40)


# ----------------------------------------------------------------- message identity


def db_query(config: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(config.parent / "log.sqlite3", timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def must_run(config: Path) -> None:
    done = cli("run", "--once", "--config", str(config))
    assert done.returncode == 0, done.stderr


def test_reuploaded_mail_same_message_id_new_uid_is_recognised(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    raw = meta_mail("objection_accepted", "ben@example.net", "<re-1@f>", datetime.now(UTC))
    with Receiver() as rx:
        config = config_for(tmp_path, dovecot, user, password, [rx.url])
        first_uid = dovecot.append(user, "INBOX", raw)
        must_run(config)
        # A client moves it away and back (or re-uploads a backup): new UID, same mail.
        second_uid = dovecot.append(user, "INBOX", raw)
        assert second_uid != first_uid
        must_run(config)
        notes = len(rx.received)
    assert db_query(config, "SELECT uid, kind FROM messages") == [(first_uid, "objection_accepted")]
    assert db_query(config, "SELECT count(*) FROM transitions") == [(1,)]
    assert db_query(config, "SELECT last_uid FROM cursors") == [(second_uid,)]
    assert notes == 1


def test_same_notice_in_two_watched_accounts_gives_one_status_per_meta_account(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    """The same notice (same Message-ID) lands in two watched mailboxes: each mailbox keeps
    its copy as evidence, the Meta account gets one status and one transition, and the user
    hears about it once. A different notice for another Meta account is a second status."""
    users = [f"twin{n}-{os.getpid()}" for n in range(2)]
    passwords = [dovecot.add_user(u) for u in users]
    now = datetime.now(UTC)
    shared = meta_mail("objection_accepted", "ben@example.net", "<shared@f>", now)
    for u in users:
        dovecot.append(u, "INBOX", shared)
    own = meta_mail("policy_update", "carla@example.org", "<own@f>", now)
    dovecot.append(users[1], "INBOX", own)
    with Receiver() as rx:
        config = config_for(tmp_path, dovecot, users[0], passwords[0], [rx.url])
        data = yaml.safe_load(config.read_text())
        second = dict(data["accounts"][0])
        secret = tmp_path / "password-2"
        secret.write_text(passwords[1] + "\n")
        second.update(name="work", username=users[1], password_file=str(secret))
        data["accounts"].append(second)
        config.write_text(yaml.safe_dump(data))
        must_run(config)
        must_run(config)
        time.sleep(0.3)
        titles = Counter(r.title for r in rx.received)
    status = db_query(config, "SELECT platform, account, status FROM current_status ORDER BY 2")
    assert status == [
        ("facebook", "ben@example.net", "accepted"),
        ("facebook", "carla@example.org", "notified"),
    ]
    assert db_query(config, "SELECT count(*) FROM transitions") == [(2,)]
    copies = db_query(config, "SELECT identity FROM messages WHERE message_id = '<shared@f>'")
    assert len(copies) == 2
    assert titles["Facebook: objection accepted"] == 1, titles


def test_folder_deleted_and_recreated_restarts_uids_without_loss_or_repeat(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    now = datetime.now(UTC)
    a = meta_mail("verification_code", "ben@example.net", "<a@f>", now, code="111111")
    b = meta_mail("verification_code", "ben@example.net", "<b@f>", now, code="222222")
    c = meta_mail("verification_code", "ben@example.net", "<c@f>", now, code="333333")
    d = meta_mail("objection_accepted", "ben@example.net", "<d@f>", now)
    dovecot.create_folder(user, "Meta")
    for raw in (a, b):
        dovecot.append(user, "Meta", raw)
    with Receiver() as rx:
        config = config_for(tmp_path, dovecot, user, password, [rx.url])
        _set_folders(config, ["Meta"])
        must_run(config)
        old = db_query(config, "SELECT uidvalidity, last_uid FROM cursors")[0]
        dovecot.delete_folder(user, "Meta")
        dovecot.create_folder(user, "Meta")
        # UIDs start at 1 again: c now has a's old UID, a comes back as UID 2.
        assert [dovecot.append(user, "Meta", raw) for raw in (c, a, d)] == [1, 2, 3]
        must_run(config)
        time.sleep(0.3)
        codes = sorted(r.title.split()[-1] for r in rx.received if "code" in r.title)
    new = db_query(config, "SELECT uidvalidity, last_uid FROM cursors")[0]
    assert new[0] != old[0]
    assert new[1] == 3
    rows = db_query(config, "SELECT message_id, uidvalidity, uid FROM messages ORDER BY id")
    assert [r[0] for r in rows] == ["<a@f>", "<b@f>", "<c@f>", "<d@f>"]
    assert codes == ["111111", "222222", "333333"]  # each code notified once
    assert db_query(config, "SELECT to_status FROM transitions ORDER BY seq") == [
        ("code_received",),
        ("accepted",),
    ]


def _set_folders(config: Path, folders: list[str], **account: Any) -> None:
    data = yaml.safe_load(config.read_text())
    data["accounts"][0]["folders"] = folders
    data["accounts"][0].update(account)
    config.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("change", ["host", "port"])
def test_account_pointed_at_another_server_under_the_same_name(
    dovecot: DovecotServer, tmp_path: Path, change: str
) -> None:
    """Server B holds other mail under the same user name, folder, UIDVALIDITY and UIDs as
    server A. Pointing the account "home" at B must process all of B's mail, not take A's
    cursor for B's."""
    now = datetime.now(UTC)
    user = f"same{change}"
    with DovecotServer(user=user) as other:
        password = dovecot.add_user(user)
        a_mail = [meta_mail("policy_update", "ben@example.net", f"<A{n}@f>", now) for n in range(3)]
        b_mail = [
            meta_mail("verification_code", "ben@example.net", f"<B{n}@f>", now, code=f"77770{n}")
            for n in range(3)
        ]
        write_maildir(dovecot, user, a_mail)
        write_maildir(other, user, b_mail)
        config = config_for(tmp_path, dovecot, user, password, [])
        must_run(config)
        assert other.password is not None
        (tmp_path / f"password-{user}").write_text(other.password + "\n")
        host = "localhost" if change == "host" else "127.0.0.1"
        _set_folders(config, ["INBOX"], host=host, port=other.port, ca_file=str(other.ca_file))
        must_run(config)
        ids = sorted(r[0] for r in db_query(config, "SELECT message_id FROM messages"))
    assert ids == sorted([f"<A{n}@f>" for n in range(3)] + [f"<B{n}@f>" for n in range(3)])
    assert db_query(config, "SELECT count(*) FROM cursors") == [(2,)]


def test_expunges_that_renumber_sequence_numbers_change_nothing(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    now = datetime.now(UTC)
    first = [
        meta_mail("verification_code", "ben@example.net", f"<x{n}@f>", now, code=f"12345{n}")
        for n in range(6)
    ]
    for raw in first:
        dovecot.append(user, "INBOX", raw)
    config = config_for(tmp_path, dovecot, user, password, [])
    must_run(config)
    with dovecot.client(user) as client:  # another mail client deletes every other mail
        client.select_folder("INBOX")
        client.delete_messages([1, 3, 5])
        client.expunge()
    later = [
        meta_mail("verification_code", "ben@example.net", f"<y{n}@f>", now, code=f"54321{n}")
        for n in range(2)
    ]
    for raw in later:
        dovecot.append(user, "INBOX", raw)  # sequence numbers 4 and 5, UIDs 7 and 8
    must_run(config)
    rows = db_query(config, "SELECT uid, message_id FROM messages ORDER BY uid")
    assert rows == [(n + 1, f"<x{n}@f>") for n in range(6)] + [(7, "<y0@f>"), (8, "<y1@f>")]


def test_fresh_database_over_a_mailbox_full_of_meta_mail_backfills_everything(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    """The first run processes every Meta mail already there (it does not just remember the
    newest UID): statuses come out right; mail older than notify_max_age is recorded but not
    announced, so a backfill does not flood the user."""
    user, password = dovecot_user
    old = datetime.now(UTC) - timedelta(days=200)
    mails = [
        meta_mail("policy_update", "ben@example.net", "<p@f>", old),
        meta_mail("verification_code", "ben@example.net", "<v@f>", old + timedelta(days=3)),
        meta_mail("objection_accepted", "ben@example.net", "<o@f>", old + timedelta(days=4)),
        meta_mail("policy_update", "carla@example.org", "<q@f>", old),
        other_mail(1, old),
    ]
    write_maildir(dovecot, user, mails)
    with Receiver() as rx:
        config = config_for(tmp_path, dovecot, user, password, [rx.url])
        must_run(config)
        notes = list(rx.received)
    assert db_query(config, "SELECT platform, account, status FROM current_status ORDER BY 2") == [
        ("facebook", "ben@example.net", "accepted"),
        ("facebook", "carla@example.org", "notified"),
    ]
    assert db_query(config, "SELECT count(*) FROM messages") == [(4,)]
    assert db_query(config, "SELECT last_uid FROM cursors") == [(5,)]
    assert notes == []
