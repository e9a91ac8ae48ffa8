"""libFuzzer-guided fuzzing (atheris) of the pure middle: parse -> classify -> authenticate.

Run: ``python tests/fuzz/atheris_parse.py -runs=100000 SEED_DIR`` with SEED_DIR holding
.eml files (tests/test_hostile_mail.py copies tests/corpus and tests/regress there). Any
exception escaping :func:`watcher.pipeline.process`, or an outcome breaking an invariant,
stops the run with a crash report and the input that caused it.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["watcher"]):
    from watcher.config import package_file
    from watcher.daemon.ingest import describe
    from watcher.pipeline.message import MAX_TEXT_CHARS
    from watcher.pipeline.process import Settings, process
    from watcher.pipeline.rules import load_rules
    from watcher.sources.base import RawMessage, SourceKey

PACK = load_rules(package_file("rules.yaml"))
SETTINGS = Settings(trusted_authserv_ids=("mx.home.example",), max_message_bytes=1 << 20)
KEY = SourceKey("fuzz", "fuzz", "", 0, 1)


def one_input(data: bytes) -> None:
    """Process *data* as a raw message and check what must hold for any bytes."""
    outcome = process(RawMessage(KEY, data), PACK, SETTINGS)
    msg = outcome.message
    if len(msg.text) > MAX_TEXT_CHARS:
        raise AssertionError("text longer than MAX_TEXT_CHARS")
    if outcome.counted and (outcome.suspicious or outcome.verdict.result != "pass"):
        raise AssertionError("an unauthenticated mail was counted")
    if outcome.mail_at is not None and not 1990 <= outcome.mail_at.year <= 2100:
        raise AssertionError(f"implausible mail date {outcome.mail_at}")
    for text in (msg.subject, msg.from_name, msg.from_addr, msg.message_id or "", msg.text):
        text.encode("utf-8")  # SQLite stores UTF-8: a lone surrogate would fail the insert
    if "\n" in describe(outcome):
        raise AssertionError("a log line spans lines")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
