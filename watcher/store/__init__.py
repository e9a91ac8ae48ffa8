"""The SQLite log, the only package with SQL: schema.py (migrations), rows.py (the row
types), store.py (opening, transactions, cursors, recording and reclassifying), messages.py
(the messages table's writes), transitions.py (replaying an account's status), queries.py
(reading back) and outbox.py (the notification outbox)."""
