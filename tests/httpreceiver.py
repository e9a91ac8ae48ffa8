"""A tiny real HTTP server on 127.0.0.1 that records what Apprise's ``json://`` target posts.

Start it, point a ``json://127.0.0.1:PORT/notify`` target at it, read ``received``. It can be
stopped and started again on the same port (a notification target that is down for a while),
and can hold each request for a moment before answering (a slow target).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One POST: its JSON payload (Apprise: version, title, message, type), when it arrived
    (time.monotonic and time.time), and whether the answer was sent before a stop."""

    payload: dict[str, Any]
    at_monotonic: float
    at_wall: float
    path: str

    @property
    def title(self) -> str:
        return str(self.payload.get("title", ""))

    @property
    def message(self) -> str:
        return str(self.payload.get("message", ""))


class Receiver:
    """The HTTP receiver. Use as a context manager or call start()/stop()."""

    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.port = port
        self.status = status
        self.hold_seconds = 0.0
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The Apprise URL of this receiver."""
        return f"json://127.0.0.1:{self.port}/notify"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                try:
                    payload = json.loads(data.decode("utf-8"))
                except ValueError:
                    payload = {"raw": data.decode("utf-8", "replace")}
                item = Received(payload, time.monotonic(), time.time(), self.path)
                with owner.arrived:
                    owner.received.append(item)
                    owner.arrived.notify_all()
                if owner.hold_seconds:
                    time.sleep(owner.hold_seconds)
                self.send_response(owner.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are then refused); the port is kept for start()."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        """Wait until at least *count* notifications arrived (or *timeout* seconds passed);
        return everything received so far."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.arrived.wait(left)
            return list(self.received)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
