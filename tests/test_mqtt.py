"""The Home Assistant MQTT publisher (watcher/notify/mqtt.py) against a real Mosquitto on 127.0.0.1
(tests/mosquitto.py), observed by a subscriber that follows discovery configs the way Home
Assistant does: discovery configs retained, states and attributes, availability through the
last will (publisher killed with SIGKILL) and close(), a broker that is down never blocks a
publish, and states come back after the broker restarts without its retained messages."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from mosquitto import HomeAssistantListener, MosquittoBroker

from watcher.notify.discovery import object_id
from watcher.notify.mqtt import HomeAssistantPublisher

pytestmark = pytest.mark.timeout(60)

SINCE = datetime(2025, 4, 14, 9, 30, tzinfo=UTC)
EFFECTIVE = date(2025, 5, 27)
ACCOUNT = "anna.insta@example.org"


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as running:
        yield running


@pytest.fixture
def listener(broker: MosquittoBroker) -> Iterator[HomeAssistantListener]:
    with HomeAssistantListener(broker) as ha:
        assert _until(lambda: ha.connects >= 1, 5)
        time.sleep(0.1)  # SUBACK; everything below is retained anyway
        yield ha


def _until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return bool(condition())  # type: ignore[operator]


def _publisher(broker: MosquittoBroker, **options: object) -> HomeAssistantPublisher:
    options.setdefault("node_id", "test")
    options.setdefault("max_backoff", 2)
    return HomeAssistantPublisher(broker.url, **options)  # type: ignore[arg-type]


def test_discovery_configs_states_and_attributes(
    broker: MosquittoBroker, listener: HomeAssistantListener
) -> None:
    with _publisher(broker) as publisher:
        assert _until(lambda: publisher.connected, 5)
        topics = publisher.account_topics("instagram", ACCOUNT)
        started = time.monotonic()
        publisher.publish_account(
            "instagram", ACCOUNT, "code_received", SINCE, "enter the code", EFFECTIVE
        )
        state = listener.wait_for(topics["state"], after=started)
        first = state.at - started
        assert state.text() == "code_received"

        sensor = listener.wait_for(topics["sensor_config"]).json()
        assert sensor["state_topic"] == topics["state"]
        assert sensor["json_attributes_topic"] == topics["attributes"]
        assert sensor["availability_topic"] == publisher.availability_topic
        assert sensor["unique_id"] == f"meta_watcher_test_{object_id('instagram', ACCOUNT)}_status"
        assert sensor["device"]["identifiers"] == ["meta_watcher_test"]
        binary = listener.wait_for(topics["binary_sensor_config"]).json()
        assert binary["device_class"] == "problem"
        assert binary["state_topic"] == topics["action_needed"]
        assert binary["device"] == sensor["device"]
        assert binary["unique_id"] != sensor["unique_id"]
        attributes = listener.wait_for(topics["attributes"]).json()
        assert attributes == {
            "platform": "instagram",
            "account": ACCOUNT,
            "status": "code_received",
            "since": "2025-04-14T09:30:00+00:00",
            "next_step": "enter the code",
            "effective_date": "2025-05-27",
            "action_needed": True,
        }
        assert listener.wait_for(topics["action_needed"]).text() == "ON"
        assert listener.wait_for(publisher.availability_topic).text() == "online"

        # A later change: the steady-state latency (topics already subscribed).
        changed = time.monotonic()
        publisher.publish_account("instagram", ACCOUNT, "accepted", SINCE, None, EFFECTIVE)
        accepted = listener.wait_for(
            topics["state"], lambda r: r.text() == "accepted", after=changed
        )
        update = accepted.at - changed
        off = listener.wait_for(topics["action_needed"], lambda r: r.text() == "OFF")
        assert off.at >= changed
        print(
            f"MQTT latency publish_account -> HA-like subscriber: first (with discovery) "
            f"{first * 1000:.1f} ms, update {update * 1000:.1f} ms"
        )
        assert update < 1.0

    # Home Assistant restarting later gets everything from the retained messages.
    with HomeAssistantListener(broker) as late:
        for topic in (topics["sensor_config"], topics["binary_sensor_config"], topics["state"]):
            assert late.wait_for(topic, timeout=5).retain
        assert late.wait_for(topics["state"]).text() == "accepted"
        assert late.wait_for(publisher.availability_topic).text() == "offline"


def test_object_ids_are_home_assistant_safe_and_distinct(
    broker: MosquittoBroker, listener: HomeAssistantListener
) -> None:
    accounts = ["Anna.B@Example.org", "anna_b@example.org", "Jörg Ümlaut+fb@example.de", "x" * 300]
    with _publisher(broker, node_id="Küche 1") as publisher:
        ids = [publisher.publish_account("facebook", a, None, None, None, None) for a in accounts]
        assert len(set(ids)) == len(ids)
        for topic_id in [*ids, publisher.node_id]:
            assert re.fullmatch(r"[a-z0-9_-]{1,71}", topic_id), topic_id
        assert object_id("facebook", "business") == "facebook_business"  # clean stays as is
        assert object_id("facebook", "Anna.B@Example.org") == ids[0]  # stable
        configs = [publisher.account_topics("facebook", a)["sensor_config"] for a in accounts]
        for topic in configs:
            listener.wait_for(topic)
            assert re.fullmatch(r"homeassistant/sensor/[a-z0-9_-]+/[a-z0-9_-]+/config", topic)
        assert listener.wait_for(publisher.account_topics("facebook", accounts[0])["state"])
        assert listener.latest(publisher.account_topics("facebook", accounts[0])["state"])
        state = listener.wait_for(publisher.account_topics("facebook", accounts[2])["state"])
        assert state.text() == "no_notice"


def test_code_event(broker: MosquittoBroker, listener: HomeAssistantListener) -> None:
    at = datetime(2025, 4, 14, 10, 1, 2, tzinfo=UTC)
    with _publisher(broker) as publisher:
        publisher.publish_code_event(ACCOUNT, "73••46", at)
        topics = publisher.code_topics(ACCOUNT)
        assert listener.wait_for(topics["state"]).text() == "73••46"
        assert listener.wait_for(topics["attributes"]).json() == {
            "account": ACCOUNT,
            "code": "73••46",
            "at": "2025-04-14T10:01:02+00:00",
        }
        config = listener.wait_for(topics["config"]).json()
        assert config["state_topic"] == topics["state"]


def test_close_publishes_offline(broker: MosquittoBroker, listener: HomeAssistantListener) -> None:
    publisher = _publisher(broker)
    publisher.publish_account("facebook", ACCOUNT, "notified", SINCE, "object", EFFECTIVE)
    topic = publisher.availability_topic
    online = listener.wait_for(topic, lambda r: r.text() == "online")
    publisher.close()
    offline = listener.wait_for(topic, lambda r: r.text() == "offline", after=online.at)
    assert offline.at >= online.at
    with HomeAssistantListener(broker, extra=[topic]) as late:
        assert late.wait_for(topic).text() == "offline"
        assert late.wait_for(topic).retain


def test_last_will_when_the_publisher_is_killed(
    broker: MosquittoBroker, listener: HomeAssistantListener
) -> None:
    script = (
        "import time\n"
        "from watcher.notify.mqtt import HomeAssistantPublisher\n"
        f"p = HomeAssistantPublisher({broker.url!r}, node_id='doomed')\n"
        f"p.publish_account('facebook', {ACCOUNT!r}, 'notified', None, 'object', None)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=Path(__file__).parents[1], stdin=subprocess.DEVNULL
    )
    try:
        topic = "meta_watcher/doomed/availability"
        online = listener.wait_for(topic, lambda r: r.text() == "online", timeout=20)
        killed = time.monotonic()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
        offline = listener.wait_for(topic, lambda r: r.text() == "offline", after=online.at)
        print(f"last will: offline {(offline.at - killed) * 1000:.0f} ms after SIGKILL")
        assert offline.at - killed < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_broker_down_never_blocks_and_states_catch_up(
    broker: MosquittoBroker, listener: HomeAssistantListener
) -> None:
    with _publisher(broker, max_backoff=1) as publisher:
        topics = publisher.account_topics("instagram", ACCOUNT)
        publisher.publish_account("instagram", ACCOUNT, "notified", SINCE, "object", EFFECTIVE)
        listener.wait_for(topics["state"], lambda r: r.text() == "notified")
        broker.stop()
        assert _until(lambda: not publisher.connected, 5)

        started = time.monotonic()
        for n in range(200):  # keeps only the latest per topic
            status = "code_received" if n < 199 else "accepted"
            publisher.publish_account("instagram", ACCOUNT, status, SINCE, None, EFFECTIVE)
        publisher.publish_account("facebook", "anna@example.org", "rejected", SINCE, "again", None)
        publisher.publish_code_event(ACCOUNT, "55••88", SINCE)
        blocked = time.monotonic() - started
        assert blocked < 1.0
        assert publisher.last_error is not None

        back = time.monotonic()
        broker.start()  # same port, and no retained messages: persistence is off
        state = listener.wait_for(
            topics["state"], lambda r: r.text() == "accepted", after=back, timeout=15
        )
        other = publisher.account_topics("facebook", "anna@example.org")
        assert listener.wait_for(other["state"], after=back).text() == "rejected"
        for topic in (topics["sensor_config"], other["binary_sensor_config"]):
            assert json.loads(listener.wait_for(topic, after=back).payload)["unique_id"]
        assert listener.wait_for(publisher.code_topics(ACCOUNT)["state"]).text() == "55••88"
        # Never the stale in-between states: only the latest per topic was kept.
        seen = [r.text() for r in listener.messages if r.topic == topics["state"] and r.at >= back]
        assert seen == ["accepted"]
        print(
            f"broker down: 202 publishes took {blocked * 1000:.1f} ms; state back "
            f"{state.at - back:.2f} s after the broker was started again"
        )


def test_publisher_started_while_the_broker_is_down(broker: MosquittoBroker) -> None:
    broker.stop()
    started = time.monotonic()
    publisher = _publisher(broker, max_backoff=1)
    publisher.publish_account("instagram", ACCOUNT, "notified", SINCE, "object", EFFECTIVE)
    assert time.monotonic() - started < 1.0
    try:
        assert not publisher.connected
        broker.start()
        with HomeAssistantListener(broker) as ha:
            topics = publisher.account_topics("instagram", ACCOUNT)
            assert ha.wait_for(topics["state"], timeout=15).text() == "notified"
    finally:
        closing = time.monotonic()
        publisher.close()
        assert time.monotonic() - closing < 5


def test_broker_with_passwords() -> None:
    with MosquittoBroker(users={"watcher": "s3cret", "ha": "ha-pass"}) as broker:
        extra = ["meta_watcher/auth/availability"]
        with HomeAssistantListener(broker, extra=extra, username="ha", password="ha-pass") as ha:
            good = _publisher(broker, username="watcher", password="s3cret", node_id="auth")
            try:
                assert ha.wait_for(good.availability_topic, timeout=10).text() == "online"
            finally:
                good.close()
        # A wrong password: never connected, the reason is kept, publishing still returns.
        bad = HomeAssistantPublisher(
            f"mqtt://watcher:wrong@127.0.0.1:{broker.port}", node_id="bad", max_backoff=1
        )
        try:
            started = time.monotonic()
            bad.publish_account("facebook", ACCOUNT, "notified", None, None, None)
            assert time.monotonic() - started < 1.0
            assert _until(lambda: bad.last_error is not None, 5)
            assert "refused" in (bad.last_error or "")
            assert "wrong" not in (bad.last_error or "")
            assert not bad.connected
        finally:
            bad.close()


def test_url_is_checked_without_showing_the_password() -> None:
    for url in ("http://127.0.0.1", "mqtt://", "mqtts://user:pw-secret@:8883"):
        with pytest.raises(ValueError, match="MQTT url") as caught:
            HomeAssistantPublisher(url)
        assert "pw-secret" not in str(caught.value)
    with pytest.raises(ValueError, match="port"):
        HomeAssistantPublisher("mqtt://host:port-x")


def test_missing_mosquitto_fails_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import mosquitto

    monkeypatch.setattr(mosquitto, "BINARY", "/nonexistent/mosquitto")
    with pytest.raises(mosquitto.MosquittoError, match=r"apt-get install mosquitto"):
        MosquittoBroker()
