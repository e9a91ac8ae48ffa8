"""What the log keeps of a processed mail: its fields and subject with codes masked (unless
``store_codes``), and whether its raw bytes are kept. Pure; the store writes what this says.

A raw copy lets the rules be rerun on mail they did not recognise (``meta-watcher
reclassify``, ``rules test --db``). It is kept for ``unrecognized`` and suspicious mail only,
never for a verification-code mail (its raw text holds the code), nor, unless *store_codes*,
for one whose text holds a code-like number (a code mail in a wording no rule knows yet), nor
for one over MAX_KEPT_RAW_BYTES.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from watcher.codes import looks_like_code, mask_code, mask_codes_in
from watcher.kinds import CODE_KINDS, UNRECOGNIZED

if TYPE_CHECKING:
    from watcher.pipeline.process import Outcome

# Meta's objection form lives under these paths (2024: /help/contact/<id>; Instagram's help).
_FORM_LINK = re.compile(r"/help/contact/|/help/instagram/contact/|privacycenter|/privacy/", re.I)


def form_link(links: Iterable[str]) -> str | None:
    """The link to Meta's objection form among a genuine mail's *links*, if there is one
    (the policy notice's notification and ``status``'s NEXT STEP show it)."""
    for link in links:
        if _FORM_LINK.search(link):
            return link
    return None


# A raw copy bigger than this is not kept: one hostile 25 MB mail must not bloat the log.
MAX_KEPT_RAW_BYTES = 2 * 1024 * 1024


def stored_fields(outcome: Outcome, store_codes: bool) -> dict[str, str | None]:
    """*outcome*'s extracted fields as the log keeps them: ``code`` masked unless
    *store_codes*; a counted policy notice adds ``form_link``, the objection form it links to
    (or None), which ``status`` shows as the next step."""
    fields = dict(outcome.fields)
    if "code" in fields and not store_codes:
        fields["code"] = mask_code(fields["code"])
    if outcome.counted and outcome.match.kind == "policy_update":
        fields["form_link"] = form_link(outcome.message.links)
    return fields


def stored_subject(outcome: Outcome, store_codes: bool) -> str:
    """*outcome*'s subject as the log keeps it: code-like numbers masked unless *store_codes*
    ("270615 is your code" -> "27**** is your code"), whatever the kind: a code mail in a
    wording no rule knows yet is ``unrecognized`` and still carries the code."""
    subject = outcome.message.subject
    return subject if store_codes else mask_codes_in(subject)


def keeps_raw(outcome: Outcome, store_codes: bool) -> bool:
    """True when the log keeps *outcome*'s raw bytes (see the module docstring)."""
    if outcome.raw is None or len(outcome.raw) > MAX_KEPT_RAW_BYTES:
        return False
    kind = outcome.match.kind
    if kind in CODE_KINDS or not (kind == UNRECOGNIZED or outcome.suspicious):
        return False
    text = f"{outcome.message.subject}\n{outcome.message.text}"
    return store_codes or not looks_like_code(text)
