"""Trial 2, `meta-watcher init` as a new user met it: a question asked once when no answer
comes, Ctrl-C that says what was written, a repeated account name refused up front, real
e-mail addresses only, the OAuth2 flag named for Gmail and Outlook.com, and the
trusted_authserv_ids advice only when init ends without one.

In process (click's CliRunner, tests/daemonproc.py); the test login against the Dovecot fixture.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from daemonproc import run_in_process
from dovecot import DovecotServer
from test_first_hour import _mailbox_with_authres

OAUTH2_SECTION = "README: 'OAuth2: Gmail and Outlook.com'"


class _TerminalThenCtrlC(io.BytesIO):
    """Standard input at a terminal: the typed *answers*, then the user presses Ctrl-C."""

    def isatty(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        data = super().read1(size)
        if not data and size != 0:
            raise KeyboardInterrupt
        return data

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if not data and size != 0:
            raise KeyboardInterrupt
        return data


def _ctrl_c_after(*answers: str) -> _TerminalThenCtrlC:
    return _TerminalThenCtrlC("".join(a + "\n" for a in answers).encode())


# -- 1. without an answer on standard input each question is asked once ---------------------


@pytest.mark.parametrize("stdin", ["", "\n", "  \n\n"])
def test_no_answer_asks_the_address_once_and_names_the_flag(tmp_path: Path, stdin: str) -> None:
    config = tmp_path / "config.yaml"
    done = run_in_process("init", "--config", config, stdin=stdin, expect=2)
    assert done.stdout.count("E-mail address to watch") == 1, done.stdout
    assert "--address is needed (no answer on standard input)" in done.stderr
    assert not config.exists()


def test_a_wrong_answer_without_a_terminal_is_an_error_not_a_new_question(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    done = run_in_process(
        "init", "--config", config, "--address", "anna@home.example", "--host", "mail.home.example",
        stdin="carrier-pigeon\n", expect=2,
    )  # fmt: skip
    assert done.stdout.count("Where does the password come from") == 1, done.stdout
    assert "'carrier-pigeon' is not one of" in done.stderr
    assert "--password-command" in done.stderr
    assert not config.exists()


# -- 2. Ctrl-C says what was written and exits 130 ------------------------------------------


def test_ctrl_c_at_the_first_question_writes_nothing_and_exits_130(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    done = run_in_process("init", "--config", config, stdin=_ctrl_c_after(), expect=130)  # type: ignore[arg-type]
    assert "init interrupted: nothing was written" in done.stderr
    assert "is needed" not in done.stderr
    assert "Traceback" not in done.output
    assert not config.exists()


def test_ctrl_c_at_a_later_question_writes_nothing_and_exits_130(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    done = run_in_process(
        "init", "--config", config, "--address", "anna@posteo.de", "--no-login",
        stdin=_ctrl_c_after("command"), expect=130,  # type: ignore[arg-type]
    )  # fmt: skip
    assert "Command printing it" in done.stdout
    assert done.stderr.strip() == "meta-watcher: init interrupted: nothing was written"
    assert not config.exists()


def test_ctrl_c_after_the_config_was_written_names_the_file(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    _mailbox_with_authres(dovecot, user)
    secret = tmp_path / "password"
    secret.write_text(password + "\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    done = run_in_process(
        "init", "--config", config, "--address", f"{user}@home.example",
        "--host", dovecot.host, "--port", str(dovecot.port), "--ca-file", dovecot.ca_file,
        "--username", user, "--password-file", secret, "--login",
        stdin=_ctrl_c_after(), expect=130,  # type: ignore[arg-type]
    )  # fmt: skip
    assert "Add mx.home.example to trusted_authserv_ids?" in done.stdout
    assert f"init interrupted: {config} was written with account {user}@home.example" in (
        done.stderr
    )
    (account,) = yaml.safe_load(config.read_text(encoding="utf-8"))["accounts"]
    assert account["name"] == f"{user}@home.example"


# -- 3. a name already in the config is refused before any question -------------------------

EXISTING = """\
trusted_authserv_ids: []
accounts:
  - name: "fb@posteo.de"
    host: "posteo.de"
    username: "fb@posteo.de"
    password_command: "pass show fb"
local:
  - name: "archive"
    path: "{path}"
"""


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--address", "fb@posteo.de"], "fb@posteo.de"),
        (["--address", "new@posteo.de", "--name", "archive"], "archive"),
    ],
)
def test_a_name_already_in_the_config_is_refused_before_anything_is_asked(
    tmp_path: Path, args: list[str], name: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EXISTING.format(path=tmp_path), encoding="utf-8")
    before = config.read_bytes()
    done = run_in_process("init", "--config", config, *args, stdin="", expect=2)
    assert (
        f"an account named {name} is already in {config}; choose another with --name" in done.stderr
    )
    assert "Where does the password come from" not in done.stdout  # refused before asking
    assert "must be unique" not in done.stderr
    assert config.read_bytes() == before


# -- 4. an e-mail address has one @, a local part and a domain ------------------------------


@pytest.mark.parametrize(
    "address",
    ["a@b@c.de", "@c.de", "a@", "a@nodot", "a b@c.de", "a@.de", "a@c..de", "a@c.de.", "<a@c.de>"],
)
def test_what_is_not_an_address_is_refused_in_one_sentence(tmp_path: Path, address: str) -> None:
    config = tmp_path / "config.yaml"
    done = run_in_process(
        "init", "--config", config, "--address", address, "--password-env", "PW", expect=2
    )
    (line,) = [x for x in done.stderr.splitlines() if "is not an e-mail address" in x]
    assert line.startswith(f"Error: {address!r} is not an e-mail address")
    assert not config.exists()


@pytest.mark.parametrize("address", ["a.b+c@sub.example.org", "root@localhost"])
def test_ordinary_addresses_are_accepted(tmp_path: Path, address: str) -> None:
    config = tmp_path / "config.yaml"
    run_in_process(
        "init", "--config", config, "--address", address, "--host", "mail.example.org",
        "--password-env", "PW", "--no-login",
    )  # fmt: skip
    (account,) = yaml.safe_load(config.read_text(encoding="utf-8"))["accounts"]
    assert account["name"] == address


# -- 5. OAuth2 providers: the error names --oauth2-client-id and the README section --------


def test_gmail_without_an_answer_names_the_oauth2_flag_and_section(tmp_path: Path) -> None:
    done = run_in_process(
        "init", "--config", tmp_path / "c.yaml", "--address", "anna@gmail.com", expect=2
    )
    assert "--oauth2-client-id" in done.stderr
    assert OAUTH2_SECTION in done.stderr


def test_outlook_without_an_answer_names_the_oauth2_section(tmp_path: Path) -> None:
    done = run_in_process(
        "init", "--config", tmp_path / "c.yaml", "--address", "anna@outlook.com", expect=2
    )
    assert "--oauth2-client-id is needed" in done.stderr
    assert OAUTH2_SECTION in done.stderr


def test_outlook_with_a_password_is_refused_naming_the_oauth2_flag(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    done = run_in_process(
        "init", "--config", config, "--address", "anna@outlook.com", "--password-env", "PW",
        expect=2,
    )  # fmt: skip
    assert "--oauth2-client-id" in done.stderr
    assert OAUTH2_SECTION in done.stderr
    assert not config.exists()


# -- 6. the trusted_authserv_ids advice only when init ends without one ---------------------

ADVICE = "Set trusted_authserv_ids"


def test_no_advice_when_the_test_login_set_the_id(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    _mailbox_with_authres(dovecot, user)
    secret = tmp_path / "password"
    secret.write_text(password + "\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    args = [
        "init", "--config", config, "--address", f"{user}@home.example",
        "--host", dovecot.host, "--port", str(dovecot.port), "--ca-file", dovecot.ca_file,
        "--username", user, "--password-file", secret, "--login",
    ]  # fmt: skip
    done = run_in_process(*args, stdin="y\n")
    assert "Added mx.home.example to trusted_authserv_ids." in done.stdout
    assert ADVICE not in done.output
    config.unlink()
    done = run_in_process(*args, stdin="n\n")
    assert ADVICE in done.stdout
    assert done.stdout.index(ADVICE) > done.stdout.index("Not added")


def test_advice_when_init_ends_without_an_id(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    done = run_in_process(
        "init", "--config", config, "--address", "anna@posteo.de", "--password-env", "PW",
        "--no-login",
    )  # fmt: skip
    assert ADVICE in done.stdout
    done = run_in_process(
        "init", "--config", config, "--address", "anna@gmail.com", "--password-env", "PW",
        "--no-login", "--force",
    )  # fmt: skip
    assert ADVICE not in done.stdout  # the Gmail preset's mx.google.com
