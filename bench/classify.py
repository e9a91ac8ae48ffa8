"""Benchmark: messages per second per core through parse + classify + authenticate + extract
(``watcher.pipeline.process``), against a floor of ``email.message_from_bytes`` plus
HTML-to-text only, over tests/corpus repeated to N messages (default 10,000).

Single process, single thread; CPU time (``time.process_time``) so the figure is per core.
One warm-up pass over the corpus runs first (imports, compiled rules, date-locale data).

Run: ``python bench/classify.py [--messages 10000] [--profile]``
"""

from __future__ import annotations

import argparse
import email
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CORPUS = REPO / "tests" / "corpus"


def corpus() -> list[bytes]:
    """Every .eml of the corpus, in name order."""
    return [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]


def floor(raw: bytes) -> str:
    """The least a classifier must do: parse the MIME tree, decode the text parts, and turn
    HTML into text (BeautifulSoup with lxml, the library the watcher uses)."""
    from bs4 import BeautifulSoup

    msg = email.message_from_bytes(raw)
    out = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = payload.decode(part.get_content_charset() or "utf-8", "replace")
        out.append(BeautifulSoup(text, "lxml").get_text(" ") if ctype == "text/html" else text)
    return "\n".join(out)


def rate(func: Callable[[bytes], object], messages: list[bytes]) -> tuple[float, float]:
    """(messages per CPU second, messages per wall second) of *func* over *messages*."""
    for raw in messages[: len(CORPUS_CACHE)]:
        func(raw)  # warm-up pass
    c0, w0 = time.process_time(), time.perf_counter()
    for raw in messages:
        func(raw)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return len(messages) / cpu, len(messages) / wall


CORPUS_CACHE: list[bytes] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the pipeline run")
    args = parser.parse_args()

    from watcher.config import package_file
    from watcher.pipeline.message import parse
    from watcher.pipeline.process import Settings, process
    from watcher.pipeline.rules import load_rules
    from watcher.sources.base import RawMessage, SourceKey

    CORPUS_CACHE[:] = corpus()
    messages = [CORPUS_CACHE[i % len(CORPUS_CACHE)] for i in range(args.messages)]
    pack = load_rules(package_file("rules.yaml"))
    settings = Settings(trusted_authserv_ids=("mx.home.example",))
    key = SourceKey("bench", "bench", "", 0, 1)

    def pipeline(raw: bytes) -> object:
        return process(RawMessage(key, raw), pack, settings)

    if args.profile:
        from pyinstrument import Profiler

        with Profiler() as profiler:
            for raw in messages:
                pipeline(raw)
        profiler.print(show_all=False)
        return

    avg = sum(len(m) for m in messages) / len(messages)
    print(
        f"{len(messages)} messages (tests/corpus x {len(messages) / len(CORPUS_CACHE):.0f}, "
        f"average {avg / 1024:.1f} KiB)"
    )
    floor_cpu, floor_wall = rate(floor, messages)
    parse_cpu, _ = rate(parse, messages)
    full_cpu, full_wall = rate(pipeline, messages)
    print(f"floor: message_from_bytes + HTML-to-text    {floor_cpu:8.0f} msg/s per core")
    print(f"watcher parse (message.parse)               {parse_cpu:8.0f} msg/s per core")
    print(
        f"watcher parse+classify+authenticate+extract {full_cpu:8.0f} msg/s per core "
        f"({1000 / full_cpu:.2f} ms each)"
    )
    print(
        f"pipeline time / floor time: {floor_cpu / full_cpu:.2f}x "
        f"(target <= 2x); pipeline rate: {full_cpu:.0f} msg/s (target >= 500)"
    )
    print(f"(wall: floor {floor_wall:.0f} msg/s, pipeline {full_wall:.0f} msg/s)")


if __name__ == "__main__":
    main()
