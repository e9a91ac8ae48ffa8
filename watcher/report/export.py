"""The originals behind a report: every listed mail fetched again through its MailSource and
written as ``.eml`` (0600) with a ``SHA256SUMS`` file, in a folder created 0700; no file is
ever written through a symlink or over another file (O_CREAT|O_EXCL|O_NOFOLLOW)."""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from watcher.config import Config
from watcher.errors import WatcherError
from watcher.report.objections import Report, mail_at
from watcher.report.words import day
from watcher.sources.base import MessageRef, SourceKey
from watcher.sources.imap import ImapAccount
from watcher.sources.mailfiles import LocalMailbox, ScannedFile
from watcher.store.rows import MailRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exported:
    """The outcome for one mail: the file written, or the problem in one sentence."""

    mail: MailRow
    path: Path | None
    problem: str | None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def eml_name(mail: MailRow) -> str:
    """``2024-06-10_facebook_policy_update_1a2b3c4d5e6f.eml``: date, platform, kind, hash."""
    parts = [day(mail_at(mail)), mail.platform or "unknown", mail.kind, mail.sha256[:12]]
    return _UNSAFE.sub("-", "_".join(parts)) + ".eml"


# Never through a link another user of the disk planted under the predictable name, and
# never over a file that is already there (O_EXCL: the name must be new; O_NOFOLLOW: a
# symlink in the last component fails instead of being followed).
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class _AlreadyThere(Exception):
    """The name exists in the folder and is not this mail's bytes in a regular file."""


def _open_folder(directory: Path) -> int:
    """The export folder opened as a directory fd (created 0700 if missing); files are then
    created relative to it, so a folder swapped for a link afterwards changes nothing.
    OSError when it is a symlink or not a folder."""
    try:
        directory.mkdir(mode=0o700, parents=True)
        created = True
    except FileExistsError:
        created = False  # the user's own folder keeps its mode
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    if created:
        os.fchmod(fd, 0o700)  # whatever the umask
    return fd


def _create(folder: int, name: str, data: bytes) -> None:
    """Write *data* to the new file *name* (0600) in *folder* (a directory fd). A regular
    file already holding exactly *data* counts as written (exporting twice into the same
    folder); anything else already there raises _AlreadyThere."""
    try:
        fd = os.open(name, _CREATE, 0o600, dir_fd=folder)
    except FileExistsError:
        st = os.lstat(name, dir_fd=folder)
        if stat.S_ISREG(st.st_mode) and st.st_size == len(data):
            rfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
            with os.fdopen(rfd, "rb") as existing:
                if existing.read() == data:
                    return
        raise _AlreadyThere(name) from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)


class Fetcher(Protocol):
    """What the export needs of a source: MailSource.fetch_original and close."""

    def fetch_original(self, ref: MessageRef) -> bytes:
        """The recorded message's bytes (MessageGoneError, or another WatcherError)."""
        ...

    def close(self) -> None:
        """Release the source."""
        ...


class _Sources:
    """The source each recorded mail came from, opened (connected) once, on first use."""

    def __init__(self, config: Config) -> None:
        self._accounts = {a.name: a for a in config.accounts}
        self._local = {s.name: s.path for s in config.local}
        self._opened: dict[str, Fetcher] = {}

    def get(self, key: SourceKey) -> Fetcher | str:
        """The source of *key*, or why there is none (one sentence)."""
        if key.source in self._opened:
            return self._opened[key.source]
        found: Fetcher
        if key.is_local and key.source in self._local:
            found = LocalMailbox(key.source, self._local[key.source])
        elif key.is_local:
            # `scan --db` records files outside the config: an .eml file's folder is its path.
            found = ScannedFile(key.source)
        elif key.source in self._accounts:
            found = ImapAccount(self._accounts[key.source])
        else:
            return f"account {key.source} is no longer in the config"
        self._opened[key.source] = found
        return found

    def close(self) -> None:
        """Close every source opened (IMAP: log out)."""
        for source in self._opened.values():
            source.close()


def export_eml(config: Config, report: Report, directory: Path) -> list[Exported]:
    """Fetch the original of every mail in *report* again through its MailSource (IMAP:
    EXAMINE and BODY.PEEK, by UID, else by Message-ID; local: the file) and write it to
    *directory* as ``.eml`` (0600), with a ``SHA256SUMS`` file. A mail is written only when
    its SHA-256 equals the recorded one, so the file is exactly the mail the report describes.
    Never raises for one mail; each problem is one sentence in the result."""
    folder = _open_folder(directory)
    try:
        return _export(config, report, directory, folder)
    finally:
        os.close(folder)


def _export(config: Config, report: Report, directory: Path, folder: int) -> list[Exported]:
    """export_eml once the folder is open (*folder* is its directory fd)."""
    mails = [m for acc in report.accounts for m in acc.mails]
    # Local mail first, then each source's mail folder by folder: one EXAMINE per folder.
    order = sorted(mails, key=lambda m: (not m.key.is_local, m.source, m.folder))
    sources = _Sources(config)
    results: list[Exported] = []
    try:
        for mail in order:
            source = sources.get(mail.key)
            if isinstance(source, str):
                results.append(Exported(mail, None, source))
                continue
            try:
                raw = source.fetch_original(mail.ref())
            except WatcherError as exc:
                results.append(Exported(mail, None, str(exc)))
                continue
            name = eml_name(mail)
            try:
                _create(folder, name, raw)
            except _AlreadyThere:
                problem = f"{directory / name} already exists and is not this mail; left alone"
                results.append(Exported(mail, None, problem))
                continue
            results.append(Exported(mail, directory / name, None))
    finally:
        sources.close()
    sums = sorted(f"{r.mail.sha256}  {r.path.name}" for r in results if r.path is not None)
    if sums:
        try:
            _create(folder, "SHA256SUMS", ("\n".join(sums) + "\n").encode("ascii"))
        except _AlreadyThere:
            log.warning("not written: %s already exists and differs", directory / "SHA256SUMS")
    for r in results:
        if r.problem:
            log.warning("not exported: %s", r.problem)
    return results
