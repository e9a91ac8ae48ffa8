"""The config's top-level model: YAML keys -> a validated, frozen :class:`Config` (every key
is in the README, "Configuration") holding the accounts and sources (accounts.py), the
notification targets (targets.py) and the daemon's settings and limits, with the checks
that span several of them. Validation only: files are read by watcher.config.files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import Field, field_validator, model_validator

from watcher.config.accounts import Account, LocalSource, MetaAccount
from watcher.config.targets import MqttSettings, NotifyTarget
from watcher.config.values import (
    APP_NAME,
    MIN_POLL_SECONDS,
    Frozen,
    Seconds,
    host_problem,
    package_file,
)


def _default_database() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "log.sqlite3"


class Config(Frozen):
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
    metrics: str | None = None
    meta_accounts: tuple[MetaAccount, ...] = ()
    source_path: Path | None = Field(default=None, exclude=True)
    demo: bool = Field(default=False, exclude=True)

    @field_validator("poll_interval")
    @classmethod
    def _poll_floor(cls, seconds: float) -> float:
        # values.MIN_POLL_SECONDS says why; the error reads "poll_interval: ...".
        if seconds < MIN_POLL_SECONDS:
            raise ValueError(
                f"must be at least {MIN_POLL_SECONDS:g}s (every poll asks every server); "
                "5m is the default"
            )
        return seconds

    @field_validator("metrics")
    @classmethod
    def _metrics_port(cls, value: str | None) -> str | None:
        # HOST:PORT, [IPv6]:PORT or a bare PORT (watcher.daemon.metrics.parse_listen).
        if value is None:
            return None
        host, _, port = value.rpartition(":")
        if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{value!r}: the port must be 1 to 65535 (like 127.0.0.1:9464)")
        problem = host_problem(host) if host else None
        if problem is not None:
            raise ValueError(f"{problem} (like 127.0.0.1:9464)")
        return value

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
