"""An IMAP account as a MailSource: the new mail of each folder since its cursor, and a
recorded message fetched again (for ``report --export-eml``).

A folder is first asked for its UIDVALIDITY and UIDNEXT with STATUS: when both match the
cursor nothing is new and the folder is not opened. Otherwise it is opened with EXAMINE, the
new UIDs are searched in ranges (search.py) and the candidates fetched in batches on a
read-ahead thread, so the server searches and sends while the caller classifies.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

from imapclient import IMAPClient

from watcher.config import Account
from watcher.errors import MessageGoneError, ServerError, WatcherError
from watcher.sources.base import Cursor, MessageRef, RawMessage, Scan, SourceKey
from watcher.sources.imap.client import CONNECTION_ERRORS, connect, drop, logout
from watcher.sources.imap.folders import (
    FETCH_BATCH,
    FolderState,
    examine,
    fetch_header,
    fetch_messages,
    folder_status,
    highest_uid,
    junk_folders,
    uids_with_message_id,
    unselect,
)
from watcher.sources.imap.guard import literal_refused
from watcher.sources.imap.readahead import read_ahead
from watcher.sources.imap.search import SearchPlan, candidate_uids

log = logging.getLogger(__name__)

# Messages per server-side search during a scan: a 50,000-message first scan is searched in
# 7 ranges, all but the first while earlier mail is being classified.
SEARCH_RANGE = 8192
# Messages fetched ahead of classification (one FETCH batch): bounds memory.
READ_AHEAD_MESSAGES = 50
# A fetch of a message asked for again has no size limit: the evidence is the whole mail.
NO_SIZE_LIMIT = 1 << 62

# The spam folders of an account are listed again after this long (a folder created or
# renamed meanwhile is then watched too); per account identity, shared by this process.
JUNK_LIST_SECONDS = 3600.0
_JUNK_CACHE: dict[str, tuple[float, tuple[str, ...]]] = {}
_JUNK_LOCK = threading.Lock()


class ImapAccount:
    """The folders of one IMAP account, read-only.

    *plan* (the search) and *wanted* (a test on a candidate's raw ``From:`` field: False skips
    its body) are needed for :meth:`new_messages`; messages over *max_bytes* are fetched as
    headers only. With *client* (from :func:`connect`) the account reuses that connection,
    leaves every folder unselected after reading it and does not log out, so a poll that finds
    nothing costs one STATUS per folder; without it the account connects when first used and
    logs out on :meth:`close`.
    """

    def __init__(
        self,
        account: Account,
        plan: SearchPlan | None = None,
        wanted: Callable[[bytes], bool] | None = None,
        max_bytes: int = NO_SIZE_LIMIT,
        client: IMAPClient | None = None,
    ) -> None:
        self.account = account
        self._plan = plan
        self._wanted = wanted
        self._max_bytes = max_bytes
        self._client = client
        self._own = client is None
        # For fetch_original: the folder selected last, and failures not worth retrying.
        self._selected: tuple[str, FolderState] | None = None
        self._broken: WatcherError | None = None
        self._folder_errors: dict[str, WatcherError] = {}
        self._junk: tuple[str, ...] | None = None
        # The connection was aborted by a read bound (guard.py) and must be replaced.
        self._dead = False

    @property
    def name(self) -> str:
        """The account's name in the config."""
        return self.account.name

    @property
    def identity(self) -> str:
        """``user@host[:port]``: whose mail this is (Account.identity)."""
        return self.account.identity

    @property
    def folders(self) -> tuple[str, ...]:
        """The folders the config names for the account, then (unless ``junk: false``) its
        spam folders not named there (:meth:`junk_folders`)."""
        configured = self.account.folders
        return configured + tuple(f for f in self.junk_folders() if f not in configured)

    def junk_folders(self) -> tuple[str, ...]:
        """The account's spam folders (RFC 6154 ``\\Junk`` or a provider's name for it); ()
        with ``junk: false``. Asked with LIST at most once per JUNK_LIST_SECONDS per account
        identity in this process (a poll with nothing new stays one STATUS per folder);
        connects when needed."""
        if not self.account.junk:
            return ()
        if self._junk is None:
            identity, now = self.account.identity, time.monotonic()
            with _JUNK_LOCK:
                known = _JUNK_CACHE.get(identity)
            if known is not None and now - known[0] < JUNK_LIST_SECONDS:
                self._junk = known[1]
            else:
                self._junk = tuple(junk_folders(self.client))
                with _JUNK_LOCK:
                    _JUNK_CACHE[identity] = (now, self._junk)
        return self._junk

    @property
    def client(self) -> IMAPClient:
        """The connection, opened on first use, and opened again when a read bound aborted
        the last one (ServerError, LoginError, SecretError)."""
        if self._dead and self._client is not None:
            drop(self._client)
            self._client = None
        self._dead = False
        if self._client is None:
            self._client = connect(self.account)
        return self._client

    def close(self) -> None:
        """Log out, unless the connection was handed in (one a read bound aborted is closed
        without LOGOUT)."""
        if self._own and self._client is not None:
            client, self._client = self._client, None
            if self._dead:
                drop(client)
            else:
                logout(client)

    def __enter__(self) -> ImapAccount:
        _ = self.client
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ new mail

    def new_messages(self, folder: str, cursor: Cursor | None) -> Scan:
        """The messages of *folder* after *cursor* that the search picks (and *wanted*
        keeps), with the cursor to record once they are processed: (UIDVALIDITY, highest UID
        now in the folder). A changed UIDVALIDITY rescans the folder from UID 1.

        Raises WatcherError (FolderError for a missing folder) or CONNECTION_ERRORS.
        """
        assert self._plan is not None, "new_messages needs a SearchPlan"
        client = self.client
        status = folder_status(client, folder)
        if (
            status is not None
            and status.uidnext is not None
            and cursor is not None
            and cursor.uidvalidity == status.uidvalidity
            and cursor.last_uid + 1 >= status.uidnext
        ):
            return Scan()  # nothing new: no EXAMINE, SEARCH or FETCH
        state = examine(client, self.account, folder)
        release = None if self._own else (lambda: unselect(client))
        try:
            return self._scan(client, folder, state, cursor, self._plan, release)
        except BaseException:
            if release is not None:
                release()
            raise

    def _scan(
        self,
        client: IMAPClient,
        folder: str,
        state: FolderState,
        cursor: Cursor | None,
        plan: SearchPlan,
        release: Callable[[], None] | None,
    ) -> Scan:
        account = self.account
        if cursor is None or cursor.uidvalidity != state.uidvalidity:
            if cursor is not None:
                log.warning(
                    "account %s folder %s: UIDVALIDITY changed (%d -> %d); rescanning, "
                    "mail already recorded is recognised by Message-ID",
                    account.name,
                    folder,
                    cursor.uidvalidity,
                    state.uidvalidity,
                )
            start = 1
        else:
            start = cursor.last_uid + 1
        if state.uidnext is not None and start >= state.uidnext:
            return Scan(on_close=release)  # nothing new
        highest = highest_uid(client, state, start)
        if highest < start:
            return Scan(on_close=release)
        uidvalidity = state.uidvalidity
        junk = folder in (self._junk or ())

        def key_for(uid: int) -> SourceKey:
            return SourceKey(account.name, account.identity, folder, uidvalidity, uid, junk)

        # A big scan is searched in UID ranges, so the server searches the next range while
        # the mail of the previous one is classified. Ranges count messages, not UID numbers:
        # a folder whose few UIDs are spread up to 2^32 is searched once.
        ranges = max(
            1,
            min(
                _ceil_div(highest - start + 1, SEARCH_RANGE), _ceil_div(state.exists, SEARCH_RANGE)
            ),
        )
        step = _ceil_div(highest - start + 1, ranges)

        def fetched() -> Iterator[RawMessage]:
            for low in range(start, highest + 1, step):
                high = min(low + step - 1, highest)
                # _usable: a message over the read bounds replaces the connection.
                uids = candidate_uids(self._usable(folder, uidvalidity), plan, low, high)
                yield from self._fetch_bounded(folder, uidvalidity, key_for, uids)

        messages = read_ahead(fetched, READ_AHEAD_MESSAGES, account.timeout_seconds * 2)
        new = min(highest - start + 1, state.exists)  # UIDs may have gaps
        return Scan(messages, Cursor(uidvalidity, highest), on_close=release, total=new)

    def _fetch_bounded(
        self,
        folder: str,
        uidvalidity: int,
        key_for: Callable[[int], SourceKey],
        uids: list[int],
    ) -> Iterator[RawMessage]:
        """:func:`fetch_messages` of *uids*, in UID order, where one message the server will
        not send within the read bounds (a literal larger than announced, or than the size
        limit plus slack: guard.py) does not stop the scan: the aborted batch is fetched
        again one message at a time on a new connection, and the message that trips the
        bound again is yielded with a ``fetch_error`` (recorded with the error, the
        cursor moves past it). Other failures, and any on a connection handed in by the
        caller (which cannot be replaced here), are raised as before."""
        for offset in range(0, len(uids), FETCH_BATCH):
            batch = uids[offset : offset + FETCH_BATCH]
            yielded = False
            try:
                # One FETCH_BATCH: fetch_messages reads the whole batch before yielding any.
                for raw in fetch_messages(
                    self._usable(folder, uidvalidity), key_for, batch, self._max_bytes, self._wanted
                ):
                    yielded = True
                    yield raw
                continue
            except CONNECTION_ERRORS as exc:
                reason = literal_refused(exc)
                if reason is None or not self._own or yielded:
                    raise
                self._dead = True
            log.info(
                "account %s folder %s: %s; fetching the %d message(s) of that batch one by one",
                self.name,
                folder,
                reason,
                len(batch),
            )
            for uid in batch:
                yield from self._fetch_alone(folder, uidvalidity, key_for, uid)

    def _fetch_alone(
        self,
        folder: str,
        uidvalidity: int,
        key_for: Callable[[int], SourceKey],
        uid: int,
    ) -> Iterator[RawMessage]:
        """Fetch *uid* on its own (reconnecting first when the connection was aborted); when
        the server again sends a literal over the bounds, yield it with a ``fetch_error`` and
        its header if that can be had within HEADER_LIMIT."""
        try:
            got = list(
                fetch_messages(
                    self._usable(folder, uidvalidity),
                    key_for,
                    [uid],
                    self._max_bytes,
                    self._wanted,
                )
            )
        except CONNECTION_ERRORS as exc:
            reason = literal_refused(exc)
            if reason is None:
                raise
            self._dead = True
        else:
            yield from got
            return
        key = key_for(uid)
        log.warning("%s: %s; recorded with this error and not fetched again", key.label(), reason)
        header, internal_at = b"", None
        try:
            header, internal_at = fetch_header(self._usable(folder, uidvalidity), uid)
        except CONNECTION_ERRORS as exc:
            if literal_refused(exc) is None:
                raise
            self._dead = True  # recorded without its header
        yield RawMessage(key, header, internal_at, fetch_error=f"not fetched: {reason}")

    def _usable(self, folder: str, uidvalidity: int) -> IMAPClient:
        """The connection, replaced (connect, EXAMINE *folder*) when a read bound aborted the
        last one. Raises ServerError when the folder's UIDVALIDITY changed meanwhile (the
        UIDs asked for no longer name the same mail; the next poll rescans)."""
        if not self._dead:
            return self.client
        client = self.client
        state = examine(client, self.account, folder)
        if state.uidvalidity != uidvalidity:
            raise ServerError(
                f"account {self.name} folder {folder!r}: UIDVALIDITY changed during the scan "
                f"({uidvalidity} -> {state.uidvalidity}); trying again at the next poll"
            )
        return client

    # ------------------------------------------------------------------ evidence

    def fetch_original(self, ref: MessageRef) -> bytes:
        """Fetch the recorded message *ref* again (EXAMINE and BODY.PEEK: read-only): by UID
        while the folder's UIDVALIDITY is unchanged, else, or when that UID holds other mail,
        by Message-ID. Returns the bytes whose SHA-256 is ``ref.sha256``.

        Raises MessageGoneError when the folder no longer holds it; the WatcherError of a
        failed login or a missing folder (remembered: asking again does not retry); a
        ServerError once the connection is lost (for this and every later call).
        """
        if self._broken is not None:
            raise self._broken
        folder = ref.key.folder
        try:
            client = self.client
        except WatcherError as exc:
            self._broken = exc
            raise
        if folder in self._folder_errors:
            raise self._folder_errors[folder]
        try:
            state = self._examined(client, folder)
            uids = [ref.key.uid] if state.uidvalidity == ref.key.uidvalidity else []
            if ref.message_id:
                found = uids_with_message_id(client, ref.message_id)
                uids += [u for u in found if u not in uids]

            def key_for(uid: int) -> SourceKey:
                return SourceKey(self.name, self.identity, folder, state.uidvalidity, uid)

            for raw in fetch_messages(client, key_for, uids, NO_SIZE_LIMIT):
                if hashlib.sha256(raw.raw).hexdigest() == ref.sha256:
                    return raw.raw
        except CONNECTION_ERRORS as exc:
            self._broken = ServerError(
                f"account {self.name}: connection lost ({type(exc).__name__})"
            )
            raise self._broken from None
        raise MessageGoneError(f"account {self.name}: folder {folder!r} no longer holds this mail")

    def _examined(self, client: IMAPClient, folder: str) -> FolderState:
        if self._selected is not None and self._selected[0] == folder:
            return self._selected[1]
        try:
            state = examine(client, self.account, folder)  # EXAMINE: read-only
        except WatcherError as exc:
            self._folder_errors[folder] = exc
            raise
        self._selected = (folder, state)
        return state


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
