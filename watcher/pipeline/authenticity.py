"""Decide whether a mail really comes from who it claims to be: a :class:`Verdict`.

Sources: RFC 8601 (Authentication-Results), RFC 6376 (DKIM ``header.d``), RFC 7489 (DMARC
``header.from`` and identifier alignment). Only headers whose authserv-id is in the user's
``trusted_authserv_ids`` count; anyone can add an Authentication-Results header further down.

A signed mail can be replayed with headers added above the signed ones (RFC 6376 §5.4.2 signs
the bottom-most instance; Python reads the top-most) or with unsigned ones rewritten, and a
signature with an ``l=`` tag leaves anything appended to the body unsigned (§8.2). So a repeated
singleton header, or a body longer than ``l=``, makes the verdict ``fail``, and
:func:`signed_view` hides a Subject the signature does not cover from classification.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import urlsplit

import authres
import authres.core

from watcher.pipeline.message import Message
from watcher.pipeline.rules import RulePack, domain_matches

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

log = logging.getLogger(__name__)

Result = Literal["pass", "fail", "none"]


@dataclass(frozen=True)
class Verdict:
    """``result`` is pass, fail or none (no trusted verdict); ``reasons`` say why in plain
    words; ``authserv_id`` names the trusted server whose header the verdict rests on."""

    result: Result
    reasons: tuple[str, ...]
    authserv_id: str | None = None


@dataclass(frozen=True)
class _Header:
    authserv_id: str
    results: tuple[tuple[str, str, dict[str, str]], ...]  # (method, result, {ptype.prop: value})


class _ARHeader(authres.core.AuthenticationResultsHeader):  # type: ignore[misc] # untyped
    """authres's header parser with its one hot spot made cheap: ``_parse_pattern`` compiles
    its pattern again on every token (authres's own TODO says so; about 90 calls per result
    and half the time of the whole pipeline). Here each pattern is compiled once; the match is
    the same ``search`` and the text left is the same as authres's ``sub(..., count=1)``
    gives, so what is parsed (and what is rejected) does not change."""

    _COMPILED: ClassVar[dict[str, re.Pattern[str]]] = {}
    _parse_text: str  # what is left to parse (set by authres's parse_value)

    def _parse_pattern(self, pattern: str | re.Pattern[str]) -> re.Match[str] | None:
        regexp: re.Pattern[str] | None
        if isinstance(pattern, re.Pattern):
            regexp = pattern
        else:
            regexp = self._COMPILED.get(pattern)  # a few dozen patterns, all authres's own
            if regexp is None:
                regexp = self._COMPILED[pattern] = re.compile(r"^" + pattern, re.I)
        text = self._parse_text
        found = regexp.search(text)
        if found is not None:
            self._parse_text = text[: found.start()] + text[found.end() :]
        return found


def _parse(value: str) -> _Header | None:
    try:
        parsed = _ARHeader.parse(authres.core_features(), "Authentication-Results: " + value)
    except Exception:  # noqa: BLE001 - authres raises its own and stdlib errors on bad input
        return None
    results = tuple(
        (
            str(r.method).lower(),
            str(r.result).lower(),
            {f"{p.type}.{p.name}".lower(): str(p.value).lower() for p in r.properties},
        )
        for r in parsed.results
    )
    return _Header(str(parsed.authserv_id).lower(), results)


# signed_view and authenticate (twice) read the same trusted headers of one message: the
# parses of the last message are kept, keyed by its identity (the entry holds the message, so
# its id cannot be reused while cached). _parse depends on the value alone, so sharing is safe
# even when threads interleave; another message simply starts a new entry.
_LAST_PARSED: tuple[Message | None, dict[str, _Header | None]] = (None, {})


def _parsed(msg: Message, value: str) -> _Header | None:
    """``_parse(value)`` for a header of *msg*, parsed once per message."""
    global _LAST_PARSED
    owner, cache = _LAST_PARSED
    if owner is not msg:
        cache = {}
        _LAST_PARSED = (msg, cache)
    try:
        return cache[value]
    except KeyError:
        header = cache[value] = _parse(value)
        return header


def _authserv_id_of(value: str) -> str:
    """The authserv-id of an Authentication-Results value, lower-case; a quoted-string one
    (RFC 8601 §2.2: value = token / quoted-string) without its quotes, so a server's header
    written ``"mx.home.example"; dkim=fail`` still counts as that server's."""
    words = value.split(";", 1)[0].split()  # "" for a hostile "Authentication-Results: ;"
    word = words[0] if words else ""
    if len(word) >= 2 and word[0] == word[-1] == '"':
        word = re.sub(r"\\(.)", r"\1", word[1:-1])
    return word.lower()


@functools.cache
def _suffix_list() -> PublicSuffixList:
    """The Public Suffix List bundled with the ``publicsuffixlist`` package, parsed once; never
    fetched: nothing here uses the network. Its IDN rules are kept in Unicode only (the
    library's ``accept_encoded_idn=False``): adding each one's punycode form made the parse
    three times slower (0.10 s against 0.03 s); :func:`organisational_domain` decodes
    ``xn--`` labels instead."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(accept_encoded_idn=False)


def _unicode_labels(domain: str) -> str:
    """*domain* with its ``xn--`` labels (IDNA A-labels, RFC 5890) decoded to Unicode; a label
    that does not decode is kept as written (it then matches no IDN rule, as before)."""
    if "xn--" not in domain:
        return domain
    return ".".join(_decoded_label(label) for label in domain.split("."))


def _decoded_label(label: str) -> str:
    if label.startswith("xn--"):
        try:
            return label.encode("ascii").decode("idna")
        except (UnicodeError, ValueError):
            return label
    return label


def organisational_domain(domain: str) -> str | None:
    """The organisational domain of *domain* (RFC 7489 §3.2): its public suffix by the Public
    Suffix List (ICANN and private sections; an unknown TLD is a suffix of one label) plus one
    label. ``mail.instagram.com`` -> ``instagram.com``; None when *domain* is empty or itself a
    public suffix (``com``, ``co.uk``, ``github.io``). Case and a trailing dot are ignored."""
    domain = domain.strip().lower().rstrip(".")
    if not domain or ".." in domain:
        return None
    found = _suffix_list().privatesuffix(_unicode_labels(domain))
    return found if isinstance(found, str) else None


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 §3.1): both domains have the same organisational domain
    (:func:`organisational_domain`); a public suffix aligns with nothing."""
    mine = organisational_domain(domain)
    return mine is not None and mine == organisational_domain(from_domain)


def _header_passes(header: _Header, from_domain: str) -> bool:
    for method, result, props in header.results:
        if result != "pass":
            continue
        if method == "dkim" and aligned(props.get("header.d", ""), from_domain):
            return True
        if method == "dmarc" and aligned(props.get("header.from", ""), from_domain):
            return True
    return False


@dataclass(frozen=True)
class _Signature:
    """What a DKIM-Signature header (RFC 6376 §3.5) says about its own coverage: the signing
    domain ``d=``, selector ``s=``, the lower-case names in ``h=``, the body length ``l=`` (None
    without one; -1 when unreadable), the body canonicalisation and ``b=`` without white space."""

    domain: str
    selector: str
    headers: tuple[str, ...]
    length: int | None
    body_canon: str
    b: str


def _signature(value: str) -> _Signature:
    tags: dict[str, str] = {}
    for item in value.split(";"):
        name, sep, tag_value = item.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), tag_value.strip())
    length: int | None = None
    if "l" in tags:
        digits = re.sub(r"\s", "", tags["l"])
        length = int(digits) if digits.isdigit() and len(digits) <= 76 else -1
    body_canon = tags.get("c", "simple").partition("/")[2].strip().lower() or "simple"
    return _Signature(
        domain=tags.get("d", "").lower().rstrip("."),
        selector=tags.get("s", "").lower(),
        headers=tuple(re.sub(r"\s", "", h).lower() for h in tags.get("h", "").split(":")),
        length=length,
        body_canon=body_canon,
        b=re.sub(r"\s", "", tags.get("b", "")).lower(),
    )


def _trusted_headers(msg: Message, trusted_authserv_ids: tuple[str, ...]) -> list[str]:
    trusted = {t.lower() for t in trusted_authserv_ids}
    return [v for v in msg.auth_results if _authserv_id_of(v) in trusted]


def _passing_signatures(msg: Message, trusted_values: list[str]) -> list[_Signature] | None:
    """The DKIM-Signature headers of *msg* that a trusted ``dkim=pass`` aligned with the From
    domain can rest on: same ``d=`` (``header.d``, else the domain of ``header.i``), and the
    same ``s=`` and ``b=`` prefix when the result names them (RFC 8601 §2.7.1, RFC 6008). None
    when no trusted result is such a pass (a verdict then rests on DMARC through SPF, which a
    replay cannot give) or no signature in the mail matches one (nothing to narrow it down)."""
    found: list[_Signature] = []
    passes = 0
    signatures = [_signature(v) for v in msg.dkim_signatures]
    for value in trusted_values:
        header = _parsed(msg, value)
        if header is None:
            continue
        for method, result, props in header.results:
            domain = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if method != "dkim" or result != "pass" or not aligned(domain, msg.from_domain):
                continue
            passes += 1
            selector, prefix = props.get("header.s", ""), props.get("header.b", "")
            found += [
                sig
                for sig in signatures
                if sig.domain == domain.lower().rstrip(".")
                and (not selector or sig.selector == selector)
                and sig.b.startswith(prefix)
                and sig not in found
            ]
    return found if passes and found else None


def _coverage_failures(msg: Message, signatures: list[_Signature]) -> list[str]:
    """Why the signatures a pass rests on do not vouch for what the watcher reads: From not
    signed (RFC 6376 §5.4 requires it), or a body longer than ``l=``."""
    reasons: list[str] = []
    for sig in signatures:
        if "from" not in sig.headers:
            reasons.append(f"the DKIM signature of {sig.domain} does not cover From")
        if sig.length is None:
            continue
        lengths = msg.dkim_body_lengths
        body = None if lengths is None else lengths[1 if sig.body_canon == "relaxed" else 0]
        if body is None or sig.length < body:
            reasons.append(
                f"the DKIM signature of {sig.domain} covers only the first {sig.length} bytes "
                f"of the body (l=), and the body is {body if body is not None else 'unread'}: "
                "text after them is unsigned"
            )
    return list(dict.fromkeys(reasons))


def signed_view(msg: Message, trusted_authserv_ids: tuple[str, ...]) -> Message:
    """*msg* as far as a passing DKIM signature vouches for it, for classification: the same
    Message, with the subject empty when the trusted, aligned ``dkim=pass`` rests on signatures
    whose ``h=`` does not list Subject (an unsigned Subject can be anything; it must not decide
    the kind, a field or the account). Unchanged when no such pass exists; never raises."""
    signatures = _passing_signatures(msg, _trusted_headers(msg, trusted_authserv_ids))
    if signatures and any("subject" not in sig.headers for sig in signatures):
        return replace(msg, subject="")
    return msg


def off_domain_links(msg: Message, allowed: tuple[str, ...]) -> list[str]:
    """Return the hosts of *msg*'s http(s) links that are not in *allowed* (or subdomains)."""
    bad: list[str] = []
    for link in msg.links:
        # A hostile href may hold line breaks: keep each reason on one line (logs, one per line).
        shown = " ".join(link[:80].split())
        try:
            parts = urlsplit(link)
        except ValueError:
            bad.append(shown)
            continue
        if parts.scheme.lower() not in ("http", "https"):
            if parts.scheme.lower() in ("javascript", "data", "vbscript"):
                bad.append(parts.scheme.lower() + ":")
            continue
        host = (parts.hostname or "").lower()
        if not host or not domain_matches(host, allowed):
            bad.append(host or shown)
    return list(dict.fromkeys(bad))


def authenticate(
    msg: Message, claims_meta: bool, pack: RulePack, trusted_authserv_ids: tuple[str, ...]
) -> Verdict:
    """Return the Verdict for *msg*; pure and never raises.

    pass: every trusted Authentication-Results header shows DKIM or DMARC pass aligned with the
    From domain (relaxed alignment through the Public Suffix List), and, for mail that claims
    to be Meta, the From domain is a Meta sender domain and every link points to a Meta domain.
    fail: any of that is contradicted, a singleton header field (From, To, Subject, Date...)
    occurs twice, or the DKIM signature a pass rests on leaves From or part of the body (l=)
    unsigned. none: no trusted server left a verdict (and nothing else proves a failure).
    """
    reasons: list[str] = []
    failed = False
    for name in msg.repeated_headers:
        failed = True
        reasons.append(
            f"more than one {name} header field (RFC 5322 §3.6 allows one): a line added "
            "above the signed headers would be the one read"
        )
    from_domain = msg.from_domain
    if claims_meta and not (from_domain and domain_matches(from_domain, pack.sender_domains)):
        failed = True
        reasons.append(f"sender domain {from_domain or '(none)'} is not a Meta domain")
    if claims_meta:
        bad = off_domain_links(msg, pack.link_domains)
        if bad:
            failed = True
            reasons.append(f"links point outside Meta's domains: {', '.join(bad[:5])}")

    headers = _trusted_headers(msg, trusted_authserv_ids)
    ignored = len(msg.auth_results) - len(headers)
    if not headers:
        if failed:
            return Verdict("fail", tuple(reasons))
        why = "no Authentication-Results header from a trusted server"
        if ignored:
            why += f" ({ignored} from untrusted servers ignored)"
        return Verdict("none", (why,))

    authserv_id = _authserv_id_of(headers[0])
    for value in headers:
        header = _parsed(msg, value)
        if header is None:
            failed = True
            reasons.append(f"unreadable Authentication-Results from {_authserv_id_of(value)}")
        elif not _header_passes(header, from_domain):
            failed = True
            summary = ", ".join(f"{m}={r}" for m, r, _ in header.results) or "no results"
            reasons.append(
                f"{header.authserv_id} reports no DKIM/DMARC pass aligned with "
                f"{from_domain or '(no From domain)'} ({summary})"
            )
    if not failed:
        coverage = _coverage_failures(msg, _passing_signatures(msg, headers) or [])
        failed = bool(coverage)
        reasons += coverage
    if failed:
        return Verdict("fail", tuple(reasons), authserv_id)
    return Verdict("pass", (f"DKIM/DMARC pass for {from_domain} at {authserv_id}",), authserv_id)
