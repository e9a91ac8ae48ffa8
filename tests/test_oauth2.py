"""OAuth2 against a local token endpoint and a Dovecot that validates XOAUTH2 tokens.

The provider (tests/oauth_provider.py) issues real tokens over HTTP on 127.0.0.1; Dovecot's
oauth2 passdb asks its introspection endpoint whether a token is valid, so a login succeeds
only with a token the provider issued and has not revoked.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from dovecot import DovecotServer
from oauth_provider import OAuthProvider, new_user

from watcher.config import Account, parse_config
from watcher.errors import ConfigError, LoginError, SecretError, ServerError
from watcher.sources import imap
from watcher.sources.oauth2.tokens import FileTokenStore, Tokens, token_manager


def account(
    server: DovecotServer, idp: OAuthProvider, user: str, tmp_path: Path, **oauth2: Any
) -> Account:
    settings = {
        "provider": "google",
        "client_id": "test-client",
        "token_file": str(tmp_path / "tokens" / f"{user}.json"),
        **idp.endpoints(),
        **oauth2,
    }
    return Account.model_validate(
        {
            "name": user,
            "host": server.host,
            "port": server.port,
            "ca_file": str(server.ca_file),
            "username": user,
            "oauth2": settings,
            "timeout": 10,
        }
    )


def seed(acc: Account, idp: OAuthProvider, user: str, expires_in_seconds: float) -> Tokens:
    """Store a grant as `meta-watcher auth` would, with an access token expiring as given."""
    access, refresh = idp.issue(user, ttl_seconds=int(max(expires_in_seconds, 1)))
    tokens = Tokens(access, datetime.now(UTC) + timedelta(seconds=expires_in_seconds), refresh)
    assert acc.oauth2 is not None
    assert acc.oauth2.token_file is not None
    FileTokenStore(acc.oauth2.token_file, "test").save(tokens)
    return tokens


def login_works(acc: Account) -> None:
    client = imap.connect(acc)
    try:
        assert "INBOX" in imap.list_folders(client)
    finally:
        imap.logout(client)


def test_xoauth2_login_uses_the_stored_token_without_refreshing_it(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    user, _ = new_user(oauth_dovecot)
    acc = account(oauth_dovecot, oauth_reset, user, tmp_path)
    seed(acc, oauth_reset, user, expires_in_seconds=3600)
    before = oauth_reset.grants("refresh_token")
    login_works(acc)
    assert oauth_reset.grants("refresh_token") == before
    assert f"user=<{user}>, method=XOAUTH2" in oauth_dovecot.log_text()


def test_token_close_to_expiry_is_refreshed_before_login_and_stored_0600(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    user, _ = new_user(oauth_dovecot)
    acc = account(oauth_dovecot, oauth_reset, user, tmp_path)
    old = seed(acc, oauth_reset, user, expires_in_seconds=60)  # inside the 300 s margin
    before = oauth_reset.grants("refresh_token")
    login_works(acc)
    assert oauth_reset.grants("refresh_token") == before + 1
    assert acc.oauth2 is not None
    assert acc.oauth2.token_file is not None
    stored = FileTokenStore(acc.oauth2.token_file, "test").load()
    assert stored is not None
    assert stored.access_token != old.access_token
    assert stored.refresh_token == old.refresh_token  # Google-style: kept
    assert stored.expires_at is not None
    assert stored.expires_at > datetime.now(UTC) + timedelta(minutes=50)
    assert stat.S_IMODE(acc.oauth2.token_file.stat().st_mode) == 0o600
    # The new token is good for an hour: the next login does not refresh again.
    login_works(acc)
    assert oauth_reset.grants("refresh_token") == before + 1


def test_expired_token_is_refreshed_and_a_rotated_refresh_token_is_kept(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    oauth_reset.rotate_refresh = True  # Microsoft-style rotation
    user, _ = new_user(oauth_dovecot)
    acc = account(oauth_dovecot, oauth_reset, user, tmp_path, provider="microsoft")
    old = seed(acc, oauth_reset, user, expires_in_seconds=-10)
    login_works(acc)
    assert acc.oauth2 is not None
    assert acc.oauth2.token_file is not None
    stored = FileTokenStore(acc.oauth2.token_file, "test").load()
    assert stored is not None
    assert stored.refresh_token not in (None, old.refresh_token)
    assert stored.refresh_token in oauth_reset.refresh_tokens


def test_revoked_grant_says_to_run_auth_again_without_showing_any_token(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    user, _ = new_user(oauth_dovecot)
    acc = account(oauth_dovecot, oauth_reset, user, tmp_path)
    old = seed(acc, oauth_reset, user, expires_in_seconds=-10)
    oauth_reset.revoke_all(user)
    with pytest.raises(SecretError) as caught:
        imap.connect(acc)
    message = str(caught.value)
    assert f"run `meta-watcher auth {user}` again" in message
    assert "invalid_grant" in message
    assert old.refresh_token is not None
    assert old.refresh_token not in message
    assert old.access_token is not None
    assert old.access_token not in message


def test_token_the_server_no_longer_accepts_is_one_sentence_about_oauth2(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    user, _ = new_user(oauth_dovecot)
    acc = account(oauth_dovecot, oauth_reset, user, tmp_path)
    tokens = seed(acc, oauth_reset, user, expires_in_seconds=3600)
    oauth_reset.revoke_all(user)  # the stored access token looks fresh but is dead
    with pytest.raises(LoginError) as caught:
        imap.connect(acc)
    message = str(caught.value)
    assert "OAuth2 access token was not accepted" in message
    assert "AUTHENTICATIONFAILED" in message
    assert tokens.access_token is not None
    assert tokens.access_token not in message


def test_no_grant_yet_names_the_auth_command(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    user, _ = new_user(oauth_dovecot)
    acc = account(oauth_dovecot, oauth_reset, user, tmp_path)
    with pytest.raises(SecretError, match=re.escape(f"run `meta-watcher auth {user}`")):
        token_manager(acc).access_token()


def test_unreachable_token_endpoint_is_a_server_error_naming_the_endpoint(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    from dovecot import free_ports

    port = free_ports(1)[0]
    user, _ = new_user(oauth_dovecot)
    acc = account(
        oauth_dovecot, oauth_reset, user, tmp_path, token_url=f"http://127.0.0.1:{port}/token"
    )
    seed(acc, oauth_reset, user, expires_in_seconds=-10)
    with pytest.raises(ServerError, match=rf"127\.0\.0\.1:{port} cannot be reached"):
        imap.connect(acc)


def test_oauth2_token_command_logs_in_with_xoauth2(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    user, _ = new_user(oauth_dovecot)
    access, _refresh = oauth_reset.issue(user)
    token_file = tmp_path / "token"
    token_file.write_text(access + "\n")
    acc = Account.model_validate(
        {
            "name": "helper",
            "host": oauth_dovecot.host,
            "port": oauth_dovecot.port,
            "ca_file": str(oauth_dovecot.ca_file),
            "username": user,
            "oauth2_token_command": f"cat {token_file}",
        }
    )
    login_works(acc)
    failing = acc.model_copy(update={"oauth2_token_command": "exit 3"})
    with pytest.raises(SecretError, match="oauth2_token_command exited with status 3"):
        imap.connect(failing)


@pytest.mark.parametrize(
    ("oauth2", "expected"),
    [
        ({"provider": "google", "client_id": "x", "token_url": "http://idp.example/token"},
         "accounts[0].oauth2.token_url: Value error, 'http://idp.example/token' must be an "
         "https:// URL"),
        ({"provider": "custom", "client_id": "x"},
         "accounts[0].oauth2: provider custom needs token_url and scopes"),
        ({"provider": "google", "client_id": "x", "token_store": "keyring", "token_file": "t"},
         "accounts[0].oauth2: token_file is only used with token_store: file"),
        ({"provider": "yahoo", "client_id": "x"}, "accounts[0].oauth2.provider"),
    ],
)  # fmt: skip
def test_bad_oauth2_settings_name_the_key(
    tmp_path: Path, oauth2: dict[str, Any], expected: str
) -> None:
    data = {
        "accounts": [{"name": "a", "host": "imap.example.org", "username": "u", "oauth2": oauth2}]
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data, tmp_path / "config.yaml")
    assert expected.replace("Value error, ", "") in str(caught.value)


def test_password_and_oauth2_together_are_refused_naming_both(tmp_path: Path) -> None:
    data = {
        "accounts": [
            {
                "name": "a",
                "host": "imap.example.org",
                "username": "u",
                "password_env": "X",
                "oauth2": {"provider": "google", "client_id": "x"},
            }
        ]
    }
    with pytest.raises(ConfigError, match="set only one of password_env, oauth2"):
        parse_config(data, tmp_path / "config.yaml")


# -- `meta-watcher auth`: the consent flows, through the real CLI ---------------------------


def write_config(
    tmp_path: Path, server: DovecotServer, idp: OAuthProvider, user: str, **oauth2: Any
) -> Path:
    settings = {"provider": "google", "client_id": "test-client", **idp.endpoints(), **oauth2}
    config = {
        "database": str(tmp_path / "log.sqlite3"),
        "trusted_authserv_ids": ["mx.home.example"],
        "accounts": [
            {
                "name": "mail",
                "host": server.host,
                "port": server.port,
                "ca_file": str(server.ca_file),
                "username": user,
                "oauth2": settings,
                "timeout": "10s",
            }
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_WATCHER", "XDG_"))}
    env.update(
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
    )
    return env


def start_auth(tmp_path: Path, config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", "auth", "mail", "--config", str(config), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path),
    )


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 30) -> re.Match[str]:
    """Read stdout lines until one matches *pattern*; the process is killed after *timeout*
    seconds, which ends a blocked read."""
    assert proc.stdout is not None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
    finally:
        timer.cancel()
    proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"no line matching {pattern!r} in {seen!r}; stderr: {err}")


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


def test_auth_device_flow_stores_the_grant_0600_and_logs_in(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    user, _ = new_user(oauth_dovecot)
    oauth_reset.auto_approve_device = user
    config = write_config(tmp_path, oauth_dovecot, oauth_reset, user, provider="microsoft")
    proc = start_auth(tmp_path, config)  # microsoft defaults to the device flow
    found = read_until(proc, r"Open (\S+) in a browser and enter the code (\w+)")
    assert found[1].endswith("/device-login")
    code, out, err = finish(proc)
    assert code == 0, err
    token_file = tmp_path / "data" / "meta-watcher" / "oauth2" / "mail.json"
    assert f"OAuth2 grant stored in {token_file}" in out
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "logged in to 127.0.0.1 with OAuth2 (XOAUTH2)" in out
    for token in oauth_reset.refresh_tokens:
        assert token not in out + err


def test_auth_browser_flow_with_loopback_redirect_and_pkce(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    user, _ = new_user(oauth_dovecot)
    config = write_config(tmp_path, oauth_dovecot, oauth_reset, user)
    proc = start_auth(tmp_path, config, "--no-browser")
    url = read_until(proc, r"^(http://127\.0\.0\.1:\d+/authorize\?\S+)")[1]
    assert "code_challenge_method=S256" in url
    assert "access_type=offline" in url
    # Be the browser: the provider signs the user in (login_hint) and redirects to the
    # loopback listener of `meta-watcher auth`, which urllib follows.
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert b"received the authorisation" in answer.read()
    code, out, err = finish(proc)
    assert code == 0, err
    assert "logged in to 127.0.0.1 with OAuth2 (XOAUTH2)" in out
    assert oauth_reset.grants("authorization_code") >= 1


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_auth_paste_mode_for_containers_and_state_is_checked(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    user, _ = new_user(oauth_dovecot)
    config = write_config(tmp_path, oauth_dovecot, oauth_reset, user)
    opener = urllib.request.build_opener(_NoRedirect)

    def redirect_target(url: str) -> str:
        with pytest.raises(urllib.error.HTTPError) as caught:
            opener.open(url, timeout=10)
        assert caught.value.code == 302
        return str(caught.value.headers["Location"])

    # A pasted address from another sign-in (wrong state) is refused.
    proc = start_auth(tmp_path, config, "--paste")
    url = read_until(proc, r"^(http://127\.0\.0\.1:\d+/authorize\?\S+)")[1]
    forged = re.sub(r"state=[^&]+", "state=forged", redirect_target(url))
    assert proc.stdin is not None
    proc.stdin.write(forged + "\n")
    proc.stdin.flush()
    code, _out, err = finish(proc)
    assert code == 78
    assert "state mismatch" in err

    proc = start_auth(tmp_path, config, "--paste")
    url = read_until(proc, r"^(http://127\.0\.0\.1:\d+/authorize\?\S+)")[1]
    assert proc.stdin is not None
    proc.stdin.write(redirect_target(url) + "\n")
    proc.stdin.flush()
    code, out, err = finish(proc)
    assert code == 0, err
    assert "logged in to 127.0.0.1 with OAuth2 (XOAUTH2)" in out


def test_auth_can_keep_the_grant_in_the_keyring(
    oauth_dovecot: DovecotServer, oauth_reset: OAuthProvider, tmp_path: Path
) -> None:
    try:
        import keyrings.alt  # noqa: F401
    except ImportError as exc:
        raise AssertionError("install the test extra: python3 -m pip install '.[test]'") from exc
    user, _ = new_user(oauth_dovecot)
    oauth_reset.auto_approve_device = user
    config = write_config(
        tmp_path, oauth_dovecot, oauth_reset, user, provider="microsoft", token_store="keyring"
    )
    code, out, err = finish(start_auth(tmp_path, config))
    assert code == 0, err
    assert "OAuth2 grant stored in the system keyring" in out
    assert not (tmp_path / "data" / "meta-watcher" / "oauth2").exists()
    # `check` logs in again with the token from the keyring.
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(tmp_path),
        check=False,
    )
    assert "ok: account mail: logged in to 127.0.0.1 with OAuth2 (XOAUTH2)" in done.stdout, (
        done.stderr
    )
