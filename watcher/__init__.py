"""meta-watcher: watch mailboxes for Meta's AI-training privacy mails and track GDPR objections.

Data flows one way: source -> parse -> classify -> authenticate -> status -> store -> notify,
and so do the packages: sources/ -> pipeline/ -> store/ -> notify/, run by daemon/ and cli/.
"""

__version__ = "0.1.0"
