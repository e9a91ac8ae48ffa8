"""``run``: process new mail of every account and local source, once (``--once``, for cron)
or as a daemon."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from watcher.cli.options import (
    NOTHING_TO_WATCH,
    config_option,
    load,
    load_pack,
    nothing_to_watch,
    open_store,
    setup_logging,
    verbose_option,
)
from watcher.daemon.runner import run_once_notifying
from watcher.progress import configure as configure_progress

log = logging.getLogger("watcher")


@click.command()
@click.option("--once", is_flag=True, help="Process new mail once, then exit (for cron).")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress bar or per-folder summary; only warnings and errors.",
)
@config_option
@verbose_option
def run(once: bool, quiet: bool, config_path: Path | None, verbose: int) -> None:
    """Process new mail of every account and folder; keep polling unless --once.

    On a terminal a progress bar shows each folder's scan (searched, fetched and classified,
    rate, time left); otherwise one summary line per folder. -q shows neither.
    """
    setup_logging(verbose, logging.WARNING if quiet and not verbose else logging.INFO)
    configure_progress(quiet=quiet)
    config = load(config_path)
    if nothing_to_watch(config):
        log.warning(NOTHING_TO_WATCH)
    if not config.trusted_authserv_ids and not config.trust_unauthenticated:
        log.warning(
            "trusted_authserv_ids is empty: no mail can be verified, so no status will change; "
            "set it before the first run (README, 'Authenticity')"
        )
    pack = load_pack(config)
    store = open_store(config)
    assert store is not None
    try:
        store.acquire_run_lock()
        if not once:
            # Imported here: `run --once` (cron) needs neither the scheduler (APScheduler,
            # about 0.2 s to import) nor the IDLE workers.
            from watcher.daemon.daemon import run_forever

            run_forever(config, store, pack)
            return
        report = run_once_notifying(config, store, pack)
    finally:
        store.close()
    if not quiet:
        click.echo(
            f"processed {report.fetched} candidate message(s): {report.recorded} recorded, "
            f"{report.duplicates} already known, {report.transitions} status change(s)",
            err=True,
        )
    if report.exit_code:
        sys.exit(report.exit_code)
