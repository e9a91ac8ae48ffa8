"""The classification contract: every mail in tests/corpus agrees with expected.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher.config import package_file
from watcher.pipeline.process import Settings, process
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources.base import RawMessage, SourceKey

CORPUS = Path(__file__).parent / "corpus"
MANIFEST: dict[str, Any] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
SETTINGS = Settings(trusted_authserv_ids=tuple(MANIFEST["trusted_authserv_ids"]))


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def test_manifest_covers_every_corpus_file() -> None:
    files = {p.name for p in CORPUS.glob("*.eml")}
    assert files == set(MANIFEST["messages"])


@pytest.mark.parametrize("name", sorted(MANIFEST["messages"]))
def test_corpus_message_matches_its_labels(name: str, pack: RulePack) -> None:
    expected = MANIFEST["messages"][name]
    raw = RawMessage(SourceKey("corpus", "corpus", name, 0, 1), (CORPUS / name).read_bytes())
    outcome = process(raw, pack, SETTINGS)
    assert outcome.match.kind == expected["kind"]
    assert outcome.suspicious is expected["suspicious"]
    assert outcome.verdict.result == expected["authenticity"], outcome.verdict.reasons
    assert outcome.match.account == expected["account"]
    assert outcome.fields == (expected["fields"] or {})
    if expected["kind"] != "other":
        assert outcome.match.platform == expected["platform"]
        assert outcome.match.language == expected["language"]
    # Only authentic privacy mail may ever move a status.
    assert outcome.counted is (
        expected["kind"] not in ("other", "unrecognized") and expected["authenticity"] == "pass"
    )


def test_scan_json_agrees_with_manifest_for_every_message() -> None:
    """The issue's acceptance command, run as a user would."""
    files = sorted(str(p) for p in CORPUS.glob("*.eml"))
    args = ["--trusted-authserv-id", MANIFEST["trusted_authserv_ids"][0]]
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "scan", "--json", *args, *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == len(files)
    for record in records:
        expected = MANIFEST["messages"][Path(record["source"]).name]
        assert record["kind"] == expected["kind"], record["source"]
        assert record["suspicious"] is expected["suspicious"], record["source"]
        assert record["account"] == expected["account"], record["source"]
        assert record["fields"] == (expected["fields"] or {}), record["source"]
        if expected["kind"] != "other":
            assert record["platform"] == expected["platform"], record["source"]
