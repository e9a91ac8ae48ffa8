"""Local mail sources: a single ``.eml`` file, an mbox file, or a Maildir folder.

Read with the standard ``mailbox`` package; nothing is ever written back. Each message becomes a
:class:`RawMessage` whose key is :meth:`SourceKey.local` (source name, ``local:<source name>``,
item, index): ``item``
is the Maildir key (stable when a file moves between ``new`` and ``cur``), ``<path>#N`` for the
N-th message of an mbox (1-based), or the path of an ``.eml``. The identity is the configured
source name, not the path, so moving the files does not make their mail new again (mail already
recorded is recognised by Message-ID or content).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import mailbox
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from watcher.errors import ConfigError, MessageGoneError
from watcher.sources.base import Cursor, MessageRef, RawMessage, Scan, SourceKey

# Reads one message's bytes again (for fetch_original).
Loader = Callable[[], bytes]

log = logging.getLogger(__name__)

_UTF8_BOM = b"\xef\xbb\xbf"
# "From  : John Doe" (white space before the colon, RFC 5322 §4.5.3) is a header field, not an
# mbox From_ line.
_OBS_FROM_FIELD = re.compile(rb"From[ \t]*:")
# How much of a file tells its line ends: a CR-only file (classic Mac OS) has no LF in it.
_PROBE_BYTES = 64 * 1024


def kind_of(path: Path) -> str:
    """Return ``maildir``, ``mbox``, ``eml`` or ``eml folder`` (a folder of ``.eml`` files,
    as a mail client's "save as" leaves them) for *path*; raises ConfigError if unreadable.

    A file is an mbox when it starts with "From " (after a UTF-8 byte-order mark, if any) and
    that is not the obsolete header form "From  :" (RFC 5322 §4.5.3)."""
    if path.is_dir():
        if any((path / sub).is_dir() for sub in ("cur", "new")):
            return "maildir"
        if eml_files(path):
            return "eml folder"
        raise ConfigError(
            f"{display_path(path)} is a folder but neither a Maildir (no cur/ or new/ inside) "
            "nor a folder of .eml files"
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


def eml_files(folder: Path) -> list[Path]:
    """The ``.eml`` files directly in *folder* (any case of the suffix), sorted by name, so a
    scan reads them in the same order every time ([] when the folder cannot be listed)."""
    try:
        found = [p for p in folder.iterdir() if p.suffix.lower() == ".eml" and p.is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda p: p.name)


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
    for raw, _load in _items(path, source):
        yield raw


def _items(path: Path, source: str) -> Iterator[tuple[RawMessage, Loader]]:
    """Each message of *path* with a function that reads its bytes again."""
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
        yield (
            RawMessage(SourceKey.local(source, identity, where, 1), raw, _mtime(path)),
            (path.read_bytes),
        )
        return
    if kind == "eml folder":
        for index, file in enumerate(eml_files(path), start=1):
            try:
                raw = file.read_bytes()
            except OSError as exc:  # one unreadable file does not stop the others
                log.warning("%s cannot be read (%s); skipped", display_path(file), exc)
                continue
            item = display_path(file.resolve())
            yield (
                RawMessage(SourceKey.local(source, identity, item, index), raw, _mtime(file)),
                file.read_bytes,
            )
        return
    if kind == "mbox":
        for index, message in enumerate(_mbox_messages(path), start=1):
            key_ = SourceKey.local(source, identity, f"{where}#{index}", index)
            yield RawMessage(key_, message), functools.partial(_mbox_message_at, path, index)
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


def _mbox_message_at(path: Path, index: int) -> bytes:
    """The *index*-th (1-based) message of the mbox *path* again (for fetch_original); raises
    MessageGoneError when the file no longer has that many."""
    for number, message in enumerate(_mbox_messages(path), start=1):
        if number == index:
            return message
    raise MessageGoneError(f"{display_path(path)} no longer has message {index}")


def split_mbox(data: bytes) -> Iterator[bytes]:
    """Split mbox *data* (LF or CRLF line ends) into messages like ``mailbox.mbox`` does: a
    line starting with "From " starts a message and is not part of it, the empty line before
    it ends the previous one, and anything before the first From_ line is no message."""
    current: list[bytes] | None = None
    for line in data.splitlines(keepends=True):
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


def _read_maildir(path: Path, source: str, identity: str) -> Iterator[tuple[RawMessage, Loader]]:
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
        key_ = SourceKey.local(source, identity, key, index)
        yield RawMessage(key_, raw, _mtime(file)), file.read_bytes


class LocalMailbox:
    """A local source from the config (``local:``) as a MailSource: every message of the
    Maildir, mbox or ``.eml`` at *path*, each time (local sources keep no cursor; mail already
    recorded is recognised by Message-ID or content)."""

    def __init__(self, name: str, path: Path) -> None:
        self._name = name
        self.path = path
        self._by_sha256: dict[str, Loader] | None = None

    @property
    def name(self) -> str:
        """The source's name in the config."""
        return self._name

    @property
    def identity(self) -> str:
        """``local:<name>``: the name, not the path, so moved files are not new mail."""
        return f"local:{self._name}"

    @property
    def folders(self) -> tuple[str, ...]:
        """One folder without a name: the whole source."""
        return ("",)

    def new_messages(self, folder: str, cursor: Cursor | None) -> Scan:
        """Every message of the source (ConfigError when *path* is missing or not mail)."""
        return Scan(read_source(self.path, self._name))

    def fetch_original(self, ref: MessageRef) -> bytes:
        """The message whose SHA-256 is ``ref.sha256``, wherever it is in the source now (the
        source is read once to index it). Raises MessageGoneError, or ConfigError when the
        source cannot be read."""
        if self._by_sha256 is None:
            index: dict[str, Loader] = {}
            for raw, load in _items(self.path, self._name):
                index.setdefault(hashlib.sha256(raw.raw).hexdigest(), load)
            self._by_sha256 = index
        found = self._by_sha256.get(ref.sha256)
        data = _read(found) if found is not None else None
        if data is None or hashlib.sha256(data).hexdigest() != ref.sha256:
            raise MessageGoneError(
                f"local source {self._name} ({self.path}) no longer holds this mail"
            )
        return data

    def close(self) -> None:
        """Nothing to release: files are opened per read."""

    def __enter__(self) -> LocalMailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScannedFile:
    """An ``.eml`` file that ``scan --db`` recorded without a config entry, to fetch its
    message again: the file at the path recorded as its folder."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fetch_original(self, ref: MessageRef) -> bytes:
        """The file's bytes if they are still the recorded message; else MessageGoneError."""
        file = Path(ref.key.folder)
        data = _read(file.read_bytes) if ref.key.folder and file.is_file() else None
        if data is None or hashlib.sha256(data).hexdigest() != ref.sha256:
            where = ref.key.folder or ref.key.identity
            raise MessageGoneError(f"{self.name}: {where} is gone")
        return data

    def close(self) -> None:
        """Nothing to release."""


def _read(load: Loader) -> bytes | None:
    try:
        return load()
    except (OSError, KeyError):
        return None
