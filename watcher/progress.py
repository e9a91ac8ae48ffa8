"""Progress of long work (a first scan of a large folder): a live bar on a terminal, one
summary line per folder otherwise. The only module that imports tqdm.

Counts per folder: ``searched`` (new UIDs the server searched), ``fetched`` (candidates it
sent, which the rules then classified), ``recorded`` (privacy mail written to the log). On a
terminal the bar shows them with the rate and the time left; in a log (journald, a file, a
pipe) a bar would be noise, so each folder ends with one line instead.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)


class FolderProgress:
    """The progress of one folder's scan. Call :meth:`fetched` per message classified,
    :meth:`recorded` per message written, :meth:`close` at the end (idempotent).

    *total*: new UIDs to search (None: unknown, e.g. a local file). *bar*: draw a live bar on
    *stream*; else log one summary line at :meth:`close` (only when there was something).
    """

    def __init__(self, label: str, total: int | None, bar: bool, stream: TextIO) -> None:
        self.label = label
        self.total = total
        self.count = 0
        self.saved = 0
        self._started = time.monotonic()
        self._closed = False
        self._bar = None
        if bar:
            # Imported here: a daemon in the background never draws a bar.
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=label,
                unit=" mail",
                file=stream,
                leave=True,
                dynamic_ncols=True,
                mininterval=0.5,
            )
            self._bar.set_postfix_str(self._postfix(), refresh=False)

    def _postfix(self) -> str:
        searched = f"searched {self.total}, " if self.total is not None else ""
        return f"{searched}fetched and classified {self.count}, recorded {self.saved}"

    def fetched(self) -> None:
        """One more message fetched and classified."""
        self.count += 1
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.update(1)

    def recorded(self) -> None:
        """One more message written to the log (a privacy mail, or one worth keeping)."""
        self.saved += 1

    def close(self) -> None:
        """Finish the bar, or log the folder's summary line."""
        if self._closed:
            return
        self._closed = True
        seconds = time.monotonic() - self._started
        if self._bar is not None:
            if self.total is not None and self._bar.n < self.total:
                # The search skipped mail that cannot be Meta's: the bar ends full.
                self._bar.total = self._bar.n
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.close()
            return
        if self.count or self.total:
            rate = self.count / seconds if seconds > 0 else 0.0
            searched = f"searched {self.total} new, " if self.total is not None else ""
            log.info(
                "%s: %sfetched and classified %d, recorded %d in %.1fs (%.0f/s)",
                self.label,
                searched,
                self.count,
                self.saved,
                seconds,
                rate,
            )


class Progress:
    """Progress for a whole run: one :class:`FolderProgress` per folder. *quiet* (``-q``)
    shows nothing; otherwise a bar when *stream* (default: stderr) is a terminal."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.bar = not quiet and self.stream.isatty()

    def folder(self, label: str, total: int | None) -> FolderProgress | None:
        """Start the progress of folder *label*; None when quiet."""
        if self.quiet:
            return None
        return FolderProgress(label, total, self.bar, self.stream)


_current: Progress | None = None


def configure(quiet: bool = False, stream: TextIO | None = None) -> Progress:
    """Set how this process shows progress (``run -q``: not at all); returns it."""
    global _current
    _current = Progress(quiet, stream)
    return _current


def current_progress() -> Progress:
    """The progress set by :func:`configure`; by default bars on a terminal stderr, summary
    lines otherwise."""
    return _current if _current is not None else configure()
