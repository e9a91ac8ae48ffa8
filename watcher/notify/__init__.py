"""Notifications, where the flow ends: texts.py (what to say), plan.py (what to send to which
target, and deadline reminders; pure), apprise.py (delivery after commit, with retries), and
Home Assistant over MQTT: mqtt.py (the broker connection) with discovery.py (its topics and
payloads)."""
