"""The only package that speaks IMAP (through imapclient): connect, EXAMINE, search, fetch, IDLE.

Read-only by construction: folders are opened with EXAMINE (RFC 9051 6.3.3) and messages
fetched with ``BODY.PEEK[]`` (RFC 9051 6.4.5), which never sets ``\\Seen``; no STORE, COPY,
MOVE, EXPUNGE or APPEND is ever sent.

New mail is found by UID: a folder's cursor is (UIDVALIDITY, highest processed UID). The server
narrows the new UIDs with ``UID SEARCH`` (sender and subject words from rules.yaml); only the
hits are fetched, in batches. When the server refuses ``SEARCH CHARSET UTF-8``, the search is
retried with the ASCII words only; when that fails too, the From and Subject headers of the
new UIDs are fetched in bulk and the candidates picked here.

Modules: ``client`` (connect, log in, keepalive), ``folders`` (EXAMINE, STATUS, FETCH),
``search`` (UID SEARCH and its fallbacks), ``idle`` (IDLE, NOOP), ``source`` (an account as a
MailSource), ``guard`` (bounds on what a server may make us read), ``readahead`` (fetching
while the caller classifies). The modules import each other, never this package; the names
below are its interface for callers outside it.
"""

from watcher.sources.imap.client import (
    CONNECTION_ERRORS,
    Client,
    connect,
    enable_keepalive,
    explain_login_failure,
    list_folders,
    list_folders_with_use,
    logout,
    missing_folder_sentence,
    same_folder,
    set_timeout,
    supports_idle,
)
from watcher.sources.imap.folders import (
    FolderState,
    examine,
    fetch_messages,
    first_uid_since,
    folder_status,
    highest_uid,
    junk_folders,
    uids_with_message_id,
    unselect,
)
from watcher.sources.imap.guard import guard_reason
from watcher.sources.imap.idle import IdleNews, idle_done, idle_start, idle_wait, noop
from watcher.sources.imap.readahead import read_ahead
from watcher.sources.imap.search import (
    MIN_SUBJECT_WORD,
    HeaderReader,
    SearchPlan,
    candidate_uids,
    search_plan,
)
from watcher.sources.imap.source import ImapAccount

__all__ = [
    "CONNECTION_ERRORS",
    "MIN_SUBJECT_WORD",
    "Client",
    "FolderState",
    "HeaderReader",
    "IdleNews",
    "ImapAccount",
    "SearchPlan",
    "candidate_uids",
    "connect",
    "enable_keepalive",
    "examine",
    "explain_login_failure",
    "fetch_messages",
    "first_uid_since",
    "folder_status",
    "guard_reason",
    "highest_uid",
    "idle_done",
    "idle_start",
    "idle_wait",
    "junk_folders",
    "list_folders",
    "list_folders_with_use",
    "logout",
    "missing_folder_sentence",
    "noop",
    "read_ahead",
    "same_folder",
    "search_plan",
    "set_timeout",
    "supports_idle",
    "uids_with_message_id",
    "unselect",
]
