"""The config's account and source models: IMAP accounts (with their secret source and
OAuth2 client), local mail sources, and the user's Meta accounts; each with its validation.
Secrets are resolved where they are used (watcher.sources.credentials)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from watcher.config.values import APP_NAME, Frozen, Seconds, host_problem, is_loopback

log = logging.getLogger(__name__)

SECRET_SOURCES = (
    "password_command",
    "password_file",
    "password_env",
    "password_keyring",
    "oauth2",
    "oauth2_token_command",
)


def _check_endpoint(url: str | None) -> str | None:
    # Tokens travel to these URLs: https only, plain http just for a loopback test endpoint.
    if url is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return url
    raise ValueError(f"{url!r} must be an https:// URL")


Endpoint = Annotated[str | None, AfterValidator(_check_endpoint)]


class OAuth2Settings(Frozen):
    """An account's OAuth2 client (RFC 6749) for XOAUTH2 logins; see README "OAuth2".

    ``provider`` picks the endpoints and scopes (``google``, ``microsoft``) or ``custom`` (then
    ``token_url`` and ``scopes`` are required). ``client_id``/``client_secret`` are the user's
    own app registration. ``flow`` is how ``meta-watcher auth`` asks for consent (``redirect``:
    browser and a loopback redirect, RFC 8252; ``device``: a code to type in, RFC 8628);
    default: the provider's. ``token_store`` keeps the refresh token in a 0600 ``file``
    (``token_file``, default in the user data dir) or the system ``keyring``.
    """

    provider: Literal["google", "microsoft", "custom"]
    client_id: str = Field(min_length=1)
    client_secret: str | None = None
    auth_url: Endpoint = None
    token_url: Endpoint = None
    device_url: Endpoint = None
    scopes: tuple[str, ...] | None = None
    flow: Literal["redirect", "device"] | None = None
    redirect_port: int = Field(default=0, ge=0, le=65535)
    token_store: Literal["file", "keyring"] = "file"  # noqa: S105 - a storage kind
    token_file: Path | None = None
    timeout: Seconds = 30.0

    @model_validator(mode="after")
    def _check(self) -> OAuth2Settings:
        if self.provider == "custom":
            missing = [k for k in ("token_url", "scopes") if not getattr(self, k)]
            if missing:
                raise ValueError(f"provider custom needs {' and '.join(missing)}")
        if self.token_file is not None and self.token_store != "file":  # noqa: S105
            raise ValueError("token_file is only used with token_store: file")
        return self


def _unique_folders(folders: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    """*folders* without repeats, first spelling kept, with a warning naming the repeats
    (scanning a folder twice costs a second FETCH and doubles its log lines): INBOX compares
    case-insensitively (the one case-insensitive mailbox name, RFC 9051 §5.1), every other
    name exactly."""
    seen: set[str] = set()
    out: list[str] = []
    repeats: list[str] = []
    for name in folders:
        key = "INBOX" if name.upper() == "INBOX" else name
        if key in seen:
            repeats.append(name)
        else:
            seen.add(key)
            out.append(name)
    if repeats:
        log.warning(
            "account %s: folders names %s again; each folder is watched once",
            info.data.get("name", "?"),
            ", ".join(repr(r) for r in repeats),
        )
    return tuple(out)


class Account(Frozen):
    """One IMAP account: where to connect, how to log in, which folders to watch.

    Exactly one secret source must be set (SECRET_SOURCES): ``password_command`` is run with
    the shell and its first output line is the password (like mbsync's PassCmd);
    ``password_file`` (first line), ``password_env`` (a variable name), ``password_keyring`` (a
    keyring service name; the entry's user is ``username``); or, for XOAUTH2 logins, ``oauth2``
    (the built-in flow of ``meta-watcher auth``) or ``oauth2_token_command`` (prints an access
    token).
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@+-]+$")
    host: str = Field(min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    ca_file: Path | None = None
    username: str = Field(min_length=1)
    password_file: Path | None = None
    password_env: str | None = None
    password_command: str | None = None
    password_keyring: str | None = None
    oauth2_token_command: str | None = None
    oauth2: OAuth2Settings | None = None
    folders: Annotated[tuple[str, ...], AfterValidator(_unique_folders)] = ("INBOX",)
    # Also watch the account's spam folder (RFC 6154 \Junk, or Spam/Junk/... by name), where a
    # code mail often lands; read-only like every folder. README "Spam folders".
    junk: bool = True
    timeout: Seconds = 30.0
    idle: bool = True

    @field_validator("host")
    @classmethod
    def _host_name(cls, host: str) -> str:
        # Typos are said when the config is read, not at connect (values.host_problem).
        problem = host_problem(host)
        if problem is not None:
            raise ValueError(problem)
        return host

    @model_validator(mode="after")
    def _check(self) -> Account:
        sources = [s for s in SECRET_SOURCES if getattr(self, s)]
        if len(sources) > 1:
            raise ValueError(f"set only one of {', '.join(sources)}")
        if not sources:
            raise ValueError(f"set one of {', '.join(SECRET_SOURCES)}")
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                "security: none (no TLS) is only allowed for a loopback host; use tls or starttls"
            )
        if not self.folders:
            raise ValueError("folders must name at least one folder")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file {self.ca_file} does not exist")
        return self

    @property
    def effective_port(self) -> int:
        """The configured port, else 993 for implicit TLS and 143 otherwise."""
        if self.port is not None:
            return self.port
        return 993 if self.security == "tls" else 143

    @property
    def identity(self) -> str:
        """``user@host``, or ``user@host:port`` when the port is not the default for the
        security mode: the server-side identity of the account, used in message keys. The
        port counts because two servers on one host may both have UIDVALIDITY n and UID 1:
        an account pointed at the other one must not take the first one's cursor."""
        default = 993 if self.security == "tls" else 143
        port = f":{self.port}" if self.port is not None and self.port != default else ""
        return f"{self.username.lower()}@{self.host.lower()}{port}"

    @property
    def timeout_seconds(self) -> float:
        """Socket timeout for every read on this account's connections, in seconds."""
        return self.timeout

    @property
    def uses_oauth2(self) -> bool:
        """True when the account logs in with SASL XOAUTH2 instead of a password."""
        return self.oauth2 is not None or self.oauth2_token_command is not None


class LocalSource(Frozen):
    """A local mail source watched by ``run``: a Maildir folder, an mbox file or a ``.eml``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@+-]+$")
    path: Path


class MetaAccount(Frozen):
    """One of the user's Meta accounts (README "Your Meta accounts"): ``platform``,
    ``address`` (where its mail arrives, the address Meta's mails name), an optional
    ``name`` ("Firmen-Instagram"), ``business: true`` for a business account, and
    ``linked: NAME``: the account named NAME is in the same Accounts Center, so an acceptance
    that covers the Accounts Center counts for both."""

    platform: Literal["facebook", "instagram"]
    address: str = Field(pattern=r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
    name: str | None = Field(default=None, min_length=1)
    business: bool = False
    linked: str | None = Field(default=None, min_length=1)

    @property
    def key(self) -> tuple[str, str]:
        """(platform, address in lower case): how the status log names the account."""
        return (self.platform, self.address.lower())

    @property
    def label(self) -> str:
        """The name, else ``platform address``."""
        return self.name or f"{self.platform} {self.address}"


def oauth2_token_file(account: Account) -> Path:
    """Where ``meta-watcher auth`` keeps *account*'s OAuth2 tokens when ``token_store: file``:
    ``oauth2.token_file``, else ``<platformdirs user data dir>/oauth2/<account name>.json``."""
    if account.oauth2 is not None and account.oauth2.token_file is not None:
        return account.oauth2.token_file
    return Path(platformdirs.user_data_dir(APP_NAME)) / "oauth2" / f"{account.name}.json"
