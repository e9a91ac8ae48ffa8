"""Running the flow: runner.py (one pass over every MailSource), daemon.py (the long-running
watcher), idle.py (IMAP IDLE workers), health.py (heartbeats judged), wait_code.py
(``wait-code``) and systemd.py (sd_notify)."""
