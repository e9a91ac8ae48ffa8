"""Where mail comes from: IMAP accounts and local Maildir/mbox/.eml files (see base.py)."""
