"""Home Assistant over MQTT end to end (issue 14.3): the daemon (a real ``meta-watcher run``
process) against the Dovecot fixture and a real Mosquitto, observed by a subscriber that
follows discovery configs as Home Assistant does. Discovery configs, states and the latest
code (masked without notify_codes) arrive; mail is still processed while the broker is down
and the states catch up when it returns; availability turns ``offline`` when the daemon
stops. Prints the time from IMAP APPEND to the MQTT state change."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator

import pytest
from daemonproc import DaemonProcess, accepted_mail, code_mail, write_config
from mosquitto import HomeAssistantListener, MosquittoBroker

from watcher.notify.discovery import object_id

pytestmark = pytest.mark.timeout(180)

NODE = "home_test"
BASE = f"meta_watcher/{NODE}"
FACEBOOK = ("facebook", "anna.beispiel@example.org")
INSTAGRAM = ("instagram", "anna.insta@example.org")


def topics(platform: str, account: str) -> dict[str, str]:
    obj = object_id(platform, account)
    return {
        "state": f"{BASE}/{obj}/state",
        "attributes": f"{BASE}/{obj}/attributes",
        "sensor_config": f"homeassistant/sensor/{NODE}/{obj}/config",
        "binary_sensor_config": f"homeassistant/binary_sensor/{NODE}/{obj}/config",
    }


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as running:
        yield running


@pytest.fixture
def listener(broker: MosquittoBroker) -> Iterator[HomeAssistantListener]:
    with HomeAssistantListener(broker, extra=[f"{BASE}/availability"]) as ha:
        deadline = time.monotonic() + 5
        while ha.connects < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ha.connects >= 1
        yield ha


def recorded_kinds(tmp_path) -> list[str]:
    conn = sqlite3.connect(tmp_path / "log.sqlite3", timeout=10)
    try:
        return [r[0] for r in conn.execute("SELECT kind FROM messages ORDER BY id")]
    finally:
        conn.close()


def test_daemon_publishes_to_home_assistant_and_survives_the_broker(
    tmp_path, dovecot, dovecot_user, broker, listener
):
    user, password = dovecot_user
    secret = tmp_path / "mqtt-password"
    secret.write_text("unused-by-anonymous-broker\n")
    config = write_config(
        tmp_path,
        dovecot,
        user,
        password,
        [],
        notify_codes=False,
        mqtt={
            "url": broker.url,
            "username": "watcher",
            "password_file": str(secret),
            "node_id": NODE,
        },
    )
    fb = topics(*FACEBOOK)
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        listener.wait_for(f"{BASE}/availability", lambda r: r.text() == "online")

        appended = time.monotonic()
        dovecot.append(user, "INBOX", code_mail("731904"))
        state = listener.wait_for(fb["state"], after=appended, timeout=20)
        latency = state.at - appended
        assert state.text() == "code_received"
        sensor = listener.wait_for(fb["sensor_config"]).json()
        assert sensor["state_topic"] == fb["state"]
        assert sensor["availability_topic"] == f"{BASE}/availability"
        binary = listener.wait_for(fb["binary_sensor_config"]).json()
        assert binary["device_class"] == "problem"
        attributes = listener.wait_for(fb["attributes"]).json()
        assert attributes["status"] == "code_received"
        assert attributes["since"]
        assert "enter the code" in attributes["next_step"]
        assert attributes["action_needed"] is True
        code_state = f"{BASE}/code_{object_id(FACEBOOK[1])}/state"
        code = listener.wait_for(code_state, timeout=10)
        assert code.text() == "73****"  # notify_codes: false masks it
        assert all(b"731904" not in m.payload for m in listener.messages)
        print(f"APPEND -> MQTT state change: {latency * 1000:.0f} ms")
        assert latency < 10

        # The broker goes away: mail is still processed, nothing waits for it.
        broker.stop()
        stopped = time.monotonic()
        dovecot.append(user, "INBOX", accepted_mail())
        deadline = time.monotonic() + 20
        while "objection_accepted" not in recorded_kinds(tmp_path):
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.1)
        processed = time.monotonic() - stopped
        assert processed < 10

        # The broker returns without its retained messages: everything is published again.
        back = time.monotonic()
        broker.start()
        ig = topics(*INSTAGRAM)
        caught = listener.wait_for(
            ig["state"], lambda r: r.text() == "accepted", after=back, timeout=90
        )
        assert listener.wait_for(fb["state"], after=back, timeout=10).text() == "code_received"
        assert listener.wait_for(ig["sensor_config"], after=back, timeout=10).json()
        assert listener.wait_for(f"{BASE}/availability", after=back, timeout=10).text() == "online"
        print(
            f"broker down: mail processed in {processed:.2f} s; states back "
            f"{caught.at - back:.2f} s after the broker returned"
        )

        stopping = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
        listener.wait_for(
            f"{BASE}/availability", lambda r: r.text() == "offline", after=stopping, timeout=10
        )
    assert "unused-by-anonymous-broker" not in daemon.log()
    # Home Assistant starting later sees the watcher offline and the last states (retained).
    with HomeAssistantListener(broker, extra=[f"{BASE}/availability"]) as late:
        gone = late.wait_for(f"{BASE}/availability", timeout=10)
        assert (gone.text(), gone.retain) == ("offline", True)
        assert late.wait_for(topics(*INSTAGRAM)["state"], timeout=10).text() == "accepted"


def test_last_will_marks_a_killed_daemon_offline(tmp_path, dovecot, dovecot_user, broker, listener):
    user, password = dovecot_user
    config = write_config(
        tmp_path, dovecot, user, password, [], mqtt={"url": broker.url, "node_id": NODE}
    )
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        listener.wait_for(f"{BASE}/availability", lambda r: r.text() == "online")
        killed = time.monotonic()
        daemon.kill()
    # The broker sends the will after 1.5 x keepalive (30 s) at most; a dead TCP peer is
    # noticed at once on loopback.
    will = listener.wait_for(
        f"{BASE}/availability", lambda r: r.text() == "offline", after=killed, timeout=60
    )
    assert will.at - killed < 60
