"""YAML config -> validated, frozen :class:`Config`; secrets are resolved here, on demand.

Where the config comes from, first match wins: ``--config FILE``, ``$META_WATCHER_CONFIG``,
``<platformdirs user config dir>/config.yaml``. When none exists the watcher runs in *demo mode*
on the bundled example Maildir with its own demo database, and says so.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from watcher.errors import ConfigError, SecretError

log = logging.getLogger(__name__)

APP_NAME = "meta-watcher"
ENV_CONFIG = "META_WATCHER_CONFIG"
DEFAULT_TRUSTED_DEMO = ("mx.home.example",)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """Return *value* ("90", "30s", "5m", "1h", "2d" or a number) in seconds.

    Raises ValueError for anything else or for a duration that is not positive.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration like 30s, 5m or 1h")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Seconds = Annotated[float, BeforeValidator(parse_duration)]


def package_file(name: str) -> Path:
    """Return the path of a file shipped with the package (``rules.yaml``, ``examples/Maildir``).

    In a wheel the files live inside ``watcher/``; in a source checkout (editable install or
    tests) they live at the repository's top level.
    """
    inside = Path(__file__).resolve().parent / name
    if inside.exists():
        return inside
    return Path(__file__).resolve().parent.parent / name


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


class Account(_Frozen):
    """One IMAP account: where to connect, how to log in, which folders to watch.

    Exactly one password source may be set; ``password_command`` is run with the shell and
    its first output line is the password (like mbsync's PassCmd).
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
    folders: tuple[str, ...] = ("INBOX",)
    timeout: Seconds = 30.0
    idle: bool = True

    @model_validator(mode="after")
    def _check(self) -> Account:
        sources = [
            s for s in ("password_file", "password_env", "password_command") if getattr(self, s)
        ]
        if len(sources) > 1:
            raise ValueError(f"set only one of {', '.join(sources)}")
        if not sources:
            raise ValueError("set one of password_file, password_env or password_command")
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                "security: none (no TLS) is only allowed for a loopback host; use tls or starttls"
            )
        if not self.folders:
            raise ValueError("folders must name at least one folder")
        return self

    @property
    def effective_port(self) -> int:
        """The configured port, else 993 for implicit TLS and 143 otherwise."""
        if self.port is not None:
            return self.port
        return 993 if self.security == "tls" else 143

    @property
    def identity(self) -> str:
        """``user@host``: the server-side identity of the account, used in message keys."""
        return f"{self.username.lower()}@{self.host.lower()}"

    @property
    def timeout_seconds(self) -> float:
        """Socket timeout for every read on this account's connections, in seconds."""
        return self.timeout

    def password(self) -> str:
        """Resolve and return the password from its configured source.

        Raises SecretError naming the source (never the secret) when it cannot be read.
        """
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").splitlines()[0]
            except (OSError, IndexError, UnicodeDecodeError) as exc:
                raise SecretError(
                    f"account {self.name}: cannot read password_file {self.password_file} "
                    f"({type(exc).__name__})"
                ) from None
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise SecretError(
                    f"account {self.name}: environment variable {self.password_env} is not set"
                )
            return value
        assert self.password_command is not None
        try:
            done = subprocess.run(  # noqa: S602 - the user's own command, like mbsync PassCmd
                self.password_command,
                shell=True,
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SecretError(
                f"account {self.name}: password_command could not run ({type(exc).__name__})"
            ) from None
        lines = done.stdout.decode("utf-8", "replace").splitlines()
        if done.returncode != 0 or not lines or not lines[0]:
            raise SecretError(
                f"account {self.name}: password_command exited {done.returncode} "
                "without printing a password"
            )
        return lines[0]


class LocalSource(_Frozen):
    """A local mail source watched by ``run``: a Maildir folder, an mbox file or a ``.eml``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@+-]+$")
    path: Path


NOTIFY_EVENTS = (
    "verification_code",
    "objection_accepted",
    "objection_rejected",
    "info_requested",
    "policy_update",
    "suspicious",
    "unrecognized",
    "login_failed",
    "reminder",
)


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
    idle_silence: Seconds = 240.0
    heartbeat_interval: Seconds = 60.0
    reconnect_max: Seconds = 300.0
    login_retry: Seconds = 3600.0
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
        return self

    @property
    def rules_path(self) -> Path:
        """The rule pack in use: the ``rules`` key, else the shipped ``rules.yaml``."""
        return self.rules if self.rules is not None else package_file("rules.yaml")


def default_config_path() -> Path:
    """``<platformdirs user config dir>/config.yaml``."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.yaml"


@dataclass(frozen=True)
class ConfigChoice:
    """Which config file applies and why; ``path`` is None in demo mode."""

    path: Path | None
    explicit: bool


def choose_config(cli_path: Path | None) -> ConfigChoice:
    """Pick the config file: ``--config``, then ``$META_WATCHER_CONFIG``, then the default path."""
    if cli_path is not None:
        return ConfigChoice(cli_path, True)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return ConfigChoice(Path(env), True)
    path = default_config_path()
    return ConfigChoice(path if path.exists() else None, False)


def demo_config() -> Config:
    """The config used when none exists: the bundled example Maildir and a demo database."""
    return Config(
        database=Path(platformdirs.user_data_dir(APP_NAME)) / "demo.sqlite3",
        trusted_authserv_ids=DEFAULT_TRUSTED_DEMO,
        local=(LocalSource(name="example", path=package_file("examples/Maildir")),),
        demo=True,
    )


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_config(cli_path: Path | None = None) -> Config:
    """Load and validate the config chosen by :func:`choose_config`.

    Relative paths in the file are taken relative to the file's folder. Raises ConfigError
    with one sentence naming the file and the key when anything is wrong.
    """
    choice = choose_config(cli_path)
    if choice.path is None:
        return demo_config()
    path = choice.path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read ({type(exc).__name__})") from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{at}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    return parse_config(data, path)


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    def fix(value: Any) -> Any:
        if isinstance(value, str) and value:
            p = Path(value).expanduser()
            return str(p if p.is_absolute() else base / p)
        return value

    out = dict(data)
    for key in ("database", "rules"):
        if key in out:
            out[key] = fix(out[key])
    if isinstance(out.get("user_rules"), list):
        out["user_rules"] = [fix(v) for v in out["user_rules"]]
    for key, fields in (("accounts", ("ca_file", "password_file")), ("local", ("path",))):
        items = out.get(key)
        if isinstance(items, list):
            out[key] = [
                {k: (fix(v) if k in fields else v) for k, v in item.items()}
                if isinstance(item, dict)
                else item
                for item in items
            ]
    return out


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate a config mapping read from *path*; raises ConfigError naming the first bad key."""
    try:
        config = Config.model_validate(_resolve_paths(data, path.parent))
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = str(first["msg"]).removeprefix("Value error, ")
        where = _format_loc(first["loc"])
        if first["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(f"config file {path}: {where}: {msg}") from None
    return config.model_copy(update={"source_path": path})
