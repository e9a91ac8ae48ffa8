"""Contender: plain imaplib. Fetch From of every message in one bulk FETCH, pick those from
Meta's sender domains, then fetch those messages whole.

Usage: imaplib_headers.py HOST PORT USER PASSWORD_FILE CA_FILE DOMAIN...
Prints ``found N``.
"""

from __future__ import annotations

import email.parser
import email.utils
import imaplib
import re
import ssl
import sys
from pathlib import Path


def main() -> None:
    host, port, user, password_file, ca_file, *domains = sys.argv[1:]
    password = Path(password_file).read_text(encoding="utf-8").splitlines()[0]
    ctx = ssl.create_default_context(cafile=ca_file)
    imap = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx, timeout=120)
    imap.login(user, password)
    imap.select("INBOX", readonly=True)
    _typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (FROM)])")
    parser = email.parser.BytesHeaderParser()
    hits: list[bytes] = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        uid = re.search(rb"UID (\d+)", item[0])
        if uid is None:
            continue
        addr = email.utils.parseaddr(str(parser.parsebytes(item[1]).get("From", "")))[1]
        domain = addr.rpartition("@")[2].lower()
        if any(domain == d or domain.endswith("." + d) for d in domains):
            hits.append(uid.group(1))
    found = 0
    for offset in range(0, len(hits), 50):
        batch = b",".join(hits[offset : offset + 50]).decode()
        _typ, data = imap.uid("FETCH", batch, "(BODY.PEEK[])")
        found += sum(1 for item in data if isinstance(item, tuple))
    imap.logout()
    print(f"found {found}")


if __name__ == "__main__":
    main()
