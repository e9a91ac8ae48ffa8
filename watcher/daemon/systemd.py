"""Tell systemd how the daemon is doing: the sd_notify protocol (sd_notify(3)).

With ``Type=notify`` systemd waits for ``READY=1`` before it counts the service as started, and
with ``WatchdogSec=`` it restarts a service that stops sending ``WATCHDOG=1``. Outside systemd
(no ``$NOTIFY_SOCKET``) every call does nothing. The protocol is one datagram on a Unix socket,
so no library is needed.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send *state* (newline-separated ``KEY=VALUE`` pairs, e.g. ``READY=1``) to systemd.

    Returns True when sent, False when not running under systemd or the socket is gone (never
    raises: a monitoring hiccup must not stop the watcher).
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.debug("sd_notify failed: %s", type(exc).__name__)
        return False
    return True


def watchdog_seconds() -> float | None:
    """Return systemd's watchdog timeout (``$WATCHDOG_USEC``) in seconds, or None when the
    watchdog is off or meant for another process (``$WATCHDOG_PID``)."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000
