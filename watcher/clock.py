"""The clocks: aware UTC wall time for what is recorded and shown, and a clock that keeps
counting through a suspend for measuring silence."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the one wall clock the watcher uses)."""
    return datetime.now(UTC)


def boot_clock() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended (Linux
    CLOCK_BOOTTIME), so silence measured across a suspend is seen as silence."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()
