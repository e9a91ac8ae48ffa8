"""meta-watcher: watch mailboxes for Meta's AI-training privacy mails and track GDPR objections.

Data flows one way: source -> parse -> classify -> authenticate -> status -> store -> notify.
"""

__version__ = "0.1.0"
