"""Edits of a config file that keep what its owner wrote: comments, key order, quoting and blank
lines survive (ruamel.yaml's round-trip mode). The only module that imports ruamel.yaml.

``init`` uses it to add an account to the ``accounts:`` list wherever that list stands in the
file (a ``notify:`` block after it is common) and to add trusted authserv-ids.
"""

from __future__ import annotations

import io

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from watcher.errors import ConfigError


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long command line
    # The layout init writes: "accounts:\n  - name: x\n    host: y".
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _load(text: str, where: str) -> CommentedMap:
    try:
        doc = _yaml().load(text)
    except YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None
    if doc is None:
        return CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ConfigError(f"{where} must be a YAML mapping (key: value lines)")
    return doc


def _dump(doc: CommentedMap) -> str:
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def _block_list(doc: CommentedMap, key: str, where: str) -> CommentedSeq:
    """The list under *key*, created (at the end) when missing or empty; block style."""
    seq = doc.get(key)
    if seq is None:
        seq = CommentedSeq()
        doc[key] = seq
    if not isinstance(seq, CommentedSeq):
        raise ConfigError(f"{where}: {key} must be a list")
    return seq


def add_account(text: str, block: str, comment: str, where: str) -> str:
    """Return config *text* with one more ``accounts:`` entry.

    *block* is the YAML text of one list item (``  - name: ...`` with its comment lines, as
    :func:`watcher.cli.init_file.account_block` writes it without its leading comment); *comment*
    goes on the line(s) above the new item. The list may stand anywhere in the file, be
    ``accounts: []`` or be missing. Raises :class:`ConfigError` (naming *where*) when *text* is
    not a YAML mapping or ``accounts`` is not a list.
    """
    doc = _load(text, where)
    seq = _block_list(doc, "accounts", where)
    item = _load("accounts:\n" + block, "the new account")["accounts"][0]
    seq.fa.set_block_style()
    seq.append(item)
    if comment:
        seq.yaml_set_comment_before_after_key(len(seq) - 1, before=comment, indent=2)
    return _dump(doc)


def add_trusted_ids(text: str, ids: list[str], where: str) -> tuple[str, list[str]]:
    """Return (*text* with each of *ids* in ``trusted_authserv_ids``, the ids added).

    Ids already listed (compared case-insensitively, as RFC 8601 §2.5 compares authserv-ids)
    are not repeated; when none is new, *text* comes back unchanged.
    """
    doc = _load(text, where)
    seq = doc.get("trusted_authserv_ids")
    have = {str(v).lower() for v in seq} if isinstance(seq, list) else set()
    new = [i for i in dict.fromkeys(ids) if i.lower() not in have]
    if not new:
        return text, []
    seq = _block_list(doc, "trusted_authserv_ids", where)
    seq.extend(new)
    return _dump(doc), new


def names(text: str, where: str) -> list[str]:
    """The ``name`` of every ``accounts:`` and ``local:`` entry in config *text*, as written
    (the config requires them unique across both lists). Entries without a name, and lists
    that are not lists, are skipped: loading the config reports those. Raises
    :class:`ConfigError` (naming *where*) when *text* is not a YAML mapping."""
    doc = _load(text, where)
    found: list[str] = []
    for key in ("accounts", "local"):
        seq = doc.get(key)
        if isinstance(seq, list):
            found += [str(e["name"]) for e in seq if isinstance(e, dict) and "name" in e]
    return found


def trusted_ids(text: str, where: str) -> list[str]:
    """The ``trusted_authserv_ids`` of config *text* (empty when missing or not a list).
    Raises :class:`ConfigError` (naming *where*) when *text* is not a YAML mapping."""
    seq = _load(text, where).get("trusted_authserv_ids")
    return [str(v) for v in seq] if isinstance(seq, list) else []
