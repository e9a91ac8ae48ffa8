"""Decide whether a mail really comes from who it claims to be: a :class:`Verdict`.

Sources: RFC 8601 (Authentication-Results), RFC 6376 (DKIM ``header.d``), RFC 7489 (DMARC
``header.from`` and identifier alignment). Only headers whose authserv-id is in the user's
``trusted_authserv_ids`` count; anyone can add an Authentication-Results header further down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import authres

from watcher.pipeline.message import Message
from watcher.pipeline.rules import RulePack, domain_matches

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


def _parse(value: str) -> _Header | None:
    try:
        parsed = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + value)
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


def _authserv_id_of(value: str) -> str:
    words = value.split(";", 1)[0].split()  # "" for a hostile "Authentication-Results: ;"
    return words[0].lower() if words else ""


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 3.1): one domain equals or is a subdomain of the other."""
    domain, from_domain = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not domain or not from_domain:
        return False
    return (
        domain == from_domain
        or from_domain.endswith("." + domain)
        or domain.endswith("." + from_domain)
    )


def _header_passes(header: _Header, from_domain: str) -> bool:
    for method, result, props in header.results:
        if result != "pass":
            continue
        if method == "dkim" and aligned(props.get("header.d", ""), from_domain):
            return True
        if method == "dmarc" and aligned(props.get("header.from", ""), from_domain):
            return True
    return False


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
    From domain, and, for mail that claims to be Meta, the From domain is a Meta sender domain
    and every link points to a Meta domain. fail: any of that is contradicted. none: no
    trusted server left a verdict (and nothing else proves a failure).
    """
    trusted = {t.lower() for t in trusted_authserv_ids}
    reasons: list[str] = []
    failed = False
    from_domain = msg.from_domain
    if claims_meta and not (from_domain and domain_matches(from_domain, pack.sender_domains)):
        failed = True
        reasons.append(f"sender domain {from_domain or '(none)'} is not a Meta domain")
    if claims_meta:
        bad = off_domain_links(msg, pack.link_domains)
        if bad:
            failed = True
            reasons.append(f"links point outside Meta's domains: {', '.join(bad[:5])}")

    headers = [v for v in msg.auth_results if _authserv_id_of(v) in trusted]
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
        header = _parse(value)
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
    if failed:
        return Verdict("fail", tuple(reasons), authserv_id)
    return Verdict("pass", (f"DKIM/DMARC pass for {from_domain} at {authserv_id}",), authserv_id)
