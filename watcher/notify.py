"""Notifications: what to tell the user (pure), and delivering it through Apprise (after commit).

The flow ends here: :func:`plan_notifications` turns a recorded outcome and the transitions it
caused into outbox items; :class:`watcher.store.Store` writes them in the message's own
transaction, so a notification exists exactly when its message is recorded. :class:`Sender`
drains the outbox after commit, one row per (notification, target): a delivered row is marked
sent (and its code erased), a failed one is retried with backoff while the target is down, so
a restart neither loses nor repeats a notification. :func:`plan_reminders` computes deadline
reminders from the recorded mail (policy effective dates, GDPR Art. 12(3)'s one month).

This is the only module importing Apprise (https://github.com/caronc/apprise): targets are
Apprise URLs from the config's ``notify`` list. Texts are plain text (``NotifyFormat.TEXT``),
so Apprise escapes them for HTML or Markdown targets; they are cut to each target's limits at
a UTF-8 character boundary.
"""

from __future__ import annotations

import html
import logging
import random
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

from watcher.clock import utc_now
from watcher.codes import mask_code
from watcher.config import Config, NotifyTarget
from watcher.crashpoint import crash_point
from watcher.errors import ConfigError
from watcher.kinds import SUBMISSION_KINDS, WARNING_EVENTS, answer_due
from watcher.pipeline.process import Outcome
from watcher.pipeline.status import Transition
from watcher.store.rows import CountedMail, OutboxItem, OutboxRow, StatusRow
from watcher.store.store import Store

if TYPE_CHECKING:
    from apprise import Apprise

log = logging.getLogger(__name__)

# Retrying a target that is down: 2 s, 4 s, 8 s ... capped at 10 minutes, +-20% jitter.
RETRY_INITIAL_SECONDS = 2.0
RETRY_MAX_SECONDS = 600.0
# A notification still undelivered after this long is dropped (and logged).
GIVE_UP_SECONDS = 7 * 86400.0
# Reminders fire at this local time of day.
REMINDER_TIME = time(9, 0)
# How long one delivery attempt may take (Apprise's connect and read timeouts, seconds).
SEND_TIMEOUT_SECONDS = 10.0

_PLATFORM_NAMES = {"facebook": "Facebook", "instagram": "Instagram"}
# Meta's objection form lives under these paths (2024: /help/contact/<id>; Instagram's help).
_FORM_LINK = re.compile(r"/help/contact/|/help/instagram/contact/|privacycenter|/privacy/", re.I)
_RULES_TEST_HINT = (
    "No rule in rules.yaml matched it. Save it as a .eml file and run "
    "`meta-watcher rules test FILE` to see why, then report it or add a user rule."
)


@dataclass(frozen=True)
class NotifySettings:
    """What planning needs from the config: targets as (key, events wanted; empty = all),
    whether codes appear in notifications, and the age beyond which mail is not announced."""

    targets: tuple[tuple[str, tuple[str, ...]], ...]
    notify_codes: bool = True
    max_age_seconds: float = 7 * 86400.0
    reminder_days: tuple[int, ...] = (7, 1)

    def keys_for(self, event: str) -> list[str]:
        """The target keys that take *event*."""
        return [key for key, events in self.targets if not events or event in events]


def notify_settings(config: Config) -> NotifySettings:
    """The NotifySettings of *config*."""
    return NotifySettings(
        targets=tuple((t.key, tuple(t.events)) for t in config.notify),
        notify_codes=config.notify_codes,
        max_age_seconds=config.notify_max_age,
        reminder_days=tuple(sorted(set(config.reminder_days), reverse=True)),
    )


@dataclass(frozen=True)
class Notice:
    """One thing to tell the user, before it is addressed to targets."""

    event: str
    title: str
    body: str
    secret: str | None = None
    warning: bool = False


def _platform(name: str | None) -> str:
    return _PLATFORM_NAMES.get(name or "", (name or "Meta").capitalize())


def _day(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown date"


def form_link(links: Iterable[str]) -> str | None:
    """The link to Meta's objection form among a genuine mail's *links*, if there is one."""
    for link in links:
        if _FORM_LINK.search(link):
            return link
    return None


def describe_outcome(outcome: Outcome, transitions: Sequence[Transition]) -> Notice | None:
    """What to tell the user about *outcome*, or None when it is nothing to announce.

    Pure. Codes appear masked in the texts and in full in ``secret``. A mail that failed
    authenticity becomes a ``suspicious`` notice and nothing else; a privacy mail that could
    not be verified (no trusted Authentication-Results) is announced with a caveat.
    """
    msg, match = outcome.message, outcome.match
    sender = f"{msg.from_name} <{msg.from_addr}>" if msg.from_name else msg.from_addr
    where = f"Mailbox: {outcome.key.label()}"
    if outcome.suspicious:
        reasons = "; ".join(outcome.verdict.reasons) or "its authentication failed"
        return Notice(
            "suspicious",
            "Suspicious mail pretending to be Meta",
            f"From: {sender}\nSubject: {msg.subject}\nWhy: {reasons}\n"
            "It changed no status. Do not click its links or answer it.\n" + where,
            warning=True,
        )
    platform = _platform(match.platform)
    account = match.account or "an account not named in the mail"
    caveat = ""
    if outcome.verdict.result != "pass":
        caveat = (
            "\nNot verified: no trusted Authentication-Results header vouches for this mail "
            "(see trusted_authserv_ids)."
        )
    status = f"\nStatus now: {transitions[-1].to_status}." if transitions else ""
    mail_of = f"Mail of {_day(outcome.mail_at)}."
    kind = match.kind
    if kind == "verification_code":
        code = outcome.fields.get("code")
        shown = mask_code(code) or "(no code found in the mail)"
        return Notice(
            kind,
            f"{platform} verification code {shown}",
            f"Code to confirm your objection to AI at Meta: {shown}\nAccount: {account}\n"
            f"{mail_of} Meta says a code is valid for about an hour.{caveat}\n{where}",
            secret=code,
        )
    if kind == "objection_accepted":
        return Notice(
            kind,
            f"{platform}: objection accepted",
            f"Meta accepted your objection to the use of your data for AI at Meta.\n"
            f"Account: {account}\n{mail_of}{status}{caveat}\n{where}",
        )
    if kind == "objection_rejected":
        return Notice(
            kind,
            f"{platform}: objection rejected",
            f"Meta rejected your objection. You may object again or complain to your data "
            f"protection authority.\nAccount: {account}\n{mail_of}{status}{caveat}\n{where}",
            warning=True,
        )
    if kind == "info_requested":
        return Notice(
            kind,
            f"{platform}: Meta asks for more information",
            f"Meta needs more information before it decides on your objection. Read the mail "
            f"and answer it.\nAccount: {account}\n{mail_of}{status}{caveat}\n{where}",
            warning=True,
        )
    if kind == "policy_update":
        effective = outcome.fields.get("effective_date")
        when = f"from {effective}" if effective else "soon (the mail states no date)"
        link = form_link(msg.links) if outcome.verdict.result == "pass" else None
        form = f"\nObject here: {link}" if link else "\nObject with the form linked in the mail."
        return Notice(
            kind,
            f"{platform}: Meta will use your data for AI {when}",
            f"Meta announced it will use your information for AI at Meta {when}.\n"
            f"Account: {account}{form}\n{mail_of}{status}{caveat}\n{where}",
        )
    if kind == "unrecognized":
        return Notice(
            kind,
            "Unrecognized Meta privacy mail",
            f"From: {sender}\nSubject: {msg.subject}\n{_RULES_TEST_HINT}\n{mail_of}\n{where}",
        )
    return None


def plan_notifications(
    outcome: Outcome,
    transitions: list[Transition],
    settings: NotifySettings,
    now: datetime,
) -> list[OutboxItem]:
    """Outbox items for *outcome*: one per target that wants its event. Pure.

    Mail older than ``settings.max_age_seconds`` (an old mailbox scanned for the first time)
    is not announced. The dedupe key is the message's place (identity, folder, UIDVALIDITY,
    UID), so the same mail never notifies twice.
    """
    if outcome.mail_at is not None and (now - outcome.mail_at).total_seconds() > (
        settings.max_age_seconds
    ):
        return []
    notice = describe_outcome(outcome, transitions)
    if notice is None:
        return []
    key = outcome.key
    dedupe = f"msg:{key.identity}/{key.folder}/{key.uidvalidity}/{key.uid}:{notice.event}"
    return address(notice, dedupe, settings)


def address(notice: Notice, dedupe_key: str, settings: NotifySettings) -> list[OutboxItem]:
    """One outbox item per target that wants *notice*'s event. Pure."""
    secret = notice.secret if settings.notify_codes else None
    body = notice.body
    if notice.secret and not settings.notify_codes:
        body += "\n(The code is hidden: notify_codes is off. Read it in the mail.)"
    return [
        OutboxItem(dedupe_key, target, notice.event, notice.title, body, secret)
        for target in settings.keys_for(notice.event)
    ]


def login_failed_items(
    account: str, sentence: str, since: datetime, settings: NotifySettings
) -> list[OutboxItem]:
    """Outbox items telling that *account* cannot log in (*sentence* says why). Pure."""
    notice = Notice(
        "login_failed",
        f"meta-watcher cannot log in to {account}",
        f"{sentence}.\nThe watcher retries rarely; fix the password or token and restart it. "
        "Until then, mail of this account is not watched.",
        warning=True,
    )
    return address(notice, f"login:{account}:{since.isoformat(timespec='seconds')}", settings)


# ---------------------------------------------------------------------- reminders


@dataclass(frozen=True)
class Reminder:
    """A deadline reminder: when it fires and what it says."""

    dedupe_key: str
    fire_at: datetime
    notice: Notice


def plan_reminders(
    mails: Sequence[CountedMail],
    statuses: Sequence[StatusRow],
    reminder_days: Sequence[int],
    tz: tzinfo,
) -> list[Reminder]:
    """Every deadline reminder the recorded mail calls for, due or not. Pure.

    * Policy update with an effective date E, objection not accepted: one reminder
      ``reminder_days`` days before E (at 09:00 local time), until E.
    * Verification code at T (the last one) with no decision after it (status still
      ``code_received``): one reminder at T + one month (GDPR Art. 12(3)).
    """
    current = {(s.platform, s.account): s.status for s in statuses}
    out: list[Reminder] = []
    for (platform, account), status in sorted(current.items()):
        mine = [m for m in mails if (m.platform, m.account) == (platform, account)]
        name = _platform(platform)
        if status != "accepted":
            dates = {m.effective_date for m in mine if m.kind == "policy_update"}
            for effective in sorted(d for d in dates if d is not None):
                try:
                    day = date.fromisoformat(effective)
                except ValueError:
                    continue
                for days in reminder_days:
                    fire_at = datetime.combine(day - timedelta(days=days), REMINDER_TIME, tz)
                    left = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
                    out.append(
                        Reminder(
                            f"reminder:policy:{platform}:{account}:{effective}:{days}d",
                            fire_at.astimezone(UTC),
                            Notice(
                                "reminder",
                                f"{name}: AI use of your data starts {left} ({effective})",
                                f"Meta starts using your information for AI at Meta on "
                                f"{effective}. Your objection for {account} is not accepted "
                                f"yet (status: {status}). Object with the form in Meta's mail.",
                                warning=True,
                            ),
                        )
                    )
        codes = [m for m in mine if m.kind in SUBMISSION_KINDS]
        if status == "code_received" and codes:
            sent_at = codes[-1].mail_at  # the last code: see watcher.kinds.ANSWER_WITHIN
            fire_at = answer_due(sent_at)
            out.append(
                Reminder(
                    f"reminder:answer:{platform}:{account}:{sent_at.isoformat()}",
                    fire_at.astimezone(UTC),
                    Notice(
                        "reminder",
                        f"{name}: no answer to your objection after one month",
                        f"You confirmed your objection for {account} on {_day(sent_at)}. "
                        "GDPR Art. 12(3) gives Meta one month to tell you what it did; no "
                        "decision has arrived. Consider asking Meta or your data protection "
                        "authority.",
                        warning=True,
                    ),
                )
            )
    return out


def due_reminders(reminders: Sequence[Reminder], now: datetime) -> list[Reminder]:
    """The reminders to send at *now*. Pure. For each policy deadline only the nearest due
    one (a watcher started the day before sends "in 1 day", not also "in 7 days"); policy
    reminders stop once the effective date has passed."""
    due = [r for r in reminders if r.fire_at <= now]
    out: list[Reminder] = []
    nearest: dict[str, Reminder] = {}
    for r in due:
        if r.dedupe_key.startswith("reminder:policy:"):
            deadline = r.dedupe_key.rsplit(":", 1)[0]
            effective = date.fromisoformat(deadline.rsplit(":", 1)[1])
            if now.date() > effective:
                continue
            best = nearest.get(deadline)
            if best is None or r.fire_at > best.fire_at:
                nearest[deadline] = r
        else:
            out.append(r)
    return out + list(nearest.values())


def next_reminder_at(reminders: Sequence[Reminder], now: datetime) -> datetime | None:
    """When the next reminder not yet due fires, or None."""
    future = [r.fire_at for r in reminders if r.fire_at > now]
    return min(future) if future else None


def reminder_items(reminders: Iterable[Reminder], settings: NotifySettings) -> list[OutboxItem]:
    """Outbox items for *reminders*. Pure."""
    out: list[OutboxItem] = []
    for r in reminders:
        out.extend(address(r.notice, r.dedupe_key, settings))
    return out


# ---------------------------------------------------------------------- text limits


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut *text* so its UTF-8 encoding is at most *max_bytes*, never inside a character,
    ending with an ellipsis when cut. Byte-bounded text is also character-bounded, so this
    fits limits counted either way."""
    if max_bytes <= 0:
        return ""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    ellipsis = "…".encode()
    if max_bytes < len(ellipsis):
        return data[:max_bytes].decode("utf-8", "ignore")
    return data[: max_bytes - len(ellipsis)].decode("utf-8", "ignore").rstrip() + "…"


def fit(title: str, body: str, title_max: int, body_max: int) -> tuple[str, str]:
    """Fit *title* and *body* into a target's limits (characters per Apprise; measured here
    in UTF-8 bytes, which is never less). A target without titles (``title_max`` 0) gets the
    title as the body's first line, as Apprise does."""
    if title_max <= 0:
        merged = f"{title}\r\n{body}" if title else body
        return "", truncate_utf8(merged, body_max)
    return truncate_utf8(title, title_max), truncate_utf8(body, body_max)


# ---------------------------------------------------------------------- sending


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before retrying after *attempts* failed deliveries: exponential, capped,
    +-20% jitter so targets coming back are not hit by every watcher at once."""
    base = min(RETRY_MAX_SECONDS, RETRY_INITIAL_SECONDS * 2 ** max(attempts - 1, 0))
    return float(base * (rng or random).uniform(0.8, 1.2))


def _redact(text: str, target: NotifyTarget) -> str:
    url = target.url.get_secret_value()
    out = text.replace(url, target.label)
    # Drop every part of the URL that could be a token or password (path, user, query).
    for part in re.split(r"[/:@?&=#]+", url.partition("://")[2]):
        if len(part) >= 6:
            out = out.replace(part, "***")
    return " ".join(out.split())


class Sender:
    """Delivers notifications to the configured Apprise targets.

    Raises ConfigError at construction when Apprise does not understand a target URL (the
    message names the target, never the URL). Thread-safe: one send at a time.
    """

    def __init__(self, targets: Sequence[NotifyTarget]) -> None:
        import apprise

        self._apprise = apprise
        # Apprise's own lines (URLs, per-send chatter) stay out of our log; failures are
        # captured per send and logged once, redacted, by the caller.
        logging.getLogger("apprise").propagate = False
        self._lock = threading.Lock()
        self.targets: dict[str, NotifyTarget] = {t.key: t for t in targets}
        self._objects: dict[str, Apprise] = {}
        asset = apprise.AppriseAsset(
            app_id="meta-watcher",
            app_desc="meta-watcher",
            app_url="https://github.com/",
            storage_mode="memory",
        )
        for n, target in enumerate(targets):
            obj = apprise.Apprise(asset=asset)
            url = target.url.get_secret_value()
            if "cto=" not in url and "rto=" not in url and target.scheme not in _NO_HTTP:
                # Apprise's HTTP connect/read timeouts: a dead target never blocks for long.
                sep = "&" if "?" in url else "?"
                url = f"{url}{sep}cto=4&rto={int(SEND_TIMEOUT_SECONDS)}"
            if not obj.add(url):
                raise ConfigError(
                    f"notify[{n}] ({target.label}): Apprise does not understand this "
                    f"{target.scheme}:// URL (see the Apprise wiki for its form; desktop "
                    "targets need their extra packages)"
                )
            self._objects[target.key] = obj

    def limits(self, key: str) -> tuple[int, int]:
        """(title, body) length limits of target *key* as Apprise declares them."""
        service = self._objects[key][0]
        return int(getattr(service, "title_maxlen", 250)), int(
            getattr(service, "body_maxlen", 32768)
        )

    def send(self, key: str, title: str, body: str, warning: bool = False) -> str | None:
        """Send one notification to target *key*; return None when delivered, else one
        sentence saying why not (from Apprise's log, with the URL's secrets removed)."""
        apprise = self._apprise
        target = self.targets[key]
        title_max, body_max = self.limits(key)
        title, body = fit(title, body, title_max, body_max)
        if target.scheme in _DESKTOP_MARKUP:
            # The freedesktop spec lets the daemon read the body as markup, and Apprise passes
            # plain text through unchanged: escape it so "<" or "&" in a subject shows as is.
            body = html.escape(body, quote=False)
        kind = apprise.NotifyType.WARNING if warning else apprise.NotifyType.INFO
        with self._lock, apprise.LogCapture(level=logging.WARNING) as captured:
            try:
                ok = bool(
                    self._objects[key].notify(
                        body=body,
                        title=title,
                        notify_type=kind,
                        body_format=apprise.NotifyFormat.TEXT,
                    )
                )
            except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop the sender
                return _redact(f"{type(exc).__name__} in the {target.scheme} plugin", target)
            logged = captured.getvalue()
        if ok:
            return None
        lines = [ln.split(" - ", 2)[-1] for ln in logged.splitlines() if ln.strip()]
        reason = "; ".join(dict.fromkeys(lines)) or "Apprise reported a failure"
        return _redact(reason[:300], target)

    def drain(self, store: Store, stop: threading.Event | None = None) -> DrainReport:
        """Send every due outbox row; mark each sent, failed (retried later) or dropped.

        A target that fails is not tried again in the same drain: its other rows wait for
        the retry, so a dead target costs one timeout per drain, and per-target order holds.
        """
        report = DrainReport()
        down: set[str] = set()
        now = utc_now()
        for row in store.due_notifications(now):
            if stop is not None and stop.is_set():
                break
            target = self.targets.get(row.target)
            if target is None:
                store.notification_dropped(row.id, "target no longer in the config")
                log.warning("notification %d dropped: target %s is no longer configured",
                            row.id, row.target)  # fmt: skip
                report.dropped += 1
                continue
            if (now - row.created_at).total_seconds() > GIVE_UP_SECONDS:
                store.notification_dropped(row.id, "undelivered for 7 days")
                log.error(
                    "notification %d (%s) to %s dropped: undelivered for 7 days",
                    row.id,
                    row.event,
                    target.label,
                )
                report.dropped += 1
                continue
            if row.target in down:
                store.notification_failed(row.id, "target down", retry_delay(row.attempts + 1))
                continue
            crash_point("notify")
            error = self.send(row.target, *_reveal(row), warning=row.event in WARNING_EVENTS)
            if error is None:
                store.notification_sent(row.id)
                crash_point("notified")
                log.info("notified %s: %s to %s", row.event, row.title, target.label)
                report.sent += 1
            else:
                delay = retry_delay(row.attempts + 1)
                store.notification_failed(row.id, error, delay)
                log.warning(
                    "notification to %s failed (%s); retrying in %ds",
                    target.label,
                    error,
                    round(delay),
                )
                down.add(row.target)
                report.failed += 1
        return report


_DESKTOP_MARKUP = {"dbus", "kde", "qt", "glib", "gnome"}
_NO_HTTP = {"dbus", "kde", "qt", "glib", "gnome", "macosx", "windows", "mailto", "mailtos"}


def _reveal(row: OutboxRow) -> tuple[str, str]:
    if not row.secret:
        return row.title, row.body
    masked = mask_code(row.secret) or ""
    return row.title.replace(masked, row.secret), row.body.replace(masked, row.secret)


@dataclass
class DrainReport:
    """What one drain did: notifications delivered, failed (to be retried), dropped."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0


def send_test_notifications(
    targets: Sequence[NotifyTarget],
) -> list[tuple[NotifyTarget, str | None]]:
    """Send one test notification to every target; return (target, None or why it failed).

    Raises ConfigError when a URL is not understood (see :class:`Sender`).
    """
    sender = Sender(targets)
    results: list[tuple[NotifyTarget, str | None]] = []
    for target in targets:
        error = sender.send(
            target.key,
            "meta-watcher test notification",
            "If you can read this, meta-watcher can reach this target. "
            f"Sent {_day(utc_now())} to {target.label}.",
        )
        results.append((target, error))
    return results
