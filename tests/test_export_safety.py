"""`report --export-eml DIR` on a shared disk: a symlink planted in DIR under the predictable
file name must not be written through (issue 12, item 8)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from test_report import _sums, corpus_db, mw  # noqa: F401  (corpus_db is a fixture)


def test_export_eml_never_writes_through_a_planted_symlink(corpus_db: Path, tmp_path: Path) -> None:  # noqa: F811
    args = ["report", "--config", str(corpus_db), "--account", "anna.insta@example.org"]
    first = tmp_path / "first"
    mw(*args, "--export-eml", str(first))
    names = sorted(_sums(first))
    assert names
    assert stat.S_IMODE(first.stat().st_mode) == 0o700

    # Another user of the disk plants the names in the folder before the export.
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o700)
    for name in [*names, "SHA256SUMS"]:
        (planted / name).symlink_to(victim)
    done = mw(*args, "--export-eml", str(planted), expect=1)
    assert victim.read_text() == "precious\n"  # nothing written through any link
    assert all((planted / n).is_symlink() for n in [*names, "SHA256SUMS"])
    assert "exported 0 of" in done.stderr
    assert "already exists" in done.stderr

    # Exporting again into the same folder keeps the identical files and says so.
    again = mw(*args, "--export-eml", str(first))
    assert f"exported {len(names)} of {len(names)} mail(s)" in again.stderr
    for name in names:
        assert stat.S_IMODE(os.lstat(first / name).st_mode) == 0o600
