"""What to send: outbox items for a recorded mail, a login failure or a deadline, one per
target that wants the event. Pure: the caller writes the items (watcher.store), in the
recorded message's own transaction for mail (Store.recording), so a notification exists
exactly when its message is recorded.

Deadline reminders come from the recorded mail: before a policy update's effective date while
the objection is not accepted, and one month after the last verification code when no
decision arrived (GDPR Art. 12(3); watcher.kinds.answer_due).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

from watcher.config import Config
from watcher.kinds import BY_NAME, SUBMISSION_KINDS, answer_due
from watcher.notify.texts import (
    Notice,
    answer_reminder_notice,
    describe_outcome,
    login_failed_notice,
    policy_reminder_notice,
)
from watcher.store.rows import CountedMail, OutboxItem, StatusRow

if TYPE_CHECKING:
    from watcher.pipeline.process import Outcome
    from watcher.pipeline.status import Transition

# Reminders fire at this local time of day.
REMINDER_TIME = time(9, 0)


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


def plan_notifications(
    outcome: Outcome,
    transitions: list[Transition],
    settings: NotifySettings,
    now: datetime,
) -> list[OutboxItem]:
    """Outbox items for *outcome*: one per target that wants its event.

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
    """One outbox item per target that wants *notice*'s event."""
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
    """Outbox items telling that *account* cannot log in (*sentence* says why)."""
    notice = login_failed_notice(account, sentence)
    return address(notice, f"login:{account}:{since.isoformat(timespec='seconds')}", settings)


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
    """Every deadline reminder the recorded mail calls for, due or not.

    * Policy update with an effective date E, objection not accepted: one reminder
      ``reminder_days`` days before E (at 09:00 local time), until E.
    * Verification code at T (the last one) with no decision after it (status still that of
      a code mail): one reminder at T + one month (GDPR Art. 12(3)).
    """
    current = {(s.platform, s.account): s.status for s in statuses}
    waiting = {BY_NAME[k].status for k in SUBMISSION_KINDS}
    out: list[Reminder] = []
    for (platform, account), status in sorted(current.items()):
        mine = [m for m in mails if (m.platform, m.account) == (platform, account)]
        if status != "accepted":
            dates = {m.effective_date for m in mine if m.kind == "policy_update"}
            for effective in sorted(d for d in dates if d is not None):
                try:
                    day = date.fromisoformat(effective)
                except ValueError:
                    continue
                for days in reminder_days:
                    fire_at = datetime.combine(day - timedelta(days=days), REMINDER_TIME, tz)
                    out.append(
                        Reminder(
                            f"reminder:policy:{platform}:{account}:{effective}:{days}d",
                            fire_at.astimezone(UTC),
                            policy_reminder_notice(platform, account, status, effective, days),
                        )
                    )
        codes = [m for m in mine if m.kind in SUBMISSION_KINDS]
        if status in waiting and codes:
            sent_at = codes[-1].mail_at  # the last code: see watcher.kinds.answer_due
            out.append(
                Reminder(
                    f"reminder:answer:{platform}:{account}:{sent_at.isoformat()}",
                    answer_due(sent_at).astimezone(UTC),
                    answer_reminder_notice(platform, account, sent_at),
                )
            )
    return out


def due_reminders(reminders: Sequence[Reminder], now: datetime) -> list[Reminder]:
    """The reminders to send at *now*. For each policy deadline only the nearest due one (a
    watcher started the day before sends "in 1 day", not also "in 7 days"); policy reminders
    stop once the effective date has passed."""
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
    """Outbox items for *reminders*."""
    out: list[OutboxItem] = []
    for r in reminders:
        out.extend(address(r.notice, r.dedupe_key, settings))
    return out
