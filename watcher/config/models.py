"""The config's models: YAML keys -> validated, frozen pydantic models (every key is in the
README, "Configuration"). Validation only: secrets are resolved where they are used
(watcher.sources.credentials), files are read by watcher.config.files."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    model_validator,
)

from watcher.kinds import NOTIFY_EVENTS

log = logging.getLogger(__name__)

APP_NAME = "meta-watcher"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


# The longest duration any setting takes. A poll every 10**27 s or every NaN s reached the
# scheduler and crashed `run`; a year is far beyond any sensible interval or age.
MAX_DURATION_SECONDS = 365 * 86400.0


def parse_duration(value: object) -> float:
    """Return *value* ("90", "30s", "5m", "1h", "2d" or a number) in seconds.

    Raises ValueError for anything else, for a duration that is not positive, and for one
    that is not finite or longer than MAX_DURATION_SECONDS (365 days).
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration like 30s, 5m or 1h")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if math.isnan(seconds):
        raise ValueError(f"{value!r} is not a duration like 30s, 5m or 1h")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError("a duration must be at most 365 days (365d)")
    return seconds


Seconds = Annotated[float, BeforeValidator(parse_duration)]


def package_file(name: str) -> Path:
    """Return the path of a file shipped with the package (``rules.yaml``, ``examples/Maildir``).

    In a wheel the files live inside ``watcher/``; in a source checkout (editable install or
    tests) they live at the repository's top level.
    """
    package = Path(__file__).resolve().parents[1]  # watcher/ (this file is watcher/config/)
    inside = package / name
    if inside.exists():
        return inside
    return package.parent / name


def is_loopback(host: str) -> bool:
    """Return True when *host* is ``localhost`` or a loopback IP literal (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


class OAuth2Settings(_Frozen):
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


class Account(_Frozen):
    """One IMAP account: where to connect, how to log in, which folders to watch.

    Exactly one secret source must be set (SECRET_SOURCES): ``password_command`` is run with
    the shell and its first output line is the password (like mbsync's PassCmd);
    ``password_file`` (first line), ``password_env`` (a variable name), ``password_keyring`` (a
    keyring service name; the entry's user is ``username``); or, for XOAUTH2 logins, ``oauth2``
    (the built-in flow of ``meta-watcher auth``) or ``oauth2_token_command`` (prints an access
    token).
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@+-]+$")
    host: str = Field(min_length=1)
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


class LocalSource(_Frozen):
    """A local mail source watched by ``run``: a Maildir folder, an mbox file or a ``.eml``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@+-]+$")
    path: Path


class NotifyTarget(_Frozen):
    """One notification target: an Apprise URL (``ntfy://``, ``json://``, ``dbus://``...).

    Written in the config as the URL alone, or as a mapping with ``url``, an optional ``name``
    (how logs and ``notify-test`` call it) and ``events`` (only these NOTIFY_EVENTS; all when
    empty). The URL may hold a token, so it is a SecretStr and never logged or stored.
    """

    url: SecretStr
    name: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9_.@+-]+$")
    events: tuple[Literal[NOTIFY_EVENTS], ...] = ()  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check_url(self) -> NotifyTarget:
        if "://" not in self.url.get_secret_value():
            raise ValueError("url must be an Apprise URL like ntfy://topic or json://host")
        return self

    @property
    def key(self) -> str:
        """Stable id of the target in the outbox: the name, else a hash of the URL."""
        if self.name:
            return self.name
        digest = hashlib.sha256(self.url.get_secret_value().encode("utf-8")).hexdigest()
        return f"{self.scheme}-{digest[:10]}"

    @property
    def scheme(self) -> str:
        """The URL's scheme (``ntfy``, ``json``...): safe to show."""
        return self.url.get_secret_value().partition("://")[0].lower()

    @property
    def label(self) -> str:
        """How messages name the target: its name, else scheme and hash."""
        return self.name or self.key

    def wants(self, event: str) -> bool:
        """True when this target takes notifications of *event*."""
        return not self.events or event in self.events


class MqttSettings(_Frozen):
    """Home Assistant over MQTT (README "Home Assistant over MQTT"): the broker's ``url``
    (``mqtt://host[:1883]`` or ``mqtts://host[:8883]``, TLS verified against the system CAs or
    ``ca_file``), ``username`` and the password from one of ``password_file``,
    ``password_env``, ``password_command`` (as for accounts; none: no password), and Home
    Assistant's ``discovery_prefix``. ``node_id`` names this watcher in topics."""

    url: str = Field(pattern=r"^mqtts?://[^/\s]+/?$")
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    password_command: str | None = None
    ca_file: Path | None = None
    discovery_prefix: str = Field(default="homeassistant", min_length=1)
    node_id: str = Field(default="meta_watcher", min_length=1)

    @model_validator(mode="after")
    def _check(self) -> MqttSettings:
        sources = [
            s for s in ("password_file", "password_env", "password_command") if getattr(self, s)
        ]
        if len(sources) > 1:
            raise ValueError(f"set only one of {', '.join(sources)}")
        if sources and self.username is None:
            raise ValueError("a broker password needs a username")
        return self


class MetaAccount(_Frozen):
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


def _default_database() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "log.sqlite3"


class Config(_Frozen):
    """The validated configuration; see README "Configuration" for every key."""

    database: Path = Field(default_factory=_default_database)
    rules: Path | None = None
    user_rules: tuple[Path, ...] = ()
    trusted_authserv_ids: tuple[str, ...] = ()
    trust_unauthenticated: bool = False
    store_codes: bool = False
    poll_interval: Seconds = 300.0
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    accounts: tuple[Account, ...] = ()
    local: tuple[LocalSource, ...] = ()
    # Daemon (watcher.daemon) and notifications (watcher.notify); README "Running as a daemon".
    notify: tuple[NotifyTarget, ...] = ()
    notify_codes: bool = True
    notify_max_age: Seconds = 7 * 86400.0
    reminder_days: tuple[Annotated[int, Field(ge=0, le=365)], ...] = (7, 1)
    idle: bool = True
    idle_renew: Seconds = 600.0
    # A folder whose server reported new mail only outside IDLE (on DONE or NOOP: GNU
    # Mailutils; Courier every 60 s) renews IDLE this often instead (daemon/idle.py).
    idle_renew_late: Seconds = 25.0
    idle_silence: Seconds = 240.0
    heartbeat_interval: Seconds = 120.0
    reconnect_max: Seconds = 300.0
    login_retry: Seconds = 3600.0
    mqtt: MqttSettings | None = None
    # Prometheus text endpoint of the daemon, HOST:PORT or PORT (127.0.0.1); off when unset.
    metrics: str | None = Field(
        default=None, pattern=r"^(?:\[[0-9A-Fa-f:]+\]:|[A-Za-z0-9.-]+:)?[0-9]{1,5}$"
    )
    meta_accounts: tuple[MetaAccount, ...] = ()
    source_path: Path | None = Field(default=None, exclude=True)
    demo: bool = Field(default=False, exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        names = [a.name for a in self.accounts] + [s.name for s in self.local]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"account and local source names must be unique: {', '.join(dupes)}")
        if self.idle_renew > 29 * 60:
            # RFC 2177: servers may log out a client idle for 30 minutes.
            raise ValueError("idle_renew must be at most 29m (RFC 2177); 10m is safe")
        keys = [t.key for t in self.notify]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"notify targets must differ: {', '.join(twice)} appears twice")
        self._check_meta_accounts()
        return self

    def _check_meta_accounts(self) -> None:
        named = [m.name for m in self.meta_accounts if m.name]
        dupes = sorted({n for n in named if named.count(n) > 1})
        if dupes:
            raise ValueError(f"meta_accounts names must be unique: {', '.join(dupes)}")
        listed = [m.key for m in self.meta_accounts]
        again = sorted({f"{p} {a}" for p, a in listed if listed.count((p, a)) > 1})
        if again:
            raise ValueError(f"meta_accounts lists {', '.join(again)} twice")
        for m in self.meta_accounts:
            if m.linked is not None and m.linked not in named:
                raise ValueError(
                    f"meta_accounts: {m.label} is linked to {m.linked!r}, which no account "
                    "in meta_accounts is named"
                )

    @property
    def accounts_centers(self) -> tuple[tuple[tuple[str, str], ...], ...]:
        """The ``meta_accounts`` joined by ``linked:`` (in either direction, transitively):
        one group of (platform, address) per Accounts Center with at least two accounts."""
        parent = {m.key: m.key for m in self.meta_accounts}
        by_name = {m.name: m.key for m in self.meta_accounts if m.name}

        def root(key: tuple[str, str]) -> tuple[str, str]:
            while parent[key] != key:
                key = parent[key]
            return key

        for m in self.meta_accounts:
            if m.linked in by_name:
                parent[root(m.key)] = root(by_name[m.linked])
        groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for m in self.meta_accounts:
            groups.setdefault(root(m.key), []).append(m.key)
        return tuple(tuple(g) for g in groups.values() if len(g) > 1)

    @property
    def rules_path(self) -> Path:
        """The rule pack in use: the ``rules`` key, else the shipped ``rules.yaml``."""
        return self.rules if self.rules is not None else package_file("rules.yaml")


def oauth2_token_file(account: Account) -> Path:
    """Where ``meta-watcher auth`` keeps *account*'s OAuth2 tokens when ``token_store: file``:
    ``oauth2.token_file``, else ``<platformdirs user data dir>/oauth2/<account name>.json``."""
    if account.oauth2 is not None and account.oauth2.token_file is not None:
        return account.oauth2.token_file
    return Path(platformdirs.user_data_dir(APP_NAME)) / "oauth2" / f"{account.name}.json"
