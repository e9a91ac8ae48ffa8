"""Rendering the evidence report: Markdown (GitHub tables), CSV (one row per mail) and JSON
here, HTML in html.py; :func:`render` picks one."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from watcher import __version__
from watcher.report.html import render_html
from watcher.report.objections import AccountReport, Objection, Report, mail_at
from watcher.report.words import (
    VERDICT_TEXT,
    answer_text,
    authenticity_text,
    before_text,
    day,
    effective_text,
    kind,
    stamp,
    status_text,
    title,
)
from watcher.shown import csv_cell, for_person, md_code
from watcher.store.rows import MailRow

FORMATS = ("md", "html", "csv", "json")


def _md_cell(value: object) -> str:
    # The watcher's own words (dates, verdicts, reasons naming a domain): escaped so that
    # nothing in them starts a link, code span or HTML. Mail values go through md_code.
    text = " ".join(for_person(str(value)).split())
    for ch in ("\\", "|", "[", "]", "`"):
        text = text.replace(ch, "\\" + ch)
    return text.replace("<", "&lt;") or " "


class _Mail(str):
    """A value written by a mail's sender: shown as a Markdown code span (md_code)."""


def _cell(value: object) -> str:
    return md_code(value) if isinstance(value, _Mail) else _md_cell(value)


def _md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report) -> str:
    """The report as Markdown (GitHub tables), one section per account."""
    out = [
        "# Evidence report: objections to Meta's use of personal data for AI",
        "",
        f"Generated {stamp(report.generated_at)} by meta-watcher {__version__}. "
        "All times are UTC. Deadline: GDPR Art. 12(3), one month after the objection "
        "(the last confirmation-code mail before the answer).",
        "",
    ]
    if not report.accounts:
        out.append("No Meta privacy mail has been recorded.")
    for acc in report.accounts:
        out += [
            f"## {_md_cell(title(acc))}",
            "",
            f"- Current status: {status_text(acc)}",
            f"- Effective date of Meta's policy: {effective_text(acc)}",
            "",
            "### Objections and deadlines",
            "",
        ]
        if acc.objections:
            out += _md_table(
                ("Objected", "Before effective date", "Answer due", "Answer", "Answered", "Result"),
                (
                    (
                        day(o.objected_at),
                        before_text(o),
                        day(o.due_at),
                        answer_text(o) or "none",
                        day(o.answered_at),
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
                    stamp(mail_at(m)),
                    kind(m),
                    _Mail(m.sender),
                    _Mail(m.subject),
                    _Mail(m.message_id) if m.message_id else "(none)",
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
                        _Mail(t.subject),
                    )
                    for t in acc.transitions
                ),
            )
        else:
            out.append("None.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


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
            row = (
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
            writer.writerow(csv_cell(c) if isinstance(c, str) else c for c in row)
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


def _for_person_json(value: Any) -> Any:
    # Every string of a JSON-ready value (keys too) through for_person.
    if isinstance(value, str):
        return for_person(value)
    if isinstance(value, dict):
        return {for_person(str(k)): _for_person_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_for_person_json(v) for v in value]
    return value


def render(report: Report, fmt: str) -> str:
    """Render *report* as ``md``, ``html``, ``csv`` or ``json``; ValueError for another.
    No format carries a control character or bidi override (for_person): a report is read
    by a person, in a terminal, an editor or a browser."""
    if fmt == "md":
        return for_person(render_markdown(report))
    if fmt == "html":
        return for_person(render_html(report))
    if fmt == "csv":
        return for_person(render_csv(report))
    if fmt == "json":
        # Each value, not the dump: JSON writes C0 as \\u escapes, which `jq -r` or any
        # reader turns back into a raw ESC on a terminal.
        return (
            json.dumps(_for_person_json(report_json(report)), ensure_ascii=False, indent=2) + "\n"
        )
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
