"""The one table of mail kinds: what each kind of Meta privacy mail means to the watcher.

A kind is what a rule in rules.yaml says a mail is (``kind:``). The table gives, per kind, the
objection status an authentic mail of it sets (watcher.pipeline.status), how the evidence
report names it, whether its notification is a warning, and its part in the GDPR Art. 12(3)
deadline: a confirmation-code mail means the objection was submitted, and an answer mail
(accepted, rejected, more information requested) is Meta's answer to it. A new kind is one row
here plus the rules that recognise it.

Row order is the order of the steps in Meta's process; the status replay breaks a tie between
two mails of the same date with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal


@dataclass(frozen=True)
class MailKind:
    """One kind of Meta privacy mail.

    ``name``: as in rules.yaml, the database and notification ``events``. ``status``: the
    objection status an authentic mail of this kind sets. ``label``: the report's wording.
    ``warning``: its notification asks the user to act. ``submits_objection``: the mail confirms
    an objection was sent (the one-month deadline runs from it). ``answers_objection``: the mail
    is Meta's answer to an objection. ``carries_code``: the mail holds a verification code,
    which is masked wherever it is stored or shown (watcher.codes).
    """

    name: str
    status: str
    label: str
    warning: bool = False
    submits_objection: bool = False
    answers_objection: bool = False
    carries_code: bool = False


TABLE: tuple[MailKind, ...] = (
    MailKind("policy_update", "notified", "policy update (notice of AI training)"),
    MailKind(
        "verification_code",
        "code_received",
        "confirmation code (objection submitted)",
        submits_objection=True,
        carries_code=True,
    ),
    MailKind("objection_accepted", "accepted", "objection accepted", answers_objection=True),
    MailKind(
        "objection_rejected", "rejected", "objection rejected", warning=True, answers_objection=True
    ),
    MailKind(
        "info_requested",
        "info_requested",
        "more information requested",
        warning=True,
        answers_objection=True,
    ),
)

BY_NAME: dict[str, MailKind] = {k.name: k for k in TABLE}
KINDS: tuple[str, ...] = tuple(BY_NAME)
STATUS_OF_KIND: dict[str, str] = {k.name: k.status for k in TABLE}
STATUSES: tuple[str, ...] = tuple(STATUS_OF_KIND.values())
ANSWER_KINDS: tuple[str, ...] = tuple(k.name for k in TABLE if k.answers_objection)
SUBMISSION_KINDS: tuple[str, ...] = tuple(k.name for k in TABLE if k.submits_objection)
CODE_KINDS: tuple[str, ...] = tuple(k.name for k in TABLE if k.carries_code)

# What classification calls a mail that is none of the kinds above: Meta mail about the
# objection or AI use that no rule recognised, and everything else.
UNRECOGNIZED = "unrecognized"
OTHER = "other"
UNRECOGNIZED_LABEL = "unrecognised Meta mail about the objection"

# Notification events (the config's notify ``events``): every kind, and these, with whether
# their notification is a warning.
OTHER_EVENTS: dict[str, bool] = {
    "suspicious": True,
    UNRECOGNIZED: False,
    "login_failed": True,
    "reminder": True,
}
NOTIFY_EVENTS: tuple[str, ...] = (*KINDS, *OTHER_EVENTS)
WARNING_EVENTS: frozenset[str] = frozenset(
    [k.name for k in TABLE if k.warning] + [e for e, warn in OTHER_EVENTS.items() if warn]
)

# GDPR Art. 12(3): information on action taken "without undue delay and in any event within
# one month of receipt of the request". The request counts as received on the date of the
# last confirmation-code mail before Meta's answer: every code mail means the form was sent
# (again), and a request whose code expired unused is not the one Meta answers. The reminder
# (watcher.notify.plan) and the report (watcher.report.objections) both count from it, so the
# reminder fires when the report turns "overdue". ANSWER_WITHIN_MONTHS calendar months,
# counted by dateutil's relativedelta (answer_due).
ANSWER_WITHIN_MONTHS = 1


def answer_due(submitted_at: datetime) -> datetime:
    """When Meta's answer to an objection submitted at *submitted_at* is due: one calendar
    month later (31 January -> 28 February), same time of day."""
    # Imported here: status and log import this module for its table, not month arithmetic.
    from dateutil.relativedelta import relativedelta

    due: datetime = submitted_at + relativedelta(months=ANSWER_WITHIN_MONTHS)
    return due


# What the user does next, per objection status (``meta-watcher status``, NEXT STEP column).
# Meta's process: the policy notice links the objection form; sending it brings a confirmation
# code to enter in the form; Meta then accepts, rejects or asks questions (GDPR Art. 21 gives
# no reason to reject; Art. 77 the right to complain to a supervisory authority).
NEXT_STEPS: dict[str, str] = {
    "notified": "object {before} via {form}",
    "code_received": "enter the {newest}code (arrived {code_at}) in the objection form",
    "info_requested": "answer Meta's questions (reply to its mail)",
    "rejected": "object again with reasons, or complain to your data protection authority "
    "(evidence: meta-watcher report)",
    "accepted": "nothing",
    # A meta_accounts entry without any mail yet: Meta's form works without the notice.
    "no_notice": "no notice yet: object anyway at {form}",
}
# NEXT STEP for ``notified`` once the effective date is in the past.
PASSED_STEP = "the effective date {effective} has passed: object anyway via {form}"

# Meta's objection forms for AI at Meta (linked from the 2024 notices), for an account that
# has received no notice: ``status`` points there.
OBJECTION_FORMS: dict[str, str] = {
    "facebook": "https://www.facebook.com/help/contact/712876720715583",
    "instagram": "https://help.instagram.com/contact/767264225370182",
}


def next_step(
    status: str,
    *,
    effective_date: str | None = None,
    form_link: str | None = None,
    code_at: str | None = None,
    newest_code_at: str | None = None,
    today: str | None = None,
) -> str:
    """The NEXT STEP sentence for an account at *status*.

    *effective_date* (ISO date) and *form_link* (URL) come from the policy notice, *code_at*
    (when the status became ``code_received``) and *newest_code_at* (the newest code mail, when
    a newer one came) are times as shown to the user. *today* (ISO date, default the current
    UTC date) tells whether the effective date has passed. An unknown status gives ``"-"``.
    """
    template = NEXT_STEPS.get(status)
    if template is None:
        return "-"
    today = today or datetime.now(UTC).date().isoformat()
    passed = bool(effective_date) and str(effective_date)[:10] < today
    if passed and status == "notified":
        # "object before <a past date>" reads as too late; Meta's form still takes an
        # objection after the date (it then applies to data from then on).
        template = PASSED_STEP
    before = f"before {effective_date}" if effective_date else "soon"
    form = form_link or "the form linked in Meta's mail"
    arrived, newest = code_at or "?", ""
    if newest_code_at and newest_code_at != code_at:
        # Every code mail means the form was sent again; only the newest code is valid.
        arrived, newest = f"{newest_code_at}; first code {arrived}", "newest "
    return template.format(
        before=before, form=form, code_at=arrived, newest=newest, effective=effective_date
    )


def label_of(kind: str) -> str:
    """The report's wording for *kind* (the kind itself when the table does not know it)."""
    if kind == UNRECOGNIZED:
        return UNRECOGNIZED_LABEL
    row = BY_NAME.get(kind)
    return row.label if row is not None else kind


if TYPE_CHECKING:
    Kind = str
else:
    # For validation (rules.yaml ``kind:``): pydantic checks a Literal of the table's names.
    # mypy cannot read a Literal built at run time, so it sees a plain str.
    Kind = Literal[KINDS]
