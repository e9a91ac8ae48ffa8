"""Who a mail is from and for: the Meta claim (real, display-name or look-alike sender), the
platform it is from or pretends to be from, and the account it was sent to."""

from __future__ import annotations

import re
import unicodedata

from watcher.pipeline.message import Message
from watcher.pipeline.rules.pack import RulePack
from watcher.pipeline.rules.search import may_match
from watcher.pipeline.rules.text import normalise


def domain_matches(domain: str, domains: tuple[str, ...]) -> bool:
    """Return True when *domain* equals one of *domains* or is a subdomain of one."""
    domain = domain.lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in domains)


def _skeleton(text: str) -> str:
    # Fold look-alike characters (Cyrillic a, digit 0 for o, ...) so "faceb00kmail" and
    # "fаcebookmail" (Cyrillic) both reveal the brand they imitate.
    folded = unicodedata.normalize("NFKD", text.lower())
    table = str.maketrans(
        {
            "0": "o",
            "1": "l",
            "3": "e",
            "4": "a",
            "5": "s",
            "@": "a",
            "а": "a",
            "е": "e",
            "о": "o",
            "р": "p",
            "с": "c",
            "х": "x",
            "і": "i",
            "ı": "i",
            "ѕ": "s",
            "ԁ": "d",
            "ј": "j",
            "к": "k",
            "м": "m",
            "т": "t",
            "ց": "g",
            "ѵ": "v",
            "ⅿ": "m",
        }
    )
    return "".join(ch for ch in folded.translate(table) if not unicodedata.combining(ch))


def meta_claim(msg: Message, pack: RulePack) -> str | None:
    """Say why the sender presents itself as Meta, or return None when it does not.

    A Meta sender domain, a display name such as "Facebook" or "Meta Privacy", or a domain
    that imitates one (homoglyphs, digits for letters, ``facebookmail.com.example.net``).
    """
    domain = msg.from_domain
    if domain and domain_matches(domain, pack.sender_domains):
        return f"sender domain {domain} is one of Meta's"
    for pattern in pack.claim_names:
        if pattern.search(msg.from_name):
            return f"display name {msg.from_name!r} names Meta"
    # A label equal to a short token ("meta-support.com"), or containing a long one
    # ("facebookmail-security.net"); "metallica.com" does not count.
    labels = re.split(r"[.\-_]", _skeleton(_from_ace(domain)))
    for token in pack.lookalike_tokens:
        for label in labels:
            if token == label or (len(token) >= 6 and token in label):
                return f"sender domain {domain} imitates {token!r}"
    # A display name showing a Meta address: "notification@facebookmail.com" <x@gmail.com>.
    for word in re.split(r"\W+", _skeleton(msg.from_name)):
        if any(len(token) >= 6 and token in word for token in pack.lookalike_tokens):
            return f"display name {msg.from_name!r} imitates a Meta address"
    return None


def _from_ace(domain: str) -> str:
    """Decode IDNA A-labels ("xn--fcebookmail-yij") so their homoglyphs can be folded; a label
    that does not decode, or is longer than DNS allows (63), stays as it is."""
    labels = []
    for label in domain.split("."):
        decoded = label
        if label.startswith("xn--") and len(label) <= 63:
            try:
                decoded = label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                decoded = label
        labels.append(decoded)
    return ".".join(labels)


def claims_meta(msg: Message, pack: RulePack) -> bool:
    """Return True when the sender presents itself as Meta (see :func:`meta_claim`)."""
    return meta_claim(msg, pack) is not None


def platform_of(msg: Message, text: str, pack: RulePack) -> tuple[str, str]:
    """Return (platform, why): by sender domain, display name, then the brand named most often
    in the text; ``default_platform`` when nothing decides. A mail about all accounts in one
    Accounts Center names both brands and is decided by its sender."""
    for name, domains, _ in pack.platforms:
        if msg.from_domain and domain_matches(msg.from_domain, domains):
            return name, f"sender domain {msg.from_domain}"
    for name, _, names in pack.platforms:
        if any(p.search(msg.from_name) for p in names):
            return name, f"display name {msg.from_name!r}"
    counts = {name: sum(len(p.findall(text)) for p in names) for name, _, names in pack.platforms}
    best = max(counts.values(), default=0)
    leaders = [n for n, c in counts.items() if c == best]
    if best and len(leaders) == 1:
        return leaders[0], f"named most often in the text ({best} times)"
    return pack.default_platform, "nothing decides: the default platform"


def detect_platform(msg: Message, text: str, pack: RulePack) -> str:
    """Return the platform the mail is about (see :func:`platform_of`)."""
    return platform_of(msg, text, pack)[0]


# The sender line of a forwarded or quoted mail, as mail clients write it in the languages of
# the pack ("From: Facebook", "De : Facebook <...>", "Von: Instagram", "> From: ..."), and of a
# header block that ended up in the body (a header line the parser could not read).
_QUOTED_FROM = re.compile(
    r"^[ \t>*]{0,8}(?:from|de|von|da|van|från|fra|od|lähettäjä|από|feladó|expeditor|"
    r"remetente|afzender|mittente|absender|remitente|nadawca|odesílatel|fra)"
    r"[ \t]{0,3}:[ \t]{0,3}(?P<who>[^\n]{1,200})$",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTED_SCAN_CHARS = 20_000
_QUOTED_LINES = 20


def named_platform(msg: Message, pack: RulePack) -> tuple[str, str] | None:
    """For a mail whose sender does not present itself as Meta: the platform that a quoted
    sender line in its text names (a forwarded copy, a header block pushed into the body),
    as (platform, why); None when no quoted sender names Meta. Informative only: such a mail
    is ``other`` and moves no status, but the user sees which brand it uses."""
    for number, found in enumerate(_QUOTED_FROM.finditer(msg.text, 0, _QUOTED_SCAN_CHARS)):
        if number >= _QUOTED_LINES:
            break
        who = found.group("who")
        addresses = re.findall(r"@([\w.-]+)", who)
        for name, domains, names in pack.platforms:
            if any(p.search(who) for p in names) or any(
                domain_matches(a, domains) for a in addresses
            ):
                return name, f"a quoted sender line names it: {found.group(0).strip()[:80]!r}"
        if any(p.search(who) for p in pack.claim_names) or any(
            domain_matches(a, pack.sender_domains) for a in addresses
        ):
            return pack.default_platform, f"a quoted sender line names Meta: {who.strip()[:80]!r}"
    return None


def account_of(
    msg: Message, text: str, pack: RulePack, *, body: str | None = None
) -> tuple[str | None, str]:
    """Return (account, why): the address in the last Meta footer ("This message was sent
    to ...") of the body, else the first Delivered-To/X-Original-To/To/Cc address; None when
    there is none.

    Only the body counts (*text* is not used: it holds the subject, which a replayed mail can
    carry forged, issue 12), and the last footer, the one Meta appends. A footer address that
    no recipient header names (when there is any) gives None: the mail is a copy of someone
    else's, and is not counted for anyone. *body* is the body already normalised
    (:func:`normalise`), when the caller has it. A footer phrase whose required words the body
    lacks is not searched (:func:`may_match`).
    """
    body = normalise(msg.text) if body is None else body
    folded = body.casefold()
    last: re.Match[str] | None = None
    for pattern in pack.account_phrases:
        if not may_match(pattern, folded):
            continue
        for found in pattern.finditer(body):
            if last is None or found.start() > last.start():
                last = found
    if last is not None:
        account = last.group("account").lower().rstrip(".,;")
        if msg.recipients and account not in msg.recipients:
            return None, f"Meta's footer names {account}, which no recipient header names"
        return account, "Meta's footer names it"
    if msg.recipients:
        return msg.recipients[0], "first recipient header (no footer phrase found)"
    return None, "no footer phrase and no recipient header"


def detect_account(msg: Message, text: str, pack: RulePack) -> str | None:
    """Return the address the mail was sent to (see :func:`account_of`)."""
    return account_of(msg, text, pack)[0]
