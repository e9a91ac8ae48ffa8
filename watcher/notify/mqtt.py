"""Home Assistant over MQTT: the broker connection that publishes each account's objection
status (payloads from watcher.notify.discovery).

Standalone publisher (paho-mqtt 2, its own network thread); the daemon and the config wire it
in. Nothing here blocks the caller: the publish methods only record the latest payload per
topic and wake a sender thread, which publishes while connected. While the broker is away
only the latest payload per topic is kept, and on every (re)connect everything known is
published again, availability first, then discovery configs, then states. A broker that
restarts without persistence therefore gets the whole picture back.

The topics and payloads (Home Assistant MQTT discovery) are built by
watcher.notify.discovery; this module is the connection and the publishing.

States go out with QoS 0 on purpose: paho re-sends unacknowledged QoS 1 messages after a
reconnect, which could put an older state back after the newer one was republished; QoS 0
over TCP plus "republish everything on connect" always converges on the latest state.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from watcher.notify.discovery import OFFLINE, Discovery, Payload

if TYPE_CHECKING:
    from watcher.config import MqttSettings
    from watcher.store.store import Store

log = logging.getLogger(__name__)


class HomeAssistantPublisher:
    """Publish account statuses and code events to Home Assistant through an MQTT broker.

    *url*: ``mqtt://host[:port]`` (default port 1883) or ``mqtts://host[:port]`` (TLS,
    default 8883, certificate verified against the system CAs or *ca_file*). *username* /
    *password*: the broker login (None for anonymous; user info in the URL is used when
    these are None). *discovery_prefix*: Home Assistant's, ``homeassistant`` by default.
    *client_id*: the MQTT client id (default ``meta-watcher-<node>-<random>``).
    *node_id*: names this watcher in topics and unique ids (sanitised like object ids).
    *min_backoff* / *max_backoff*: reconnect delay in seconds, doubling from min to max
    (paho's ``reconnect_delay_set``).

    Connecting starts at once in paho's network thread and never blocks; see
    :attr:`connected` and :attr:`last_error`. Raises ValueError for a URL that is not
    mqtt:// or mqtts:// with a host (the message never contains the password).
    """

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        discovery_prefix: str = "homeassistant",
        client_id: str | None = None,
        node_id: str = "meta_watcher",
        ca_file: str | None = None,
        keepalive: int = 30,
        min_backoff: int = 1,
        max_backoff: int = 60,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"MQTT url must start with mqtt:// or mqtts://, not {parts.scheme}:")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"MQTT url for {parts.hostname}: the port is not a number") from None
        if not parts.hostname:
            raise ValueError("MQTT url has no host name")
        self.host = parts.hostname
        self.tls = parts.scheme == "mqtts"
        self.port = port or (8883 if self.tls else 1883)
        if username is None and parts.username:
            username = unquote(parts.username)
            password = unquote(parts.password) if parts.password else password
        self.discovery = Discovery(node_id, discovery_prefix)
        self.node_id = self.discovery.node_id
        self.discovery_prefix = self.discovery.discovery_prefix
        self.base_topic = self.discovery.base_topic
        self.availability_topic = self.discovery.availability_topic
        self.connected = False
        self.last_error: str | None = None
        self.connects = 0
        # Latest payload per topic (insertion order = publish order on reconnect) and the
        # topics still to send; both guarded by _changed.
        self._latest: dict[str, tuple[bytes, bool]] = {self.availability_topic: (b"online", True)}
        self._dirty: dict[str, None] = {}
        self._changed = threading.Condition()
        self._stopping = False

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"meta-watcher-{self.node_id}-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        if username is not None:
            client.username_pw_set(username, password)
        if self.tls:
            context = ssl.create_default_context(cafile=ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            client.tls_set_context(context)
        client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_backoff, max_backoff)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        self._client = client
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-publisher", daemon=True)
        self._sender.start()
        client.connect_async(self.host, self.port, keepalive=keepalive)
        client.loop_start()

    # ------------------------------------------------------------------ publishing

    def account_topics(self, platform: str, account: str) -> dict[str, str]:
        """The topics of one (platform, account); see :meth:`Discovery.account_topics`."""
        return self.discovery.account_topics(platform, account)

    def code_topics(self, account: str) -> dict[str, str]:
        """The topics of an account's latest code; see :meth:`Discovery.code_topics`."""
        return self.discovery.code_topics(account)

    def publish_account(
        self,
        platform: str,
        account: str,
        status: str | None,
        since: datetime | date | None,
        next_step: str | None,
        effective_date: date | datetime | None,
        *,
        action_needed: bool | None = None,
    ) -> str:
        """Publish one account's status; returns its object id. Never blocks.

        *status* None means no privacy mail yet (state ``no_notice``). *action_needed*
        defaults to "status is not accepted". Publishes (retained) the sensor and binary
        sensor discovery configs, the state, the attributes JSON and ``ON``/``OFF``.
        """
        obj, items = self.discovery.account_payloads(
            platform,
            account,
            status,
            since,
            next_step,
            effective_date,
            action_needed=action_needed,
        )
        self._put(items)
        return obj

    def publish_code_event(self, account: str, masked_code: str, at: datetime) -> None:
        """Publish the latest verification-code mail of *account* (received *at*). The
        caller masks the code (``73••46``) unless the user asked for codes in clear
        (``notify_codes``). Never blocks."""
        self._put(self.discovery.code_payloads(account, masked_code, at))

    def forget_account(self, platform: str, account: str) -> None:
        """Remove an account's entities from Home Assistant (empty retained configs and
        states, which also clears them on the broker). Never blocks."""
        self._put(self.discovery.forget_payloads(platform, account))

    def _put(self, items: list[Payload]) -> None:
        with self._changed:
            for topic, payload in items:
                if self._latest.get(topic) == (payload, True):
                    continue
                self._latest[topic] = (payload, True)
                self._dirty[topic] = None
            self._changed.notify_all()

    # ------------------------------------------------------------------ the sender thread

    def _send_loop(self) -> None:
        while True:
            with self._changed:
                while not self._stopping and not (self.connected and self._dirty):
                    self._changed.wait(timeout=1.0)  # bounded: the flags are re-read
                if not (self.connected and self._dirty):
                    return  # stopping, nothing that can be sent
                # On close, what was published just before still goes out (then offline).
                last = self._stopping
                batch = [(t, self._latest[t]) for t in self._dirty]
                self._dirty.clear()
            for n, (topic, (payload, retain)) in enumerate(batch):
                info = self._client.publish(topic, payload, qos=0, retain=retain)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    # Lost the connection meanwhile: keep what is left for the next connect.
                    with self._changed:
                        for left, _payload in batch[n:]:
                            self._dirty.setdefault(left, None)
                        self._changed.wait(timeout=0.2)
                    break
            if last:
                return

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._note_error(f"the broker refused the connection: {reason}")
            return
        log.info("MQTT: connected to %s:%d", self.host, self.port)
        with self._changed:
            self.connected = True
            self.connects += 1
            self.last_error = None
            # Everything again, in first-publish order (availability first): the broker may
            # have restarted without its retained messages.
            self._dirty = dict.fromkeys(self._latest)
            self._changed.notify_all()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._changed:
            was = self.connected
            self.connected = False
        if was and not self._stopping:
            self._note_error(f"connection lost ({reason}); reconnecting")

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._note_error("cannot connect; retrying with backoff")

    def _note_error(self, text: str) -> None:
        # Logged when the reason changes, not at every retry of the backoff.
        if text != self.last_error:
            log.warning("MQTT %s:%d: %s", self.host, self.port, text)
        self.last_error = text

    # ------------------------------------------------------------------ shutdown

    def close(self, timeout: float = 3.0) -> None:
        """Publish ``offline`` (retained, QoS 1, waited for up to *timeout* seconds when
        connected), disconnect cleanly and stop the threads. A clean disconnect suppresses
        the last will, hence the explicit ``offline``."""
        with self._changed:
            self._stopping = True
            self._latest[self.availability_topic] = (OFFLINE.encode(), True)
            self._changed.notify_all()
        self._sender.join(timeout)
        if self.connected:
            info = self._client.publish(self.availability_topic, OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> HomeAssistantPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def publish_store(publisher: HomeAssistantPublisher, store: Store) -> int:
    """Publish every (platform, account) the store knows: its status, since, next step
    (watcher.kinds.next_step, the wording of ``status``'s NEXT STEP column) and the effective
    date of its newest policy notice. Returns how many accounts were published. Never blocks
    on the broker (see :class:`HomeAssistantPublisher`)."""
    from watcher.kinds import next_step

    facts = store.next_step_facts()
    rows = store.current_status()
    for row in rows:
        mine = facts.get((row.platform, row.account), {})
        effective = mine.get("effective_date")
        since = datetime.fromisoformat(row.since) if row.since else None
        step = next_step(
            row.status,
            effective_date=effective,
            form_link=mine.get("form_link"),
            code_at=_minute(row.since),
            newest_code_at=_minute(mine.get("newest_code_at")),
        )
        publisher.publish_account(
            row.platform,
            row.account,
            row.status,
            since,
            step,
            date.fromisoformat(effective) if effective else None,
        )
    return len(rows)


def _minute(iso_time: str | None) -> str | None:
    # "2024-06-01T10:00:00+00:00" -> "2024-06-01 10:00 UTC", as ``status`` shows times.
    return f"{iso_time[:16].replace('T', ' ')} UTC" if iso_time else None


def publisher_for(settings: MqttSettings, password: str | None) -> HomeAssistantPublisher:
    """A connecting publisher for the config's ``mqtt:`` section (*password* resolved by
    watcher.sources.credentials.mqtt_password). Raises ValueError for a bad url."""
    return HomeAssistantPublisher(
        settings.url,
        settings.username,
        password,
        discovery_prefix=settings.discovery_prefix,
        node_id=settings.node_id,
        ca_file=str(settings.ca_file) if settings.ca_file else None,
    )
