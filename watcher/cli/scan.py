"""``scan``: classify local mail (.eml, mbox, Maildir) and print what each message is; with
``--db``, record it like ``run`` does. Imports nothing of IMAP or the daemon."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from watcher.cli.options import (
    config_option,
    load_pack,
    local_config,
    plural,
    setup_logging,
    trusted_option,
    verbose_option,
)
from watcher.daemon.ingest import RunReport, ingest, settings_of
from watcher.errors import WatcherError
from watcher.pipeline.process import Outcome, process
from watcher.pipeline.status import Transition
from watcher.shown import for_person
from watcher.sources.mailfiles import display_path, kind_of, read_source
from watcher.store.store import Store


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.option(
    "--db", type=click.Path(path_type=Path, dir_okay=False), help="Also record to this database."
)
@trusted_option
@config_option
@verbose_option
def scan(
    paths: tuple[Path, ...],
    as_json: bool,
    db: Path | None,
    trusted: tuple[str, ...],
    config_path: Path | None,
    verbose: int,
) -> None:
    """Classify local mail: .eml files, mbox files or Maildir folders.

    Prints what each message is; verification codes are shown in full here, because you are
    at the terminal. With --db the results are recorded like `run` does.
    """

    setup_logging(verbose, logging.WARNING)
    config = local_config(config_path, trusted)
    pack = load_pack(config)
    settings = settings_of(config)

    def show(outcome: Outcome, source: str) -> None:
        match = outcome.match
        if as_json:
            click.echo(for_person(json.dumps(_scan_record(source, outcome), ensure_ascii=False)))
            return
        fields = " ".join(f"{k}={v}" for k, v in outcome.fields.items())
        flag = " SUSPICIOUS" if outcome.suspicious else ""
        error = f" error={outcome.message.error}" if outcome.message.error else ""
        line = (
            f"{source}: {match.kind}{flag} platform={match.platform or '-'} "
            f"account={match.account or '-'} auth={outcome.verdict.result} "
            f"rule={match.rule_id or '-'} {fields}".rstrip()
            + error
        )
        click.echo(for_person(line))  # fields and errors can carry a mail's own characters

    store = Store.open(db, store_codes=config.store_codes) if db is not None else None
    failed: WatcherError | None = None
    try:
        for path in paths:
            label = display_path(path)
            try:
                kind = kind_of(path)
                single = kind == "eml"
                messages = read_source(path)
            except WatcherError as exc:  # one bad path does not stop the others
                click.echo(f"meta-watcher: {exc}", err=True)
                failed = failed or exc
                continue

            def shown(
                outcome: Outcome,
                _added: list[Transition],
                single: bool = single,
                label: str = label,
                files: bool = kind == "eml folder",
            ) -> None:
                if files:  # each message is a file: name it
                    label = f"{label.rstrip('/')}/{Path(outcome.key.folder).name}"
                show(outcome, label if single or files else f"{label}#{outcome.key.uid}")

            if store is not None:
                report = RunReport()
                ingest(store, pack, settings, messages, report, on_recorded=shown)
                if report.duplicates:
                    # Not shown again: the database has them from an earlier scan or run.
                    click.echo(
                        for_person(
                            f"{label}: {plural(report.duplicates, 'message')} already in "
                            f"{db} (same Message-ID or content): not recorded again"
                        ),
                        err=as_json,
                    )
            else:
                for raw in messages:
                    shown(process(raw, pack, settings), [])
    finally:
        if store is not None:
            store.close()
    if failed is not None:
        sys.exit(failed.exit_code)


def _scan_record(source: str, outcome: Outcome) -> dict[str, Any]:
    match, msg = outcome.match, outcome.message
    return {
        "source": source,
        "message_id": msg.message_id,
        "kind": match.kind,
        "platform": match.platform,
        "account": match.account,
        "language": match.language,
        "authenticity": outcome.verdict.result,
        "authenticity_reasons": list(outcome.verdict.reasons),
        "suspicious": outcome.suspicious,
        "rule": match.rule_id,
        "fields": outcome.fields,
        "error": msg.error,
    }
