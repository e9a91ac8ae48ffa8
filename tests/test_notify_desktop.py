"""A desktop notification reaches a real freedesktop notification daemon: dunst on Xvfb, on a
private D-Bus session bus started for the test, through Apprise's ``dbus://``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.config import NotifyTarget
from watcher.notify.apprise import Sender

HINT = (
    "desktop notification test needs Xvfb, dbus-daemon, dunst and dbus-python: "
    "run `sudo apt-get install xvfb dbus dunst libdbus-1-dev libglib2.0-dev pkg-config` "
    "(or scripts/install-test-deps) and `pip install dbus-python`"
)


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is missing: {HINT}")
    return path


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Xvfb + a private session bus + dunst; yields the environment to talk to them."""
    try:
        import dbus  # noqa: F401
    except ImportError:
        pytest.fail(f"the dbus Python module is missing: {HINT}")
    xvfb, dbus_daemon, dunst = _need("Xvfb"), _need("dbus-daemon"), _need("dunst")
    _need("dunstctl")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        read_fd, write_fd = os.pipe()
        procs.append(
            subprocess.Popen(
                [
                    xvfb,
                    "-displayfd",
                    str(write_fd),
                    "-nolisten",
                    "tcp",
                    "-screen",
                    "0",
                    "800x600x24",
                ],
                pass_fds=(write_fd,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            display = pipe.readline().decode().strip()
        assert display.isdigit(), "Xvfb did not report its display"
        bus = subprocess.Popen(
            [dbus_daemon, "--session", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        procs.append(bus)
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()
        assert address.startswith("unix:"), address
        env = {
            **os.environ,
            "DISPLAY": f":{display}",
            "DBUS_SESSION_BUS_ADDRESS": address,
            "XDG_CONFIG_HOME": str(tmp_path),
        }
        config = tmp_path / "dunstrc"
        config.write_text("[global]\n    markup = full\n")
        procs.append(
            subprocess.Popen(
                [dunst, "-config", str(config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = subprocess.run(
                ["dunstctl", "count"], env=env, capture_output=True, timeout=5, check=False
            )
            if done.returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("dunst did not come up on the private D-Bus session")
        yield env
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def test_desktop_notification_shows_up_in_dunst(desktop, monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop["DBUS_SESSION_BUS_ADDRESS"])
    monkeypatch.setenv("DISPLAY", desktop["DISPLAY"])
    target = NotifyTarget.model_validate({"url": "dbus://", "name": "desktop"})
    sender = Sender([target])
    error = sender.send("desktop", "Facebook verification code 482913", "Code: 482913 <b>&</b>")
    assert error is None

    def ctl(*args: str) -> str:
        return subprocess.run(
            ["dunstctl", *args], env=desktop, capture_output=True, text=True, timeout=5, check=True
        ).stdout

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and ctl("count", "displayed").strip() != "1":
        time.sleep(0.05)
    assert ctl("count", "displayed").strip() == "1"
    ctl("close-all")
    history = json.loads(ctl("history"))
    shown = history["data"][0]
    assert len(shown) == 1
    assert shown[0]["summary"]["data"] == "Facebook verification code 482913"
    body = shown[0]["body"]["data"]
    # Escaped for a daemon that reads the body as markup: shown as typed, not as bold.
    assert body == "Code: 482913 &lt;b&gt;&amp;&lt;/b&gt;"
