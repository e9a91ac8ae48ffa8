"""IMAP presets for the mail providers people use for their Facebook and Instagram accounts.

``meta-watcher init`` fills in host, port, security and the login method from these; ``check``
and ``connect`` use the hints to explain a rejected login in one sentence. Sources: each
provider's own help pages for IMAP settings (as of 2025); Microsoft's announcement that
Outlook.com stops accepting passwords for IMAP on 16 September 2024; Google's help on app
passwords (support.google.com/accounts/answer/185833).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Login = Literal["password", "app_password", "oauth2"]


@dataclass(frozen=True)
class Provider:
    """One provider: ``domains`` are the address domains it hosts (lower-case), ``host``/
    ``port``/``security`` its IMAP server, ``login`` what it accepts (``password``: the account
    password; ``app_password``: only a separately generated password; ``oauth2``: no password
    at all), ``oauth2`` the OAuth2 preset name (watcher.sources.oauth2) when it offers OAuth2,
    ``setup`` one sentence a new user must know, ``rejected`` one sentence explaining the usual
    cause when the login is rejected, ``authserv_id`` the authserv-id the provider writes in
    its Authentication-Results headers (RFC 8601) when it is one fixed name."""

    key: str
    name: str
    domains: tuple[str, ...]
    host: str
    port: int
    security: Literal["tls", "starttls"]
    login: Login
    oauth2: str | None
    setup: str
    rejected: str
    authserv_id: str | None = None


_GMX_SETUP = (
    "enable 'POP3/IMAP Abruf' once in the web mail settings (E-Mail > POP3/IMAP), or the login "
    "is refused"
)

PROVIDERS: tuple[Provider, ...] = (
    Provider(
        key="gmail",
        name="Gmail",
        domains=("gmail.com", "googlemail.com"),
        host="imap.gmail.com",
        port=993,
        security="tls",
        login="app_password",
        oauth2="google",
        setup=(
            "Gmail accepts OAuth2 (init --oauth2-client-id with your own Google client id, then "
            "`meta-watcher auth`; README: 'OAuth2: Gmail and Outlook.com') or an app password "
            "(needs 2-Step Verification), never your Google password"
        ),
        rejected=(
            "Gmail accepts only an app password (myaccount.google.com/apppasswords, needs "
            "2-Step Verification) or OAuth2, not your Google password"
        ),
        authserv_id="mx.google.com",
    ),
    Provider(
        key="outlook",
        name="Outlook.com",
        domains=(
            "outlook.com",
            "outlook.de",
            "outlook.fr",
            "outlook.it",
            "outlook.es",
            "hotmail.com",
            "hotmail.de",
            "hotmail.fr",
            "hotmail.it",
            "hotmail.es",
            "hotmail.co.uk",
            "live.com",
            "live.de",
            "live.fr",
            "live.it",
            "live.co.uk",
            "msn.com",
        ),
        host="outlook.office365.com",
        port=993,
        security="tls",
        login="oauth2",
        oauth2="microsoft",
        setup=(
            "Outlook.com has refused passwords for IMAP since 16 September 2024: register your "
            "own client id, give it with --oauth2-client-id and run `meta-watcher auth`"
        ),
        rejected=(
            "Outlook.com has refused passwords for IMAP since 16 September 2024: configure "
            "oauth2 and run `meta-watcher auth`"
        ),
    ),
    Provider(
        key="gmx",
        name="GMX",
        domains=("gmx.de", "gmx.net", "gmx.at", "gmx.ch", "gmx.eu", "gmx.li"),
        host="imap.gmx.net",
        port=993,
        security="tls",
        login="password",
        oauth2=None,
        setup=_GMX_SETUP,
        rejected=(
            "GMX refuses the login when the password is wrong or 'POP3/IMAP Abruf' is not "
            "enabled in its web mail settings"
        ),
    ),
    Provider(
        key="gmx.com",
        name="GMX (international)",
        domains=("gmx.com", "gmx.us", "gmx.co.uk", "gmx.fr", "gmx.es"),
        host="imap.gmx.com",
        port=993,
        security="tls",
        login="password",
        oauth2=None,
        setup="enable IMAP access once in the web mail settings (POP3 & IMAP), or the login is "
        "refused",
        rejected=(
            "GMX refuses the login when the password is wrong or IMAP access is not enabled "
            "in its web mail settings"
        ),
    ),
    Provider(
        key="webde",
        name="WEB.DE",
        domains=("web.de",),
        host="imap.web.de",
        port=993,
        security="tls",
        login="password",
        oauth2=None,
        setup=_GMX_SETUP,
        rejected=(
            "WEB.DE refuses the login when the password is wrong or 'POP3/IMAP Abruf' is not "
            "enabled in its web mail settings"
        ),
    ),
    Provider(
        key="t-online",
        name="T-Online",
        domains=("t-online.de", "magenta.de"),
        host="secureimap.t-online.de",
        port=993,
        security="tls",
        login="app_password",
        oauth2=None,
        setup=(
            "use the separate E-Mail-Passwort set in the Telekom E-Mail Center, not your Telekom "
            "login password"
        ),
        rejected=(
            "T-Online accepts only the separate E-Mail-Passwort from the Telekom E-Mail Center, "
            "not your Telekom login password"
        ),
    ),
    Provider(
        key="icloud",
        name="iCloud Mail",
        domains=("icloud.com", "me.com", "mac.com"),
        host="imap.mail.me.com",
        port=993,
        security="tls",
        login="app_password",
        oauth2=None,
        setup=(
            "iCloud needs an app-specific password (account.apple.com > Sign-In and Security), "
            "never your Apple Account password"
        ),
        rejected=(
            "iCloud accepts only an app-specific password (account.apple.com > Sign-In and "
            "Security), not your Apple Account password"
        ),
    ),
    Provider(
        key="yahoo",
        name="Yahoo Mail",
        domains=(
            "yahoo.com",
            "yahoo.de",
            "yahoo.co.uk",
            "yahoo.fr",
            "yahoo.it",
            "yahoo.es",
            "ymail.com",
            "rocketmail.com",
        ),
        host="imap.mail.yahoo.com",
        port=993,
        security="tls",
        login="app_password",
        oauth2=None,
        setup=(
            "Yahoo needs an app password (Account security > Generate app password), not your "
            "Yahoo password"
        ),
        rejected=(
            "Yahoo accepts only an app password (Account security > Generate app password), "
            "not your Yahoo password"
        ),
    ),
    Provider(
        key="posteo",
        name="Posteo",
        domains=(
            "posteo.de",
            "posteo.net",
            "posteo.at",
            "posteo.ch",
            "posteo.org",
            "posteo.eu",
            "posteo.be",
            "posteo.nl",
            "posteo.us",
            "posteo.uk",
        ),
        host="posteo.de",
        port=993,
        security="tls",
        login="password",
        oauth2=None,
        setup="Posteo uses your Posteo address and password",
        rejected="Posteo refuses the login when the address or password is wrong",
    ),
    Provider(
        key="mailbox.org",
        name="mailbox.org",
        domains=("mailbox.org",),
        host="imap.mailbox.org",
        port=993,
        security="tls",
        login="password",
        oauth2=None,
        setup=(
            "mailbox.org uses your address and password (or an app password if you turned on "
            "two-factor authentication)"
        ),
        rejected=(
            "mailbox.org refuses the login when the password is wrong; with two-factor "
            "authentication on, it needs an app password"
        ),
    ),
)

_BY_DOMAIN = {domain: p for p in PROVIDERS for domain in p.domains}
_BY_HOST = {p.host: p for p in PROVIDERS}


def domain_of(address: str) -> str:
    """The lower-case domain of an e-mail address ('' when it has no ``@``)."""
    return address.rpartition("@")[2].strip().lower().rstrip(".") if "@" in address else ""


def for_address(address: str) -> Provider | None:
    """Return the preset for *address*'s domain, or None for an unknown domain (own server)."""
    return _BY_DOMAIN.get(domain_of(address))


def for_host(host: str) -> Provider | None:
    """Return the preset whose IMAP server is *host*, or None."""
    return _BY_HOST.get(host.lower().rstrip("."))


def by_key(key: str) -> Provider | None:
    """Return the preset called *key* (``gmail``, ``outlook``, ``gmx``...), or None."""
    return next((p for p in PROVIDERS if p.key == key), None)
