"""Evidence for a complaint: every Meta privacy mail per account, the status timeline, the
deadlines, and whether Meta answered in time. Markdown, HTML, CSV or JSON; originals as .eml.

Deadlines: the effective date Meta's policy mail states, and GDPR Art. 12(3): the controller
informs the data subject of the action taken on a request "without undue delay and in any
event within one month of receipt of the request" (extendable by two further months only if
the data subject is told so within the first month). The request's receipt is taken as the
date of Meta's last confirmation-code mail before the answer (Meta sends one each time the form
is sent; see watcher.kinds.ANSWER_WITHIN); the answer is the first objection_accepted,
objection_rejected or info_requested mail after it. Only authentic (counted) mails move the
timeline; the others are listed and marked.

The HTML page is self-contained (inline CSS, no scripts, no external resources) and prints on
A4; every value from a mail is escaped.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from watcher import __version__
from watcher.config import Config
from watcher.errors import WatcherError
from watcher.kinds import ANSWER_KINDS, SUBMISSION_KINDS, answer_due, label_of
from watcher.sources.base import LOCAL_UIDVALIDITY, MessageRef, SourceKey
from watcher.sources.imap import ImapAccount
from watcher.sources.mailfiles import LocalMailbox, ScannedFile
from watcher.store.rows import MailRow, TransitionRow
from watcher.store.store import Store

log = logging.getLogger(__name__)

FORMATS = ("md", "html", "csv", "json")
NO_ADDRESS = "(address not identified)"
Verdict = Literal["in_time", "late", "pending", "overdue"]

VERDICT_TEXT: dict[str, str] = {
    "in_time": "answered in time",
    "late": "answered late",
    "pending": "no answer yet, still within the month",
    "overdue": "no answer within the month: overdue",
}


def mail_at(mail: MailRow) -> datetime:
    """The mail's date (Date header, else INTERNALDATE, else when it was processed), aware UTC."""
    return datetime.fromisoformat(mail.mail_date or mail.processed_at).astimezone(UTC)


@dataclass(frozen=True)
class Objection:
    """One objection and its deadline: ``objected_at`` (last confirmation-code mail),
    ``due_at`` (one month later, GDPR Art. 12(3)), the ``answer`` mail if any, and the
    ``verdict``; ``effective_date`` is the date the policy notice before it names, and
    ``before_effective`` whether the objection came before it (None when none is known)."""

    objected_at: datetime
    code_mail: MailRow
    due_at: datetime
    answer: MailRow | None
    verdict: Verdict
    effective_date: date | None
    before_effective: bool | None

    @property
    def answered_at(self) -> datetime | None:
        """Date of the answer mail, or None."""
        return mail_at(self.answer) if self.answer else None


@dataclass(frozen=True)
class AccountReport:
    """Everything about one (platform, account address): mails oldest first, transitions,
    objections with their deadlines, the current status and the policy's effective date."""

    platform: str
    account: str
    mails: tuple[MailRow, ...]
    transitions: tuple[TransitionRow, ...]
    objections: tuple[Objection, ...]
    status: str | None
    status_since: str | None
    effective_date: date | None

    def change_caused_by(self, mail: MailRow) -> str | None:
        """``from -> to`` when *mail* caused a status transition, else None."""
        for t in self.transitions:
            if mail.counted and t.message_id == mail.message_id and t.mail_date == mail.mail_date:
                return f"{t.from_status or '(none)'} -> {t.to_status}"
        return None


@dataclass(frozen=True)
class Report:
    """The whole report: when it was made and one AccountReport per (platform, account)."""

    generated_at: datetime
    accounts: tuple[AccountReport, ...]


def _stated_dates(mails: Iterable[MailRow]) -> list[tuple[datetime, date]]:
    """(mail date, effective date) of every authentic policy mail that states one, in order."""
    found: list[tuple[datetime, date]] = []
    for m in mails:
        value = m.fields.get("effective_date") if m.counted else None
        if m.kind == "policy_update" and value:
            try:
                found.append((mail_at(m), date.fromisoformat(value)))
            except ValueError:
                continue
    return sorted(found)


def _effective_date(mails: Iterable[MailRow]) -> date | None:
    """The effective date the most recent authentic policy mail states."""
    stated = _stated_dates(mails)
    return stated[-1][1] if stated else None


def _effective_for(stated: list[tuple[datetime, date]], objected_at: datetime) -> date | None:
    # The notice the objection answered: the last one before it, else the first one at all.
    before = [eff for at, eff in stated if at <= objected_at]
    if before:
        return before[-1]
    return stated[0][1] if stated else None


def objections(mails: Sequence[MailRow], now: datetime) -> list[Objection]:
    """Replay the counted mails (oldest first) into objections: a confirmation-code mail opens
    one, later codes before an answer belong to it and move its date to theirs (the deadline
    counts from the last one, see watcher.kinds.ANSWER_WITHIN), the next answer closes it.
    Each is compared with the effective date of the policy notice before it. Pure."""
    out: list[Objection] = []
    open_code: MailRow | None = None
    stated = _stated_dates(mails)

    def close(answer: MailRow | None) -> None:
        assert open_code is not None
        start = mail_at(open_code)
        due = answer_due(start)
        verdict: Verdict
        if answer is not None:
            verdict = "in_time" if mail_at(answer) <= due else "late"
        else:
            verdict = "pending" if now <= due else "overdue"
        effective = _effective_for(stated, start)
        before = None if effective is None else start.date() < effective
        out.append(Objection(start, open_code, due, answer, verdict, effective, before))

    for mail in sorted((m for m in mails if m.counted), key=lambda m: (mail_at(m), m.id)):
        if mail.kind in SUBMISSION_KINDS:
            open_code = mail
        elif mail.kind in ANSWER_KINDS and open_code is not None:
            close(mail)
            open_code = None
    if open_code is not None:
        close(None)
    return out


def build_report(store: Store, account: str | None = None, now: datetime | None = None) -> Report:
    """Collect the report from *store*: every account, or only *account* (case-insensitive).

    *now* (aware UTC, default the current time) decides whether an unanswered objection is
    still pending or overdue.
    """
    now = now or datetime.now(UTC)
    mails = store.report_mails(account)
    transitions = store.transitions()
    statuses = {(s.platform, s.account): s for s in store.current_status()}
    groups: dict[tuple[str, str], list[MailRow]] = {}
    for mail in mails:
        key = (mail.platform or "unknown", mail.account or NO_ADDRESS)
        groups.setdefault(key, []).append(mail)
    out = []
    for (platform, address), group in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        effective = _effective_date(group)
        status = statuses.get((platform, address))
        out.append(
            AccountReport(
                platform=platform,
                account=address,
                mails=tuple(group),
                transitions=tuple(
                    t for t in transitions if (t.platform, t.account) == (platform, address)
                ),
                objections=tuple(objections(group, now)),
                status=status.status if status else None,
                status_since=status.since if status else None,
                effective_date=effective,
            )
        )
    return Report(now, tuple(out))


# ---------------------------------------------------------------------------- plain values


def _day(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d") if value else ""


def _stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def authenticity_text(mail: MailRow) -> str:
    """``pass (verified by mx.example)``, or the verdict with its reasons."""
    if mail.authenticity == "pass":
        return f"pass (Authentication-Results of {mail.authserv_id or 'a trusted server'})"
    reasons = "; ".join(mail.auth_reasons)
    label = "FAILED" if mail.authenticity == "fail" else "not verified"
    at = f" at {mail.authserv_id}" if mail.authserv_id else ""
    return f"{label}{at}: {reasons}" if reasons else f"{label}{at}"


def _kind(mail: MailRow) -> str:
    text = label_of(mail.kind)
    if mail.suspicious:
        text += " (SUSPICIOUS: failed authenticity, not counted)"
    elif not mail.counted:
        text += " (not counted)"
    return text


def _title(acc: AccountReport) -> str:
    return f"{acc.platform.capitalize()} — {acc.account}"


def _answer_text(obj: Objection) -> str:
    if obj.answer is None:
        return ""
    return label_of(obj.answer.kind)


def _status_text(acc: AccountReport) -> str:
    if acc.status is None:
        return "no status (no authentic privacy mail recorded)"
    since = acc.status_since[:10] if acc.status_since else ""
    return f"{acc.status} (since {since})"


def _effective_text(acc: AccountReport) -> str:
    return acc.effective_date.isoformat() if acc.effective_date else "not stated in any mail"


def _before_text(obj: Objection) -> str:
    if obj.before_effective is None or obj.effective_date is None:
        return "unknown (no effective date stated)"
    return f"{'yes' if obj.before_effective else 'no'} ({obj.effective_date.isoformat()})"


# ---------------------------------------------------------------------------- markdown


def _md_cell(value: object) -> str:
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;") or " "


def _md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report) -> str:
    """The report as Markdown (GitHub tables), one section per account."""
    out = [
        "# Evidence report: objections to Meta's use of personal data for AI",
        "",
        f"Generated {_stamp(report.generated_at)} by meta-watcher {__version__}. "
        "All times are UTC. Deadline: GDPR Art. 12(3), one month after the objection "
        "(the last confirmation-code mail before the answer).",
        "",
    ]
    if not report.accounts:
        out.append("No Meta privacy mail has been recorded.")
    for acc in report.accounts:
        out += [
            f"## {_title(acc)}",
            "",
            f"- Current status: {_status_text(acc)}",
            f"- Effective date of Meta's policy: {_effective_text(acc)}",
            "",
            "### Objections and deadlines",
            "",
        ]
        if acc.objections:
            out += _md_table(
                ("Objected", "Before effective date", "Answer due", "Answer", "Answered", "Result"),
                (
                    (
                        _day(o.objected_at),
                        _before_text(o),
                        _day(o.due_at),
                        _answer_text(o) or "none",
                        _day(o.answered_at),
                        VERDICT_TEXT[o.verdict],
                    )
                    for o in acc.objections
                ),
            )
        else:
            out.append("No objection found (no authentic confirmation-code mail).")
        out += ["", "### Mails", ""]
        out += _md_table(
            ("Date", "Kind", "From", "Subject", "Message-ID", "Authenticity", "Status change"),
            (
                (
                    _stamp(mail_at(m)),
                    _kind(m),
                    m.sender,
                    m.subject,
                    m.message_id or "(none)",
                    authenticity_text(m),
                    acc.change_caused_by(m) or "",
                )
                for m in acc.mails
            ),
        )
        out += ["", "### Status transitions", ""]
        if acc.transitions:
            out += _md_table(
                ("Mail date", "From", "To", "Subject of the mail"),
                (
                    (
                        t.mail_date[:16].replace("T", " "),
                        t.from_status or "(none)",
                        t.to_status,
                        t.subject,
                    )
                    for t in acc.transitions
                ),
            )
        else:
            out.append("None.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #111; background: #fff; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 2px solid #333; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
p.meta { color: #444; margin-top: 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; margin: 0; }
dt { font-weight: 600; }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 1rem; font-size: .9em; }
th, td { border: 1px solid #999; padding: .25rem .4rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td.nowrap { white-space: nowrap; }
td.mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85em;
          overflow-wrap: anywhere; }
.pass { color: #0a5d1a; }
.fail { color: #a40000; font-weight: 600; }
.none { color: #7a5800; }
.verdict-in_time { color: #0a5d1a; font-weight: 600; }
.verdict-late, .verdict-overdue { color: #a40000; font-weight: 600; }
.verdict-pending { color: #7a5800; font-weight: 600; }
tr { break-inside: avoid; }
@page { size: A4; margin: 14mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 9.5pt; }
  h2 { break-before: auto; break-after: avoid; }
  h3 { break-after: avoid; }
  th { background: #ddd !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_table(header: Sequence[str], rows: Iterable[Sequence[tuple[str, str]]]) -> str:
    """*rows* are sequences of (css class, already-escaped HTML)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>" for c, v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> str:
    """The report as one self-contained, print-friendly HTML page; every value escaped."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Evidence report: objections to Meta's AI training</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Evidence report: objections to Meta&#8217;s use of personal data for AI</h1>",
        f'<p class="meta">Generated {_e(_stamp(report.generated_at))} by meta-watcher '
        f"{_e(__version__)}. All times are UTC. Deadline: GDPR Art.&nbsp;12(3), one month after "
        "the objection (the last confirmation-code mail before the answer).</p>",
    ]
    if not report.accounts:
        parts.append("<p>No Meta privacy mail has been recorded.</p>")
    for acc in report.accounts:
        parts.append(f"<section><h2>{_e(_title(acc))}</h2><dl>")
        parts.append(f"<dt>Current status</dt><dd>{_e(_status_text(acc))}</dd>")
        parts.append(f"<dt>Effective date of Meta's policy</dt><dd>{_e(_effective_text(acc))}</dd>")
        parts.append("</dl><h3>Objections and deadlines</h3>")
        if acc.objections:
            parts.append(
                _html_table(
                    (
                        "Objected",
                        "Before effective date",
                        "Answer due",
                        "Answer",
                        "Answered",
                        "Result",
                    ),
                    (
                        (
                            ("", _e(_day(o.objected_at))),
                            ("", _e(_before_text(o))),
                            ("", _e(_day(o.due_at))),
                            ("", _e(_answer_text(o) or "none")),
                            ("", _e(_day(o.answered_at))),
                            (f"verdict-{o.verdict}", _e(VERDICT_TEXT[o.verdict])),
                        )
                        for o in acc.objections
                    ),
                )
            )
        else:
            parts.append("<p>No objection found (no authentic confirmation-code mail).</p>")
        parts.append("<h3>Mails</h3>")
        parts.append(
            _html_table(
                ("Date", "Kind", "From", "Subject", "Message-ID", "Authenticity", "Status change"),
                (
                    (
                        ("nowrap", _e(_stamp(mail_at(m)))),
                        ("", _e(_kind(m))),
                        ("mono", _e(m.sender)),
                        ("", _e(m.subject)),
                        ("mono", _e(m.message_id or "(none)")),
                        (m.authenticity, _e(authenticity_text(m))),
                        ("", _e(acc.change_caused_by(m) or "")),
                    )
                    for m in acc.mails
                ),
            )
        )
        parts.append("<h3>Status transitions</h3>")
        if acc.transitions:
            parts.append(
                _html_table(
                    ("Mail date", "From", "To", "Subject of the mail"),
                    (
                        (
                            ("", _e(t.mail_date[:16].replace("T", " "))),
                            ("", _e(t.from_status or "(none)")),
                            ("", _e(t.to_status)),
                            ("", _e(t.subject)),
                        )
                        for t in acc.transitions
                    ),
                )
            )
        else:
            parts.append("<p>None.</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------- CSV and JSON

CSV_COLUMNS = (
    "platform",
    "account",
    "mail_date",
    "date_source",
    "kind",
    "sender",
    "subject",
    "message_id",
    "authenticity",
    "authserv_id",
    "auth_reasons",
    "counted",
    "suspicious",
    "status_change",
    "effective_date",
    "objected_at",
    "answer_due_at",
    "answer_verdict",
    "mailbox",
    "folder",
    "uid",
    "sha256",
)


def _objection_of(acc: AccountReport, mail: MailRow) -> Objection | None:
    for obj in acc.objections:
        if mail.id in (obj.code_mail.id, obj.answer.id if obj.answer else -1):
            return obj
    return None


def render_csv(report: Report) -> str:
    """One row per mail (CSV_COLUMNS), with its account's effective date and, for the mails
    that open or close an objection, its deadline and verdict."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for acc in report.accounts:
        for m in acc.mails:
            obj = _objection_of(acc, m)
            writer.writerow(
                (
                    acc.platform,
                    acc.account,
                    mail_at(m).isoformat(),
                    m.date_source,
                    m.kind,
                    m.sender,
                    m.subject,
                    m.message_id or "",
                    m.authenticity,
                    m.authserv_id or "",
                    "; ".join(m.auth_reasons),
                    int(m.counted),
                    int(m.suspicious),
                    acc.change_caused_by(m) or "",
                    acc.effective_date.isoformat() if acc.effective_date else "",
                    obj.objected_at.isoformat() if obj else "",
                    obj.due_at.isoformat() if obj else "",
                    obj.verdict if obj else "",
                    m.identity,
                    m.folder,
                    m.uid,
                    m.sha256,
                )
            )
    return buf.getvalue()


def _mail_json(acc: AccountReport, m: MailRow) -> dict[str, Any]:
    return {
        "mail_date": mail_at(m).isoformat(),
        "date_source": m.date_source,
        "kind": m.kind,
        "sender": m.sender,
        "subject": m.subject,
        "message_id": m.message_id,
        "authenticity": m.authenticity,
        "authserv_id": m.authserv_id,
        "auth_reasons": list(m.auth_reasons),
        "counted": m.counted,
        "suspicious": m.suspicious,
        "rule": m.rule_id,
        "fields": m.fields,
        "status_change": acc.change_caused_by(m),
        "mailbox": m.identity,
        "folder": m.folder,
        "uidvalidity": m.uidvalidity,
        "uid": m.uid,
        "sha256": m.sha256,
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-ready dict (times ISO 8601 UTC)."""
    return {
        "generated_at": report.generated_at.isoformat(),
        "generator": f"meta-watcher {__version__}",
        "deadline_rule": "GDPR Art. 12(3): one month after the last confirmation-code mail "
        "before the answer",
        "accounts": [
            {
                "platform": acc.platform,
                "account": acc.account,
                "status": acc.status,
                "status_since": acc.status_since,
                "effective_date": acc.effective_date.isoformat() if acc.effective_date else None,
                "objections": [
                    {
                        "objected_at": o.objected_at.isoformat(),
                        "objection_message_id": o.code_mail.message_id,
                        "effective_date": o.effective_date.isoformat()
                        if o.effective_date
                        else None,
                        "before_effective_date": o.before_effective,
                        "answer_due_at": o.due_at.isoformat(),
                        "answer_kind": o.answer.kind if o.answer else None,
                        "answer_message_id": o.answer.message_id if o.answer else None,
                        "answered_at": o.answered_at.isoformat() if o.answered_at else None,
                        "verdict": o.verdict,
                    }
                    for o in acc.objections
                ],
                "mails": [_mail_json(acc, m) for m in acc.mails],
                "transitions": [
                    {
                        "mail_date": t.mail_date,
                        "from": t.from_status,
                        "to": t.to_status,
                        "message_id": t.message_id,
                        "rule": t.rule_id,
                        "recorded_at": t.recorded_at,
                    }
                    for t in acc.transitions
                ],
            }
            for acc in report.accounts
        ],
    }


def render(report: Report, fmt: str) -> str:
    """Render *report* as ``md``, ``html``, ``csv`` or ``json``; ValueError for another."""
    if fmt == "md":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return json.dumps(report_json(report), ensure_ascii=False, indent=2) + "\n"
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


# ---------------------------------------------------------------------------- .eml export


@dataclass(frozen=True)
class Exported:
    """The outcome for one mail: the file written, or the problem in one sentence."""

    mail: MailRow
    path: Path | None
    problem: str | None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def eml_name(mail: MailRow) -> str:
    """``2024-06-10_facebook_policy_update_1a2b3c4d5e6f.eml``: date, platform, kind, hash."""
    parts = [_day(mail_at(mail)), mail.platform or "unknown", mail.kind, mail.sha256[:12]]
    return _UNSAFE.sub("-", "_".join(parts)) + ".eml"


def _write_eml(directory: Path, mail: MailRow, raw: bytes) -> Path:
    path = directory / eml_name(mail)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    return path


class Fetcher(Protocol):
    """What the export needs of a source: MailSource.fetch_original and close."""

    def fetch_original(self, ref: MessageRef) -> bytes: ...

    def close(self) -> None: ...


class _Sources:
    """The source each recorded mail came from, opened (connected) once, on first use."""

    def __init__(self, config: Config) -> None:
        self._accounts = {a.name: a for a in config.accounts}
        self._local = {s.name: s.path for s in config.local}
        self._opened: dict[str, Fetcher] = {}

    def get(self, key: SourceKey) -> Fetcher | str:
        """The source of *key*, or why there is none (one sentence)."""
        if key.source in self._opened:
            return self._opened[key.source]
        found: Fetcher
        if key.is_local and key.source in self._local:
            found = LocalMailbox(key.source, self._local[key.source])
        elif key.is_local:
            # `scan --db` records files outside the config: an .eml file's folder is its path.
            found = ScannedFile(key.source)
        elif key.source in self._accounts:
            found = ImapAccount(self._accounts[key.source])
        else:
            return f"account {key.source} is no longer in the config"
        self._opened[key.source] = found
        return found

    def close(self) -> None:
        """Close every source opened (IMAP: log out)."""
        for source in self._opened.values():
            source.close()


def export_eml(config: Config, report: Report, directory: Path) -> list[Exported]:
    """Fetch the original of every mail in *report* again through its MailSource (IMAP:
    EXAMINE and BODY.PEEK, by UID, else by Message-ID; local: the file) and write it to
    *directory* as ``.eml`` (0600), with a ``SHA256SUMS`` file. A mail is written only when
    its SHA-256 equals the recorded one, so the file is exactly the mail the report describes.
    Never raises for one mail; each problem is one sentence in the result."""
    directory.mkdir(parents=True, exist_ok=True)
    mails = [m for acc in report.accounts for m in acc.mails]
    # Local mail first, then each source's mail folder by folder: one EXAMINE per folder.
    order = sorted(mails, key=lambda m: (m.uidvalidity != LOCAL_UIDVALIDITY, m.source, m.folder))
    sources = _Sources(config)
    results: list[Exported] = []
    try:
        for mail in order:
            key = SourceKey(mail.source, mail.identity, mail.folder, mail.uidvalidity, mail.uid)
            source = sources.get(key)
            if isinstance(source, str):
                results.append(Exported(mail, None, source))
                continue
            try:
                raw = source.fetch_original(MessageRef(key, mail.message_id, mail.sha256))
            except WatcherError as exc:
                results.append(Exported(mail, None, str(exc)))
                continue
            results.append(Exported(mail, _write_eml(directory, mail, raw), None))
    finally:
        sources.close()
    sums = sorted(f"{r.mail.sha256}  {r.path.name}" for r in results if r.path is not None)
    if sums:
        (directory / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="ascii")
    for r in results:
        if r.problem:
            log.warning("not exported: %s", r.problem)
    return results
