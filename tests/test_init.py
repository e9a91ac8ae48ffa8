"""`meta-watcher init`, then `auth`, `check` and `run`: a new user's first minutes.

Dovecot stands in for GMX (password, PLAIN), Gmail and Outlook.com (OAuth2, XOAUTH2, with the
local provider of tests/oauth_provider.py standing in for Google's and Microsoft's endpoints).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml
from dovecot import DovecotServer
from oauth_provider import OAuthProvider, new_user
from test_corpus import CORPUS

from watcher.config import Account
from watcher.sources import providers
from watcher.sources.imap import explain_login_failure


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_WATCHER", "XDG_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    return env


def mw(
    tmp_path: Path, *args: str, stdin: str = "", expect: int = 0
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env_for(tmp_path),
        check=False,
    )
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def config_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "meta-watcher" / "config.yaml"


def test_init_fills_in_the_gmx_preset_writes_0600_and_no_password(tmp_path: Path) -> None:
    secret = tmp_path / "gmx-password"
    secret.write_text("s3cret-Passw0rd\n")
    done = mw(tmp_path, "init", "--address", "anna@gmx.de", "--password-file", str(secret))
    assert "GMX: IMAP imap.gmx.net:993 (tls)" in done.stdout
    assert "POP3/IMAP Abruf" in done.stdout
    path = config_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "s3cret-Passw0rd" not in text
    assert text.lstrip().startswith("# meta-watcher configuration")
    (account,) = yaml.safe_load(text)["accounts"]
    assert account == {
        "name": "anna@gmx.de",
        "host": "imap.gmx.net",
        "port": 993,
        "security": "tls",
        "username": "anna@gmx.de",
        "password_file": str(secret),
        "folders": ["INBOX"],
    }


@pytest.mark.parametrize(
    ("address", "host", "oauth2"),
    [
        ("x@gmail.com", "imap.gmail.com", "google"),
        ("x@hotmail.de", "outlook.office365.com", "microsoft"),
        ("x@web.de", "imap.web.de", None),
        ("x@t-online.de", "secureimap.t-online.de", None),
        ("x@icloud.com", "imap.mail.me.com", None),
        ("x@yahoo.de", "imap.mail.yahoo.com", None),
        ("x@posteo.de", "posteo.de", None),
        ("x@mailbox.org", "imap.mailbox.org", None),
        ("X@GMX.NET", "imap.gmx.net", None),
    ],
)
def test_every_listed_provider_has_a_tls_preset(
    address: str, host: str, oauth2: str | None
) -> None:
    preset = providers.for_address(address)
    assert preset is not None
    assert (preset.host, preset.port, preset.security, preset.oauth2) == (host, 993, "tls", oauth2)
    assert providers.for_host(host) is preset


def test_gmail_init_takes_the_oauth2_preset_and_trusts_googles_authserv_id(
    tmp_path: Path,
) -> None:
    mw(tmp_path, "init", "--address", "anna@gmail.com", "--oauth2-client-id", "1.apps.example")
    config = yaml.safe_load(config_path(tmp_path).read_text())
    assert config["trusted_authserv_ids"] == ["mx.google.com"]
    (account,) = config["accounts"]
    assert account["oauth2"] == {"provider": "google", "client_id": "1.apps.example"}
    assert not any(k.startswith("password") for k in account)


def test_unknown_domain_asks_for_host_and_port_and_the_password_source(tmp_path: Path) -> None:
    # host, port, user name (empty: the address), password source; the certificate check
    # cannot reach mail.example.org and says so.
    answers = "me@example.org\nmail.example.org\n143\n\nenv\nMAIL_PASSWORD\n"
    done = mw(tmp_path, "init", "--security", "starttls", stdin=answers)
    assert "no preset for example.org" in done.stdout
    (account,) = yaml.safe_load(config_path(tmp_path).read_text())["accounts"]
    assert account["host"] == "mail.example.org"
    assert account["port"] == 143
    assert account["security"] == "starttls"
    assert account["password_env"] == "MAIL_PASSWORD"
    assert account["username"] == "me@example.org"
    assert "Could not check the TLS certificate of mail.example.org:143" in done.stdout


def test_outlook_without_a_client_id_and_no_terminal_names_the_flag(tmp_path: Path) -> None:
    done = mw(tmp_path, "init", "--address", "anna@outlook.com", expect=2)
    assert "16 September 2024" in done.stdout
    assert "--oauth2-client-id is needed" in done.stderr
    assert not config_path(tmp_path).exists()


def test_init_adds_an_alias_to_the_existing_config_and_refuses_a_duplicate(
    tmp_path: Path,
) -> None:
    mw(tmp_path, "init", "--address", "fb@posteo.de", "--password-command", "pass show fb")
    mw(tmp_path, "init", "--address", "insta@posteo.de", "--password-command", "pass show ig")
    names = [a["name"] for a in yaml.safe_load(config_path(tmp_path).read_text())["accounts"]]
    assert names == ["fb@posteo.de", "insta@posteo.de"]
    done = mw(tmp_path, "init", "--address", "fb@posteo.de", "--password-env", "X", expect=2)
    path = config_path(tmp_path)
    assert f"an account named fb@posteo.de is already in {path}; choose another" in done.stderr
    assert ".init-" not in done.stderr  # the trial file never shows


def test_init_refuses_two_secret_sources_and_a_non_address(tmp_path: Path) -> None:
    done = mw(
        tmp_path,
        "init",
        "--address",
        "a@gmx.de",
        "--password-env",
        "X",
        "--password-command",
        "y",
        expect=2,
    )
    assert "give only one of --password-command, --password-env" in done.stderr
    done = mw(tmp_path, "init", "--address", "not-an-address", expect=2)
    assert "'not-an-address' is not an e-mail address" in done.stderr


# -- the whole way, against Dovecot standing in for each provider ---------------------------


def _use_local_endpoints(path: Path, idp: OAuthProvider) -> None:
    """Point the google/microsoft presets at the local provider, as a test stand-in."""
    urls = "".join(f"      {key}: {url}\n" for key, url in idp.endpoints().items())
    text = path.read_text()
    for provider in ("google", "microsoft"):
        line = f"      provider: {provider}\n"
        assert line in text
        text = text.replace(line, line + urls)
    path.write_text(text)


def _auth_with_browser(tmp_path: Path, name: str) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "auth", name, "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(tmp_path),
    )
    timer = threading.Timer(60, proc.kill)  # bounds the reads below
    timer.start()
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            if line.startswith("http://127.0.0.1:"):
                url = line.strip()
                break
        assert url is not None, proc.stderr.read() if proc.stderr else ""
        with urllib.request.urlopen(url, timeout=10) as answer:  # be the browser
            assert answer.status == 200
        out, err = proc.communicate(timeout=60)
    finally:
        timer.cancel()
    assert proc.returncode == 0, err
    return out


def test_new_user_gets_gmx_gmail_and_outlook_running_from_init(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    server = oauth_dovecot
    gmx, gmx_password = new_user(server, "gmx.de")
    gmail, _ = new_user(server, "gmail.com")
    outlook, _ = new_user(server, "outlook.com")
    secret = tmp_path / "gmx-password"
    secret.write_text(gmx_password + "\n")
    secret.chmod(0o600)
    # The stand-in server: the preset's host and port are replaced, nothing else.
    where = ["--host", server.host, "--port", str(server.port), "--ca-file", str(server.ca_file)]
    trust = ["--trusted-authserv-id", "mx.home.example"]
    mw(tmp_path, "init", "--address", gmx, *where, *trust, "--password-file", str(secret))
    mw(tmp_path, "init", "--address", gmail, *where, "--oauth2-client-id", "test-client")
    done = mw(tmp_path, "init", "--address", outlook, *where, "--oauth2-client-id", "test-client")
    assert f"meta-watcher auth {outlook}" in done.stdout
    path = config_path(tmp_path)
    accounts = {a["name"]: a for a in yaml.safe_load(path.read_text())["accounts"]}
    assert accounts[gmail]["oauth2"]["provider"] == "google"
    assert accounts[outlook]["oauth2"]["provider"] == "microsoft"
    assert gmx_password not in path.read_text()
    _use_local_endpoints(path, oauth_reset)

    # Gmail: browser sign-in with a loopback redirect; Outlook: device code.
    out = _auth_with_browser(tmp_path, gmail)
    assert "with OAuth2 (XOAUTH2)" in out
    oauth_reset.auto_approve_device = outlook
    done = mw(tmp_path, "auth", outlook)
    assert re.search(r"enter the code \w+", done.stdout)
    assert "with OAuth2 (XOAUTH2)" in done.stdout

    done = mw(tmp_path, "check")
    assert f"ok: account {gmx}: logged in to 127.0.0.1 with a password" in done.stdout
    assert f"ok: account {gmail}: logged in to 127.0.0.1 with OAuth2 (XOAUTH2)" in done.stdout
    assert f"ok: account {outlook}: logged in to 127.0.0.1 with OAuth2 (XOAUTH2)" in done.stdout
    log = server.log_text()
    assert f"user=<{gmx}>, method=PLAIN" in log
    assert f"user=<{gmail}>, method=XOAUTH2" in log

    mails = {
        gmx: "de-2024-policy-facebook.eml",
        gmail: "en-2024-policy-facebook.eml",
        outlook: "de-2024-policy-instagram-base64.eml",
    }
    for user, name in mails.items():
        server.append(user, "INBOX", (CORPUS / name).read_bytes())
    mw(tmp_path, "run", "--once")
    rows = json.loads(mw(tmp_path, "status", "--json").stdout)
    assert {(r["platform"], r["account"], r["status"]) for r in rows} == {
        ("facebook", "anna.beispiel@example.org", "notified"),
        ("facebook", "ben.sample@example.net", "notified"),
        ("instagram", "anna.insta@example.org", "notified"),
    }


def test_check_explains_a_rejected_password_in_one_sentence(
    oauth_dovecot: DovecotServer, tmp_path: Path
) -> None:
    server = oauth_dovecot
    user, _ = new_user(server, "gmx.de")
    secret = tmp_path / "wrong"
    secret.write_text("not-the-password\n")
    where = ["--host", server.host, "--port", str(server.port), "--ca-file", str(server.ca_file)]
    mw(tmp_path, "init", "--address", user, *where, "--password-file", str(secret))
    done = mw(tmp_path, "check", expect=1)
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("FAIL")]
    assert f"rejected the login for {user}: the user name or password is wrong" in line
    assert "(server said: [AUTHENTICATIONFAILED] Authentication failed.)" in line
    assert "not-the-password" not in done.stdout + done.stderr


def _account(host: str, **secret: str) -> Account:
    return Account.model_validate(
        {"name": "a", "host": host, "username": "u", **(secret or {"password_env": "X"})}
    )


@pytest.mark.parametrize(
    ("host", "reply", "expected"),
    [
        ("imap.gmail.com",
         "[ALERT] Application-specific password required: "
         "https://support.google.com/accounts/answer/185833 (Failure)",
         "the provider requires an app password (or OAuth2) for IMAP"),
        ("outlook.office365.com", "Basic authentication is disabled.",
         "the provider has turned off password logins for IMAP: configure oauth2 and run "
         "`meta-watcher auth a`"),
        ("outlook.office365.com", "LOGIN failed.",
         "Outlook.com has refused passwords for IMAP since 16 September 2024"),
        ("imap.gmail.com", "[AUTHENTICATIONFAILED] Invalid credentials (Failure)",
         "Gmail accepts only an app password"),
        ("imap.gmx.net", "authentication failed", "'POP3/IMAP Abruf' is not enabled"),
        ("imap.mail.me.com", "[AUTHENTICATIONFAILED] Authentication failed.",
         "iCloud accepts only an app-specific password"),
        ("mail.example.org", "[AUTHENTICATIONFAILED] Authentication failed.",
         "the user name or password is wrong"),
    ],
)  # fmt: skip
def test_login_failures_are_explained_per_provider(host: str, reply: str, expected: str) -> None:
    text = explain_login_failure(_account(host), reply)
    assert expected in text
    assert text.endswith(f"(server said: {reply})")
    assert "\n" not in text


def test_rejected_oauth2_token_is_explained_as_such() -> None:
    acc = _account("imap.gmail.com", oauth2_token_command="print-token")
    text = explain_login_failure(acc, "[AUTHENTICATIONFAILED] Invalid credentials (Failure)")
    assert text.startswith("the OAuth2 access token was not accepted: run `meta-watcher auth a`")


def test_check_names_untrusted_certificate_unreachable_host_and_missing_folder(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    from dovecot import free_ports

    user, password = dovecot_user
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    base = {"host": dovecot.host, "username": user, "password_file": str(secret), "timeout": 10}
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "trusted_authserv_ids": ["mx.home.example"],
                "database": str(tmp_path / "log.sqlite3"),
                "accounts": [
                    {"name": "nocert", "port": dovecot.port, **base},
                    {"name": "closed", "port": free_ports(1)[0], **base},
                    {
                        "name": "nofolder",
                        "port": dovecot.port,
                        "ca_file": str(dovecot.ca_file),
                        "folders": ["INBOX", "Meta"],
                        **base,
                    },
                ],
            }
        )
    )
    done = mw(tmp_path, "check", "--config", str(config), expect=1)
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 3, done.stdout
    assert "account nocert" in fails[0]
    assert "its TLS certificate is not trusted (set ca_file" in fails[0]
    assert "account closed" in fails[1]
    assert "cannot be reached: the connection was refused" in fails[1]
    assert "account nofolder: folder 'Meta' does not exist on 127.0.0.1" in fails[2]
    assert password not in done.stdout + done.stderr
