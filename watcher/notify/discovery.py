"""Home Assistant MQTT discovery: the topics and payloads that describe each account's
objection status to Home Assistant. Pure (no network): watcher.notify.mqtt publishes what
this module builds.

Topics (``<node>`` is the sanitised node id, ``<obj>`` an object id from :func:`object_id`;
every message is retained):

==============================================  =============================================
``meta_watcher/<node>/availability``            ``online`` / ``offline`` (also the last will,
                                                so a watcher that dies shows as unavailable)
``meta_watcher/<node>/<obj>/state``             status: ``notified``, ``code_received``,
                                                ``accepted``, ``rejected``, ``info_requested``,
                                                ``no_notice`` (none yet)
``meta_watcher/<node>/<obj>/attributes``        JSON ``{"platform", "account", "status",
                                                "since", "next_step", "effective_date",
                                                "action_needed"}`` (dates ISO 8601 or null)
``meta_watcher/<node>/<obj>/action_needed``     ``ON`` / ``OFF``
``meta_watcher/<node>/code_<obj>/state``        the code as given (masked by the caller unless
                                                the user set ``notify_codes``)
``meta_watcher/<node>/code_<obj>/attributes``   JSON ``{"account", "code", "at"}``
``<prefix>/sensor/<node>/<obj>/config``         discovery of the status sensor
``<prefix>/binary_sensor/<node>/<obj>/config``  discovery of the "action needed" sensor
                                                (device class ``problem``)
``<prefix>/sensor/<node>/code_<obj>/config``    discovery of the latest-code sensor
==============================================  =============================================

Discovery configs follow Home Assistant's MQTT discovery
(https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery): topic
``<discovery_prefix>/<component>/<node_id>/<object_id>/config``, payload with ``name``,
``unique_id``, ``state_topic``, ``json_attributes_topic``, ``availability_topic`` and a
``device`` block shared by all entities of one watcher.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from importlib import metadata
from typing import Any

ONLINE = "online"
OFFLINE = "offline"
# Statuses after which nothing is left to do for the account (watcher/status.py).
DONE_STATUSES = frozenset({"accepted"})
NO_NOTICE = "no_notice"
_UNSAFE = re.compile(r"[^a-z0-9_-]+")
_MAX_ID = 64

# One retained MQTT message: (topic, payload).
Payload = tuple[str, bytes]


def object_id(*parts: str) -> str:
    """A Home Assistant object id (``[a-z0-9_-]``, at most 71 characters) for *parts*
    joined with ``_``: case-folded, every other run of characters replaced by ``_``; when
    that changed anything, a 6-hex-digit hash of the folded text is appended so that
    ``anna.b@x.org`` and ``anna_b@x.org`` stay apart. Stable across runs and versions
    (Home Assistant keys its entities on it)."""
    folded = "_".join(parts).casefold()
    clean = _UNSAFE.sub("_", folded).strip("_")[:_MAX_ID] or "x"
    if clean != folded:
        digest = hashlib.blake2s(folded.encode("utf-8"), digest_size=3).hexdigest()
        clean = f"{clean}_{digest}"
    return clean


def _iso(value: datetime | date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _version() -> str:
    try:
        return metadata.version("meta-watcher")
    except metadata.PackageNotFoundError:
        return "unknown"


class Discovery:
    """The topics and payloads of one watcher. *node_id* names the watcher in topics and
    unique ids (sanitised like object ids); *discovery_prefix* is Home Assistant's
    (``homeassistant`` when empty)."""

    def __init__(
        self, node_id: str = "meta_watcher", discovery_prefix: str = "homeassistant"
    ) -> None:
        self.node_id = object_id(node_id)
        self.discovery_prefix = discovery_prefix.strip("/") or "homeassistant"
        self.base_topic = f"meta_watcher/{self.node_id}"
        self.availability_topic = f"{self.base_topic}/availability"
        self.device = {
            "identifiers": [f"meta_watcher_{self.node_id}"],
            "name": "Meta Watcher" if node_id == "meta_watcher" else f"Meta Watcher {node_id}",
            "manufacturer": "meta-watcher",
            "model": "Meta AI-training objection watcher",
            "sw_version": _version(),
        }

    def account_topics(self, platform: str, account: str) -> dict[str, str]:
        """The topics of one (platform, account): ``state``, ``attributes``,
        ``action_needed``, ``sensor_config``, ``binary_sensor_config``."""
        obj = object_id(platform, account)
        base = f"{self.base_topic}/{obj}"
        return {
            "state": f"{base}/state",
            "attributes": f"{base}/attributes",
            "action_needed": f"{base}/action_needed",
            "sensor_config": f"{self.discovery_prefix}/sensor/{self.node_id}/{obj}/config",
            "binary_sensor_config": (
                f"{self.discovery_prefix}/binary_sensor/{self.node_id}/{obj}/config"
            ),
        }

    def code_topics(self, account: str) -> dict[str, str]:
        """The topics of an account's latest code: ``state``, ``attributes``, ``config``."""
        obj = "code_" + object_id(account)
        base = f"{self.base_topic}/{obj}"
        return {
            "state": f"{base}/state",
            "attributes": f"{base}/attributes",
            "config": f"{self.discovery_prefix}/sensor/{self.node_id}/{obj}/config",
        }

    def _entity(self, name: str, unique: str, state: str, attributes: str) -> dict[str, Any]:
        return {
            "name": name,
            "unique_id": f"meta_watcher_{self.node_id}_{unique}",
            "state_topic": state,
            "json_attributes_topic": attributes,
            "availability_topic": self.availability_topic,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": self.device,
            "origin": {"name": "meta-watcher", "sw_version": self.device["sw_version"]},
        }

    def account_payloads(
        self,
        platform: str,
        account: str,
        status: str | None,
        since: datetime | date | None,
        next_step: str | None,
        effective_date: date | datetime | None,
        *,
        action_needed: bool | None = None,
    ) -> tuple[str, list[Payload]]:
        """The object id of one account's status and its messages, in publish order: the
        sensor and binary sensor discovery configs, the attributes JSON, the state and
        ``ON``/``OFF``. *status* None means no privacy mail yet (state ``no_notice``);
        *action_needed* defaults to "status is not accepted"."""
        topics = self.account_topics(platform, account)
        obj = object_id(platform, account)
        state = status or NO_NOTICE
        needed = state not in DONE_STATUSES if action_needed is None else action_needed
        label = f"{platform.capitalize()} {account}"
        sensor = self._entity(label, f"{obj}_status", topics["state"], topics["attributes"])
        sensor["icon"] = "mdi:shield-account-outline"
        binary = self._entity(
            f"{label} action needed",
            f"{obj}_action_needed",
            topics["action_needed"],
            topics["attributes"],
        )
        binary.update(device_class="problem", payload_on="ON", payload_off="OFF")
        attributes = {
            "platform": platform,
            "account": account,
            "status": state,
            "since": _iso(since),
            "next_step": next_step,
            "effective_date": _iso(effective_date),
            "action_needed": needed,
        }
        return obj, [
            (topics["sensor_config"], _json(sensor)),
            (topics["binary_sensor_config"], _json(binary)),
            (topics["attributes"], _json(attributes)),
            (topics["state"], state.encode("utf-8")),
            (topics["action_needed"], b"ON" if needed else b"OFF"),
        ]

    def code_payloads(self, account: str, masked_code: str, at: datetime) -> list[Payload]:
        """The messages of *account*'s latest verification-code mail (received *at*):
        discovery config, attributes JSON and state. *masked_code* is shown as given."""
        topics = self.code_topics(account)
        obj = "code_" + object_id(account)
        config = self._entity(f"Meta code {account}", obj, topics["state"], topics["attributes"])
        config["icon"] = "mdi:numeric"
        return [
            (topics["config"], _json(config)),
            (
                topics["attributes"],
                _json({"account": account, "code": masked_code, "at": _iso(at)}),
            ),
            (topics["state"], masked_code.encode("utf-8")),
        ]

    def forget_payloads(self, platform: str, account: str) -> list[Payload]:
        """Empty retained messages on every topic of an account: removes its entities from
        Home Assistant and clears them on the broker."""
        return [(topic, b"") for topic in self.account_topics(platform, account).values()]
