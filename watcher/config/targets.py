"""The config's notification settings: Apprise targets (``notify:``) and the Home Assistant
MQTT broker (``mqtt:``), each with its validation."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from watcher.config.values import Frozen
from watcher.kinds import NOTIFY_EVENTS


class NotifyTarget(Frozen):
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


class MqttSettings(Frozen):
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
