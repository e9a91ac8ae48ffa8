"""Where the daemon's results leave the process besides the database: the notification
sender (watcher.notify.apprise, draining the outbox after each commit and when a retry is
due), Home Assistant over MQTT (watcher.notify.mqtt: statuses after each change, the latest
code) and the Prometheus endpoint (watcher.daemon.metrics), each only when configured.

Each runs in its own thread with its own database connection, woken by an Event, so a
target or broker that is down never holds up mail processing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.clock import utc_now
from watcher.codes import mask_code
from watcher.config import Config
from watcher.errors import ConfigError, WatcherError
from watcher.kinds import CODE_KINDS
from watcher.notify.apprise import Sender
from watcher.notify.mqtt import HomeAssistantPublisher, publish_store, publisher_for
from watcher.pipeline.process import Outcome
from watcher.pipeline.status import Transition
from watcher.sources.credentials import mqtt_password
from watcher.store.store import Store

if TYPE_CHECKING:
    from watcher.daemon.metrics import Metrics

log = logging.getLogger(__name__)

# The sender looks at the outbox at least this often (seconds), and MQTT republishes every
# status this often (a broker without persistence may have lost the retained states).
SENDER_WAIT_SECONDS = 60.0
MQTT_REPUBLISH_SECONDS = 3600.0


class Outputs:
    """The sender, the MQTT publisher and the metrics endpoint of one daemon.

    *open_store* gives a database connection for the calling thread; *stop* is the daemon's
    stop flag. ``outbox_ready`` wakes the sender, ``mqtt_dirty`` the publisher."""

    def __init__(
        self, config: Config, open_store: Callable[[], Store], stop: threading.Event
    ) -> None:
        self.config = config
        self._open_store = open_store
        self._stop = stop
        self.outbox_ready = threading.Event()
        self.mqtt_dirty = threading.Event()
        self.sender = Sender(config.notify) if config.notify else None
        # Started in start(): MQTT's own threads publish; the endpoint serves from its own.
        self.mqtt: HomeAssistantPublisher | None = None
        self.metrics: Metrics | None = None

    def start(self, database: Path) -> list[threading.Thread]:
        """Open the metrics endpoint and the MQTT publisher when configured; return the
        threads to start (sender, MQTT). Raises ConfigError when the endpoint cannot listen
        or the MQTT settings are refused."""
        config = self.config
        threads: list[threading.Thread] = []
        if self.sender is not None:
            threads.append(threading.Thread(target=self.sender_loop, name="sender", daemon=True))
        if config.metrics is not None:
            from watcher.daemon.metrics import Metrics  # prometheus-client only when asked

            self.metrics = Metrics(database)
            try:
                self.metrics.serve(config.metrics)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"metrics: cannot listen on {config.metrics}: {exc}") from None
        if config.mqtt is not None:
            try:
                self.mqtt = publisher_for(config.mqtt, mqtt_password(config.mqtt))
            except ValueError as exc:
                raise ConfigError(f"mqtt: {exc}") from None
            threads.append(threading.Thread(target=self.mqtt_loop, name="mqtt", daemon=True))
        return threads

    def recorded(self, outcome: Outcome, transitions: list[Transition]) -> None:
        """After each committed message: wake the sender, count it, and wake the publisher
        (a status change) or publish its code."""
        self.outbox_ready.set()
        if self.metrics is not None:
            self.metrics.messages.labels(outcome.match.kind).inc()
        if transitions:
            self.mqtt_dirty.set()
        if self.mqtt is not None:
            self._publish_code(outcome)

    def close(self) -> None:
        """On the way down: wake both loops (they see the stop flag), tell Home Assistant we
        are offline, close the endpoint."""
        self.outbox_ready.set()
        self.mqtt_dirty.set()
        if self.mqtt is not None:
            self.mqtt.close(timeout=1.0)  # "offline" for Home Assistant
        if self.metrics is not None:
            self.metrics.close()

    def sender_loop(self) -> None:
        """Thread: deliver due notifications whenever a commit added some or a retry is due."""
        assert self.sender is not None
        store = self._open_store()
        try:
            while not self._stop.is_set():
                self.outbox_ready.clear()
                try:
                    self.sender.drain(store, self._stop)
                    upcoming = store.next_notification_at()
                except WatcherError as exc:
                    log.error("notifications: %s", exc)
                    upcoming = None
                wait = SENDER_WAIT_SECONDS
                if upcoming is not None:
                    seconds = (upcoming - utc_now()).total_seconds()
                    wait = min(SENDER_WAIT_SECONDS, max(0.05, seconds))
                self.outbox_ready.wait(wait)
        finally:
            store.close()

    def _publish_code(self, outcome: Outcome) -> None:
        # The latest code of an account for Home Assistant, masked unless notify_codes.
        code = outcome.fields.get("code")
        if self.mqtt is None or not code or outcome.suspicious:
            return
        if outcome.match.kind not in CODE_KINDS:
            return
        shown = code if self.config.notify_codes else (mask_code(code) or code)
        account = outcome.match.account or outcome.key.source
        self.mqtt.publish_code_event(account, shown, outcome.mail_at or utc_now())

    def mqtt_loop(self) -> None:
        """Thread: publish every account's status at start and after each status change
        (and hourly: a new day changes nothing, but a broker without persistence might have
        lost the retained states). The publisher republishes everything on reconnect."""
        assert self.mqtt is not None
        store = self._open_store()
        try:
            while not self._stop.is_set():
                self.mqtt_dirty.clear()
                try:
                    publish_store(self.mqtt, store)
                except WatcherError as exc:
                    log.error("MQTT: %s", exc)
                self.mqtt_dirty.wait(MQTT_REPUBLISH_SECONDS)
        finally:
            store.close()
