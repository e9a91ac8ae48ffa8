"""Notifications, where the flow ends: texts.py (what to say), plan.py (what to send to which
target, and deadline reminders; pure) and apprise.py (delivery after commit, with retries)."""
