"""``init``'s look at the server: its TLS certificate (trusted, else shown by fingerprint and
offered for pinning) and one read-only test login that proposes the authserv-id stamping the
account's recent mail for trusted_authserv_ids (only one on top of nearly every mail: a
server stamps every mail it delivers, a sender only its own)."""

from __future__ import annotations

from pathlib import Path

import click

from watcher.cli import fail
from watcher.cli.init_file import write_config
from watcher.cli.init_questions import ask, confirm
from watcher.config import default_config_path, load_config, yamledit
from watcher.errors import WatcherError


def check_certificate(
    host: str, port: int, security: str, config: Path | None, wrote: list[str] | None = None
) -> str | None:
    """Look at *host*'s TLS certificate; when the system does not trust it, show its SHA-256
    fingerprint and offer to pin it (its PEM written next to the config, used as ca_file; "PATH
    was written" appended to *wrote*) or to name a CA file. Returns the ca_file to write, or None.
    Raises click.UsageError naming --ca-file when standard input ends before the answer."""
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
    agreed = confirm(f"Pin this certificate (write it to {pinned})?", default=False)
    if agreed is None:  # standard input ended: the CA file question would get no answer either
        raise click.UsageError("--ca-file is needed (no answer on standard input)")
    if agreed:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        certs.pin(cert, pinned)
        if wrote is not None:
            wrote.append(f"{pinned} was written")
        click.echo(f"Wrote {pinned}: ca_file points to it.")
        return str(pinned.resolve())
    answer = ask("CA file that signed it (empty: none)", "--ca-file", default="")
    return str(Path(answer).expanduser().resolve()) if str(answer).strip() else None


def try_login(path: Path, name: str, flag: str) -> None:
    """Log in to the new account once (read-only); propose the authserv-id that stamps (nearly)
    all its recent non-Junk mail (watcher.sources.imap.authserv) and add it to
    trusted_authserv_ids when the user agrees: by default only when it is on every mail read.
    When no id qualifies, say so and propose none. A failure leaves the config as written
    and exits with the error's exit code (LoginError and ServerError: unavailable;
    ConfigError: 78) after one sentence on stderr; *flag* is the ``--config`` option the
    next command needs, or ""."""
    # Imported here: init without a login needs no IMAP.
    from watcher.cli.accounts import authserv_report, no_server_id
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
    if found is None:
        click.echo(
            "Could not read the mail's Authentication-Results headers to learn the server's id."
        )
        return
    trusted = {t.lower() for t in config.trusted_authserv_ids}
    proposed = found.proposed
    if proposed is None:
        click.echo(f"Note: {no_server_id(found)}.")
        return
    share = f"{found.carried_by} of the {found.messages} newest mails"
    if proposed in trusted:
        click.echo(f"{proposed} ({share}) is already trusted.")
        return
    if found.confident:
        click.echo(
            f"Your server seems to be {proposed}: it added the top-most Authentication-Results "
            f"header to {share}. Trusting it lets meta-watcher verify Meta's mail (DKIM/DMARC "
            "as that server checked it)."
        )
    elif found.unanimous:
        # Every mail, but few: a handful of spam mails with a forged header look the same.
        click.echo(
            f"{proposed} is on the top-most Authentication-Results header of {share}; that "
            "is few mails, and a sender can write this header too: make sure it is your "
            "server's id (README, 'Authenticity') before you trust it."
        )
    else:
        # Not on every mail: a server stamps each mail it delivers, so check before trusting.
        click.echo(
            f"{proposed} is on the top-most Authentication-Results header of {share}, not on "
            "all: your server adds its header to every mail it delivers, so make sure it is "
            "your server's id (README, 'Authenticity') before you trust it."
        )
    # No answer on standard input (None) adds nothing: trust is given, never assumed.
    agreed = confirm(f"Add {proposed} to trusted_authserv_ids?", default=found.confident)
    if not agreed:
        click.echo(
            f"Not added; to trust it later, add {proposed} under trusted_authserv_ids in {path} "
            "(README, 'Authenticity')."
        )
        return
    text, added = yamledit.add_trusted_ids(
        path.read_text(encoding="utf-8"), [proposed], f"config file {path}"
    )
    write_config(path, text)
    if added:
        click.echo(f"Added {proposed} to trusted_authserv_ids.")
