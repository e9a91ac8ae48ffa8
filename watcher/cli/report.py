"""``report``: the evidence for a complaint, and the originals as ``.eml``."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from watcher.cli.options import config_option, load, open_store, setup_logging, verbose_option
from watcher.config.files import os_reason
from watcher.errors import ConfigError, WatcherError
from watcher.report.export import export_eml as export_originals
from watcher.report.objections import Report, build_report
from watcher.report.render import render
from watcher.sources.secrets import write_private


@click.command("report")
@click.option("--account", "address", help="Only this Facebook/Instagram account address.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html", "csv", "json"]),
    default=None,
    help="Markdown, a printable HTML page, CSV or JSON. Default: from the --output file's "
    "extension (.html, .htm, .csv, .json), else md.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report to this file (default: standard output).",
)
@click.option(
    "--export-eml",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also write each mail's original (fetched again, read-only) to this folder.",
)
@config_option
@verbose_option
def report_command(
    address: str | None,
    fmt: str | None,
    output: Path | None,
    export_eml: Path | None,
    config_path: Path | None,
    verbose: int,
) -> None:
    """Evidence for a complaint: every Meta privacy mail per account, the status timeline,
    the deadlines (effective date; one month under GDPR Art. 12(3)) and whether Meta
    answered in time."""
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    store = open_store(config, must_exist=True)
    known: list[str] = []
    if store is None:
        built = Report(datetime.now(UTC), ())
    else:
        try:
            built = build_report(store, address)
            known = store.known_accounts() if address and not built.accounts else []
        finally:
            store.close()
    if address and not built.accounts:
        click.echo(
            f"meta-watcher: no Meta privacy mail recorded for {address}; "
            + (f"known accounts: {', '.join(known)}" if known else "none is recorded yet"),
            err=True,
        )
    fmt = fmt or _format_of(output)
    text = render(built, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            write_private(output, text)
        except WatcherError as exc:
            # write_private's sentence names the path already; the OSError it was raised
            # from (its context) says why in plain words.
            cause = exc.__context__
            if isinstance(cause, OSError):
                why = f"{output} cannot be written: {os_reason(cause)}"
            else:
                why = str(exc)
            raise ConfigError(f"report file {why}") from None
        click.echo(f"wrote {fmt} report to {output}", err=True)
    if export_eml is None:
        return
    try:
        results = export_originals(config, built, export_eml)
    except OSError as exc:
        raise ConfigError(f"folder {export_eml} cannot be written ({type(exc).__name__})") from None
    written = [r for r in results if r.path is not None]
    click.echo(f"exported {len(written)} of {len(results)} mail(s) to {export_eml}", err=True)
    for r in results:
        if r.problem:
            click.echo(f"not exported: {r.problem}", err=True)
    if len(written) != len(results):
        sys.exit(1)


_EXTENSIONS = {".html": "html", ".htm": "html", ".csv": "csv", ".json": "json"}


def _format_of(output: Path | None) -> str:
    """The report format an --output file's extension names; md for any other."""
    return _EXTENSIONS.get(output.suffix.lower(), "md") if output is not None else "md"
