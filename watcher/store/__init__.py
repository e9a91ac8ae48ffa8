"""The SQLite log, the only package with SQL: schema.py (migrations), rows.py (the row
types), store.py (opening, recording, reclassifying), queries.py (reading back) and outbox.py
(the notification outbox)."""
