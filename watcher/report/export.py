"""The originals behind a report: every listed mail fetched again through its MailSource and
written as ``.eml`` (0600) with a ``SHA256SUMS`` file."""

from __future__ import annotations

import logging
import os
import re
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


def _write_eml(directory: Path, mail: MailRow, raw: bytes) -> Path:
    path = directory / eml_name(mail)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    return path


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
    directory.mkdir(parents=True, exist_ok=True)
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
            results.append(Exported(mail, _write_eml(directory, mail, raw), None))
    finally:
        sources.close()
    sums = sorted(f"{r.mail.sha256}  {r.path.name}" for r in results if r.path is not None)
    if sums:
        (directory / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="ascii")
    for r in results:
        if r.problem:
            log.warning("not exported: %s", r.problem)
    return results
