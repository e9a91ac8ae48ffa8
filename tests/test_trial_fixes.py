"""Defects a fresh user met trying the README, each pinned by the behaviour the user expected:
one plain sentence and the right exit code instead of a usage error, a hang explained, a failed
test login that is not reported as success, next steps that name the config file."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemonproc import run_in_process
from dovecot import DovecotServer

from watcher.errors import LoginError, ServerError


@pytest.mark.parametrize("where", ["global", "command", "env"])
@pytest.mark.parametrize("command", ["check", "status", "run", "wait-code"])
def test_an_unreadable_config_is_one_sentence_and_exit_78(
    tmp_path: Path, command: str, where: str
) -> None:
    # A folder in place of the file: as root no file mode makes a file unreadable, and a
    # folder fails the same read with an OSError (EISDIR) the way EACCES does for a user.
    folder = tmp_path / "config.yaml"
    folder.mkdir()
    args: list[str | Path] = [command, *(["--once"] if command == "run" else [])]
    env: dict[str, str | None] = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    if where == "global":
        args = ["--config", folder, *args]
    elif where == "command":
        args = [*args, "--config", folder]
    else:
        env["META_WATCHER_CONFIG"] = str(folder)
    done = run_in_process(*args, env=env, expect=78)
    assert "Usage:" not in done.stderr
    assert (
        done.stderr.strip() == f"meta-watcher: config file {folder} cannot be read: is a directory"
    )


def test_a_permission_error_is_said_in_plain_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("accounts: []\n")
    real = Path.read_text

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        if self == config:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", refuse)
    done = run_in_process("--config", config, "check", expect=78)
    assert (
        done.stderr.strip()
        == f"meta-watcher: config file {config} cannot be read: permission denied"
    )
    assert "PermissionError" not in done.stderr


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts and never sends a byte, as an implicit-TLS port (993) behaves
    towards a client that waits for a plain IMAP greeting."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def _account_config(path: Path, port: int, security: str, extra: str = "") -> Path:
    path.write_text(
        f"database: {path.parent / 'db.sqlite3'}\n"
        "accounts:\n"
        "  - name: home\n"
        "    host: 127.0.0.1\n"
        f"    port: {port}\n"
        f"    security: {security}\n"
        "    username: anna\n"
        "    password_env: PW\n"
        "    timeout: 1s\n" + extra
    )
    return path


def test_starttls_on_a_tls_port_says_to_use_security_tls(tmp_path: Path, silent_port: int) -> None:
    config = _account_config(tmp_path / "config.yaml", silent_port, "starttls")
    done = run_in_process("check", "--config", config, env={"PW": "x"}, expect=None)
    assert done.exit_code != 0
    out = done.stdout + done.stderr
    assert "did not answer in time" in out
    assert "use `security: tls`" in out


def test_a_silent_tls_port_gets_no_starttls_hint(tmp_path: Path, silent_port: int) -> None:
    # With security: tls the silence is the handshake's, not a greeting's: no such advice.
    config = _account_config(tmp_path / "config.yaml", silent_port, "tls")
    done = run_in_process("check", "--config", config, env={"PW": "x"}, expect=None)
    out = done.stdout + done.stderr
    assert "did not answer in time" in out
    assert "security: tls" not in out


def _init_args(dovecot: DovecotServer, user: str, secret: Path, config: Path) -> list[str | Path]:
    return [
        "init", "--config", config, "--address", f"{user}@home.example",
        "--host", dovecot.host, "--port", str(dovecot.port), "--ca-file", str(dovecot.ca_file),
        "--username", user, "--password-file", secret, "--login",
    ]  # fmt: skip


def test_init_with_a_wrong_password_fails_with_the_login_exit_code(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, _ = dovecot_user
    secret = tmp_path / "password"
    secret.write_text("not-the-password\n")
    config = tmp_path / "config.yaml"
    args = _init_args(dovecot, user, secret, config)
    done = run_in_process(*args, stdin="n\n", expect=LoginError.exit_code)
    assert config.exists()  # written, and the sentence says so
    assert "test login failed" in done.stderr
    assert "was written" in done.stderr
    assert "Next:" not in done.stdout
    assert "not-the-password" not in done.stdout + done.stderr


def test_init_to_a_plain_port_with_tls_fails_with_the_server_exit_code(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    config = tmp_path / "config.yaml"
    args = _init_args(dovecot, user, secret, config)
    args[args.index(str(dovecot.port))] = str(dovecot.starttls_port)
    done = run_in_process(*args, stdin="n\n", expect=ServerError.exit_code)
    assert "test login failed" in done.stderr
    assert "Next:" not in done.stdout


def test_init_next_steps_name_a_config_that_is_not_the_default(tmp_path: Path) -> None:
    config = tmp_path / "my config.yaml"
    env: dict[str, str | None] = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PW": "x"}
    done = run_in_process(
        "init", "--config", config, "--address", "anna@gmx.de", "--password-env", "PW",
        "--no-login", env=env,
    )  # fmt: skip
    steps = done.stdout.split("Next:", 1)[1]
    assert f"meta-watcher --config '{config}' check" in steps
    assert f"meta-watcher --config '{config}' run" in steps
    # At the default path the commands find the file alone: no option to type.
    done = run_in_process(
        "init", "--address", "anna@gmx.de", "--password-env", "PW", "--no-login", env=env
    )
    steps = done.stdout.split("Next:", 1)[1]
    assert "--config" not in steps
    assert "meta-watcher check" in steps


def _bare_config(tmp_path: Path, text: str = "") -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {tmp_path / 'db.sqlite3'}\n" + text)
    return config


NOTHING = "nothing to watch: add an account (meta-watcher init) or a local source"


def test_check_refuses_a_config_with_nothing_to_watch(tmp_path: Path) -> None:
    done = run_in_process("check", "--config", _bare_config(tmp_path), expect=78)
    assert done.stderr.strip() == f"meta-watcher: {NOTHING}"


def test_run_once_warns_when_there_is_nothing_to_watch(tmp_path: Path) -> None:
    done = run_in_process("run", "--once", "--config", _bare_config(tmp_path), expect=0)
    assert NOTHING in done.stderr


def test_wait_code_fails_before_waiting_when_there_is_nothing_to_watch(tmp_path: Path) -> None:
    config = _bare_config(tmp_path)
    done = run_in_process("wait-code", "--config", config, "--timeout", "5m", expect=78)
    assert NOTHING in done.stderr
    assert "waiting up to" not in done.stdout + done.stderr


def test_a_config_with_a_local_source_has_something_to_watch(tmp_path: Path) -> None:
    (tmp_path / "mail.mbox").write_text("")
    config = _bare_config(tmp_path, "local:\n  - name: box\n    path: mail.mbox\n")
    done = run_in_process("run", "--once", "--config", config, expect=0)
    assert NOTHING not in done.stderr


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("poll_interval: 5m\nstore_codes: false\npoll_interval: 1m\n", "poll_interval", 4),
        (
            "local:\n  - name: a\n    path: x.mbox\n    name: b\n",
            "name",
            5,
        ),
    ],
)
def test_a_repeated_key_is_refused_naming_key_and_line(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    config = _bare_config(tmp_path, text)  # the database: line comes first
    done = run_in_process("check", "--config", config, expect=78)
    assert f"{key!r}" in done.stderr
    assert f"line {line}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_repeated_folders_are_watched_once_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from watcher.config import load_config

    config = _bare_config(
        tmp_path,
        "accounts:\n  - name: home\n    host: 127.0.0.1\n    security: none\n"
        "    username: anna\n    password_env: PW\n"
        "    folders: [INBOX, inbox, Sent, Sent, sent]\n",
    )
    with caplog.at_level("WARNING"):
        (account,) = load_config(config).accounts
    # INBOX is one folder in any case; other names are case-sensitive, so "sent" stays.
    assert account.folders == ("INBOX", "Sent", "sent")
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "'inbox'" in warning
    assert "'Sent'" in warning
    assert "home" in warning


def test_next_step_says_a_past_effective_date_has_passed() -> None:
    from watcher.kinds import next_step

    past = next_step("notified", effective_date="2024-06-26", form_link="F", today="2024-07-01")
    assert "before 2024-06-26" not in past
    assert "2024-06-26 has passed" in past
    assert "object anyway" in past
    assert past.endswith("via F")
    ahead = next_step("notified", effective_date="2024-06-26", form_link="F", today="2024-06-26")
    assert ahead == "object before 2024-06-26 via F"


def test_missing_folder_sentence_ends_the_list_before_the_fix() -> None:
    from watcher.config import Account
    from watcher.sources.imap import missing_folder_sentence

    account = Account(
        name="home", host="127.0.0.1", security="none", username="u", password_env="X"
    )
    far = missing_folder_sentence(account, "Archiv-2019", ["Sent", "Junk", "INBOX"])
    assert "'INBOX'. Fix folders:" in far
    near = missing_folder_sentence(account, "Snet", ["Sent", "Junk", "INBOX"])
    assert "? Fix folders:" in near


def test_outbox_without_targets_does_not_claim_deliveries(tmp_path: Path) -> None:
    (tmp_path / "mail.mbox").write_text("")
    config = _bare_config(tmp_path, "local:\n  - name: box\n    path: mail.mbox\n")
    done = run_in_process("outbox", "--config", config)
    assert "delivered" not in done.stdout
    assert "no notification targets are configured" in done.stdout


def test_the_readme_grep_matches_only_the_result_line() -> None:
    import re

    corpus = Path(__file__).parent / "corpus"
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "| grep '^Result'" in readme
    assert "| grep Result\n" not in readme
    mail = next(
        p for p in sorted(corpus.glob("*.eml")) if b"Authentication-Results" in p.read_bytes()
    )
    done = run_in_process("rules", "test", mail)
    assert sum(1 for line in done.stdout.splitlines() if "Result" in line) > 1  # why ^ matters
    assert len([line for line in done.stdout.splitlines() if re.match("Result", line)]) == 1
