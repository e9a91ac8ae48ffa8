"""A throwaway Dovecot IMAP server for the test suite.

Everything a server needs (config, sockets, state, log, TLS material, Maildir
homes) lives in one private temp dir, and it listens on 127.0.0.1 only, on
ports picked at start, so it never clashes with a system Dovecot or with a
parallel test run.  Supports Dovecot 2.3.x (Debian 12, Ubuntu 22.04/24.04).
"""

from __future__ import annotations

import atexit
import datetime as dt
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import imapclient

INSTALL_HINT = (
    "Dovecot is not installed: run `sudo apt-get install dovecot-imapd` "
    "(or `scripts/install-test-deps`)"
)
HOST = "127.0.0.1"
_USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_BIN_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
_EX_NOUSER = 68  # doveadm's exit code for "no such user / nothing to do"
_LOGOUT_RE = re.compile(r"imap\((?P<user>[^)]*)\).*?\bin=(?P<in>\d+) out=(?P<out>\d+)")


class DovecotError(RuntimeError):
    """Dovecot could not be set up, started, stopped or driven."""


class DovecotNotInstalledError(DovecotError):
    """No dovecot binary on this machine."""


def find_binary(name: str) -> str | None:
    """Return the path of `name`, also looking in sbin dirs missing from a user's PATH."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _BIN_DIRS:
        path = Path(directory, name)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def dovecot_version(binary: str) -> tuple[int, int, int]:
    """(major, minor, patch) from `dovecot --version`, e.g. "2.3.19.1 (9b53102964)"."""
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    if not m:
        raise DovecotError(f"cannot parse `{binary} --version` output: {out!r}")
    return int(m[1]), int(m[2]), int(m[3] or 0)


def free_ports(count: int) -> list[int]:
    """Ports that were free on 127.0.0.1 a moment ago (all held open together so they differ)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class _Accounts:
    """Unix accounts Dovecot's processes run as."""

    login_user: str  # untrusted imap-login processes
    internal_user: str  # auth, anvil, stats, ...
    internal_group: str
    mail_uid: int  # imap processes; owns the Maildirs
    mail_gid: int
    rootless: bool  # no chroot, no privilege switching possible

    @classmethod
    def detect(cls) -> _Accounts:
        if os.geteuid() != 0:
            # Rootless: Dovecot cannot switch users, so every user setting
            # must name the account we run as.
            me = pwd.getpwuid(os.geteuid())
            group = _group_name(me.pw_gid)
            return cls(me.pw_name, me.pw_name, group, me.pw_uid, me.pw_gid, True)
        # As root, use the accounts the Debian package creates.  Mail can't
        # run as root (Dovecot refuses uid 0) and shouldn't run as the
        # internal `dovecot` user (Dovecot's docs), so it runs as `nobody`.
        try:
            for name in ("dovenull", "dovecot"):
                pwd.getpwnam(name)
            nobody = pwd.getpwnam("nobody")
        except KeyError as e:
            raise DovecotError(
                f"system user {e} is missing; reinstall dovecot-core, which creates it"
            ) from None
        return cls("dovenull", "dovecot", "dovecot", nobody.pw_uid, nobody.pw_gid, False)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


class DovecotServer:
    """A private Dovecot 2.3 IMAP server on 127.0.0.1, for tests.

    Attributes (valid after the first `start()`):
      host: "127.0.0.1".
      port: int, implicit-TLS IMAPS port.
      starttls_port: int, plain IMAP port that offers STARTTLS.
      ca_file: Path of the PEM CA certificate that signed the server
        certificate (CN=localhost, SAN IP:127.0.0.1, DNS:localhost).
      tmp_dir: Path holding config, sockets, state, `dovecot.log`, homes.
      passwords: dict user name -> plaintext password.
      user, password: the user given to the constructor (or None) and its
        random password.
      version: (major, minor, patch) of the Dovecot binary.

    Timeouts are in seconds: `startup_timeout` bounds waiting for the ports
    to accept, `stop_timeout` bounds waiting for processes to exit, and
    `socket_timeout` applies to every client socket this class opens.

    Ports are chosen on the first start and kept across `restart()`, so
    clients can reconnect.  `stop()` keeps all files; `close()` (or leaving
    the `with` block) stops and deletes the temp dir.
    """

    host = HOST

    def __init__(
        self,
        *,
        user: str | None = None,
        startup_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        socket_timeout: float = 10.0,
        oauth2_introspection_url: str | None = None,
    ) -> None:
        # With an introspection URL (RFC 7662), users can also log in with XOAUTH2 and
        # OAUTHBEARER: Dovecot's oauth2 passdb POSTs the token there and accepts it when the
        # answer says {"active": true, "username": <the login name>}.
        self.oauth2_introspection_url = oauth2_introspection_url
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.socket_timeout = socket_timeout
        self.user = user
        self.password: str | None = None
        self.passwords: dict[str, str] = {}
        self.port = 0
        self.starttls_port = 0
        self.version: tuple[int, int, int] | None = None
        self.tmp_dir: Path | None = None
        self._dovecot = ""
        self._doveadm = ""
        self._accounts: _Accounts | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._ports_fixed = False

    # -- paths ---------------------------------------------------------------

    def _path(self, *parts: str) -> Path:
        if self.tmp_dir is None:
            raise DovecotError("DovecotServer was never started")
        return self.tmp_dir.joinpath(*parts)

    @property
    def config_file(self) -> Path:
        return self._path("dovecot.conf")

    @property
    def log_file(self) -> Path:
        return self._path("dovecot.log")

    @property
    def ca_file(self) -> Path:
        return self._path("tls", "ca.pem")

    @property
    def _stderr_file(self) -> Path:
        # Fatal errors before log_path is opened (bad config) only go to stderr.
        return self._path("dovecot.stderr")

    def _passwd_file(self, user: str) -> Path:
        return self._path("passwd.d", user)

    def home(self, user: str) -> Path:
        return self._path("home", user)

    def maildir(self, user: str) -> Path:
        """The user's Maildir++ root (INBOX; subfolders are `.Name` dirs inside)."""
        return self.home(user) / "Maildir"

    # -- lifecycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> DovecotServer:
        """Start the server (set up the temp dir on first call); return self."""
        if self.running:
            return self
        if self.tmp_dir is None:
            self._prepare()
        for attempt in range(3):
            self._launch()
            try:
                self._wait_ready()
            except DovecotError as e:
                self.stop()
                lost_port_race = "Address already in use" in str(e)
                if self._ports_fixed or not lost_port_race or attempt == 2:
                    raise
                # Someone took a port between free_ports() and Dovecot's bind.
                self._pick_ports()
            except BaseException:
                self.stop()
                raise
            else:
                self._ports_fixed = True  # restart() must keep them
                return self
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        with open(self._stderr_file, "ab") as err:
            # -F: stay in the foreground, so the master is our child: we know
            # its pid (the one in master.pid) and reap it.  A daemonized master
            # would be reparented to PID 1, which in containers may not reap.
            # Own session, so a last-resort SIGKILL can take the whole group.
            self._proc = subprocess.Popen(
                [self._dovecot, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                cwd=self.tmp_dir,
                start_new_session=True,
            )
        _running.add(self)

    def stop(self) -> None:
        """Stop the master and all its children, each wait bounded by `stop_timeout`.

        Takes ~1 s: Dovecot's master waits that long for its children.
        """
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is None:
            return
        was_running = proc.poll() is None
        if was_running:
            # SIGTERM lets the master shut its children down and log it.
            _signal(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                _signal(proc.pid, signal.SIGKILL, group=True)
                proc.wait(timeout=self.stop_timeout)
        # The master has already asked its children to exit; stragglers could
        # hold the listening sockets and break a restart on the same ports.
        _signal(proc.pid, signal.SIGKILL, group=True)
        deadline = time.monotonic() + self.stop_timeout
        while was_running and self._accepting() and time.monotonic() < deadline:
            time.sleep(0.01)

    def restart(self) -> None:
        """Stop and start again on the same ports; mail and users are kept."""
        self.stop()
        self.start()

    def reload(self) -> None:
        """Make Dovecot re-read its config (SIGHUP via `doveadm reload`)."""
        self.doveadm("reload")

    def close(self) -> None:
        """Stop and delete the temp dir."""
        self.stop()
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None
        self.passwords.clear()
        self.password = None
        self._ports_fixed = False

    def __enter__(self) -> DovecotServer:
        try:
            return self.start()
        except BaseException:
            self.close()  # __exit__ won't run
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- users and mail ------------------------------------------------------

    def add_user(self, name: str, password: str | None = None) -> str:
        """Create a user with an empty home; return its password (random if None).

        Works while running without a reload: each user has its own
        passwd-file, which Dovecot opens on the user's first login.  (With one
        shared file, Dovecot notices changes only once per second.)
        """
        if not _USERNAME_RE.fullmatch(name):
            raise ValueError(f"bad user name {name!r}")
        if name in self.passwords:
            raise ValueError(f"user {name!r} exists")
        if password is None:
            password = secrets.token_urlsafe(12)
        if any(c in password for c in ":\n\r\0"):
            raise ValueError("password must not contain ':' or line breaks (passwd-file format)")
        if self.tmp_dir is None:
            self._prepare()
        acc = self._accounts
        assert acc is not None
        home = self.home(name)
        home.mkdir(mode=0o700)
        os.chown(home, acc.mail_uid, acc.mail_gid)
        self._write_passwd(name, password)
        self.passwords[name] = password
        return password

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the server against `ca_file`."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, user: str, *, starttls: bool = False) -> imapclient.IMAPClient:
        """An IMAPClient logged in as `user` over verified TLS (for test setup).

        Implicit TLS on `port`, or STARTTLS on `starttls_port` if `starttls`.
        The caller must log out (use it as a context manager).
        """
        ctx = self.ssl_context()
        port = self.starttls_port if starttls else self.port
        c = imapclient.IMAPClient(
            self.host, port, ssl=not starttls, ssl_context=ctx, timeout=self.socket_timeout
        )
        try:
            if starttls:
                c.starttls(ctx)
            c.login(user, self.passwords[user])
        except BaseException:
            c.shutdown()
            raise
        return c

    def append(
        self,
        user: str,
        folder: str,
        raw_bytes: bytes,
        flags: Iterable[bytes | str] = (),
        msg_time: dt.datetime | None = None,
    ) -> int:
        """APPEND a raw RFC 5322 message; return its UID (from UIDPLUS APPENDUID)."""
        with self.client(user) as c:
            resp = c.append(folder, raw_bytes, tuple(flags), msg_time)
        text = resp.decode("ascii", "replace") if isinstance(resp, bytes) else str(resp)
        m = re.search(r"\[APPENDUID \d+ (\d+)\]", text)
        if not m:
            raise DovecotError(f"APPEND response without APPENDUID: {text!r}")
        return int(m[1])

    def create_folder(self, user: str, folder: str) -> None:
        with self.client(user) as c:
            c.create_folder(folder)

    def delete_folder(self, user: str, folder: str) -> None:
        with self.client(user) as c:
            c.delete_folder(folder)

    def kick(self, user: str) -> str:
        """Disconnect all of `user`'s sessions (`doveadm kick`); return its output.

        No error if the user has no sessions.
        """
        return self.doveadm("kick", user, ok_codes=(0, _EX_NOUSER))

    def doveadm(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> str:
        """Run `doveadm -c CONFIG ARGS...` against this server; return stdout."""
        if not self.running:
            raise DovecotError("Dovecot is not running")
        r = subprocess.run(
            [self._doveadm, "-c", str(self.config_file), *args],
            capture_output=True,
            text=True,
            timeout=self.socket_timeout,
        )
        if r.returncode not in ok_codes:
            raise DovecotError(f"doveadm {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r.stdout

    # -- logs ----------------------------------------------------------------

    def log_text(self) -> str:
        """Dovecot's log so far."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def session_bytes(self, user: str | None = None) -> list[tuple[int, int]]:
        """(bytes in, bytes out) of each finished IMAP session, from the logout log lines.

        "in" is what the client sent, "out" what the server sent.  A session
        appears only once its imap process has logged the disconnect.
        """
        return [
            (int(m["in"]), int(m["out"]))
            for m in _LOGOUT_RE.finditer(self.log_text())
            if user is None or m["user"] == user
        ]

    def _log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self._stderr_file, self.log_file):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except FileNotFoundError:
                continue
            if text:
                parts.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(parts) or "(Dovecot wrote no log)"

    # -- internals -----------------------------------------------------------

    def _prepare(self) -> None:
        """Find Dovecot, check its version, build the temp dir, TLS files and config."""
        dovecot = find_binary("dovecot")
        if dovecot is None:
            raise DovecotNotInstalledError(INSTALL_HINT)
        doveadm = find_binary("doveadm")
        if doveadm is None:
            raise DovecotNotInstalledError(INSTALL_HINT + " (doveadm is missing)")
        if find_binary("openssl") is None:
            raise DovecotError("the `openssl` CLI is missing: run `sudo apt-get install openssl`")
        version = dovecot_version(dovecot)
        if version[:2] != (2, 3):
            raise DovecotError(
                f"Dovecot {'.'.join(map(str, version))} at {dovecot} is not supported: "
                "tests/dovecot.py writes a Dovecot 2.3.x config (2.4 changed the syntax: "
                "dovecot_config_version, named passdb/userdb blocks, ssl_server_* settings). "
                "Install Dovecot 2.3 (Debian 12, Ubuntu 24.04) or port _config() to 2.4."
            )
        self._dovecot, self._doveadm, self.version = dovecot, doveadm, version
        self._accounts = acc = _Accounts.detect()

        self.tmp_dir = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
        try:
            self._populate_tmp_dir(acc)
        except BaseException:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None
            raise

    def _populate_tmp_dir(self, acc: _Accounts) -> None:
        assert self.tmp_dir is not None
        # Unprivileged Dovecot processes (auth as `dovecot`, imap as the mail
        # user) must traverse the dir; mkdtemp makes it 0700.
        self.tmp_dir.chmod(0o711)
        for sub in ("state", "tls"):
            self._path(sub).mkdir(mode=0o700)
        # Dovecot wants base_dir world-readable (it "fixes" it otherwise).
        self._path("run").mkdir(mode=0o755)
        self._path("home").mkdir(mode=0o711)
        self._path("passwd.d").mkdir(mode=0o711)
        _make_certificates(self._path("tls"))
        self._pick_ports()
        if self.user is not None and self.user not in self.passwords:
            self.password = self.add_user(self.user)

    def _pick_ports(self) -> None:
        """Choose free ports and (re)write the config that names them."""
        assert self._accounts is not None
        self.port, self.starttls_port = free_ports(2)
        self.config_file.write_text(self._config(self._accounts))

    def _oauth2_passdb(self) -> str:
        """The oauth2 passdb block (and its args file), or '' without an introspection URL."""
        if not self.oauth2_introspection_url:
            return ""
        args = self._path("oauth2.conf.ext")
        args.write_text(
            "introspection_mode = post\n"
            f"introspection_url = {self.oauth2_introspection_url}\n"
            "force_introspection = yes\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
        )
        args.chmod(0o644)
        return (
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {args}\n}}\n"
        )

    def _write_passwd(self, name: str, password: str) -> None:
        """Write the user's passwd-file atomically (Dovecot may read it at any time)."""
        acc = self._accounts
        assert acc is not None
        path = self._passwd_file(name)
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(
            f"{name}:{{PLAIN}}{password}:{acc.mail_uid}:{acc.mail_gid}::{self.home(name)}::\n"
        )
        # The auth process runs as the internal user and must read it.
        if not acc.rootless:
            shutil.chown(tmp, group=acc.internal_group)
        tmp.chmod(0o640)
        os.replace(tmp, path)

    def _config(self, acc: _Accounts) -> str:
        """A complete, self-contained Dovecot 2.3 config (nothing from /etc/dovecot)."""
        t = self.tmp_dir
        assert t is not None
        # Services that chroot by default; chroot needs root.
        no_chroot = "  chroot =" if acc.rootless else ""
        return f"""\
# Generated by tests/dovecot.py for one test run.  Not for production use.
base_dir = {t}/run
state_dir = {t}/state
instance_name = meta-watcher-test-{t.name}
protocols = imap
listen = {HOST}
log_path = {t}/dovecot.log
info_log_path = {t}/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "

default_login_user = {acc.login_user}
default_internal_user = {acc.internal_user}
default_internal_group = {acc.internal_group}
first_valid_uid = {acc.mail_uid}
last_valid_uid = {acc.mail_uid}
first_valid_gid = {acc.mail_gid}
last_valid_gid = {acc.mail_gid}
mail_uid = {acc.mail_uid}
mail_gid = {acc.mail_gid}
mail_location = maildir:~/Maildir
# Test data is disposable; fsync only slows the suite down.
mail_fsync = never

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
}}

ssl = yes
ssl_cert = <{t}/tls/server.pem
ssl_key = <{t}/tls/server.key
ssl_min_protocol = TLSv1.2

auth_mechanisms = plain login{" xoauth2 oauthbearer" if self.oauth2_introspection_url else ""}
# Only the loopback plain port is affected; lets tests log in without STARTTLS.
disable_plaintext_auth = no
# Tests of bad passwords should stay fast.  2.3.19 still answers a failed
# login after ~0.5 s (its failure queue is checked every 500 ms).
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {t}/passwd.d/%u
}}
{self._oauth2_passdb()}userdb {{
  driver = passwd-file
  args = username_format=%u {t}/passwd.d/%u
}}

protocol imap {{
  # Bytes per session in the log, for benchmarks (see session_bytes()).
  imap_logout_format = in=%i out=%o deleted=%{{deleted}} expunged=%{{expunged}}
  # Tests may open many parallel sessions for one user.
  mail_max_userip_connections = 100
}}

service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.starttls_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.port}
    ssl = yes
  }}
{no_chroot}
}}
service imap-urlauth-login {{
{no_chroot}
}}
service anvil {{
{no_chroot}
  # No auth penalty socket, so auth runs without the per-IP "auth penalty":
  # otherwise each failed login delays every later login from 127.0.0.1
  # (any user, any test) by 2..15 s.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    def _accepting(self) -> bool:
        """True if something still listens on either port."""
        for port in (self.port, self.starttls_port):
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                return True
            except OSError:
                pass
        return False

    def _wait_ready(self) -> None:
        """Wait until the plain port greets us and the TLS port completes a verified handshake."""
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise DovecotError(
                    f"Dovecot exited with status {self._proc.returncode} during startup\n"
                    + self._log_tail()
                )
            try:
                with socket.create_connection((HOST, self.starttls_port), timeout=1) as s:
                    greeting = s.recv(200)
                    s.sendall(b"a LOGOUT\r\n")
                if not greeting.startswith(b"* OK"):
                    raise DovecotError(f"unexpected IMAP greeting {greeting!r}")
                # A verified handshake also proves the TLS files are usable.
                with (
                    socket.create_connection((HOST, self.port), timeout=1) as s,
                    self.ssl_context().wrap_socket(s, server_hostname=HOST),
                ):
                    pass
                return
            except ssl.SSLCertVerificationError:
                raise
            except OSError as e:
                last_error = e
            time.sleep(0.05)
        raise DovecotError(
            f"Dovecot did not accept on {HOST}:{self.starttls_port}/{self.port} within "
            f"{self.startup_timeout} s (last error: {last_error})\n" + self._log_tail()
        )


def _signal(pid: int, sig: int, *, group: bool = False) -> bool:
    """Send `sig` to process (group) `pid`; False if nothing was there."""
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _make_certificates(directory: Path) -> None:
    """A per-run CA and a server certificate for 127.0.0.1/localhost, via the openssl CLI.

    A separate CA (rather than one self-signed leaf) keeps clients that use
    strict X.509 checks (VERIFY_X509_STRICT, default in Python 3.13) happy.
    """
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    d = str(directory)
    commands = [
        ["openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
         "-days", "7", "-subj", "/CN=meta-watcher test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *ec, "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr",
         "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem",
         "-CAkey", f"{d}/ca.key", "-set_serial", f"0x{secrets.token_hex(16)}",
         "-days", "7", "-extfile", str(ext), "-out", f"{d}/server.pem"],
    ]  # fmt: skip
    for cmd in commands:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise DovecotError(f"{' '.join(cmd)} failed: {r.stderr}")


_running: set[DovecotServer] = set()


@atexit.register
def _close_all() -> None:
    # Don't leave servers behind if the test process exits without teardown.
    for server in list(_running):
        server.close()
