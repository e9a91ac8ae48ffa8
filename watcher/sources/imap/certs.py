"""A self-hosted server's TLS certificate, for ``init``: is it trusted, and if not, what is
its SHA-256 fingerprint, so the user can compare it with the server's and pin it as
``ca_file`` (trust on first use, after a look).

The probe only completes the TLS handshake (directly, or after STARTTLS, RFC 9051 §6.2.1) and
hangs up: no login, nothing sent but the STARTTLS command.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from watcher.sources.imap.client import tls_context


@dataclass(frozen=True)
class ServerCertificate:
    """What the handshake showed: the leaf certificate (DER), whether it verified against
    the system's CAs (or *ca_file*), and why not (one clause; None when it did)."""

    der: bytes
    trusted: bool
    problem: str | None

    @property
    def sha256(self) -> str:
        """The fingerprint as ``AB:CD:...`` (what ``openssl x509 -fingerprint -sha256``
        prints), to compare with the server's."""
        digest = hashlib.sha256(self.der).hexdigest().upper()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))

    def pem(self) -> str:
        """The certificate in PEM form, for a ``ca_file``."""
        return ssl.DER_cert_to_PEM_cert(self.der)


def _handshake(
    host: str, port: int, security: str, context: ssl.SSLContext, timeout: float
) -> bytes:
    """The peer's leaf certificate (DER) after a handshake with *context*; raises OSError
    (ssl.SSLError among them) when it fails."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        if security == "starttls":
            reader = raw.makefile("rb")
            reader.readline()  # the greeting
            raw.sendall(b"a1 STARTTLS\r\n")
            while True:
                line = reader.readline(4096)
                if not line:
                    raise ConnectionError("the server closed the connection")
                if line.startswith(b"a1 "):
                    if not line[3:].upper().startswith(b"OK"):
                        raise ConnectionError("the server refused STARTTLS")
                    break
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
            if not der:
                raise ssl.SSLError("no certificate")
            return der


def probe(
    host: str, port: int, security: str, ca_file: Path | None = None, timeout: float = 10.0
) -> ServerCertificate:
    """Connect to *host*:*port* (``tls`` or ``starttls``) and return its certificate and
    whether meta-watcher would trust it (the same checks as a real connection: CA and host
    name). Raises OSError when the server cannot be reached or speaks no TLS."""
    try:
        der = _handshake(host, port, security, tls_context(ca_file), timeout)
        return ServerCertificate(der, True, None)
    except ssl.SSLCertVerificationError as exc:
        problem = exc.verify_message or "the certificate is not trusted"
    # Not trusted: look at it anyway (no verification), only to show and pin it.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    der = _handshake(host, port, security, unverified, timeout)
    return ServerCertificate(der, False, problem)


def pin(cert: ServerCertificate, path: Path) -> Path:
    """Write *cert* as PEM to *path* (a ``ca_file``); returns *path*."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cert.pem(), encoding="ascii")
    return path
