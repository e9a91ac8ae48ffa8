"""Reading ahead of the caller: a generator run in a helper thread a bounded number of items
ahead, so the server searches and sends while the caller classifies (used for the FETCH
batches of a scan, watcher.sources.imap.source)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def read_ahead(
    produce: Callable[[], Iterator[T]], depth: int, join_timeout_seconds: float
) -> Iterator[T]:
    """Yield what *produce* yields, running it in a helper thread up to *depth* items ahead,
    so waiting for the network overlaps with the caller's work. An exception in *produce* is
    raised here; when the caller stops early the helper stops after its current item and is
    joined (at most *join_timeout_seconds*), so the caller may use the connection again."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in produce():
                if not put("item", item):
                    return
            put("done", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put("error", exc)

    helper = threading.Thread(target=run, name="read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        helper.join(join_timeout_seconds)
