"""A built rule pack kept between runs, so that a run starts without validating and compiling
rules.yaml again.

Building the pack (:func:`watcher.pipeline.rules.load.load_rules`: YAML, pydantic validation,
865 phrases compiled to check them) takes about 0.6 s on the 2-core test machine, more than
the rest of a first scan of 5,000 messages (``bench/first_scan.py``). After a full build the
pack is pickled to ``<cache dir>/rules/<key>.pickle``; the key is a SHA-256 of everything the
build depends on: the bytes and resolved paths of the rules files, the package version, the
Python version, and the size and modification time of the rules code. A pack read back holds
each phrase's source and required words, not its compiled pattern (:class:`Phrase` compiles on
first use), so it loads in a few milliseconds and only the phrases some mail could match are
ever compiled. The entry also holds the CLDR month names of the pack's languages (reading them
through babel loads about 30 locale files per language), so babel is not imported either.

The cache is an optimisation only: a missing, stale, unreadable or foreign entry (not owned by
this user, or writable by others: pickle runs code, so only the user's own private files are
read) means a full build, and a cache folder that cannot be written (a read-only container)
means no cache. A rules file that does not validate is never cached, so its error is the same
sentence on every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
import time
from pathlib import Path

from watcher import __version__
from watcher.pipeline.dates import babel_stamp, cldr_month_names, remember_month_names
from watcher.pipeline.rules.pack import RulePack

log = logging.getLogger(__name__)

_FORMAT = 3  # bump when the pickled shape changes in a way the code fingerprint misses
_CODE = Path(__file__).resolve().parent  # the rules package: its code shapes the pack
_KEEP = 8  # entries kept: one per rules version in use, a few more for tests and upgrades
_STALE_TMP_SECONDS = 600  # a half-written entry older than this was left by a killed run


def pack_key(path: Path, user_paths: tuple[Path, ...]) -> str | None:
    """The hex SHA-256 naming the pack built from *path* and *user_paths*; None when a file
    cannot be read (the build then says why)."""
    digest = hashlib.sha256()
    stamp = [str(_FORMAT), __version__, sys.version, babel_stamp()]
    for module in sorted(_CODE.glob("*.py")):
        st = module.stat()
        stamp += [module.name, str(st.st_size), str(st.st_mtime_ns)]
    digest.update("\0".join(stamp).encode())
    for file in (path, *user_paths):
        try:
            data = file.read_bytes()
        except OSError:
            return None
        digest.update(b"\0" + str(file.resolve()).encode() + b"\0")
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def _private_file(path: Path) -> bool:
    """True when *path* is a regular file of this user that no one else may write."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_uid == os.getuid()
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _read(entry: Path) -> RulePack | None:
    if not _private_file(entry):
        return None
    try:
        with entry.open("rb") as handle:
            # Only this user's private file (checked above): as trusted as the code itself.
            kept = pickle.load(handle)  # noqa: S301
        pack, months, warnings = kept["pack"], kept["months"], kept["warnings"]
        if not isinstance(pack, RulePack):
            return None
        remember_month_names(months)
        notes = [(str(name), int(level), str(text)) for name, level, text in warnings]
    except Exception as exc:  # noqa: BLE001 - any broken entry means a rebuild
        log.debug("rule pack cache %s unreadable (%s): rebuilding", entry, type(exc).__name__)
        return None
    # What the build warned about (an unknown id under disable:, say) is said on every run,
    # as it was before the pack was cached.
    for name, level, text in notes:
        logging.getLogger(name).log(level, "%s", text)
    return pack


def _write(folder: Path, entry: Path, pack: RulePack, warnings: list[tuple[str, int, str]]) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_stale_tmp(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".pack-", suffix=".tmp")
        try:
            languages = {"en", *pack.languages, *pack.date_cues}
            months = {language: cldr_month_names(language) for language in sorted(languages)}
            with os.fdopen(fd, "wb") as handle:
                kept = {"pack": pack, "months": months, "warnings": warnings}
                pickle.dump(kept, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, entry)  # readers see the old entry or the whole new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        old = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in old[_KEEP:]:
            stale.unlink(missing_ok=True)
    except (OSError, pickle.PicklingError) as exc:
        log.debug("rule pack not cached in %s: %s", folder, exc)


def load_rules_cached(
    path: Path, user_paths: tuple[Path, ...] = (), cache_dir: Path | None = None
) -> RulePack:
    """The rule pack of *path* and *user_paths* (as :func:`load_rules`), read from
    ``cache_dir/rules`` when an entry for exactly these files exists, else built and written
    there. *cache_dir* None: no cache. Raises RulesError like :func:`load_rules`; never for
    the cache itself."""
    key = None if cache_dir is None else pack_key(path, user_paths)
    if cache_dir is None or key is None:
        return _build(path, user_paths)
    folder = cache_dir / "rules"
    entry = folder / f"{key}.pickle"
    pack = _read(entry)
    if pack is None:
        warnings: list[tuple[str, int, str]] = []
        pack = _build(path, user_paths, warnings)
        _write(folder, entry, pack, warnings)
    return pack


class _Collect(logging.Handler):
    """Keeps (logger name, level, message) of each warning logged while a pack is built."""

    def __init__(self, into: list[tuple[str, int, str]]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append((record.name, record.levelno, record.getMessage()))


def _build(
    path: Path, user_paths: tuple[Path, ...], warnings: list[tuple[str, int, str]] | None = None
) -> RulePack:
    # Imported only for a build: it brings YAML and pydantic, which a cached pack does without.
    from watcher.pipeline.rules.load import load_rules

    if warnings is None:
        return load_rules(path, user_paths)
    rules_log = logging.getLogger("watcher.pipeline.rules")
    collect = _Collect(warnings)
    rules_log.addHandler(collect)
    try:
        return load_rules(path, user_paths)
    finally:
        rules_log.removeHandler(collect)


def _remove_stale_tmp(folder: Path) -> None:
    """Remove half-written entries (``.pack-*.tmp``) a killed run left behind; a recent one
    may be another process's write in progress and is kept."""
    now = time.time()
    for tmp in folder.glob(".pack-*.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.lstat().st_mtime > _STALE_TMP_SECONDS:
                tmp.unlink()
