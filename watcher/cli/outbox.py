"""``outbox``: the notifications waiting in the database (queued, failing, dropped), with
``outbox retry [ID]`` to send them now and ``outbox drop ID`` to give one up.

The outbox holds each notification until a target accepts it (watcher.store.outbox); ``run``
retries with growing delays, so a target that was down shows here, not only in the log.
Nothing shown holds a secret: titles have codes masked and targets are named by their label,
never their URL.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from watcher.cli.options import (
    config_option,
    load,
    open_store,
    plural,
    print_table,
    setup_logging,
    short,
    verbose_option,
)
from watcher.clock import utc_now
from watcher.errors import ConfigError, WatcherError
from watcher.store.rows import OutboxEntry

if TYPE_CHECKING:
    from watcher.store.store import Store

_IDS_SHOWN = 20  # ids listed in the sentence for an unusable ID before "and N more"


class OutboxIdError(WatcherError):
    """An ID ``outbox retry``/``drop`` cannot act on (unknown, delivered, dropped): bad usage,
    exit 2 like click's own usage errors (watcher.cli)."""

    exit_code = 2


def _unusable(store: Store, outbox_id: int, state: str | None, verb: str) -> OutboxIdError:
    """The one sentence for *outbox_id* in *state* (None: unknown), naming the ids that
    *verb* ("retry": pending or dropped; "drop": pending) can act on."""
    why = {None: "is not in the outbox", "sent": "was delivered already"}.get(
        state, "was dropped already"
    )
    entries = store.outbox_entries()
    usable = [str(e.id) for e in entries if verb == "retry" or e.state == "pending"]
    if usable:
        more = len(usable) - _IDS_SHOWN
        listed = ", ".join(usable[:_IDS_SHOWN]) + (f" and {more} more" if more > 0 else "")
        tail = f"the ids to {verb} are {listed}"
    elif entries:
        tail = "none of them is waiting to be dropped"  # (retry can act on every entry)
    else:
        tail = "the outbox is empty"
    return OutboxIdError(f"notification {outbox_id} {why}; {tail} (see meta-watcher outbox)")


def _state(entry: OutboxEntry) -> str:
    if entry.state == "pending":
        return "failing" if entry.last_error else "queued"
    return entry.state


def _when(entry: OutboxEntry) -> str:
    if entry.state != "pending":
        return "-"
    seconds = (entry.next_attempt_at - utc_now()).total_seconds()
    return "now" if seconds <= 0 else f"in {round(seconds)}s"


@click.group(name="outbox", invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Also list delivered notifications.")
@config_option
@verbose_option
@click.pass_context
def outbox_group(
    ctx: click.Context, show_all: bool, config_path: Path | None, verbose: int
) -> None:
    """List queued, failing and dropped notifications: target, attempts, last error."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = config_path  # a subcommand may also take --config itself
        return
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    store = open_store(config, must_exist=True)
    entries = [] if store is None else store.outbox_entries(include_sent=show_all)
    if store is not None:
        store.close()
    if not entries:
        # With no targets nothing was ever queued: "delivered" would claim notifications that
        # never existed.
        click.echo(
            "The outbox is empty: every notification was delivered."
            if config.notify
            else "The outbox is empty: no notification targets are configured "
            "(notify: in the config)."
        )
        return
    labels = {t.key: t.label for t in config.notify}
    print_table(
        [("ID", "STATE", "TARGET", "EVENT", "ATTEMPTS", "NEXT TRY", "TITLE", "LAST ERROR")]
        + [
            (
                str(e.id),
                _state(e),
                labels.get(e.target, f"{e.target} (not in the config)"),
                e.event,
                str(e.attempts),
                _when(e),
                short(e.title, 40),
                short(e.last_error or "-", 80),
            )
            for e in entries
        ]
    )
    waiting = sum(1 for e in entries if e.state == "pending")
    if waiting:
        click.echo(
            f"{plural(waiting, 'notification')} waiting: `meta-watcher outbox retry` sends "
            "them now; `run` retries them by itself."
        )


@outbox_group.command(name="retry")
@click.argument("outbox_id", metavar="[ID]", type=int, required=False)
@config_option
@verbose_option
@click.pass_context
def retry(
    ctx: click.Context, outbox_id: int | None, config_path: Path | None, verbose: int
) -> None:
    """Send waiting notifications now (only ID when given; a dropped one is queued again).

    Exit 1 when one could not be delivered (it stays queued; the reason is shown).
    """
    setup_logging(verbose, logging.WARNING)
    config = load(config_path or ctx.obj)
    store = open_store(config, must_exist=True)
    if store is None:
        raise ConfigError(f"database {config.database} does not exist: nothing was queued")
    try:
        if outbox_id is not None and store.outbox_state(outbox_id) in (None, "sent"):
            raise _unusable(store, outbox_id, store.outbox_state(outbox_id), "retry")
        if store.retry_notifications(outbox_id) == 0:
            click.echo("Nothing to send: no notification is waiting.")
            return
        if not config.notify:
            raise ConfigError(
                "no notification targets in the config: add them under notify: (README: "
                "Notifications), or drop the waiting ones with meta-watcher outbox drop ID"
            )
        # Imported here: Apprise loads its plugins on import (about half a second).
        from watcher.notify.apprise import Sender

        report = Sender(config.notify).drain(store)
        failing = [
            e
            for e in store.outbox_entries()
            if e.state == "pending" and e.last_error and (outbox_id in (None, e.id))
        ]
    finally:
        store.close()
    click.echo(
        f"sent {report.sent}, failed {report.failed}, dropped {report.dropped} "
        "(see meta-watcher outbox)"
    )
    labels = {t.key: t.label for t in config.notify}
    for entry in failing:
        click.echo(
            f"FAIL: {entry.id} to {labels.get(entry.target, entry.target)}: {entry.last_error}"
        )
    if report.failed:
        sys.exit(1)


@outbox_group.command(name="drop")
@click.argument("outbox_id", metavar="ID", type=int)
@config_option
@verbose_option
@click.pass_context
def drop(ctx: click.Context, outbox_id: int, config_path: Path | None, verbose: int) -> None:
    """Give up notification ID: it is never sent, and its code (if any) is erased."""
    setup_logging(verbose, logging.WARNING)
    config = load(config_path or ctx.obj)
    store = open_store(config, must_exist=True)
    if store is None:
        raise ConfigError(f"database {config.database} does not exist: nothing was queued")
    try:
        state = store.outbox_state(outbox_id)
        if state != "pending":
            raise _unusable(store, outbox_id, state, "drop")
        store.notification_dropped(outbox_id, "dropped with meta-watcher outbox drop")
    finally:
        store.close()
    click.echo(f"dropped notification {outbox_id}")
