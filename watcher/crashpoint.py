"""Test hook: ``META_WATCHER_CRASH_AT=point:n`` makes the process SIGKILL itself the n-th time
it passes *point*, so the exactly-once tests can crash the watcher at a known place.

Points: ``fetch`` (a message fetched, before it is processed), ``parse`` (processed, before it
is recorded), ``commit`` (inside the recording transaction, before COMMIT), ``committed`` (just
after COMMIT), ``notify`` (before a notification is sent), ``notified`` (after it is marked
sent). Unset, as in normal use, :func:`crash_point` returns at once. See
tests/test_exactly_once.py.
"""

from __future__ import annotations

import itertools
import os
import signal

_POINT, _, _NTH = os.environ.get("META_WATCHER_CRASH_AT", "").partition(":")
_HITS = itertools.count(1)


def crash_point(name: str) -> None:
    """SIGKILL this process if *name* is the configured point and this is its n-th pass."""
    if name == _POINT and next(_HITS) == int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
