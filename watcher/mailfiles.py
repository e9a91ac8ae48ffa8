"""Local mail sources: a single ``.eml`` file, an mbox file, or a Maildir folder.

Read with the standard ``mailbox`` package; nothing is ever written back. Each message becomes a
:class:`RawMessage` whose key is (source name, ``local:<source name>``, item, 0, index): ``item``
is the Maildir key (stable when a file moves between ``new`` and ``cur``), ``<path>#N`` for the
N-th message of an mbox (1-based), or the path of an ``.eml``. The identity is the configured
source name, not the path, so moving the files does not make their mail new again (mail already
recorded is recognised by Message-ID or content).
"""

from __future__ import annotations

import logging
import mailbox
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from watcher.errors import ConfigError
from watcher.pipeline import RawMessage, SourceKey

log = logging.getLogger(__name__)

_UTF8_BOM = b"\xef\xbb\xbf"
# "From  : John Doe" (white space before the colon, RFC 5322 §4.5.3) is a header field, not an
# mbox From_ line.
_OBS_FROM_FIELD = re.compile(rb"From[ \t]*:")
# How much of a file tells its line ends: a CR-only file (classic Mac OS) has no LF in it.
_PROBE_BYTES = 64 * 1024


def kind_of(path: Path) -> str:
    """Return ``maildir``, ``mbox`` or ``eml`` for *path*; raises ConfigError if unreadable.

    A file is an mbox when it starts with "From " (after a UTF-8 byte-order mark, if any) and
    that is not the obsolete header form "From  :" (RFC 5322 §4.5.3)."""
    if path.is_dir():
        if any((path / sub).is_dir() for sub in ("cur", "new")):
            return "maildir"
        raise ConfigError(
            f"{display_path(path)} is a folder but not a Maildir (no cur/ or new/ inside)"
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(256)
    except FileNotFoundError:
        raise ConfigError(f"{display_path(path)} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{display_path(path)} cannot be read ({type(exc).__name__})") from None
    head = head.removeprefix(_UTF8_BOM)
    return "mbox" if head.startswith(b"From ") and not _OBS_FROM_FIELD.match(head) else "eml"


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def read_source(path: Path, source: str = "scan") -> Iterator[RawMessage]:
    """Yield every message in the ``.eml``, mbox or Maildir at *path*, in a stable order.

    Raises ConfigError when *path* is missing or not mail. A single unreadable message in a
    Maildir is logged and skipped; the rest are read.
    """
    kind = kind_of(path)
    identity = f"local:{source}"
    where = display_path(path.resolve())
    if kind == "eml":
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{display_path(path)} cannot be read ({type(exc).__name__})"
            ) from None
        yield RawMessage(SourceKey(source, identity, where, 0, 1), raw, _mtime(path))
        return
    if kind == "mbox":
        for index, message in enumerate(_mbox_messages(path), start=1):
            key_ = SourceKey(source, identity, f"{where}#{index}", 0, index)
            yield RawMessage(key_, message)
        return
    yield from _read_maildir(path, source, identity)


def _mbox_messages(path: Path) -> Iterator[bytes]:
    """The messages of the mbox file *path*, without their From_ lines, in file order.

    An ordinary mbox is read with the ``mailbox`` package (one message in memory at a time). A
    file that starts with a UTF-8 byte-order mark, or has CR-only line ends, is read whole and
    split here: ``mailbox`` would lose the first message behind the mark, and read a CR-only
    file as one line. Raises OSError when the file cannot be read.
    """
    with path.open("rb") as handle:
        probe = handle.read(_PROBE_BYTES)
    cr_only = b"\r" in probe and b"\n" not in probe
    if not probe.startswith(_UTF8_BOM) and not cr_only:
        box = mailbox.mbox(path, create=False)
        for key in box.iterkeys():
            yield box.get_bytes(key)
        return
    data = path.read_bytes().removeprefix(_UTF8_BOM)
    if cr_only:
        data = re.sub(rb"\r(?!\n)", b"\n", data)
    yield from split_mbox(data)


def split_mbox(data: bytes) -> Iterator[bytes]:
    """Split mbox *data* (LF or CRLF line ends) into messages like ``mailbox.mbox`` does: a
    line starting with "From " starts a message and is not part of it, the empty line before
    it ends the previous one, and anything before the first From_ line is no message."""
    lines = data.splitlines(keepends=True)
    current: list[bytes] | None = None
    for line in lines:
        if line.startswith(b"From "):
            if current is not None:
                yield _without_separator(current)
            current = []
        elif current is not None:
            current.append(line)
    if current is not None:
        yield _without_separator(current)


def _without_separator(lines: list[bytes]) -> bytes:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def display_path(path: Path) -> str:
    """*path* as valid UTF-8 text: undecodable bytes in file names become U+FFFD, so a path
    can always be logged, stored in SQLite and printed as JSON."""
    return os.fsencode(path).decode("utf-8", "replace")


def _read_maildir(path: Path, source: str, identity: str) -> Iterator[RawMessage]:
    # Listed by hand rather than with mailbox.Maildir: that class fails when tmp/ or new/ is
    # missing (common in exports and git checkouts) and treats dotfiles as messages.
    files: dict[str, Path] = {}
    for sub in ("new", "cur"):
        folder = path / sub
        if folder.is_dir():
            for file in folder.iterdir():
                if file.is_file() and not file.name.startswith("."):
                    files.setdefault(display_path(Path(file.name)).split(":", 1)[0], file)
    for index, key in enumerate(sorted(files), start=1):
        file = files[key]
        try:
            raw = file.read_bytes()
        except OSError as exc:
            log.warning(
                "Maildir %s: message %s cannot be read (%s)",
                display_path(path),
                key,
                type(exc).__name__,
            )
            continue
        yield RawMessage(SourceKey(source, identity, key, 0, index), raw, _mtime(file))
