"""The report as one self-contained, print-friendly HTML page (inline CSS, no scripts, no
external resources; prints on A4); every value from a mail is escaped."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from watcher import __version__
from watcher.report.objections import Report, mail_at
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
        f'<p class="meta">Generated {_e(stamp(report.generated_at))} by meta-watcher '
        f"{_e(__version__)}. All times are UTC. Deadline: GDPR Art.&nbsp;12(3), one month after "
        "the objection (the last confirmation-code mail before the answer).</p>",
    ]
    if not report.accounts:
        parts.append("<p>No Meta privacy mail has been recorded.</p>")
    for acc in report.accounts:
        parts.append(f"<section><h2>{_e(title(acc))}</h2><dl>")
        parts.append(f"<dt>Current status</dt><dd>{_e(status_text(acc))}</dd>")
        parts.append(f"<dt>Effective date of Meta's policy</dt><dd>{_e(effective_text(acc))}</dd>")
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
                            ("", _e(day(o.objected_at))),
                            ("", _e(before_text(o))),
                            ("", _e(day(o.due_at))),
                            ("", _e(answer_text(o) or "none")),
                            ("", _e(day(o.answered_at))),
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
                        ("nowrap", _e(stamp(mail_at(m)))),
                        ("", _e(kind(m))),
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
