"""Delivering notifications through Apprise (https://github.com/caronc/apprise), after commit.

The sender drains the outbox (watcher.store.outbox), one row per (notification, target): a
delivered row is marked sent (and its code erased), a failed one is retried with backoff
(watcher.backoff) while the target is down, so a restart neither loses nor repeats a
notification.

The only module using Apprise: targets are Apprise URLs from the config's ``notify`` list.
Texts are plain text (``NotifyFormat.TEXT``), so Apprise escapes them for HTML or Markdown
targets; they are cut to each target's limits at a UTF-8 character boundary.
"""

from __future__ import annotations

import html
import logging
import random
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watcher.backoff import Backoff
from watcher.clock import utc_now
from watcher.codes import mask_code
from watcher.config import NotifyTarget
from watcher.crashpoint import crash_point
from watcher.errors import ConfigError
from watcher.kinds import WARNING_EVENTS
from watcher.notify.texts import probe_notice
from watcher.store.rows import OutboxRow
from watcher.store.store import Store

if TYPE_CHECKING:
    from apprise import Apprise

log = logging.getLogger(__name__)

# Retrying a target that is down: 2 s, 4 s, 8 s ... capped at 10 minutes, +-20% jitter.
RETRY = Backoff(initial=2.0, cap=600.0, low=0.8, high=1.2)
# A notification still undelivered after this long is dropped (and logged).
GIVE_UP_SECONDS = 7 * 86400.0
# How long one delivery attempt may take (Apprise's connect and read timeouts, seconds).
SEND_TIMEOUT_SECONDS = 10.0


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut *text* so its UTF-8 encoding is at most *max_bytes*, never inside a character,
    ending with an ellipsis when cut. Byte-bounded text is also character-bounded, so this
    fits limits counted either way."""
    if max_bytes <= 0:
        return ""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    ellipsis = "…".encode()
    if max_bytes < len(ellipsis):
        return data[:max_bytes].decode("utf-8", "ignore")
    return data[: max_bytes - len(ellipsis)].decode("utf-8", "ignore").rstrip() + "…"


def fit(title: str, body: str, title_max: int, body_max: int) -> tuple[str, str]:
    """Fit *title* and *body* into a target's limits (characters per Apprise; measured here
    in UTF-8 bytes, which is never less). A target without titles (``title_max`` 0) gets the
    title as the body's first line, as Apprise does."""
    if title_max <= 0:
        merged = f"{title}\r\n{body}" if title else body
        return "", truncate_utf8(merged, body_max)
    return truncate_utf8(title, title_max), truncate_utf8(body, body_max)


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before retrying after *attempts* failed deliveries: exponential, capped,
    +-20% jitter so targets coming back are not hit by every watcher at once."""
    return RETRY.delay(attempts - 1, rng)


def _redact(text: str, target: NotifyTarget) -> str:
    url = target.url.get_secret_value()
    out = text.replace(url, target.label)
    # Drop every part of the URL that could be a token or password (path, user, query).
    for part in re.split(r"[/:@?&=#]+", url.partition("://")[2]):
        if len(part) >= 6:
            out = out.replace(part, "***")
    return " ".join(out.split())


class Sender:
    """Delivers notifications to the configured Apprise targets.

    Raises ConfigError at construction when Apprise does not understand a target URL (the
    message names the target, never the URL). Thread-safe: one send at a time.
    """

    def __init__(self, targets: Sequence[NotifyTarget]) -> None:
        # Imported here, not at the top: Apprise loads its plugins on import (0.4-0.5 s on
        # a 2-core machine), which a watcher without notify targets, and every command but
        # run and notify-test, should not pay.
        import apprise

        self._apprise = apprise
        # Apprise's own lines (URLs, per-send chatter) stay out of our log; failures are
        # captured per send and logged once, redacted, by the caller.
        logging.getLogger("apprise").propagate = False
        self._lock = threading.Lock()
        self.targets: dict[str, NotifyTarget] = {t.key: t for t in targets}
        self._objects: dict[str, Apprise] = {}
        asset = apprise.AppriseAsset(
            app_id="meta-watcher",
            app_desc="meta-watcher",
            app_url="https://github.com/",
            storage_mode="memory",
        )
        for n, target in enumerate(targets):
            obj = apprise.Apprise(asset=asset)
            url = target.url.get_secret_value()
            if "cto=" not in url and "rto=" not in url and target.scheme not in _NO_HTTP:
                # Apprise's HTTP connect/read timeouts: a dead target never blocks for long.
                sep = "&" if "?" in url else "?"
                url = f"{url}{sep}cto=4&rto={int(SEND_TIMEOUT_SECONDS)}"
            if not obj.add(url):
                raise ConfigError(
                    f"notify[{n}] ({target.label}): Apprise does not understand this "
                    f"{target.scheme}:// URL (see the Apprise wiki for its form; desktop "
                    "targets need their extra packages)"
                )
            self._objects[target.key] = obj

    def limits(self, key: str) -> tuple[int, int]:
        """(title, body) length limits of target *key* as Apprise declares them."""
        service = self._objects[key][0]
        return int(getattr(service, "title_maxlen", 250)), int(
            getattr(service, "body_maxlen", 32768)
        )

    def send(self, key: str, title: str, body: str, warning: bool = False) -> str | None:
        """Send one notification to target *key*; return None when delivered, else one
        sentence saying why not (from Apprise's log, with the URL's secrets removed)."""
        apprise = self._apprise
        target = self.targets[key]
        title_max, body_max = self.limits(key)
        title, body = fit(title, body, title_max, body_max)
        if target.scheme in _DESKTOP_MARKUP:
            # The freedesktop spec lets the daemon read the body as markup, and Apprise passes
            # plain text through unchanged: escape it so "<" or "&" in a subject shows as is.
            body = html.escape(body, quote=False)
        kind = apprise.NotifyType.WARNING if warning else apprise.NotifyType.INFO
        with self._lock, apprise.LogCapture(level=logging.WARNING) as captured:
            try:
                ok = bool(
                    self._objects[key].notify(
                        body=body,
                        title=title,
                        notify_type=kind,
                        body_format=apprise.NotifyFormat.TEXT,
                    )
                )
            except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop the sender
                return _redact(f"{type(exc).__name__} in the {target.scheme} plugin", target)
            logged = captured.getvalue()
        if ok:
            return None
        lines = [ln.split(" - ", 2)[-1] for ln in logged.splitlines() if ln.strip()]
        reason = "; ".join(dict.fromkeys(lines)) or "Apprise reported a failure"
        return _redact(reason[:300], target)

    def drain(self, store: Store, stop: threading.Event | None = None) -> DrainReport:
        """Send every due outbox row; mark each sent, failed (retried later) or dropped.

        A target that fails is not tried again in the same drain: its other rows wait for
        the retry, so a dead target costs one timeout per drain, and per-target order holds.
        """
        report = DrainReport()
        down: set[str] = set()
        now = utc_now()
        for row in store.due_notifications(now):
            if stop is not None and stop.is_set():
                break
            target = self.targets.get(row.target)
            if target is None:
                store.notification_dropped(row.id, "target no longer in the config")
                log.warning("notification %d dropped: target %s is no longer configured",
                            row.id, row.target)  # fmt: skip
                report.dropped += 1
                continue
            if (now - row.created_at).total_seconds() > GIVE_UP_SECONDS:
                store.notification_dropped(row.id, "undelivered for 7 days")
                log.error(
                    "notification %d (%s) to %s dropped: undelivered for 7 days",
                    row.id,
                    row.event,
                    target.label,
                )
                report.dropped += 1
                continue
            if row.target in down:
                store.notification_failed(row.id, "target down", retry_delay(row.attempts + 1))
                continue
            crash_point("notify")
            error = self.send(row.target, *_reveal(row), warning=row.event in WARNING_EVENTS)
            if error is None:
                store.notification_sent(row.id)
                crash_point("notified")
                log.info("notified %s: %s to %s", row.event, row.title, target.label)
                report.sent += 1
            else:
                delay = retry_delay(row.attempts + 1)
                store.notification_failed(row.id, error, delay)
                log.warning(
                    "notification to %s failed (%s); retrying in %ds",
                    target.label,
                    error,
                    round(delay),
                )
                down.add(row.target)
                report.failed += 1
        return report


_DESKTOP_MARKUP = {"dbus", "kde", "qt", "glib", "gnome"}
_NO_HTTP = {"dbus", "kde", "qt", "glib", "gnome", "macosx", "windows", "mailto", "mailtos"}


def _reveal(row: OutboxRow) -> tuple[str, str]:
    if not row.secret:
        return row.title, row.body
    masked = mask_code(row.secret) or ""
    return row.title.replace(masked, row.secret), row.body.replace(masked, row.secret)


@dataclass
class DrainReport:
    """What one drain did: notifications delivered, failed (to be retried), dropped."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0


def send_test_notifications(
    targets: Sequence[NotifyTarget],
) -> list[tuple[NotifyTarget, str | None]]:
    """Send one test notification to every target; return (target, None or why it failed).

    Raises ConfigError when a URL is not understood (see :class:`Sender`).
    """
    sender = Sender(targets)
    results: list[tuple[NotifyTarget, str | None]] = []
    for target in targets:
        error = sender.send(target.key, *probe_notice(target.label, utc_now()))
        results.append((target, error))
    return results
