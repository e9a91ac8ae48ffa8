"""The one backoff: delays that double from a first delay up to a cap, with random jitter.

Used for reconnecting to an IMAP server (watcher.daemon) and for retrying a notification
target that is down (watcher.notify.apprise). The jitter spreads the retries of many watchers
(or many folders of one) so a server or target coming back is not hit by all at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Exponential backoff with jitter: the n-th delay (n from 0) is
    ``min(cap, initial * 2**n)`` seconds times a factor drawn from [*low*, *high*].

    Use :meth:`next` for a running count (reconnects; :meth:`reset` after a good cycle), or
    :meth:`delay` when the count is kept elsewhere (a notification's attempts in the outbox).
    """

    initial: float
    cap: float
    low: float = 0.5
    high: float = 1.0
    attempts: int = 0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay in seconds before retry number *attempt* (0 for the first)."""
        base = min(self.cap, self.initial * 2 ** max(attempt, 0))
        # Jitter, not cryptography.
        return float(base * (rng or random).uniform(self.low, self.high))

    def next(self) -> float:
        """The next delay in seconds of the running count."""
        delay = self.delay(self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Start again from *initial*."""
        self.attempts = 0
