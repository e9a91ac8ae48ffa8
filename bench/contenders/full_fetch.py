"""Contender: fetch every message whole, in batches of 200, and pick Meta's by From.

Usage: full_fetch.py HOST PORT USER PASSWORD_FILE CA_FILE DOMAIN...
Prints ``found N``.
"""

from __future__ import annotations

import email.parser
import email.utils
import imaplib
import ssl
import sys
from pathlib import Path

BATCH = 200


def main() -> None:
    host, port, user, password_file, ca_file, *domains = sys.argv[1:]
    password = Path(password_file).read_text(encoding="utf-8").splitlines()[0]
    ctx = ssl.create_default_context(cafile=ca_file)
    imap = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx, timeout=120)
    imap.login(user, password)
    _typ, data = imap.select("INBOX", readonly=True)
    exists = int(data[0])
    parser = email.parser.BytesHeaderParser()
    found = 0
    for first in range(1, exists + 1, BATCH):
        last = min(first + BATCH - 1, exists)
        _typ, data = imap.fetch(f"{first}:{last}", "(BODY.PEEK[])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[1].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            addr = email.utils.parseaddr(str(parser.parsebytes(head).get("From", "")))[1]
            domain = addr.rpartition("@")[2].lower()
            if any(domain == d or domain.endswith("." + d) for d in domains):
                found += 1
    imap.logout()
    print(f"found {found}")


if __name__ == "__main__":
    main()
