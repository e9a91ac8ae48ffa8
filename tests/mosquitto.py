"""A throwaway Mosquitto MQTT broker for the test suite, and a subscriber that listens the way
Home Assistant does.

The broker (Debian's ``mosquitto`` package, /usr/sbin/mosquitto) runs from a private temp dir
with its own config: one listener on 127.0.0.1 and a free port, persistence off (a restart
forgets retained messages, like a broker that lost its state), anonymous access or a password
file made with ``mosquitto_passwd``. It is stopped on ``close()``, on leaving the ``with``
block and at interpreter exit; ``restart()`` keeps the port, so clients can reconnect.

:class:`HomeAssistantListener` subscribes to ``<prefix>/#`` and, like Home Assistant's MQTT
discovery, to the ``state_topic``, ``json_attributes_topic`` and ``availability_topic`` named
in each discovery config it receives; every message is kept with its arrival time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HOST = "127.0.0.1"
BINARY = "/usr/sbin/mosquitto"
PASSWD_BINARY = "/usr/bin/mosquitto_passwd"
INSTALL_HINT = (
    "Mosquitto is not installed: install it: apt-get install mosquitto "
    "(scripts/install-test-deps does)"
)


class MosquittoError(RuntimeError):
    """The broker could not be set up, started or stopped."""


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class MosquittoBroker:
    """A private Mosquitto on 127.0.0.1:``port`` (picked when None).

    ``users``: ``{name: password}`` written with ``mosquitto_passwd``; with users, anonymous
    clients are refused. ``start_timeout``: seconds to wait until it accepts connections.
    Raises MosquittoError (with :data:`INSTALL_HINT` when the binary is missing).
    """

    def __init__(
        self,
        port: int | None = None,
        users: dict[str, str] | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        if not (os.path.isfile(BINARY) and os.access(BINARY, os.X_OK)):
            raise MosquittoError(INSTALL_HINT)
        self.port = port or free_port()
        self.users = dict(users or {})
        self.start_timeout = start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="mosquitto-test-"))
        self.config = self.dir / "mosquitto.conf"
        self.log_file = self.dir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``."""
        return f"mqtt://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {HOST}",
            "persistence false",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # As root Mosquitto would switch to the "mosquitto" user, which cannot read this
            # private directory; run as whoever we are.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        ]
        if self.users:
            passwd = self.dir / "passwd"
            passwd.touch(mode=0o600)
            for name, password in self.users.items():
                subprocess.run(
                    [PASSWD_BINARY, "-b", str(passwd), name, password],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> MosquittoBroker:
        """Start the broker and wait until it accepts TCP connections on its port."""
        if self.running:
            return self
        self.process = subprocess.Popen(
            [BINARY, "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr", "ab"),  # noqa: SIM115 - the child owns it
            start_new_session=True,
        )
        _running.add(self)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MosquittoError(
                    f"mosquitto exited with {self.process.returncode}: {self.tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.5):
                return self
            time.sleep(0.05)
        self.stop()
        raise MosquittoError(f"mosquitto did not accept connections in {self.start_timeout} s")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s). Clients see the connection end."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        _running.discard(self)

    def kill(self) -> None:
        """Kill the broker with SIGKILL (a crash: no goodbye to clients)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self.process = None
        _running.discard(self)

    def restart(self) -> None:
        """Stop and start again on the same port (retained messages are gone: no persistence)."""
        self.stop()
        self.start()

    def tail(self, lines: int = 20) -> str:
        """The last lines of the broker's log and stderr, for error messages."""
        text = ""
        for path in (self.log_file, self.dir / "stderr"):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Stop the broker and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


_running: set[MosquittoBroker] = set()


@atexit.register
def _stop_all() -> None:
    for broker in list(_running):
        broker.stop()


# ---------------------------------------------------------------------- subscriber


@dataclass(frozen=True)
class Received:
    """One message as the subscriber got it; ``at`` is ``time.monotonic()`` on arrival."""

    topic: str
    payload: bytes
    retain: bool
    at: float

    def text(self) -> str:
        return self.payload.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.payload)


class HomeAssistantListener:
    """Subscribe as Home Assistant's MQTT integration would: ``<prefix>/#`` for discovery,
    then each discovery config's state, attributes and availability topics (plus any
    *extra* topic filters). Reconnects on its own (paho's loop thread) and subscribes again.

    Read :attr:`messages` (all, in arrival order) or use :meth:`wait_for` / :meth:`latest`.
    """

    def __init__(
        self,
        broker: MosquittoBroker,
        prefix: str = "homeassistant",
        extra: Iterable[str] = (),
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.messages: list[Received] = []
        self.connects = 0
        self._filters: set[str] = {f"{prefix}/#", *extra}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"ha-listener-{uuid.uuid4().hex[:8]}"
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(1, 2)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.connect_async(HOST, broker.port, keepalive=10)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        with self._lock:
            self.connects += 1
            filters = sorted(self._filters)
        for topic in filters:
            client.subscribe(topic, qos=1)

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        got = Received(
            message.topic, bytes(message.payload), bool(message.retain), time.monotonic()
        )
        new_topics: list[str] = []
        if message.topic.startswith(self.prefix + "/") and message.topic.endswith("/config"):
            with contextlib.suppress(ValueError, AttributeError):
                config = json.loads(message.payload)
                for key in ("state_topic", "json_attributes_topic", "availability_topic"):
                    if isinstance(config.get(key), str):
                        new_topics.append(config[key])
        with self._changed:
            self.messages.append(got)
            fresh = [t for t in new_topics if t not in self._filters]
            self._filters.update(fresh)
            self._changed.notify_all()
        for topic in fresh:
            client.subscribe(topic, qos=1)

    def wait_for(
        self,
        topic: str,
        predicate: Callable[[Received], bool] = lambda r: True,
        timeout: float = 10.0,
        after: float = 0.0,
    ) -> Received:
        """The first message on *topic* that arrived at or after *after* (monotonic) and
        satisfies *predicate*; raises TimeoutError after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for got in self.messages:
                    if got.topic == topic and got.at >= after and predicate(got):
                        return got
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({m.topic for m in self.messages})
                    raise TimeoutError(f"nothing matching on {topic} in {timeout} s; saw {seen}")
                self._changed.wait(min(left, 0.5))

    def latest(self, topic: str) -> Received | None:
        """The last message received on *topic*, or None."""
        with self._lock:
            return next((m for m in reversed(self.messages) if m.topic == topic), None)

    def topics(self) -> set[str]:
        with self._lock:
            return {m.topic for m in self.messages}

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> HomeAssistantListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
