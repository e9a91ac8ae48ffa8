"""``init``'s look at the server: its TLS certificate (trusted, else shown by fingerprint and
offered for pinning) and one read-only test login that proposes the authserv-id stamping the
account's recent mail for trusted_authserv_ids."""

from __future__ import annotations

from pathlib import Path

import click

from watcher.cli import fail
from watcher.cli.init_file import write_config
from watcher.cli.init_questions import ask
from watcher.config import default_config_path, load_config, yamledit
from watcher.errors import WatcherError


def check_certificate(host: str, port: int, security: str, config: Path | None) -> str | None:
    """Look at *host*'s TLS certificate; when the system does not trust it, show its SHA-256
    fingerprint and offer to pin it (its PEM written next to the config, used as ca_file) or
    to name a CA file. Returns the ca_file to write, or None."""
    from watcher.sources.imap import certs  # imported here: only this path needs it

    try:
        cert = certs.probe(host, port, security, timeout=10.0)
    except OSError as exc:
        click.echo(
            f"Could not check the TLS certificate of {host}:{port} ({exc.__class__.__name__}: "
            f"{exc}); meta-watcher check will say if it needs a ca_file."
        )
        return None
    if cert.trusted:
        click.echo(f"TLS certificate of {host}: trusted.")
        return None
    click.echo(
        f"The TLS certificate of {host}:{port} is not trusted ({cert.problem}).\n"
        f"  SHA-256 fingerprint: {cert.sha256}\n"
        "Compare it with your server's (openssl x509 -in CERT -noout -fingerprint -sha256) "
        "before you trust it."
    )
    folder = (config or default_config_path()).parent
    pinned = folder / f"{host.replace(':', '_')}.pem"
    try:
        agreed = click.confirm(f"Pin this certificate (write it to {pinned})?", default=False)
    except click.Abort:  # no answer on standard input
        agreed = False
    if agreed:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        certs.pin(cert, pinned)
        click.echo(f"Wrote {pinned}: ca_file points to it.")
        return str(pinned.resolve())
    answer = ask("CA file that signed it (empty: none)", "--ca-file", default="")
    return str(Path(answer).expanduser().resolve()) if str(answer).strip() else None


def try_login(path: Path, name: str, flag: str) -> None:
    """Log in to the new account once (read-only); propose the authserv-id that stamps its
    recent mail (watcher.sources.imap.authserv) and add it to trusted_authserv_ids when the
    user agrees. A failure leaves the config as written and exits with the error's exit
    code (LoginError and ServerError: unavailable; ConfigError: 78) after one sentence on
    stderr; *flag* is
    the ``--config`` option the next command needs, or ""."""
    # Imported here: init without a login needs no IMAP.
    from watcher.cli.accounts import authserv_report
    from watcher.sources import imap

    config = load_config(path)
    account = next(a for a in config.accounts if a.name == name)
    try:
        client = imap.connect(account)
    except WatcherError as exc:
        # A failed test login is no success: the exit code says so to a script, and no
        # "Next:" steps follow as if all were well.
        fail(
            f"the test login failed: {exc}. The config {path} was written; fix it there, "
            f"then run meta-watcher{flag} check",
            exc.exit_code,
        )
    try:
        click.echo(f"Test login to {account.host} as {account.username}: ok.")
        found = authserv_report(client, account, list(account.folders))
    finally:
        imap.logout(client)
    trusted = {t.lower() for t in config.trusted_authserv_ids}
    for item in found:
        share = f"{item.carried_by} of the {item.messages} newest mails in {item.folder}"
        if item.authserv_id in trusted:
            click.echo(f"{item.authserv_id} ({share}) is already trusted.")
            continue
        click.echo(
            f"Your server seems to be {item.authserv_id}: it added the top-most "
            f"Authentication-Results header to {share}. Trusting it lets meta-watcher verify "
            "Meta's mail (DKIM/DMARC as that server checked it)."
        )
        try:
            agreed = click.confirm(f"Add {item.authserv_id} to trusted_authserv_ids?", default=True)
        except click.Abort:  # no answer on standard input
            agreed = False
        if not agreed:
            click.echo(f"Not added; --trusted-authserv-id {item.authserv_id} adds it later.")
        else:
            text, added = yamledit.add_trusted_ids(
                path.read_text(encoding="utf-8"), [item.authserv_id], f"config file {path}"
            )
            write_config(path, text)
            trusted.add(item.authserv_id)
            if added:
                click.echo(f"Added {item.authserv_id} to trusted_authserv_ids.")
    if not found:
        click.echo("No mail with an Authentication-Results header to learn the server's id from.")
