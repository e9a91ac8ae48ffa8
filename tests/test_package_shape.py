"""The shape issue 11 asks of the IMAP and daemon packages, read from the source by
bench/import_graph.py (nothing is imported): no import circle anywhere in the package (the
IMAP modules import each other, never their own package), and no module of the package over
400 lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def _graph() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "import_graph.py"), "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    graph = json.loads(out.stdout)
    assert isinstance(graph, dict)
    return graph


def test_no_import_circles() -> None:
    graph = _graph()
    assert graph["circles"] == []
    assert graph["package_circles"] == []


def test_imap_modules_never_import_their_own_package() -> None:
    for path in sorted((REPO / "watcher" / "sources" / "imap").glob("*.py")):
        if path.name == "__init__.py":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            assert not line.startswith("from watcher.sources.imap import"), (path.name, line)
            assert line.strip() != "from watcher.sources import imap", (path.name, line)


def test_no_module_of_the_package_is_over_400_lines() -> None:
    paths = sorted((REPO / "watcher").rglob("*.py"))
    assert len(paths) > 100
    for path in paths:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_LINES, f"{path.relative_to(REPO)}: {lines} lines"
