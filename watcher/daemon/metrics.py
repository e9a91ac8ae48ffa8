"""The optional Prometheus text endpoint of the daemon (config ``metrics: 127.0.0.1:9464``; off
by default). The only module that imports prometheus-client.

Metrics (Prometheus text format 0.0.4 at ``http://HOST:PORT/metrics``):

* ``meta_watcher_last_successful_poll_timestamp_seconds{account, folder}``: Unix time of the
  last poll of the folder that ended without error (local sources: folder ``""``);
* ``meta_watcher_login_failures_total{account}``: rejected logins (each retry counts);
* ``meta_watcher_messages_processed_total{kind}``: messages processed, by kind (``other``
  included; mail already recorded is not processed again);
* ``meta_watcher_notifications{state}``: the outbox now, ``pending`` (queued), ``sent`` and
  ``dropped`` (given up: failed); read from the database at each scrape;
* ``meta_watcher_idle_reconnects_total{account, folder}``: IDLE sessions that ended in a
  reconnect (connection lost, server silent, BYE).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from watcher.config import is_loopback

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
OUTBOX_STATES = ("pending", "sent", "dropped")


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT`` or a bare ``PORT`` (then 127.0.0.1) -> (host, port).
    Raises ValueError for anything else or a port outside 1..65535."""
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, text
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics: {value!r} is not HOST:PORT (like 127.0.0.1:9464)")
    return host, int(port)


class _Outbox(Collector):
    """The outbox counts by state, read from the database at each scrape (read-only)."""

    def __init__(self, database: Path) -> None:
        self._database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "meta_watcher_notifications",
            "Notifications in the outbox by state (pending: queued; dropped: failed for good)",
            labels=["state"],
        )
        counts = dict.fromkeys(OUTBOX_STATES, 0)
        try:
            conn = sqlite3.connect(f"file:{self._database}?mode=ro", uri=True, timeout=5)
            try:
                for state, count in conn.execute("SELECT state, count(*) FROM outbox GROUP BY 1"):
                    counts[str(state)] = int(count)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.debug("metrics: cannot read the outbox: %s", exc)
        for state, count in counts.items():
            family.add_metric([state], count)
        yield family


class Metrics:
    """The daemon's metrics, in a registry of their own; :meth:`serve` starts the endpoint."""

    def __init__(self, database: Path) -> None:
        self.registry = CollectorRegistry()
        self.last_poll = Gauge(
            "meta_watcher_last_successful_poll_timestamp_seconds",
            "Unix time of the last poll of a folder that ended without error",
            ["account", "folder"],
            registry=self.registry,
        )
        self.login_failures = Counter(
            "meta_watcher_login_failures",
            "Rejected logins (each retry counts)",
            ["account"],
            registry=self.registry,
        )
        self.messages = Counter(
            "meta_watcher_messages_processed",
            "Messages processed, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.idle_reconnects = Counter(
            "meta_watcher_idle_reconnects",
            "IDLE sessions that ended in a reconnect",
            ["account", "folder"],
            registry=self.registry,
        )
        self.registry.register(_Outbox(database))
        self._server: WSGIServer | None = None

    def polled(self, account: str, folder: str) -> None:
        """A poll of (account, folder) ended without error now."""
        self.last_poll.labels(account, folder).set(time.time())

    def serve(self, listen: str) -> tuple[str, int]:
        """Serve ``/metrics`` on *listen* (:func:`parse_listen`) in a daemon thread; returns
        (host, port). Raises ValueError for a bad address, OSError when it cannot bind."""
        host, port = parse_listen(listen)
        if not is_loopback(host):
            log.warning(
                "metrics: listening on %s, not loopback: anyone who reaches it sees the "
                "account names",
                host,
            )
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics: http://%s:%d/metrics", host, port)
        return host, port

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
