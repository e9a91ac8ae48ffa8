"""Meaning-preserving variants of every labelled test mail, and Meta mails on other topics.

A *metamorphic* test: the labels of a mail (kind, suspicious, authenticity, account, fields,
platform) must not change when the mail is rewritten in a way that does not change what it
says. Each transform below takes one labelled mail and yields zero or more variants as new raw
RFC 5322 bytes; a transform that does not apply to a mail (no date in it, no HTML part, no
German) yields nothing for it.

Sources:
- tests/corpus/*.eml with tests/corpus/expected.yaml (26 mails, the contract);
- tests/lang/<lang>/*.eml with tests/lang/<lang>/expected.yaml (16 languages).

The transforms (issue 10, item 5): drop a non-decisive paragraph; formal/informal address
(du/Sie, tu/vous, jij/u, tú/usted, by a small phrase table, only where every form of the other
register is covered); Swiss spelling (ß -> ss); US/UK spelling; the effective date in another
format and phrasing; HTML-only; text-only; base64, quoted-printable and 8bit transfer encoding;
LF/CRLF line endings; paragraphs reordered (greeting first, signature and footer last); extra
whitespace, zero-width spaces (U+200B) and soft hyphens (U+00AD) inside words; another
signature line.

The reverse (:func:`negative_cases`): genuine-sender Meta mails on other topics (account
appeal accepted, ads choice, subscription for no ads, Meta AI marketing, the October 2025
AI-chats-for-ads notice, a smart-glasses privacy notice, password reset, login code, new-device
alert) in de, en, fr, it, es, nl and pt, written here from the meaning in Meta's style, plus a
few transforms of each. None may move a status; the AI-chats notice is ``unrecognized`` (it is
about the AI use of data but offers nothing to object to), the rest ``other``.

Everything is deterministic: random choices use :class:`random.Random` seeded with the case id,
so a failing case id reproduces. ``python -m tests.metamorphic`` (or ``python
tests/metamorphic.py``) prints the number of generated cases per language and kind.

Headers are kept as they are (the email package re-serialises them; lines up to 78 characters
are written back unchanged): DKIM is not verified here, and Authentication-Results must stay so
the authenticity verdict stays the same. Only the body and its Content-* headers change.
"""

from __future__ import annotations

import hashlib
import html
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import base64mime, message_from_bytes, policy, quoprimime
from email.header import Header
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import yaml

TESTS = Path(__file__).resolve().parent
CORPUS = TESTS / "corpus"
LANG_DIR = TESTS / "lang"
SEED = "meta-watcher-metamorphic-1"
PRIVACY_KINDS = (
    "policy_update",
    "verification_code",
    "objection_accepted",
    "objection_rejected",
    "info_requested",
)
TRUSTED_AUTHSERV_ID = "mx.home.example"


# --------------------------------------------------------------------------------------------
# Labelled mails


@dataclass(frozen=True)
class Labelled:
    """One labelled mail: where it comes from (``corpus`` or ``lang/<lang>``), its file name,
    its language (the label's, else the folder's), raw bytes and the manifest entry."""

    source: str
    name: str
    language: str
    raw: bytes
    expected: dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One generated test case: ``id`` is ``<source>/<name>::<transform>``; ``expected`` holds
    the labels the variant must keep (the original's, unchanged)."""

    id: str
    source: str
    name: str
    transform: str
    language: str
    raw: bytes
    expected: dict[str, Any] = field(repr=False)

    @property
    def kind(self) -> str:
        """The expected kind (``other``, ``unrecognized`` or one of the privacy kinds)."""
        return str(self.expected["kind"])


def _manifest(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def corpus_trusted_ids() -> tuple[str, ...]:
    """The trusted authserv-ids of tests/corpus/expected.yaml (as tests/test_corpus.py)."""
    return tuple(_manifest(CORPUS / "expected.yaml")["trusted_authserv_ids"])


def labelled_mails() -> list[Labelled]:
    """Every corpus and language mail with its labels, in a stable order."""
    out: list[Labelled] = []
    manifest = _manifest(CORPUS / "expected.yaml")["messages"]
    for name in sorted(manifest):
        entry = manifest[name]
        out.append(
            Labelled(
                "corpus", name, entry.get("language") or "und", (CORPUS / name).read_bytes(), entry
            )
        )
    for folder in sorted(p for p in LANG_DIR.iterdir() if p.is_dir()):
        manifest = _manifest(folder / "expected.yaml")["messages"]
        for name in sorted(manifest):
            entry = manifest[name]
            lang = entry.get("language") or folder.name
            out.append(
                Labelled(f"lang/{folder.name}", name, lang, (folder / name).read_bytes(), entry)
            )
    return out


# --------------------------------------------------------------------------------------------
# Per-language vocabulary, written from the meaning (not copied from rules.yaml)

# Words that carry the decision of a privacy mail: the objection itself and the request it
# answers. A paragraph with one of them is never dropped.
DECISION_WORDS: dict[str, tuple[str, ...]] = {
    "de": (
        "einspruch",
        "widerspruch",
        "widersprech",
        "widersproch",
        "antrag",
        "anfrage",
        "stattgeb",
    ),
    "en": ("objection", "object to", "objected", "request", "honour", "honor"),
    "fr": ("opposition", "opposer", "opposé", "objection", "demande"),
    "it": ("opposizione", "opporti", "opporsi", "opposto", "obiezione", "richiesta"),
    "es": ("oposición", "oponerte", "oponerse", "objeción", "opuesto", "solicitud"),
    "nl": ("bezwaar", "verzoek", "aanvraag"),
    "pt": ("oposição", "objeção", "opor", "oponha", "pedido"),
    "pl": ("sprzeciw", "zgłoszen", "wniosek"),
    "sv": ("invändning", "motsätta", "begäran"),
    "da": ("indsigelse", "anmodning", "gøre indsigelse"),
    "no": ("protest", "reserver", "innsigelse", "forespørsel"),
    "fi": ("vastustu", "vastustaa", "vastusta", "pyyntö", "pyynnö"),
    "cs": ("námitk", "žádost"),
    "el": ("αντίρρησ", "εναντίωσ", "αντιταχθ", "αίτημ"),
    "ro": ("obiecți", "opoziți", "opoziţi", "opune", "solicit"),
    "hu": ("tiltakoz", "kérés", "kérel"),
}

# Words naming AI. A policy notice (or an unrecognized privacy mail) is about the AI use of
# data: the last paragraph that names AI is never dropped from one. A decision mail is about
# the objection, which its decision sentence names; its AI paragraph may go.
AI_WORDS: dict[str, tuple[str, ...]] = {
    "de": ("ki", "ai"),
    "en": ("ai",),
    "fr": ("ia", "ai"),
    "it": ("ia", "ai"),
    "es": ("ia", "ai"),
    "pt": ("ia", "ai"),
    "nl": ("ai",),
    "pl": ("ai", "si", "sztuczn"),
    "sv": ("ai",),
    "da": ("ai", "kunstig intelligens"),
    "no": ("ki", "ai"),
    "fi": ("tekoäly", "ai"),
    "cs": ("ai", "umělé inteligence"),
    "el": ("τεχνητή νοημοσύνη", "ai", "τν"),
    "ro": ("ia", "ai", "inteligență artificială"),
    "hu": ("mi", "ai", "mesterséges intelligencia"),
}

# For mails that are *not* privacy mails (kind other) the topic that makes them so is kept
# too: the account, login, code, ads and AI-product words.
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "de": (
        "konto",
        "anmeld",
        "passwort",
        "code",
        "werbung",
        "abo",
        "ki",
        "meta ai",
        "ausweis",
        "identität",
        "gerät",
    ),
    "en": (
        "account",
        "log in",
        "login",
        "password",
        "code",
        "ads",
        "subscri",
        "ai",
        "identity",
        "device",
    ),
    "fr": (
        "compte",
        "connexion",
        "connecter",
        "mot de passe",
        "code",
        "publicité",
        "abonnement",
        "ia",
        "meta ai",
        "appareil",
    ),
    "it": (
        "account",
        "accesso",
        "accedere",
        "password",
        "codice",
        "pubblicità",
        "abbonamento",
        "ia",
        "meta ai",
        "dispositivo",
    ),
    "es": (
        "cuenta",
        "sesión",
        "contraseña",
        "código",
        "anuncios",
        "suscripción",
        "ia",
        "meta ai",
        "dispositivo",
    ),
    "nl": (
        "account",
        "inlog",
        "wachtwoord",
        "code",
        "advertenties",
        "abonnement",
        "ai",
        "meta ai",
        "apparaat",
    ),
}
_DEFAULT_TOPIC = ("meta ai", "ai", "konto", "account", "code", "kod", "κωδικ", "λογαριασμ")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.|privacycenter\.)\S+", re.IGNORECASE)
_YEAR = re.compile(r"\b20\d\d\b")
_CODE = re.compile(r"(?<!\d)\d{6,8}(?!\d)")


def _has_word(text: str, words: tuple[str, ...]) -> bool:
    low = text.lower()
    for word in words:
        if len(word) <= 3:
            if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", low):
                return True
        elif word in low:
            return True
    return False


def _is_footer(par: str) -> bool:
    """Meta's footer: the account address, the company address, the copyright line."""
    return bool(_EMAIL.search(par)) or "Meta Platforms" in par or "©" in par


# Signature lines seen in Meta's privacy mails (and the platform teams), per language. The
# first is the privacy team in that language, then the operations team, then the platform.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "de": ("Das Meta Privacy-Team", "Privacy Operations", "Dein {platform}-Team"),
    "en": ("The Meta Privacy Team", "Privacy Operations", "The {platform} team"),
    "fr": ("L’équipe Confidentialité de Meta", "Privacy Operations", "L’équipe {platform}"),
    "it": ("Il team Privacy di Meta", "Privacy Operations", "Il team di {platform}"),
    "es": ("El equipo de Privacidad de Meta", "Privacy Operations", "El equipo de {platform}"),
    "nl": ("Het Meta Privacy-team", "Privacy Operations", "Het {platform}-team"),
    "pt": ("A Equipa de Privacidade da Meta", "Privacy Operations", "A equipa do {platform}"),
    "pl": ("Zespół ds. prywatności Meta", "Privacy Operations", "Zespół {platform}"),
    "sv": ("Metas integritetsteam", "Privacy Operations", "{platform}-teamet"),
    "da": ("Metas privatlivsteam", "Privacy Operations", "{platform}-teamet"),
    "no": ("Metas personvernteam", "Privacy Operations", "{platform}-teamet"),
    "fi": ("Metan tietosuojatiimi", "Privacy Operations", "{platform}-tiimi"),
    "cs": ("Tým ochrany soukromí společnosti Meta", "Privacy Operations", "Tým {platform}"),
    "el": ("Η ομάδα απορρήτου της Meta", "Privacy Operations", "Η ομάδα του {platform}"),
    "ro": ("Echipa de confidențialitate Meta", "Privacy Operations", "Echipa {platform}"),
    "hu": ("A Meta adatvédelmi csapata", "Privacy Operations", "A {platform} csapata"),
}
_KNOWN_SIGNATURE = re.compile(
    r"^(?:Das Meta Privacy-Team|Ihr Meta Privacy-Team|Privacy Operations|The Meta Privacy Team|"
    r"Das (?:Facebook|Instagram)-Team|Dein (?:Facebook|Instagram)-Team|"
    r"The (?:Facebook|Instagram) [Tt]eam|L’équipe .{3,40}|Il team .{3,40}|El equipo de .{3,40}|"
    r"Het .{3,30}-team|A [Ee]quipa .{3,40}|Zespół .{3,40}|Metas .{3,30}team|Metan .{3,30}|"
    r"Tým .{3,40}|Η ομάδα .{3,40}|Echipa .{3,40}|A Meta .{3,30}|.{3,30}-teamet)$"
)


# --------------------------------------------------------------------------------------------
# MIME plumbing
#
# Messages are parsed with the compat32 policy (fast, and lenient like the watcher's own
# parser) and re-serialised with the email package's BytesGenerator. The top-level header
# block is then spliced back from the original bytes: every header stays byte for byte, only
# Content-Type and Content-Transfer-Encoding are the new ones.


def _parse(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=policy.compat32)


def _linesep(raw: bytes) -> str:
    return "\r\n" if b"\r\n" in raw[:2000] else "\n"


_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_FIELDS = ("content-type", "content-transfer-encoding")


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    """(header block without its blank line, body)."""
    found = _HEAD_END.search(raw)
    if found is None:
        return raw, b""
    return raw[: found.start()], raw[found.end() :]


def _fields(head: bytes) -> list[bytes]:
    """The header fields of *head*, each with its continuation lines and line ends."""
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def _field_name(field_: bytes) -> str:
    return field_.split(b":", 1)[0].strip().lower().decode("ascii", "replace")


def _serialise(msg: Message, original: bytes) -> bytes:
    """*msg* as bytes with *original*'s header block, except its Content-Type and
    Content-Transfer-Encoding, which are *msg*'s; line ends as in *original*."""
    linesep = _linesep(original)
    # The top-level fields other than Content-* come from *original*: do not fold them.
    for name in {k.lower() for k in msg} - set(_CONTENT_FIELDS):
        del msg[name]
    generated = msg.as_bytes(policy=policy.compat32.clone(linesep=linesep))
    new_head, new_body = _split_head(generated)
    old_head, _ = _split_head(original)
    nl = linesep.encode("ascii")
    kept = [f for f in _fields(old_head) if _field_name(f) not in _CONTENT_FIELDS]
    content = [f for f in _fields(new_head) if _field_name(f) in _CONTENT_FIELDS]
    lines = [f if f.endswith(b"\n") else f + nl for f in kept + content]
    return b"".join(lines) + nl + new_body


def _text_leaves(msg: Message) -> list[Message]:
    leaves: list[Message] = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_type() not in ("text/plain", "text/html"):
            continue
        if part.get_content_disposition() == "attachment":
            continue
        leaves.append(part)
    return leaves


def _get_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        text = data.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _cte(part: Message) -> str:
    return str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()


def _encode(text: str, charset: str, cte: str) -> str:
    """The payload of *text* in *charset* and transfer encoding *cte* (RFC 2045 6.7/6.8),
    as the str compat32 keeps (8bit bytes surrogate-escaped)."""
    data = text.encode(charset)
    if cte == "base64":
        return base64mime.body_encode(data, maxlinelen=76, eol="\n")
    if cte == "quoted-printable":
        return quoprimime.body_encode(data.decode("latin-1"), maxlinelen=76, eol="\n")
    return data.decode("ascii", "surrogateescape")


def _set_text(part: Message, text: str, cte: str | None = None, subtype: str | None = None) -> None:
    """Replace a text leaf's content, keeping its subtype, charset (UTF-8 when the old charset
    cannot hold the new text) and transfer encoding unless *cte* is given."""
    charset = part.get_content_charset() or "utf-8"
    cte = cte or _cte(part)
    if cte not in ("base64", "quoted-printable", "8bit", "7bit"):
        cte = "quoted-printable"
    try:
        text.encode(charset)
    except (UnicodeEncodeError, LookupError):
        charset = "utf-8"
    if cte == "7bit" and not text.isascii():
        cte = "quoted-printable"
    subtype = subtype or part.get_content_subtype()
    del part["Content-Type"]
    del part["Content-Transfer-Encoding"]
    part["Content-Type"] = f'text/{subtype}; charset="{charset}"'
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(_encode(text, charset, cte))


def edit_bodies(
    raw: bytes,
    plain: Callable[[str], str | None],
    html_: Callable[[str], str | None],
) -> bytes | None:
    """Rewrite every text/plain leaf with *plain* and every text/html leaf with *html_*; either
    returning None means "this transform cannot be applied" and the whole edit yields None.
    Returns None too when nothing changed."""
    msg = _parse(raw)
    changed = False
    for part in _text_leaves(msg):
        old = _get_text(part)
        new = (plain if part.get_content_subtype() == "plain" else html_)(old)
        if new is None:
            return None
        if new != old:
            _set_text(part, new)
            changed = True
    if not changed:
        return None
    return _serialise(msg, raw)


# --------------------------------------------------------------------------------------------
# Text model: paragraphs of the plain text, rows of the HTML


def paragraphs(text: str) -> list[str]:
    """The blank-line separated paragraphs of *text* (stripped, none empty)."""
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def join_paragraphs(paras: list[str]) -> str:
    return "\n\n".join(paras) + "\n"


def _squash(text: str) -> str:
    text = html.unescape(re.sub(r"<[^>]*>", " ", text))
    return " ".join(text.replace("\u00a0", " ").split())


# An innermost table row or paragraph of Meta's HTML: one paragraph of the plain text.
_ROW = re.compile(
    r"<(tr|p)\b[^>]*>(?:(?!<(?:tr|p)\b|</(?:tr|p)>).)*</\1>", re.DOTALL | re.IGNORECASE
)


def html_rows(doc: str) -> list[re.Match[str]]:
    """The innermost ``<tr>``/``<p>`` elements of *doc* that hold text."""
    return [m for m in _ROW.finditer(doc) if _squash(m.group(0))]


def _html_text_segments(doc: str, fn: Callable[[str], str]) -> str:
    """Apply *fn* to the text between tags of *doc* (never to tags, attributes or the head)."""
    head_end = 0
    found = re.search(r"<body\b[^>]*>", doc, re.IGNORECASE)
    if found:
        head_end = found.end()
    pieces = re.split(r"(<[^>]*>)", doc[head_end:])
    out = [doc[:head_end]]
    for piece in pieces:
        out.append(piece if piece.startswith("<") else fn(piece))
    return "".join(out)


def _sub_outside_footer_html(doc: str, fn: Callable[[str], str]) -> str:
    """Apply *fn* to HTML text segments that are not part of Meta's footer rows."""

    def seg(text: str) -> str:
        return text if _is_footer(html.unescape(text)) else fn(text)

    return _html_text_segments(doc, seg)


def plain_to_html(text: str) -> str:
    """Render plain *text* as HTML in the shape of Meta's mails: one table row per paragraph,
    line breaks as ``<br>``, every http(s) URL as a link to itself (so the links are the same)."""
    rows = []
    for par in paragraphs(text):
        lines = []
        for line in par.split("\n"):
            escaped = html.escape(line, quote=False)
            escaped = re.sub(
                r"https?://[^\s<>&\"]+(?:&amp;[^\s<>&\"]+)*",
                lambda m: f'<a href="{m.group(0)}" style="color:#1b74e4;">{m.group(0)}</a>',
                escaped,
            )
            lines.append(escaped)
        style = (
            "font-size:11px;color:#8A8D91;"
            if _is_footer(par)
            else ("font-size:16px;line-height:21px;color:#141823;padding:0 0 12px 0;")
        )
        rows.append(f'<tr><td style="{style}">' + "<br>".join(lines) + "</td></tr>")
    return (
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; '
        'charset=utf-8"></head>\n<body style="margin:0;padding:0;" dir="ltr">\n'
        '<table border="0" width="100%" cellspacing="0" cellpadding="0" '
        'style="border-collapse:collapse;font-family:Helvetica,Arial,sans-serif;">\n'
        + "\n".join(rows)
        + "\n</table>\n</body></html>\n"
    )


def primary_text(raw: bytes) -> str:
    """The text a reader sees: the first text/plain leaf, else the first text/html rendered."""
    leaves = _text_leaves(_parse(raw))
    for part in leaves:
        if part.get_content_subtype() == "plain":
            return _get_text(part)
    for part in leaves:
        doc = _get_text(part)
        return "\n\n".join(_squash(m.group(0)) for m in html_rows(doc))
    return ""


# --------------------------------------------------------------------------------------------
# Paragraph-level transforms


def _protected(par: str, mail: Labelled) -> bool:
    """A paragraph a transform must keep: footer, code, date, decision vocabulary, and for
    mail that is not a privacy mail the topic that makes it so."""
    lang = mail.language
    if _is_footer(par) or _CODE.search(par) or _YEAR.search(par) or _URL.search(par):
        return True
    if _has_word(par, DECISION_WORDS.get(lang, ())):
        return True
    if mail.expected["kind"] == "other":
        return _has_word(par, TOPIC_WORDS.get(lang, _DEFAULT_TOPIC))
    return False


def _units(paras: list[str]) -> list[list[int]]:
    """Group paragraph indices so a paragraph ending with ':' stays with the next one."""
    units: list[list[int]] = []
    joined = False
    for i, par in enumerate(paras):
        if joined:
            units[-1].append(i)
        else:
            units.append([i])
        joined = par.rstrip().endswith(":")
    return units


def _short(par: str) -> bool:
    return len(par.split()) <= 5 and not _CODE.search(par) and not _YEAR.search(par)


def _layout(paras: list[str]) -> tuple[int, int]:
    """Return (start, end): paragraphs[start:end] is the body between the greeting (a short
    first paragraph) and the closing and signature (short paragraphs) before the footer (from
    the first footer paragraph on, whatever follows it)."""
    start = 1 if paras and _short(paras[0]) and not _is_footer(paras[0]) else 0
    end = next((i for i, p in enumerate(paras) if i >= start and _is_footer(p)), len(paras))
    while end > start and _short(paras[end - 1]):
        end -= 1
    return start, end


def _html_row_for(doc: str, par: str) -> re.Match[str] | None:
    want = _squash(html.escape(par, quote=False))
    for row in html_rows(doc):
        if _squash(row.group(0)) == want:
            return row
    return None


def t_drop_paragraph(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Drop one paragraph that carries nothing decisive (one variant per such paragraph)."""
    paras = paragraphs(primary_text(mail.raw))
    if mail.expected["kind"] == "other":
        # For a mail that is not a privacy mail, only a greeting or a closing line is
        # meaningless enough to drop: its topic is spread over the rest.
        start, end = _layout(paras)
        candidates = [i for i in range(len(paras)) if (i < start or i >= end)]
        candidates = [
            i for i in candidates if not _is_footer(paras[i]) and not _protected_sig(paras[i])
        ]
    else:
        candidates = [i for i, p in enumerate(paras) if not _protected(p, mail)]
        if mail.expected["kind"] in ("policy_update", "unrecognized"):
            ai = AI_WORDS.get(mail.language, ("ai",))
            naming_ai = [i for i, p in enumerate(paras) if _has_word(p, ai)]
            if len(naming_ai) == 1:
                candidates = [i for i in candidates if i != naming_ai[0]]
    for index in candidates:
        drop = paras[index]
        if len(paras) < 3:
            continue

        def plain(text: str, drop: str = drop) -> str | None:
            ps = paragraphs(text)
            if drop not in ps:
                return None
            ps.remove(drop)
            return join_paragraphs(ps)

        def html_(doc: str, drop: str = drop) -> str | None:
            row = _html_row_for(doc, drop)
            if row is None:
                # The HTML alternative may lack a line of the text (or hold it in another
                # shape); then only the HTML-only mail is ambiguous.
                return doc if not _is_primary_html(mail.raw) else None
            return doc[: row.start()] + doc[row.end() :]

        out = edit_bodies(mail.raw, plain, html_)
        if out is not None:
            yield f"drop-paragraph-{index + 1}", out


def _protected_sig(par: str) -> bool:
    return any(_KNOWN_SIGNATURE.match(line.strip()) for line in par.split("\n"))


def _is_primary_html(raw: bytes) -> bool:
    return all(p.get_content_subtype() == "html" for p in _text_leaves(_parse(raw)))


def t_reorder(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Reverse the order of the body paragraphs (greeting first, closing and footer last)."""
    paras = paragraphs(primary_text(mail.raw))
    start, end = _layout(paras)
    units = _units(paras[start:end])
    if len(units) < 2:
        return
    order = [i + start for unit in reversed(units) for i in unit]
    body = [paras[i] for i in range(start, end)]
    new_body = [paras[i] for i in order]
    if new_body == body:
        return

    def plain(text: str) -> str | None:
        ps = paragraphs(text)
        try:
            first = ps.index(body[0])
        except ValueError:
            return None
        if ps[first : first + len(body)] != body:
            return None
        return join_paragraphs(ps[:first] + new_body + ps[first + len(body) :])

    def html_(doc: str) -> str | None:
        rows = [_html_row_for(doc, p) for p in body]
        if any(r is None for r in rows):
            return doc if not _is_primary_html(mail.raw) else None
        spans = [(r.start(), r.end(), r.group(0)) for r in rows if r is not None]
        texts = {p: r.group(0) for p, r in zip(body, rows, strict=True) if r is not None}
        out = doc
        for (s, e, _), par in sorted(zip(spans, new_body, strict=True), key=lambda x: -x[0][0]):
            out = out[:s] + texts[par] + out[e:]
        return out

    out = edit_bodies(mail.raw, plain, html_)
    if out is not None:
        yield "reorder-paragraphs", out


def t_signature(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Sign with another of Meta's team names (privacy mails only; a ban appeal signed by the
    privacy team would say something else)."""
    if mail.expected["kind"] not in (*PRIVACY_KINDS, "unrecognized"):
        return
    platform = (mail.expected.get("platform") or "facebook").capitalize()
    options = [s.format(platform=platform) for s in SIGNATURES.get(mail.language, SIGNATURES["en"])]
    text = primary_text(mail.raw)
    lines = text.split("\n")
    current = next((ln.strip() for ln in lines if _KNOWN_SIGNATURE.match(ln.strip())), None)
    # One other signature per mail, chosen by the seeded generator (each alternative is
    # still covered across the mails of a language).
    others = [(n, s) for n, s in enumerate(options, start=1) if s != current]
    rng = random.Random(f"{SEED}:{mail.source}/{mail.name}:signature")
    for number, new in [rng.choice(others)] if others else []:
        if current is not None:
            old = current

            def swap(text: str, old: str = old, new: str = new) -> str:
                return "\n".join(new if ln.strip() == old else ln for ln in text.split("\n"))

            def swap_html(doc: str, old: str = old, new: str = new) -> str:
                return _html_text_segments(doc, lambda s: new if s.strip() == old else s)

            out = edit_bodies(mail.raw, swap, swap_html)
        else:
            # No signature: add one above the footer.
            def add(text: str, new: str = new) -> str | None:
                ps = paragraphs(text)
                at = len(ps)
                while at > 0 and _is_footer(ps[at - 1]):
                    at -= 1
                return join_paragraphs([*ps[:at], new, *ps[at:]])

            def add_html(doc: str, new: str = new) -> str | None:
                rows = [r for r in html_rows(doc) if _is_footer(_squash(r.group(0)))]
                if not rows:
                    return None
                at = rows[0].start()
                return doc[:at] + f"<tr><td>{html.escape(new)}</td></tr>" + doc[at:]

            out = edit_bodies(mail.raw, add, add_html)
        if out is not None:
            yield f"signature-{number}", out


# --------------------------------------------------------------------------------------------
# Word-level transforms


def _word_transform(
    mail: Labelled, name: str, fn: Callable[[str], str], skip_footer: bool = True
) -> Iterator[tuple[str, bytes]]:
    def plain(text: str) -> str:
        return join_paragraphs(
            [p if (skip_footer and _is_footer(p)) else fn(p) for p in paragraphs(text)]
        )

    def html_(doc: str) -> str:
        return _sub_outside_footer_html(doc, fn) if skip_footer else _html_text_segments(doc, fn)

    out = edit_bodies(mail.raw, plain, html_)
    if out is not None:
        yield name, out


def t_swiss(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Swiss Standard German writes ss for ß (Grüsse, heisst, gemäss)."""
    if mail.language != "de" or "ß" not in primary_text(mail.raw):
        return
    yield from _word_transform(mail, "swiss-ss", lambda s: s.replace("ß", "ss"), skip_footer=False)


# British -> American; applied in the direction the mail does not use yet.
_UK_US = {
    "honour": "honor",
    "honoured": "honored",
    "honouring": "honoring",
    "centre": "center",
    "behaviour": "behavior",
    "favour": "favor",
    "colour": "color",
    "organise": "organize",
    "recognise": "recognize",
    "recognised": "recognized",
    "personalise": "personalize",
    "personalised": "personalized",
    "personalisation": "personalization",
    "prioritise": "prioritize",
    "authorise": "authorize",
    "authorised": "authorized",
    "realise": "realize",
    "minimise": "minimize",
    "apologise": "apologize",
    "summarise": "summarize",
    "optimise": "optimize",
    "customise": "customize",
    "analyse": "analyze",
    "licence": "license",
    "programme": "program",
    "enquiry": "inquiry",
}


def _respell(text: str, table: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        new = table.get(word.lower())
        if new is None:
            return word
        if word[0].isupper():
            new = new[0].upper() + new[1:]
        return new

    pattern = r"\b(?:" + "|".join(sorted(map(re.escape, table), key=len, reverse=True)) + r")\b"
    return re.sub(pattern, repl, text, flags=re.IGNORECASE)


def t_us_uk(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """honour/honor, centre/center, -ise/-ize: each English mail respelt the other way."""
    if mail.language != "en":
        return
    text = primary_text(mail.raw)
    if any(re.search(rf"\b{w}\b", text, re.I) for w in _UK_US):
        yield from _word_transform(mail, "us-spelling", lambda s: _respell(s, _UK_US))
    back = {v: k for k, v in _UK_US.items()}
    if any(re.search(rf"\b{w}\b", text, re.I) for w in back):
        yield from _word_transform(mail, "uk-spelling", lambda s: _respell(s, back))


def _in_word_noise(char: str, rate: float) -> Callable[[Any], Callable[[str], str]]:
    def make(rng: random.Random) -> Callable[[str], str]:
        def fn(text: str) -> str:
            def word(m: re.Match[str]) -> str:
                w = m.group(0)
                if len(w) < 5 or rng.random() > rate:
                    return w
                at = rng.randrange(2, len(w) - 1)
                return w[:at] + char + w[at:]

            # Never inside an address, a URL or a run of digits (the code, the date).
            pieces = re.split(r"(\S*@\S*|\S*://\S*|\S*\.com\S*|\S*\d\S*)", text)
            return "".join(
                p if i % 2 else re.sub(r"[^\W\d_]{5,}", word, p) for i, p in enumerate(pieces)
            )

        return fn

    return make


def _noise_transform(
    mail: Labelled, name: str, make: Callable[[random.Random], Callable[[str], str]]
) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(f"{SEED}:{mail.source}/{mail.name}:{name}")
    fn = make(rng)

    def plain(text: str) -> str:
        return join_paragraphs(
            [p if _EMAIL.search(p) and _is_footer(p) else fn(p) for p in paragraphs(text)]
        )

    def html_(doc: str) -> str:
        return _html_text_segments(doc, lambda s: s if _EMAIL.search(s) else fn(s))

    out = edit_bodies(mail.raw, plain, html_)
    if out is not None:
        yield name, out


def t_zero_width(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Zero-width spaces (U+200B) inside words, as HTML mailers insert to stop auto-linking."""
    yield from _noise_transform(mail, "zero-width", _in_word_noise("\u200b", 0.5))


def t_soft_hyphen(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Soft hyphens (U+00AD) inside words, as hyphenating editors insert them."""
    yield from _noise_transform(mail, "soft-hyphen", _in_word_noise("\u00ad", 0.5))


def _whitespace(rng: random.Random) -> Callable[[str], str]:
    def fn(text: str) -> str:
        def space(m: re.Match[str]) -> str:
            roll = rng.random()
            if roll < 0.2:
                return "  "
            if roll < 0.3:
                return "\u00a0"
            if roll < 0.35:
                return " \t "
            return m.group(0)

        lines = [
            re.sub(r"(?<=\S) (?=\S)", space, ln) + ("  " if rng.random() < 0.3 else "")
            for ln in text.split("\n")
        ]
        return "\n".join(lines)

    return fn


def t_whitespace(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Doubled spaces, tabs, non-breaking spaces and trailing blanks between words."""
    yield from _noise_transform(mail, "whitespace", _whitespace)


# --------------------------------------------------------------------------------------------
# Dates


MONTHS: dict[str, tuple[str, ...]] = {
    # The form used after a day number ("26. Juni", "26 de junio", "26 czerwca").
    "de": (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "it": (
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
    "pt": (
        "janeiro",
        "fevereiro",
        "março",
        "abril",
        "maio",
        "junho",
        "julho",
        "agosto",
        "setembro",
        "outubro",
        "novembro",
        "dezembro",
    ),
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "da": (
        "januar",
        "februar",
        "marts",
        "april",
        "maj",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "no": (
        "januar",
        "februar",
        "mars",
        "april",
        "mai",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "desember",
    ),
    "sv": (
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "fi": (
        "tammikuuta",
        "helmikuuta",
        "maaliskuuta",
        "huhtikuuta",
        "toukokuuta",
        "kesäkuuta",
        "heinäkuuta",
        "elokuuta",
        "syyskuuta",
        "lokakuuta",
        "marraskuuta",
        "joulukuuta",
    ),
    "pl": (
        "stycznia",
        "lutego",
        "marca",
        "kwietnia",
        "maja",
        "czerwca",
        "lipca",
        "sierpnia",
        "września",
        "października",
        "listopada",
        "grudnia",
    ),
    "cs": (
        "ledna",
        "února",
        "března",
        "dubna",
        "května",
        "června",
        "července",
        "srpna",
        "září",
        "října",
        "listopadu",
        "prosince",
    ),
    "el": (
        "Ιανουαρίου",
        "Φεβρουαρίου",
        "Μαρτίου",
        "Απριλίου",
        "Μαΐου",
        "Ιουνίου",
        "Ιουλίου",
        "Αυγούστου",
        "Σεπτεμβρίου",
        "Οκτωβρίου",
        "Νοεμβρίου",
        "Δεκεμβρίου",
    ),
    "ro": (
        "ianuarie",
        "februarie",
        "martie",
        "aprilie",
        "mai",
        "iunie",
        "iulie",
        "august",
        "septembrie",
        "octombrie",
        "noiembrie",
        "decembrie",
    ),
    "hu": (
        "január",
        "február",
        "március",
        "április",
        "május",
        "június",
        "július",
        "augusztus",
        "szeptember",
        "október",
        "november",
        "december",
    ),
}


def _written_dates(lang: str, y: int, m: int, d: int) -> list[str]:
    """Regexes for the ways the mails write a date in *lang* (longest first)."""
    name = re.escape(MONTHS[lang][m - 1])
    return {
        "de": [rf"{d}\. {name} {y}"],
        "en": [rf"{name} {d}(?:st|nd|rd|th)?, {y}", rf"{d}(?:st|nd|rd|th)? {name},? {y}"],
        "fr": [rf"{'1er' if d == 1 else d} {name} {y}"],
        "it": [rf"{d}(?:°)? {name} {y}"],
        "es": [rf"{d} de {name} de {y}"],
        "pt": [rf"{d} de {name} de {y}"],
        "nl": [rf"{d} {name} {y}"],
        "da": [rf"{d}\. {name} {y}"],
        "no": [rf"{d}\. {name} {y}"],
        "sv": [rf"{d} {name} {y}"],
        "fi": [rf"{d}\. {name} {y}"],
        "pl": [rf"{d} {name} {y}(?: r\.)?"],
        "cs": [rf"{d}\. {name} {y}"],
        "el": [rf"{d} {name} {y}"],
        "ro": [rf"{d} {name} {y}"],
        "hu": [rf"{y}\. {name} {d}\.?"],
    }[lang]


def _numeric(lang: str, y: int, m: int, d: int) -> str | None:
    return {
        "de": f"{d:02d}.{m:02d}.{y}",
        "da": f"{d:02d}.{m:02d}.{y}",
        "no": f"{d:02d}.{m:02d}.{y}",
        "fi": f"{d}.{m}.{y}",
        "cs": f"{d:02d}.{m:02d}.{y}",
        "ro": f"{d:02d}.{m:02d}.{y}",
        "pl": f"{d:02d}.{m:02d}.{y}",
        "fr": f"{d:02d}/{m:02d}/{y}",
        "it": f"{d:02d}/{m:02d}/{y}",
        "es": f"{d:02d}/{m:02d}/{y}",
        "pt": f"{d:02d}/{m:02d}/{y}",
        "el": f"{d:02d}/{m:02d}/{y}",
        "nl": f"{d:02d}-{m:02d}-{y}",
        "sv": f"{y}-{m:02d}-{d:02d}",
        "en": f"{y}-{m:02d}-{d:02d}",
    }.get(lang)


def _words_date(lang: str, y: int, m: int, d: int) -> str:
    name = MONTHS[lang][m - 1]
    return {
        "de": f"{d}. {name} {y}",
        "en": f"{d} {name} {y}",
        "fr": f"{d} {name} {y}",
        "it": f"{d} {name} {y}",
        "es": f"{d} de {name} de {y}",
        "pt": f"{d} de {name} de {y}",
        "nl": f"{d} {name} {y}",
        "da": f"{d}. {name} {y}",
        "no": f"{d}. {name} {y}",
        "sv": f"{d} {name} {y}",
        "fi": f"{d}. {name} {y}",
        "pl": f"{d} {name} {y} r.",
        "cs": f"{d}. {name} {y}",
        "el": f"{d} {name} {y}",
        "ro": f"{d} {name} {y}",
        "hu": f"{y}. {name} {d}.",
    }[lang]


# Another sentence saying the same: the policy applies from that date. {date} is the date in
# words or digits. (Hungarian puts its suffix on the date, so it has its own form.)
DATE_SENTENCES: dict[str, tuple[str, ...]] = {
    "de": (
        "Ab dem {date} gilt unsere aktualisierte Datenschutzrichtlinie.",
        "Die Aktualisierungen gelten ab {date}.",
    ),
    "en": (
        "Starting {us}, our updated Privacy Policy will apply.",
        "From {date}, the updated Privacy Policy applies.",
    ),
    "fr": (
        "À partir du {date}, notre Politique de confidentialité mise à jour s’appliquera.",
        "Les mises à jour prendront effet le {date}.",
    ),
    "it": (
        "A partire dal {date} si applicherà la nostra Informativa sulla privacy aggiornata.",
        "Gli aggiornamenti saranno validi dal {date}.",
    ),
    "es": (
        "A partir del {date} se aplicará nuestra Política de privacidad actualizada.",
        "Las actualizaciones se aplicarán desde el {date}.",
    ),
    "pt": ("A partir de {date}, aplica-se a nossa Política de Privacidade atualizada.",),
    "nl": (
        "Vanaf {date} geldt ons bijgewerkte Privacybeleid.",
        "De updates gelden met ingang van {date}.",
    ),
    "da": ("Fra og med den {date} gælder vores opdaterede privatlivspolitik.",),
    "no": ("Fra og med {date} gjelder de oppdaterte personvernreglene våre.",),
    "sv": ("Från och med den {date} gäller vår uppdaterade integritetspolicy.",),
    "fi": ("Päivitettyä tietosuojakäytäntöä sovelletaan {date} alkaen.",),
    "cs": ("Od {date} platí aktualizované Zásady ochrany osobních údajů.",),
    "pl": ("Od {date} obowiązują zaktualizowane Zasady ochrony prywatności.",),
    "el": ("Από τις {date} ισχύει η ενημερωμένη Πολιτική απορρήτου μας.",),
    "ro": ("Începând cu {date}, se aplică Politica de confidențialitate actualizată.",),
    "hu": ("A frissített Adatvédelmi irányelvek {y}. {month} {d}-tól érvényesek.",),
}


def _find_date(text: str, lang: str, iso: str) -> re.Match[str] | None:
    y, m, d = (int(x) for x in iso.split("-"))
    for pattern in _written_dates(lang, y, m, d):
        found = re.search(pattern, text)
        if found:
            return found
    return None


def _sentence_span(text: str, found: re.Match[str]) -> tuple[int, int]:
    """The sentence around a date match: from after the previous sentence end to the first
    full stop after the date."""
    start = 0
    for m in re.finditer(r"(?<![0-9])[.!?](?:\s+)", text[: found.start()]):
        start = m.end()
    nl = text.rfind("\n", 0, found.start())
    start = max(start, nl + 1)
    end_match = re.search(r"[.!?](?=\s|$)", text[found.end() - 1 :])
    end = found.end() - 1 + end_match.end() if end_match else len(text)
    return start, end


def t_date(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """The labelled effective date in another format (digits; for English the other order)
    and in other sentences saying the policy applies from that date."""
    iso = (mail.expected.get("fields") or {}).get("effective_date")
    lang = mail.language
    if not iso or lang not in MONTHS:
        return
    text = primary_text(mail.raw)
    if _find_date(text, lang, iso) is None:
        return
    y, m, d = (int(x) for x in iso.split("-"))

    def in_place(new: str) -> Callable[[str], str | None]:
        def fn(s: str) -> str | None:
            found = _find_date(s, lang, iso)
            if found is None:
                return s
            return s[: found.start()] + new + s[found.end() :]

        return fn

    variants: list[tuple[str, Callable[[str], str | None]]] = []
    numeric = _numeric(lang, y, m, d)
    if numeric:
        if lang == "pl":
            numeric += " r."
        variants.append(("date-numeric", in_place(numeric)))
    if lang == "en":
        found = _find_date(text, lang, iso)
        assert found is not None
        if found.group(0)[0].isdigit():
            variants.append(("date-month-first", in_place(f"{MONTHS['en'][m - 1]} {d}, {y}")))
        else:
            variants.append(("date-day-first", in_place(_words_date("en", y, m, d))))
    for number, template in enumerate(DATE_SENTENCES.get(lang, ()), start=1):
        for style, shown in (("words", _words_date(lang, y, m, d)), ("digits", numeric)):
            if shown is None or (style == "digits" and lang in ("en", "hu")):
                continue
            sentence = template.format(
                date=shown,
                us=f"{MONTHS['en'][m - 1]} {d}, {y}",
                y=y,
                month=MONTHS[lang][m - 1],
                d=d,
            )

            def phrase(s: str, sentence: str = sentence) -> str | None:
                found = _find_date(s, lang, iso)
                if found is None:
                    return s
                a, b = _sentence_span(s, found)
                return s[:a] + sentence + s[b:]

            variants.append((f"date-sentence-{number}-{style}", phrase))
    for name, fn in variants:

        def html_(doc: str, fn: Callable[[str], str | None] = fn) -> str | None:
            return _html_text_segments(doc, lambda s: fn(s) or s)

        out = edit_bodies(mail.raw, fn, html_)
        if out is not None:
            yield name, out


# --------------------------------------------------------------------------------------------
# Formal/informal address


@dataclass(frozen=True)
class AddressTable:
    """Phrase pairs (informal, formal) for one language, and what marks each register.

    A swap replaces whole phrases (a pronoun with its verb, a possessive with its noun where
    the gender changes), longest first. It is applied only to paragraphs outside the footer
    (Meta's footer wording is the same for everyone), and only when afterwards no word of the
    old register is left: a half-swapped mail is not valid text, so it yields nothing.
    ``formal_capitalised``: the formal pronouns are always capitalised (German Sie/Ihr), so
    they are matched case-sensitively and the informal replacement takes its case from the
    position (sentence start or not). ``reverse``: formal -> informal is safe (in Spanish, su
    is also "his/her/their", so only tú -> usted is done).
    """

    pairs: tuple[tuple[str, str], ...]
    informal: str
    formal: str
    formal_capitalised: bool = False
    reverse: bool = True


_DE_POSSESSIVES = tuple((f"dein{end}", f"Ihr{end}") for end in ("", "e", "en", "em", "er", "es"))
ADDRESS_TABLES: dict[str, AddressTable] = {
    "de": AddressTable(
        pairs=(
            (
                "Wenn du diese Anfrage nicht gestellt hast, kannst du",
                "Wenn Sie diese Anfrage nicht gestellt haben, können Sie",
            ),
            ("Wenn du das nicht warst, kannst du", "Wenn Sie das nicht waren, können Sie"),
            (
                "Wenn du bereits widersprochen hast, brauchst du",
                "Wenn Sie bereits widersprochen haben, brauchen Sie",
            ),
            (
                "Wenn du bereits widersprochen hast, musst du",
                "Wenn Sie bereits widersprochen haben, müssen Sie",
            ),
            ("Wenn du Widerspruch einlegst", "Wenn Sie Widerspruch einlegen"),
            (
                "die du seit der Erstellung deines Kontos in Meta-Produkten geteilt hast",
                "die Sie seit der Erstellung Ihres Kontos in Meta-Produkten geteilt haben",
            ),
            ("dass du ein Widerspruchsrecht hast", "dass Sie ein Widerspruchsrecht haben"),
            # The HTML of the 2024 notice links "Widerspruchsrecht": the phrase in two pieces.
            ("dass du ein", "dass Sie ein"),
            ("hast in Bezug darauf", "haben in Bezug darauf"),
            ("du hast daher ein Widerspruchsrecht", "Sie haben daher ein Widerspruchsrecht"),
            ("du kannst", "Sie können"),
            ("kannst du", "können Sie"),
            ("findest du", "finden Sie"),
            ("erfährst du", "erfahren Sie"),
            ("gib diesen", "geben Sie diesen"),
            ("gib den folgenden", "geben Sie den folgenden"),
            ("bitte nenne uns", "bitte nennen Sie uns"),
            ("die du eingegeben hast", "die Sie eingegeben haben"),
            ("und füge einen", "und fügen Sie einen"),
            ("möchten wir dich", "möchten wir Sie"),
            ("bestätigen wir dir", "bestätigen wir Ihnen"),
            ("für dich", "für Sie"),
            ("über dich", "über Sie"),
            ("bei dir", "bei Ihnen"),
            ("um dir", "um Ihnen"),
            *_DE_POSSESSIVES,
        ),
        informal=r"\b(?:[Dd]u|[Dd]ich|[Dd]ir|[Dd]ein\w*)\b",
        formal=r"\b(?:Sie|Ihnen|Ihr|Ihre|Ihren|Ihrem|Ihrer|Ihres)\b",
        formal_capitalised=True,
    ),
    "fr": AddressTable(
        pairs=(
            (
                "Si tu n’es pas à l’origine de cette demande, ignore cet e-mail",
                "Si vous n’êtes pas à l’origine de cette demande, ignorez cet e-mail",
            ),
            (
                "Si tu t’es déjà opposé·e, tu n’as rien à faire",
                "Si vous vous êtes déjà opposé·e, vous n’avez rien à faire",
            ),
            ("tu as donc le droit de t’opposer", "vous avez donc le droit de vous opposer"),
            ("tu as le droit de t’opposer", "vous avez le droit de vous opposer"),
            ("saisis ce code", "saisissez ce code"),
            ("merci de nous fournir", "veuillez nous fournir"),
            ("que tu as saisies", "que vous avez saisies"),
            ("que tu as partagées", "que vous avez partagées"),
            ("pour te proposer", "pour vous proposer"),
            ("souhaitons t’informer", "souhaitons vous informer"),
            ("signifie pour toi", "signifie pour vous"),
            ("consulte notre", "consultez notre"),
            (
                "pose tes questions, crée des images et découvre ce que l’IA générative peut faire "
                "pour toi",
                "posez vos questions, créez des images et découvrez ce que l’IA générative peut "
                "faire pour vous",
            ),
            ("ta demande", "votre demande"),
            ("ton opposition", "votre opposition"),
            ("ta région", "votre région"),
            ("ton compte", "votre compte"),
            ("ton code", "votre code"),
            ("ton Espace Comptes", "votre Espace Comptes"),
            ("tes informations", "vos informations"),
            ("tes interactions", "vos interactions"),
        ),
        informal=r"\b(?:[Tt]u|[Tt]on|[Tt]a|[Tt]es|[Tt]oi)\b|\b[Tt]’",
        formal=r"\b(?:[Vv]ous|[Vv]otre|[Vv]os)\b",
    ),
    "es": AddressTable(
        pairs=(
            ("tú también tienes derecho a oponerte", "usted también tiene derecho a oponerse"),
            ("tienes derecho a oponerte", "tiene derecho a oponerse"),
            ("introduce este código", "introduzca este código"),
            ("proporciónanos", "proporciónenos"),
            ("que escribiste", "que escribió"),
            ("para ofrecerte", "para ofrecerle"),
            ("puedes obtener", "puede obtener"),
            ("puedes conocer", "puede conocer"),
            ("consulta nuestra", "consulte nuestra"),
            (
                "haz preguntas, crea imágenes y descubre lo que la IA generativa puede hacer por "
                "ti",
                "haga preguntas, cree imágenes y descubra lo que la IA generativa puede hacer por "
                "usted",
            ),
            ("tu solicitud", "su solicitud"),
            ("tu objeción", "su objeción"),
            ("tu información", "su información"),
            ("tus interacciones", "sus interacciones"),
            ("tu región", "su región"),
            ("tu Centro de cuentas", "su Centro de cuentas"),
            ("tu cuenta", "su cuenta"),
            ("tu código", "su código"),
        ),
        informal=r"\b(?:[Tt]u|[Tt]us|[Tt]ú|[Tt]e|[Tt]i|[Pp]uedes|[Tt]ienes|oponerte|"
        r"ofrecerte|[Ii]ntroduce|[Cc]onsulta|escribiste|[Pp]roporciónanos|[Hh]az)\b",
        formal=r"\b(?:[Uu]sted|[Ss]u|[Ss]us)\b",
        reverse=False,
    ),
    "nl": AddressTable(
        pairs=(
            ("die je hebt ingevoerd", "die u hebt ingevoerd"),
            ("waarbij je persoonlijke informatie", "waarbij uw persoonlijke informatie"),
            ("om je deze ervaringen te bieden", "om u deze ervaringen te bieden"),
            ("je hebt het recht", "u hebt het recht"),
            ("je hebt bezwaar gemaakt", "u hebt bezwaar gemaakt"),
            ("voor je kan doen", "voor u kan doen"),
            ("je bezwaar", "uw bezwaar"),
            ("je informatie", "uw informatie"),
            ("je openbare informatie", "uw openbare informatie"),
            ("je verzoek", "uw verzoek"),
            ("je interacties", "uw interacties"),
            ("jouw regio", "uw regio"),
            ("je account", "uw account"),
            ("je inlogcode", "uw inlogcode"),
            ("je Accountcentrum", "uw Accountcentrum"),
        ),
        informal=r"\b(?:[Jj]e|[Jj]ij|[Jj]ouw|[Jj]ou)\b",
        formal=r"\b(?:[Uu]|[Uu]w)\b",
    ),
}


def _sentence_start(text: str, at: int) -> bool:
    before = text[:at].rstrip(" \t")
    return not before or before[-1] in ".!?:\n"


def _cased(word: str, upper: bool) -> str:
    return (word[:1].upper() if upper else word[:1].lower()) + word[1:]


def _address_swap(text: str, table: AddressTable, to_formal: bool) -> str:
    pairs = table.pairs if to_formal else tuple((b, a) for a, b in table.pairs)
    for old, new in sorted(pairs, key=lambda p: -len(p[0])):
        exact = table.formal_capitalised and not to_formal
        first = re.escape(old[0]) if exact else f"[{re.escape(old[0].lower() + old[0].upper())}]"
        pattern = rf"(?<!\w){first}{re.escape(old[1:])}(?!\w)"

        def repl(m: re.Match[str], new: str = new, exact: bool = exact) -> str:
            if table.formal_capitalised and to_formal and re.match(r"(?:Sie|Ihr\w*|Ihnen)\b", new):
                return new  # German formal pronouns are capitalised everywhere
            if exact:
                return _cased(new, _sentence_start(m.string, m.start()))
            return _cased(new, m.group(0)[0].isupper())

        text = re.sub(pattern, repl, text)
    return text


def t_address(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Swap informal and formal address (du/Sie, tu/vous, jij/u, tú/usted)."""
    table = ADDRESS_TABLES.get(mail.language)
    if table is None:
        return
    body = "\n\n".join(p for p in paragraphs(primary_text(mail.raw)) if not _is_footer(p))
    for to_formal in (True, False):
        # The register the mail is written in, which must be gone afterwards.
        source = table.informal if to_formal else table.formal
        if not to_formal and not table.reverse:
            continue
        if not re.search(source, body):
            continue

        def swap(s: str, to_formal: bool = to_formal) -> str:
            return _address_swap(s, table, to_formal)

        if re.search(source, swap(body)):
            continue  # the table does not cover this mail: it would not be valid text

        def plain(s: str, swap: Callable[[str], str] = swap) -> str:
            return join_paragraphs([p if _is_footer(p) else swap(p) for p in paragraphs(s)])

        def html_(doc: str, swap: Callable[[str], str] = swap, source: str = source) -> str | None:
            new = _sub_outside_footer_html(doc, swap)
            rendered = " ".join(
                _squash(r.group(0)) for r in html_rows(new) if not _is_footer(_squash(r.group(0)))
            )
            return None if re.search(source, rendered) else new

        out = edit_bodies(mail.raw, plain, html_)
        if out is not None:
            yield f"address-{'formal' if to_formal else 'informal'}", out


# --------------------------------------------------------------------------------------------
# MIME-level transforms


def t_html_only(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Only an HTML body: the HTML alternative alone, or the text rendered as Meta's HTML."""
    msg = _parse(mail.raw)
    leaves = _text_leaves(msg)
    plains = [p for p in leaves if p.get_content_subtype() == "plain"]
    htmls = [p for p in leaves if p.get_content_subtype() == "html"]
    if not plains:
        return
    if msg.get_content_type() == "multipart/alternative" and htmls:
        doc = _get_text(htmls[0])
    elif not msg.is_multipart():
        doc = plain_to_html(_get_text(plains[0]))
    else:
        return
    cte = _cte(htmls[0]) if htmls else _cte(plains[0])
    _become_single(msg, doc, "html", cte)
    yield "html-only", _serialise(msg, mail.raw)


def t_text_only(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Only the text/plain body: the HTML alternative dropped."""
    msg = _parse(mail.raw)
    if msg.get_content_type() != "multipart/alternative":
        return
    leaves = _text_leaves(msg)
    plains = [p for p in leaves if p.get_content_subtype() == "plain"]
    if not plains or len(leaves) < 2:
        return
    _become_single(msg, _get_text(plains[0]), "plain", _cte(plains[0]))
    yield "text-only", _serialise(msg, mail.raw)


def _become_single(msg: Message, text: str, subtype: str, cte: str) -> None:
    """Turn *msg* (keeping every non-Content header) into a single UTF-8 text part."""
    if cte not in ("base64", "quoted-printable", "8bit"):
        cte = "quoted-printable"
    msg.set_payload("")
    msg.preamble = msg.epilogue = None
    del msg["Content-Type"]
    msg["Content-Type"] = 'text/plain; charset="utf-8"'  # _set_text keeps the charset
    _set_text(msg, text, cte, subtype)


def t_transfer_encoding(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """Every text part in base64 and in quoted-printable (whichever it is not already)."""
    leaves = _text_leaves(_parse(mail.raw))
    if not leaves:
        return
    for cte in ("base64", "quoted-printable"):
        if all(_cte(p) == cte for p in leaves):
            continue
        msg = _parse(mail.raw)
        for part in _text_leaves(msg):
            _set_text(part, _get_text(part), cte)
        yield f"cte-{cte}", _serialise(msg, mail.raw)


def t_line_endings(mail: Labelled) -> Iterator[tuple[str, bytes]]:
    """The same bytes with the other line ending (CRLF as on the wire, LF as in mbox files)."""
    if b"\r\n" in mail.raw:
        yield "lf", mail.raw.replace(b"\r\n", b"\n")
    else:
        yield "crlf", mail.raw.replace(b"\n", b"\r\n")


TRANSFORMS: tuple[Callable[[Labelled], Iterator[tuple[str, bytes]]], ...] = (
    t_drop_paragraph,
    t_address,
    t_swiss,
    t_us_uk,
    t_date,
    t_html_only,
    t_text_only,
    t_transfer_encoding,
    t_line_endings,
    t_reorder,
    t_whitespace,
    t_zero_width,
    t_soft_hyphen,
    t_signature,
)


def variants(mail: Labelled) -> Iterator[Case]:
    """Every variant of *mail* under every transform, as test cases."""
    for transform in TRANSFORMS:
        for name, raw in transform(mail):
            if raw == mail.raw:
                continue
            yield Case(
                id=f"{mail.source}/{mail.name}::{name}",
                source=mail.source,
                name=mail.name,
                transform=name,
                language=mail.language,
                raw=raw,
                expected=mail.expected,
            )


def labelled_cases() -> list[Case]:
    """The metamorphic cases of every corpus and language mail."""
    return [case for mail in labelled_mails() for case in variants(mail)]


# --------------------------------------------------------------------------------------------
# Negatives: genuine Meta mail on other topics


# Each language: (greeting name, account, footer sentence with {account}). The footer is the
# one Meta's mails in that language end with (as in tests/lang), so the account is known.
NEG_PEOPLE: dict[str, tuple[str, str]] = {
    "de": ("Lena", "lena.neumann@example.de"),
    "en": ("Chris", "chris.example@example.com"),
    "fr": ("Camille", "camille.test@example.fr"),
    "it": ("Sofia", "sofia.prova@example.it"),
    "es": ("Diego", "diego.prueba@example.es"),
    "nl": ("Daan", "daan.test@example.nl"),
    "pt": ("Tiago", "tiago.teste@example.pt"),
}
NEG_FOOTERS: dict[str, str] = {
    "de": "Diese Nachricht wurde an {account} gesendet. Wenn du keine solchen E-Mails mehr von "
    "Meta erhalten möchtest, folge dem Link unten, um dich abzumelden.",
    "en": "This message was sent to {account}. If you don't want to receive these emails from "
    "Meta in the future, please unsubscribe.",
    "fr": "Ce message a été envoyé à {account}. Si vous ne souhaitez plus recevoir ces e-mails "
    "de Meta, veuillez vous désabonner.",
    "it": "Questo messaggio è stato inviato a {account}. Se non vuoi più ricevere queste e-mail "
    "da Meta, annulla l'iscrizione.",
    "es": "Este mensaje se envió a {account}. Si no quieres recibir estos correos de Meta en el "
    "futuro, cancela la suscripción.",
    "nl": "Dit bericht is verzonden naar {account}. Als je deze e-mails van Meta niet meer wilt "
    "ontvangen, kun je je afmelden.",
    "pt": "Esta mensagem foi enviada para {account}. Se não quiseres receber estes e-mails da "
    "Meta no futuro, cancela a subscrição.",
}
_META_IE = "Meta Platforms Ireland Ltd., Merrion Road, Dublin 4, D04 X2K5, Ireland"
_META_US = "Meta Platforms, Inc., Attention: Community Support, 1 Meta Way, Menlo Park, CA 94025"

# Topic -> (sender local part, Date header, multipart with HTML?, expected kind). The AI-chats
# notice (October 2025, outside the EU/UK) is about the AI use of data but gives no right to
# object: unrecognized. Everything else is ordinary service mail: other.
NEG_TOPICS: dict[str, tuple[str, str, bool, str]] = {
    "appeal-restored": ("security", "Tue, 04 Mar 2025 09:12:33 -0800", False, "other"),
    "ads-choice": ("notification", "Mon, 06 Nov 2023 14:02:11 -0800", True, "other"),
    "subscription-no-ads": ("notification", "Wed, 15 Nov 2023 18:45:00 -0800", False, "other"),
    "meta-ai-marketing": ("notification", "Thu, 17 Apr 2025 07:30:00 -0700", True, "other"),
    "ai-chats-ads-notice": (
        "notification",
        "Tue, 07 Oct 2025 10:12:00 -0700",
        True,
        "unrecognized",
    ),
    "smart-glasses-privacy": ("notification", "Tue, 29 Apr 2025 11:05:00 -0700", False, "other"),
    "password-reset": ("security", "Fri, 09 May 2025 22:14:52 -0700", False, "other"),
    "login-code": ("security", "Sat, 10 May 2025 06:41:09 -0700", False, "other"),
    "new-device": ("security", "Sun, 11 May 2025 20:03:27 -0700", True, "other"),
}

# (subject, paragraphs after the greeting). Written for this test from the meaning of each
# mail in Meta's style; {name} is the greeting name.
NEG_TEXTS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "de": {
        "appeal-restored": (
            "Dein Konto ist wieder freigeschaltet",
            (
                "Hallo {name},",
                "danke, dass du uns um eine erneute Prüfung gebeten hast. Wir haben deinen "
                "Einspruch "
                "geprüft und ihm stattgegeben: Dein Konto verstößt nicht gegen unsere "
                "Gemeinschaftsstandards und wurde wiederhergestellt.",
                "Du kannst dich ab sofort wieder anmelden. Entschuldige bitte die "
                "Unannehmlichkeiten.",
                "Das Facebook-Team",
            ),
        ),
        "ads-choice": (
            "Entscheide, ob du auf Facebook Werbung sehen möchtest",
            (
                "Hallo {name},",
                "aufgrund neuer Vorgaben in deiner Region kannst du jetzt entscheiden, ob du "
                "Facebook "
                "kostenlos mit Werbung nutzen oder ein Abo abschließen möchtest, um Facebook ohne "
                "Werbung zu nutzen.",
                "Wenn du Facebook weiter kostenlos nutzt, verwenden wir deine Informationen auch "
                "künftig, um dir relevante Werbung zu zeigen. Du kannst deine Auswahl jederzeit "
                "in der "
                "Kontenübersicht ändern.",
                "Auswahl treffen: https://www.facebook.com/ads/choice",
                "Das Facebook-Team",
            ),
        ),
        "subscription-no-ads": (
            "Dein Abo für werbefreies Instagram ist aktiv",
            (
                "Hallo {name},",
                "danke für dein Abo. Solange es aktiv ist, siehst du auf Instagram keine Werbung "
                "und "
                "deine Informationen werden nicht für Werbung verwendet.",
                "Das Abo kostet 5,99 € pro Monat und verlängert sich automatisch. Du kannst es "
                "jederzeit in der Kontenübersicht kündigen.",
                "Das Instagram-Team",
            ),
        ),
        "meta-ai-marketing": (
            "Neu: Meta AI in deinen Chats",
            (
                "Hallo {name},",
                "plane eine Reise, finde ein Rezept oder erstelle ein Bild aus ein paar Worten: "
                "Meta AI "
                "ist jetzt in deinen Chats im Messenger verfügbar.",
                "Schreib einfach @Meta AI in einen Chat, um loszulegen.",
            ),
        ),
        "ai-chats-ads-notice": (
            "Wir aktualisieren unsere Datenschutzrichtlinie",
            (
                "Hallo {name},",
                "wir möchten dich über eine Änderung informieren, wie wir deine Informationen "
                "verwenden. Ab dem 16. Dezember 2025 nutzen wir deine Interaktionen mit "
                "KI-Funktionen "
                "von Meta, um die Inhalte und die Werbung, die du siehst, zu personalisieren.",
                "Wenn du zum Beispiel mit Meta AI übers Wandern chattest, siehst du vielleicht "
                "Beiträge von Wandergruppen oder Werbung für Wanderschuhe.",
                "Mehr dazu erfährst du in unserer aktualisierten Datenschutzrichtlinie.",
                "Freundliche Grüsse",
                "Das Meta Privacy-Team",
            ),
        ),
        "smart-glasses-privacy": (
            "Neue Datenschutzhinweise für deine Meta-Brille",
            (
                "Hallo {name},",
                "wir haben die Datenschutzhinweise für deine Ray-Ban Meta-Brille aktualisiert. "
                "Meta AI "
                "mit Kamera bleibt auf deiner Brille aktiviert, bis du „Hey Meta“ in den "
                "Einstellungen "
                "ausschaltest.",
                "Sprachaufnahmen werden standardmäßig in der Cloud gespeichert. Du kannst sie "
                "jederzeit in der Meta AI-App unter Einstellungen > Brille löschen.",
            ),
        ),
        "password-reset": (
            "Setze dein Passwort zurück",
            (
                "Hallo {name},",
                "wir haben eine Anfrage erhalten, das Passwort für dein Facebook-Konto "
                "zurückzusetzen.",
                "Gib diesen Code ein, um ein neues Passwort festzulegen:",
                "839201",
                "Wenn du kein neues Passwort angefordert hast, kannst du diese Nachricht "
                "ignorieren.",
            ),
        ),
        "login-code": (
            "274610 ist dein Instagram-Code",
            (
                "Hallo {name},",
                "jemand versucht, sich auf einem neuen Gerät bei deinem Instagram-Konto "
                "anzumelden. "
                "Bestätige mit diesem Code, dass du es bist:",
                "274610",
                "Gib diesen Code an niemanden weiter. Wenn du das nicht warst, ändere dein "
                "Passwort.",
            ),
        ),
        "new-device": (
            "Neue Anmeldung bei Facebook mit Chrome unter Windows",
            (
                "Hallo {name},",
                "dein Konto wurde gerade auf einem neuen Gerät verwendet: Chrome unter Windows, "
                "in der "
                "Nähe von Köln, Deutschland.",
                "Wenn du das warst, musst du nichts tun. Falls nicht, sichere dein Konto: "
                "https://www.facebook.com/hacked",
                "Das Facebook-Team",
            ),
        ),
    },
    "en": {
        "appeal-restored": (
            "Your account is back",
            (
                "Hi {name},",
                "Thanks for asking us to take another look. We reviewed your appeal and found that "
                "your account doesn't go against our Community Standards, so we've restored it.",
                "You can log in again now. We're sorry for the inconvenience.",
                "The Facebook team",
            ),
        ),
        "ads-choice": (
            "Choose whether to see ads on Instagram",
            (
                "Hi {name},",
                "Because of changing regulations in your region, you can now choose how you use "
                "Instagram: keep using it for free with ads, or subscribe to use it without ads.",
                "If you keep using Instagram for free, we'll continue to use your information to "
                "show "
                "you ads that are relevant to you. You can change your choice at any time in "
                "Accounts "
                "Center.",
                "Make your choice: https://www.instagram.com/accounts/ads_choice/",
                "The Instagram team",
            ),
        ),
        "subscription-no-ads": (
            "Your subscription for no ads has started",
            (
                "Hi {name},",
                "Thanks for subscribing. You won't see ads on Facebook while your subscription is "
                "active, and your information won't be used for ads.",
                "You'll be charged €5.99 every month until you cancel. You can manage or cancel "
                "your "
                "subscription in Accounts Center.",
                "The Facebook team",
            ),
        ),
        "meta-ai-marketing": (
            "Meet Meta AI, now in your group chats",
            (
                "Hi {name},",
                "Plan a trip, settle a debate or turn a few words into an image. Meta AI is now "
                "available in your chats on Messenger.",
                "Just type @Meta AI in any chat to get started.",
            ),
        ),
        "ai-chats-ads-notice": (
            "We're updating our Privacy Policy",
            (
                "Hi {name},",
                "We're letting you know about a change to how we use your information. Starting "
                "December 16, 2025, we'll use your conversations with AI features at Meta to "
                "personalize the content and ads you see.",
                "For example, if you chat with Meta AI about hiking, you may see posts from hiking "
                "groups or ads for hiking boots.",
                "You can learn more in our updated Privacy Policy.",
                "The Meta Privacy Team",
            ),
        ),
        "smart-glasses-privacy": (
            "Updates to the privacy notice for your AI glasses",
            (
                "Hi {name},",
                "We've updated the privacy notice for your Ray-Ban Meta glasses. Meta AI with "
                "camera "
                'stays on for your glasses unless you turn off "Hey Meta" in settings.',
                "Voice recordings are stored in the cloud by default. You can delete them at any "
                "time "
                "in the Meta AI app under Settings > Glasses.",
            ),
        ),
        "password-reset": (
            "Reset your Facebook password",
            (
                "Hi {name},",
                "We got a request to reset the password for your Facebook account.",
                "Enter this code to choose a new password:",
                "615830",
                "If you didn't ask for a new password, you can ignore this message.",
            ),
        ),
        "login-code": (
            "Your Instagram login code",
            (
                "Hi {name},",
                "Someone is trying to log in to your Instagram account from a new device. Use this "
                "code to confirm it's you:",
                "904417",
                "Don't share this code with anyone. If this wasn't you, change your password.",
            ),
        ),
        "new-device": (
            "New login to Facebook from Firefox on Mac",
            (
                "Hi {name},",
                "Your account was just used on a new device: Firefox on Mac, near Leeds, United "
                "Kingdom.",
                "If this was you, you don't need to do anything. If not, secure your account: "
                "https://www.facebook.com/hacked",
                "The Facebook team",
            ),
        ),
    },
    "fr": {
        "appeal-restored": (
            "Votre compte est à nouveau accessible",
            (
                "Bonjour {name},",
                "Merci de nous avoir demandé de réexaminer notre décision. Après examen de votre "
                "appel, "
                "nous avons constaté que votre compte respecte nos Standards de la communauté et "
                "nous "
                "l’avons rétabli.",
                "Vous pouvez de nouveau vous connecter. Veuillez nous excuser pour la gêne "
                "occasionnée.",
                "L’équipe Facebook",
            ),
        ),
        "ads-choice": (
            "Choisissez si vous souhaitez voir des publicités sur Facebook",
            (
                "Bonjour {name},",
                "En raison de l’évolution de la réglementation dans votre région, vous pouvez "
                "désormais choisir comment utiliser Facebook : gratuitement avec des publicités, "
                "ou "
                "avec un abonnement sans publicité.",
                "Si vous continuez à utiliser Facebook gratuitement, nous continuerons d’utiliser "
                "vos "
                "informations pour vous montrer des publicités pertinentes. Vous pouvez modifier "
                "votre "
                "choix à tout moment dans l’Espace Comptes.",
                "Faire mon choix : https://www.facebook.com/ads/choice",
                "L’équipe Facebook",
            ),
        ),
        "subscription-no-ads": (
            "Votre abonnement sans publicité est actif",
            (
                "Bonjour {name},",
                "Merci pour votre abonnement. Tant qu’il est actif, vous ne verrez plus de "
                "publicités "
                "sur Instagram et vos informations ne seront pas utilisées à des fins "
                "publicitaires.",
                "Votre abonnement coûte 5,99 € par mois et se renouvelle automatiquement. Vous "
                "pouvez "
                "le résilier à tout moment dans l’Espace Comptes.",
                "L’équipe Instagram",
            ),
        ),
        "meta-ai-marketing": (
            "Découvrez Meta AI dans vos discussions",
            (
                "Bonjour {name},",
                "Organisez un voyage, trouvez une idée de recette ou créez une image en quelques "
                "mots : "
                "Meta AI est désormais disponible dans vos discussions Messenger.",
                "Il suffit d’écrire @Meta AI dans une discussion pour commencer.",
            ),
        ),
        "ai-chats-ads-notice": (
            "Mise à jour de notre Politique de confidentialité",
            (
                "Bonjour {name},",
                "Nous vous informons d’un changement dans la manière dont nous utilisons vos "
                "informations. À partir du 16 décembre 2025, nous utiliserons vos interactions "
                "avec les "
                "fonctionnalités d’IA de Meta pour personnaliser les contenus et les publicités "
                "que "
                "vous voyez.",
                "Par exemple, si vous discutez de randonnée avec Meta AI, vous pourriez voir des "
                "publications de groupes de randonnée ou des publicités pour des chaussures de "
                "marche.",
                "Pour en savoir plus, consultez notre Politique de confidentialité mise à jour.",
                "L’équipe Confidentialité de Meta",
            ),
        ),
        "smart-glasses-privacy": (
            "Mise à jour de l’avis de confidentialité de vos lunettes Meta",
            (
                "Bonjour {name},",
                "Nous avons mis à jour l’avis de confidentialité de vos lunettes Ray-Ban Meta. "
                "Meta AI "
                "avec la caméra reste activé sur vos lunettes, sauf si vous désactivez « Hey Meta "
                "» "
                "dans les paramètres.",
                "Les enregistrements vocaux sont stockés dans le cloud par défaut. Vous pouvez les "
                "supprimer à tout moment dans l’application Meta AI, sous Paramètres > Lunettes.",
            ),
        ),
        "password-reset": (
            "Réinitialisez votre mot de passe",
            (
                "Bonjour {name},",
                "Nous avons reçu une demande de réinitialisation du mot de passe de votre compte "
                "Facebook.",
                "Saisissez ce code pour choisir un nouveau mot de passe :",
                "472019",
                "Si vous n’avez pas demandé de nouveau mot de passe, vous pouvez ignorer ce "
                "message.",
            ),
        ),
        "login-code": (
            "Votre code de connexion Instagram",
            (
                "Bonjour {name},",
                "Quelqu’un essaie de se connecter à votre compte Instagram depuis un nouvel "
                "appareil. "
                "Utilisez ce code pour confirmer qu’il s’agit bien de vous :",
                "308816",
                "Ne communiquez ce code à personne. Si ce n’était pas vous, changez votre mot de "
                "passe.",
            ),
        ),
        "new-device": (
            "Nouvelle connexion à Facebook depuis Safari sur iPhone",
            (
                "Bonjour {name},",
                "Votre compte vient d’être utilisé sur un nouvel appareil : Safari sur iPhone, "
                "près de "
                "Lyon, France.",
                "Si c’était vous, vous n’avez rien à faire. Sinon, sécurisez votre compte : "
                "https://www.facebook.com/hacked",
                "L’équipe Facebook",
            ),
        ),
    },
    "it": {
        "appeal-restored": (
            "Il tuo account è di nuovo attivo",
            (
                "Ciao {name},",
                "grazie per averci chiesto di rivedere la nostra decisione. Abbiamo esaminato il "
                "tuo "
                "ricorso e abbiamo stabilito che il tuo account rispetta i nostri Standard della "
                "community, quindi lo abbiamo ripristinato.",
                "Ora puoi accedere di nuovo. Ci scusiamo per l’inconveniente.",
                "Il team di Facebook",
            ),
        ),
        "ads-choice": (
            "Scegli se vedere le inserzioni su Facebook",
            (
                "Ciao {name},",
                "a causa dell’evoluzione delle normative nella tua regione, ora puoi scegliere "
                "come "
                "usare Facebook: gratuitamente con le inserzioni oppure con un abbonamento senza "
                "inserzioni.",
                "Se continui a usare Facebook gratuitamente, continueremo a usare le tue "
                "informazioni "
                "per mostrarti inserzioni pertinenti. Puoi modificare la tua scelta in qualsiasi "
                "momento nel Centro gestione account.",
                "Fai la tua scelta: https://www.facebook.com/ads/choice",
                "Il team di Facebook",
            ),
        ),
        "subscription-no-ads": (
            "Il tuo abbonamento senza inserzioni è attivo",
            (
                "Ciao {name},",
                "grazie per esserti abbonata. Finché l’abbonamento è attivo non vedrai inserzioni "
                "su "
                "Instagram e le tue informazioni non verranno usate per le inserzioni.",
                "L’abbonamento costa 5,99 € al mese e si rinnova automaticamente. Puoi annullarlo "
                "in "
                "qualsiasi momento nel Centro gestione account.",
                "Il team di Instagram",
            ),
        ),
        "meta-ai-marketing": (
            "Prova Meta AI nelle tue chat",
            (
                "Ciao {name},",
                "organizza un viaggio, trova una ricetta o crea un’immagine con poche parole: "
                "Meta AI "
                "è ora disponibile nelle tue chat di Messenger.",
                "Scrivi @Meta AI in una chat per iniziare.",
            ),
        ),
        "ai-chats-ads-notice": (
            "Aggiornamento della nostra Informativa sulla privacy",
            (
                "Ciao {name},",
                "ti informiamo di una modifica al modo in cui usiamo le tue informazioni. Dal 16 "
                "dicembre 2025 useremo le tue interazioni con le funzioni di IA di Meta per "
                "personalizzare i contenuti e le inserzioni che vedi.",
                "Ad esempio, se chatti con Meta AI di escursionismo, potresti vedere post di "
                "gruppi di "
                "escursionisti o inserzioni di scarponi da trekking.",
                "Trovi maggiori informazioni nella nostra Informativa sulla privacy aggiornata.",
                "Il team Privacy di Meta",
            ),
        ),
        "smart-glasses-privacy": (
            "Aggiornamento dell’informativa sulla privacy dei tuoi occhiali Meta",
            (
                "Ciao {name},",
                "abbiamo aggiornato l’informativa sulla privacy dei tuoi occhiali Ray-Ban Meta. "
                "Meta "
                "AI con fotocamera resta attivo sui tuoi occhiali, a meno che tu non disattivi "
                "«Hey "
                "Meta» nelle impostazioni.",
                "Le registrazioni vocali vengono salvate nel cloud per impostazione predefinita. "
                "Puoi "
                "eliminarle in qualsiasi momento nell’app Meta AI, in Impostazioni > Occhiali.",
            ),
        ),
        "password-reset": (
            "Reimposta la tua password",
            (
                "Ciao {name},",
                "abbiamo ricevuto una richiesta di reimpostazione della password del tuo account "
                "Facebook.",
                "Inserisci questo codice per scegliere una nuova password:",
                "550384",
                "Se non hai chiesto una nuova password, puoi ignorare questo messaggio.",
            ),
        ),
        "login-code": (
            "Il tuo codice di accesso Instagram",
            (
                "Ciao {name},",
                "qualcuno sta cercando di accedere al tuo account Instagram da un nuovo "
                "dispositivo. "
                "Usa questo codice per confermare che sei tu:",
                "119023",
                "Non condividere questo codice con nessuno. Se non sei stata tu, cambia la "
                "password.",
            ),
        ),
        "new-device": (
            "Nuovo accesso a Facebook da Chrome su Android",
            (
                "Ciao {name},",
                "il tuo account è stato appena usato su un nuovo dispositivo: Chrome su Android, "
                "vicino a Torino, Italia.",
                "Se sei stata tu, non devi fare nulla. In caso contrario, proteggi il tuo account: "
                "https://www.facebook.com/hacked",
                "Il team di Facebook",
            ),
        ),
    },
    "es": {
        "appeal-restored": (
            "Tu cuenta vuelve a estar disponible",
            (
                "Hola, {name}:",
                "Gracias por pedirnos que revisáramos nuestra decisión. Hemos revisado tu "
                "apelación y "
                "hemos comprobado que tu cuenta cumple nuestras Normas comunitarias, así que la "
                "hemos "
                "restablecido.",
                "Ya puedes volver a iniciar sesión. Sentimos las molestias.",
                "El equipo de Facebook",
            ),
        ),
        "ads-choice": (
            "Elige si quieres ver anuncios en Instagram",
            (
                "Hola, {name}:",
                "Debido a los cambios normativos en tu región, ahora puedes elegir cómo usar "
                "Instagram: gratis con anuncios o con una suscripción sin anuncios.",
                "Si sigues usando Instagram gratis, seguiremos usando tu información para "
                "mostrarte "
                "anuncios relevantes. Puedes cambiar tu elección en cualquier momento en el "
                "Centro de "
                "cuentas.",
                "Elegir ahora: https://www.instagram.com/accounts/ads_choice/",
                "El equipo de Instagram",
            ),
        ),
        "subscription-no-ads": (
            "Tu suscripción sin anuncios está activa",
            (
                "Hola, {name}:",
                "Gracias por suscribirte. Mientras tu suscripción esté activa, no verás anuncios "
                "en "
                "Facebook y tu información no se usará para anuncios.",
                "La suscripción cuesta 5,99 € al mes y se renueva automáticamente. Puedes "
                "cancelarla "
                "cuando quieras en el Centro de cuentas.",
                "El equipo de Facebook",
            ),
        ),
        "meta-ai-marketing": (
            "Descubre Meta AI en tus chats",
            (
                "Hola, {name}:",
                "Planea un viaje, encuentra una receta o crea una imagen con unas pocas palabras: "
                "Meta AI ya está disponible en tus chats de Messenger.",
                "Escribe @Meta AI en cualquier chat para empezar.",
            ),
        ),
        "ai-chats-ads-notice": (
            "Actualizamos nuestra Política de privacidad",
            (
                "Hola, {name}:",
                "Queremos informarte de un cambio en la forma en que usamos tu información. A "
                "partir "
                "del 16 de diciembre de 2025, usaremos tus interacciones con las funciones de IA "
                "de "
                "Meta para personalizar el contenido y los anuncios que ves.",
                "Por ejemplo, si hablas con Meta AI sobre senderismo, es posible que veas "
                "publicaciones de grupos de senderismo o anuncios de botas de montaña.",
                "Puedes obtener más información en nuestra Política de privacidad actualizada.",
                "El equipo de Privacidad de Meta",
            ),
        ),
        "smart-glasses-privacy": (
            "Actualización del aviso de privacidad de tus gafas Meta",
            (
                "Hola, {name}:",
                "Hemos actualizado el aviso de privacidad de tus gafas Ray-Ban Meta. Meta AI con "
                "cámara sigue activado en tus gafas, a menos que desactives «Hey Meta» en la "
                "configuración.",
                "Las grabaciones de voz se guardan en la nube de forma predeterminada. Puedes "
                "eliminarlas en cualquier momento en la app Meta AI, en Configuración > Gafas.",
            ),
        ),
        "password-reset": (
            "Restablece tu contraseña",
            (
                "Hola, {name}:",
                "Hemos recibido una solicitud para restablecer la contraseña de tu cuenta de "
                "Facebook.",
                "Introduce este código para elegir una nueva contraseña:",
                "730112",
                "Si no has pedido una nueva contraseña, puedes ignorar este mensaje.",
            ),
        ),
        "login-code": (
            "Tu código de inicio de sesión de Instagram",
            (
                "Hola, {name}:",
                "Alguien está intentando iniciar sesión en tu cuenta de Instagram desde un "
                "dispositivo "
                "nuevo. Usa este código para confirmar que eres tú:",
                "846205",
                "No compartas este código con nadie. Si no has sido tú, cambia tu contraseña.",
            ),
        ),
        "new-device": (
            "Nuevo inicio de sesión en Facebook desde Edge en Windows",
            (
                "Hola, {name}:",
                "Tu cuenta se acaba de usar en un dispositivo nuevo: Edge en Windows, cerca de "
                "Valencia, España.",
                "Si has sido tú, no tienes que hacer nada. Si no, protege tu cuenta: "
                "https://www.facebook.com/hacked",
                "El equipo de Facebook",
            ),
        ),
    },
    "nl": {
        "appeal-restored": (
            "Je account is weer beschikbaar",
            (
                "Hallo {name},",
                "Bedankt dat je ons hebt gevraagd ons besluit opnieuw te bekijken. We hebben je "
                "beroep "
                "beoordeeld en vastgesteld dat je account voldoet aan onze Communitynormen. Daarom "
                "hebben we het hersteld.",
                "Je kunt nu weer inloggen. Onze excuses voor het ongemak.",
                "Het Facebook-team",
            ),
        ),
        "ads-choice": (
            "Kies of je advertenties wilt zien op Facebook",
            (
                "Hallo {name},",
                "Door veranderende regelgeving in je regio kun je nu kiezen hoe je Facebook "
                "gebruikt: "
                "gratis met advertenties, of met een abonnement zonder advertenties.",
                "Als je Facebook gratis blijft gebruiken, blijven we je informatie gebruiken om je "
                "relevante advertenties te tonen. Je kunt je keuze altijd wijzigen in het "
                "Accountcentrum.",
                "Maak je keuze: https://www.facebook.com/ads/choice",
                "Het Facebook-team",
            ),
        ),
        "subscription-no-ads": (
            "Je abonnement zonder advertenties is actief",
            (
                "Hallo {name},",
                "Bedankt voor je abonnement. Zolang het actief is, zie je geen advertenties op "
                "Instagram en wordt je informatie niet gebruikt voor advertenties.",
                "Je abonnement kost € 5,99 per maand en wordt automatisch verlengd. Je kunt het "
                "altijd "
                "opzeggen in het Accountcentrum.",
                "Het Instagram-team",
            ),
        ),
        "meta-ai-marketing": (
            "Probeer Meta AI in je chats",
            (
                "Hallo {name},",
                "Plan een reis, zoek een recept of maak een afbeelding met een paar woorden: Meta "
                "AI "
                "is nu beschikbaar in je chats op Messenger.",
                "Typ @Meta AI in een chat om te beginnen.",
            ),
        ),
        "ai-chats-ads-notice": (
            "We werken ons Privacybeleid bij",
            (
                "Hallo {name},",
                "We laten je weten dat we de manier wijzigen waarop we je informatie gebruiken. "
                "Vanaf "
                "16 december 2025 gebruiken we je interacties met AI-functies van Meta om de "
                "content "
                "en advertenties die je ziet te personaliseren.",
                "Als je bijvoorbeeld met Meta AI over wandelen chat, zie je mogelijk berichten van "
                "wandelgroepen of advertenties voor wandelschoenen.",
                "Meer informatie vind je in ons bijgewerkte Privacybeleid.",
                "Het Meta Privacy-team",
            ),
        ),
        "smart-glasses-privacy": (
            "Update van de privacyverklaring voor je Meta-bril",
            (
                "Hallo {name},",
                "We hebben de privacyverklaring voor je Ray-Ban Meta-bril bijgewerkt. Meta AI met "
                "camera blijft ingeschakeld op je bril, tenzij je 'Hey Meta' uitschakelt in de "
                "instellingen.",
                "Spraakopnamen worden standaard in de cloud opgeslagen. Je kunt ze altijd "
                "verwijderen "
                "in de Meta AI-app via Instellingen > Bril.",
            ),
        ),
        "password-reset": (
            "Stel je wachtwoord opnieuw in",
            (
                "Hallo {name},",
                "We hebben een verzoek ontvangen om het wachtwoord van je Facebook-account "
                "opnieuw in "
                "te stellen.",
                "Voer deze code in om een nieuw wachtwoord te kiezen:",
                "264093",
                "Heb je geen nieuw wachtwoord aangevraagd? Dan kun je dit bericht negeren.",
            ),
        ),
        "login-code": (
            "Je Instagram-inlogcode",
            (
                "Hallo {name},",
                "Iemand probeert vanaf een nieuw apparaat in te loggen op je Instagram-account. "
                "Gebruik deze code om te bevestigen dat jij het bent:",
                "581736",
                "Deel deze code met niemand. Was jij dit niet? Wijzig dan je wachtwoord.",
            ),
        ),
        "new-device": (
            "Nieuwe aanmelding bij Facebook vanaf Firefox op Linux",
            (
                "Hallo {name},",
                "Je account is zojuist gebruikt op een nieuw apparaat: Firefox op Linux, in de "
                "buurt "
                "van Utrecht, Nederland.",
                "Was jij dit? Dan hoef je niets te doen. Zo niet, beveilig dan je account: "
                "https://www.facebook.com/hacked",
                "Het Facebook-team",
            ),
        ),
    },
    "pt": {
        "appeal-restored": (
            "A tua conta voltou a estar disponível",
            (
                "Olá, {name},",
                "Obrigado por nos pedires para rever a nossa decisão. Analisámos o teu recurso e "
                "concluímos que a tua conta cumpre os nossos Padrões da Comunidade, por isso "
                "restaurámo-la.",
                "Já podes voltar a iniciar sessão. Pedimos desculpa pelo incómodo.",
                "A equipa do Facebook",
            ),
        ),
        "ads-choice": (
            "Escolhe se queres ver anúncios no Facebook",
            (
                "Olá, {name},",
                "Devido às alterações regulamentares na tua região, podes agora escolher como "
                "utilizas o Facebook: gratuitamente com anúncios ou com uma subscrição sem "
                "anúncios.",
                "Se continuares a utilizar o Facebook gratuitamente, continuaremos a utilizar as "
                "tuas "
                "informações para te mostrar anúncios relevantes. Podes alterar a tua escolha a "
                "qualquer momento no Centro de Contas.",
                "Fazer a minha escolha: https://www.facebook.com/ads/choice",
                "A equipa do Facebook",
            ),
        ),
        "subscription-no-ads": (
            "A tua subscrição sem anúncios está ativa",
            (
                "Olá, {name},",
                "Obrigado pela tua subscrição. Enquanto estiver ativa, não verás anúncios no "
                "Instagram "
                "e as tuas informações não serão utilizadas para anúncios.",
                "A subscrição custa 5,99 € por mês e é renovada automaticamente. Podes cancelá-la "
                "a "
                "qualquer momento no Centro de Contas.",
                "A equipa do Instagram",
            ),
        ),
        "meta-ai-marketing": (
            "Experimenta a Meta AI nas tuas conversas",
            (
                "Olá, {name},",
                "Planeia uma viagem, encontra uma receita ou cria uma imagem com poucas palavras: "
                "a "
                "Meta AI já está disponível nas tuas conversas do Messenger.",
                "Escreve @Meta AI numa conversa para começar.",
            ),
        ),
        "ai-chats-ads-notice": (
            "Estamos atualizando nossa Política de Privacidade",
            (
                "Olá, {name},",
                "Queremos informar você sobre uma mudança na forma como usamos suas informações. A "
                "partir de 16 de dezembro de 2025, usaremos suas interações com os recursos de IA "
                "da "
                "Meta para personalizar o conteúdo e os anúncios que você vê.",
                "Por exemplo, se você conversar com a Meta AI sobre trilhas, poderá ver "
                "publicações "
                "de grupos de trilha ou anúncios de botas de caminhada.",
                "Saiba mais na nossa Política de Privacidade atualizada.",
                "Equipe de Privacidade da Meta",
            ),
        ),
        "smart-glasses-privacy": (
            "Atualização do aviso de privacidade dos teus óculos Meta",
            (
                "Olá, {name},",
                "Atualizámos o aviso de privacidade dos teus óculos Ray-Ban Meta. A Meta AI com "
                'câmara permanece ativada nos teus óculos, a menos que desatives "Hey Meta" nas '
                "definições.",
                "As gravações de voz são guardadas na nuvem por predefinição. Podes eliminá-las a "
                "qualquer momento na app Meta AI, em Definições > Óculos.",
            ),
        ),
        "password-reset": (
            "Repõe a tua palavra-passe",
            (
                "Olá, {name},",
                "Recebemos um pedido para repor a palavra-passe da tua conta do Facebook.",
                "Introduz este código para escolher uma nova palavra-passe:",
                "918273",
                "Se não pediste uma nova palavra-passe, podes ignorar esta mensagem.",
            ),
        ),
        "login-code": (
            "O teu código de início de sessão do Instagram",
            (
                "Olá, {name},",
                "Alguém está a tentar iniciar sessão na tua conta do Instagram a partir de um novo "
                "dispositivo. Usa este código para confirmar que és tu:",
                "650428",
                "Não partilhes este código com ninguém. Se não foste tu, altera a tua "
                "palavra-passe.",
            ),
        ),
        "new-device": (
            "Novo início de sessão no Facebook a partir do Safari num Mac",
            (
                "Olá, {name},",
                "A tua conta acabou de ser utilizada num novo dispositivo: Safari num Mac, perto "
                "do "
                "Porto, Portugal.",
                "Se foste tu, não precisas de fazer nada. Caso contrário, protege a tua conta: "
                "https://www.facebook.com/hacked",
                "A equipa do Facebook",
            ),
        ),
    },
}

# The header shape of the corpus mails (tests/corpus/de-2024-policy-facebook.eml), with a
# trusted Authentication-Results from mx.home.example for the sender's own domain.
_NEG_HEADERS = """\
Return-Path: <{local}@{domain}>
Delivered-To: {account}
Received: from mx-out.facebook.com (66-220-155-158.outmail.facebook.com
 [66.220.155.158]) by mx.home.example with ESMTPS id 4Vk; {date}
Authentication-Results: mx.home.example; dkim=pass header.d={domain}
 header.s=s1024-2013-q3 header.b=Xk3pQ9aB; spf=pass
 smtp.mailfrom={domain}; dmarc=pass (p=REJECT)
 header.from={domain}
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d={domain};
 s=s1024-2013-q3; t=1716459247;
 h=Date:To:Subject:From:MIME-Version:Content-Type;
 bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=Xk3pQ9aBq0eLr2mS7tYh
Date: {date}
To: {account}
From: {display} <{local}@{domain}>
Subject: {subject}
Message-ID: <{mid}@{domain}>
X-Mailer: ZuckMail [version 1.00]
"""


def _neg_platform(subject: str, body: str) -> str:
    text = subject + " " + body
    return "instagram" if "Instagram" in text and "Facebook" not in text else "facebook"


def negative_mails() -> list[Labelled]:
    """Genuine-sender Meta mails on other topics, 9 topics x 7 languages, with labels."""
    out: list[Labelled] = []
    for lang, topics in NEG_TEXTS.items():
        name, account = NEG_PEOPLE[lang]
        for topic, (subject, paras) in topics.items():
            local, date, with_html, kind = NEG_TOPICS[topic]
            body_paras = [p.format(name=name) for p in paras]
            platform = _neg_platform(subject, "\n".join(body_paras))
            domain = "mail.instagram.com" if platform == "instagram" else "facebookmail.com"
            if platform == "instagram" and local == "notification":
                local = "no-reply"
            address = _META_US if topic == "ai-chats-ads-notice" else _META_IE
            footer = [NEG_FOOTERS[lang].format(account=account), address]
            text = join_paragraphs(body_paras + footer)
            body = EmailMessage(policy=policy.default)
            body.set_content(text, charset="utf-8", cte="quoted-printable")
            if with_html:
                body.add_alternative(
                    plain_to_html(text), subtype="html", charset="utf-8", cte="quoted-printable"
                )
                # A fixed boundary: the email package would pick a random one.
                body.set_boundary(f"===============m{hash_text(lang + topic) % 10**19:019d}==")
            encoded_subject = (
                Header(subject, "utf-8").encode() if not subject.isascii() else subject
            )
            head = _NEG_HEADERS.format(
                local=local,
                domain=domain,
                account=account,
                date=date,
                display=platform.capitalize(),
                subject=encoded_subject,
                mid=f"{lang}-{topic}-{abs(hash_text(lang + topic)) % 10**12:012d}",
            )
            raw = head.replace("\n", "\r\n").encode("ascii") + body.as_bytes(
                policy=policy.default.clone(linesep="\r\n")
            )
            expected = {
                "kind": kind,
                "platform": platform,
                "account": account,
                "language": lang,
                "authenticity": "pass",
                "suspicious": False,
                "fields": {},
            }
            out.append(Labelled(f"negative/{lang}", f"{lang}-{topic}", lang, raw, expected))
    return out


def hash_text(text: str) -> int:
    """A stable number for *text* (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


# The transforms also applied to the negatives: encodings, HTML, whitespace and order must
# not turn ordinary Meta mail into a privacy mail either.
NEGATIVE_TRANSFORMS: tuple[Callable[[Labelled], Iterator[tuple[str, bytes]]], ...] = (
    t_html_only,
    t_text_only,
    t_transfer_encoding,
    t_line_endings,
    t_reorder,
    t_whitespace,
    t_soft_hyphen,
)


def negative_cases() -> list[Case]:
    """Each negative mail as it is, and its variants under NEGATIVE_TRANSFORMS."""
    cases: list[Case] = []
    for mail in negative_mails():
        cases.append(
            Case(
                f"{mail.source}/{mail.name}::original",
                mail.source,
                mail.name,
                "original",
                mail.language,
                mail.raw,
                mail.expected,
            )
        )
        for transform in NEGATIVE_TRANSFORMS:
            for name, raw in transform(mail):
                cases.append(
                    Case(
                        f"{mail.source}/{mail.name}::{name}",
                        mail.source,
                        mail.name,
                        name,
                        mail.language,
                        raw,
                        mail.expected,
                    )
                )
    return cases


def all_cases() -> list[Case]:
    """Labelled variants and negatives together."""
    return labelled_cases() + negative_cases()


def summary(cases: list[Case] | None = None) -> str:
    """Tables of generated cases per language (rows) and expected kind (columns): the variants
    of the labelled mails, then the Meta mails on other topics; then the count per transform."""
    cases = all_cases() if cases is None else cases
    labelled = [c for c in cases if not c.source.startswith("negative/")]
    negatives = [c for c in cases if c.source.startswith("negative/")]
    parts = [
        f"labelled mails, meaning-preserving variants: {len(labelled)}",
        _table(labelled),
        "",
        f"Meta mail on other topics (must move no status): {len(negatives)}",
        _table(negatives),
        "",
        f"all cases: {len(cases)}",
    ]
    by_transform = Counter(re.sub(r"-(\d+|\d+-\w+)$", "", c.transform) for c in cases)
    parts.append("per transform: " + ", ".join(f"{k} {v}" for k, v in sorted(by_transform.items())))
    return "\n".join(parts)


def _table(cases: list[Case]) -> str:
    if not cases:
        return "(none)"
    counts = Counter((c.language, c.kind) for c in cases)
    kinds = sorted({k for _, k in counts})
    langs = sorted({lang for lang, _ in counts})
    width = max(len(k) for k in kinds)
    lines = ["lang  " + " ".join(k.rjust(width) for k in kinds) + "   total"]
    for lang in langs:
        row = [counts[(lang, k)] for k in kinds]
        lines.append(
            f"{lang:<5} " + " ".join(str(n).rjust(width) for n in row) + f"   {sum(row):5d}"
        )
    totals = [sum(counts[(lang, k)] for lang in langs) for k in kinds]
    lines.append("total " + " ".join(str(n).rjust(width) for n in totals) + f"   {sum(totals):5d}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(TESTS.parent))
    print(summary())
