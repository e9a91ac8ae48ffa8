"""Commands for the person whose mail was not recognised: `rules test`, `rules check` and
`reclassify`. Registered on :data:`watcher.cli.main`, whose group turns errors into one
sentence and an exit code.

* ``rules test FILE.eml`` / ``rules test --db ID``: which rule decided and why: every piece
  of evidence found (decisive, supporting and negative phrases with the text they matched),
  the score of each candidate rule and why the others lost or were vetoed; what was
  extracted, the authenticity verdict, and for a miss the closest rules and what they missed.
* ``rules check [FILE]``: validate a rules file (schema, regexes, duplicate ids, kinds), naming
  the rule id and key of each problem.
* ``reclassify``: rerun the current rules on the unrecognized and suspicious mail whose raw
  copy the database keeps, update their kind, and replay the objection status. The mailbox is
  never touched.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path

import click

from watcher.cli.options import (
    config_option,
    load,
    load_pack,
    local_config,
    open_store,
    setup_logging,
    trusted_option,
    verbose_option,
)
from watcher.clock import utc_now
from watcher.config import Config
from watcher.daemon.ingest import settings_of
from watcher.errors import RulesError
from watcher.notify.plan import notify_settings, plan_notifications
from watcher.pipeline.evidence import stored_fields
from watcher.pipeline.explain import explain
from watcher.pipeline.explain_text import render
from watcher.pipeline.process import Outcome, Settings, process
from watcher.pipeline.rules import RulePack, load_rules, read_rules_file, rules_file_problems
from watcher.sources.base import RawMessage, SourceKey
from watcher.sources.mailfiles import kind_of, read_source
from watcher.store.rows import KeptMessage

log = logging.getLogger(__name__)


def _pack_with(config: Config, extra: Path | None) -> RulePack:
    """The configured pack, plus *extra*: a user rules file loaded last, or a whole pack (one
    with ``meta:``) used instead of the configured one."""
    if extra is None:
        return load_pack(config)
    if read_rules_file(extra).meta is not None:
        return load_rules(extra)
    return load_rules(config.rules_path, (*config.user_rules, extra))


def rerun(kept: KeptMessage, pack: RulePack, settings: Settings) -> Outcome:
    """Process the raw copy of a stored message again, as if just fetched from where it was
    (same source key, and its INTERNALDATE when the Date header was missing)."""
    internal_at = None
    if kept.date_source == "internaldate" and kept.mail_date:
        internal_at = datetime.fromisoformat(kept.mail_date)
    key = SourceKey(kept.source, kept.identity, kept.folder, kept.uidvalidity, kept.uid)
    return process(RawMessage(key, kept.raw, internal_at), pack, settings)


@click.group(name="rules")
def rules_group() -> None:
    """Explain, test and check the rules that recognise Meta's mails."""


@rules_group.command(name="test")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--db",
    "message_ref",
    type=int,
    metavar="ID",
    help="Rerun on message ID of the database instead of a file (unrecognized and suspicious "
    "mail is kept; `meta-watcher reclassify --dry-run` lists the IDs).",
)
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also load this rules file after the configured ones (or, if it has `meta:`, use it "
    "as the whole pack): try a new rule before adding it to the config.",
)
@click.option(
    "--rule",
    "rule_ids",
    multiple=True,
    metavar="ID",
    help="Show this rule's evidence in full, whatever decided (repeatable).",
)
@trusted_option
@config_option
@verbose_option
def rules_test(
    path: Path | None,
    message_ref: int | None,
    rules_path: Path | None,
    rule_ids: tuple[str, ...],
    trusted: tuple[str, ...],
    config_path: Path | None,
    verbose: int,
) -> None:
    """Show which rule decides a mail and why: the evidence found (decisive, supporting and
    negative phrases with the text they matched), each candidate rule's score and why it lost
    or was vetoed, what was extracted, the authenticity verdict; for a mail no rule fired on,
    the closest rules and what they missed.

    PATH is a .eml file (an mbox or Maildir works too: every message is explained). Codes are
    shown in full: you are at the terminal.
    """
    setup_logging(verbose, logging.WARNING)
    if (path is None) == (message_ref is None):
        raise click.UsageError("give either a mail FILE or --db ID")
    config = load(config_path) if message_ref is not None else local_config(config_path)
    if trusted:
        ids = tuple(dict.fromkeys(config.trusted_authserv_ids + trusted))
        config = config.model_copy(update={"trusted_authserv_ids": ids})
    pack = _pack_with(config, rules_path)
    known = {r.id for r in pack.rules}
    unknown = [i for i in rule_ids if i not in known]
    if unknown:
        raise click.UsageError(
            f"no rule with id {unknown[0]} in the pack (list them with `meta-watcher rules check`)"
        )
    settings = settings_of(config)
    if message_ref is not None:
        store = open_store(config, must_exist=True)
        if store is None:
            raise click.UsageError(f"there is no database at {config.database} yet")
        try:
            kept = store.kept_message(message_ref)
            exists = kept is not None or store.has_message(message_ref)
        finally:
            store.close()
        if kept is None:
            why = (
                "it keeps a copy of unrecognized and suspicious mail only, never of "
                "verification-code mail"
                if exists
                else "there is no message with that id"
            )
            raise click.UsageError(
                f"database {config.database} has no copy of message {message_ref}: {why}"
            )
        outcome = rerun(kept, pack, settings)
        click.echo(render(explain(outcome, pack, rule_ids), f"database message {message_ref}"))
        return
    assert path is not None
    single = kind_of(path) == "eml"
    for number, raw in enumerate(read_source(path, "rules-test")):
        if number:
            click.echo("\n" + "-" * 72 + "\n")
        label = str(path) if single else raw.key.folder
        click.echo(render(explain(process(raw, pack, settings), pack, rule_ids), label))


@rules_group.command(name="check")
@click.argument("path", required=False, type=click.Path(path_type=Path, dir_okay=False))
@config_option
@verbose_option
def rules_check(path: Path | None, config_path: Path | None, verbose: int) -> None:
    """Validate a rules file: YAML, schema (unknown keys or kinds, rules without conditions),
    every phrase and extractor compiles, no duplicate ids. Each problem names the rule id and
    key. Without PATH: the configured rule pack and every user rules file.

    A user rules file (one without `meta:`) is also loaded on top of the configured pack, to
    show which shipped rules it replaces or switches off. Exits 1 when a problem is found.
    """
    setup_logging(verbose, logging.WARNING)
    config = local_config(config_path)
    files = [path] if path is not None else [config.rules_path, *config.user_rules]
    problems: list[str] = []
    for file in files:
        found = rules_file_problems(file)
        problems += found
        for problem in found:
            click.echo(f"FAIL: {problem}")
    if problems:
        sys.exit(1)
    parsed = {file: read_rules_file(file) for file in files}
    base_path = next((f for f in files if parsed[f].meta is not None), None)
    base = read_rules_file(config.rules_path) if base_path is None else parsed[base_path]
    users = [f for f in files if f != base_path]
    if path is not None and base_path is None:
        users = [*config.user_rules, path]
    try:
        pack = load_rules(base_path or config.rules_path, tuple(users))
    except RulesError as exc:
        click.echo(f"FAIL: {exc}")
        sys.exit(1)
    for file in files:
        spec = parsed[file]
        languages = sorted({r.language for r in spec.rules})
        what = "rule pack" if spec.meta is not None else "user rules"
        click.echo(
            f"ok: {what} {file}: {len(spec.rules)} rule(s)"
            + (f" in {len(languages)} language(s): {', '.join(languages)}" if languages else "")
        )
    shipped = {r.id for r in base.rules}
    for user in users:
        if user not in parsed:
            continue
        spec = parsed[user]
        for rule in spec.rules:
            if rule.id in shipped:
                click.echo(f"note: {user}: rule {rule.id} replaces the rule of the same id")
            if not rule.enabled:
                click.echo(f"note: {user}: rule {rule.id} is switched off (enabled: false)")
            if rule.language not in pack.languages:
                click.echo(
                    f"note: {user}: rule {rule.id}: language {rule.language} has no stop words "
                    "under `languages:`, so the rule is tried for every mail"
                )
        known = shipped | {r.id for r in spec.rules}
        for rule_id in spec.disable:
            if rule_id in known:
                click.echo(f"note: {user}: rule {rule_id} is switched off (disable)")
            else:
                click.echo(f"warning: {user}: disable names unknown rule id {rule_id}")
    click.echo(f"ok: {len(pack.rules)} rule(s) in use")


@click.command(name="reclassify")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@config_option
@verbose_option
def reclassify_command(dry_run: bool, config_path: Path | None, verbose: int) -> None:
    """Rerun the current rules on the stored unrecognized and suspicious mail, update each
    changed message and replay the objection status (notifications are queued as for new
    mail). Reads only the database: the mailbox is not touched.

    Run it after adding a user rule or updating meta-watcher; --dry-run lists every stored
    copy with its database ID for `rules test --db ID`.
    """
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    pack = load_pack(config)
    settings = settings_of(config)
    store = open_store(config, must_exist=True)
    if store is None:
        click.echo(f"No database at {config.database} yet: nothing to reclassify.")
        return
    notify = None if dry_run else notify_settings(config)
    try:
        kept = store.kept_messages()
        changed = status_changes = 0
        for item in kept:
            outcome = rerun(item, pack, settings)
            match = outcome.match
            fields = stored_fields(outcome, config.store_codes)
            was = (item.kind, item.rule_id, item.platform, item.account, item.suspicious)
            now = (match.kind, match.rule_id, match.platform, match.account, outcome.suspicious)
            same = was == now and item.counted == outcome.counted and item.fields == fields
            day = (item.mail_date or "")[:10] or "no date"
            old = f"{item.kind}{' SUSPICIOUS' if item.suspicious else ''}"
            if same:
                if dry_run:
                    click.echo(f"#{item.id} {day} {old}: unchanged  {item.subject[:60]}")
                continue
            changed += 1
            new = f"{match.kind}{' SUSPICIOUS' if outcome.suspicious else ''}"
            rule = f" by {match.rule_id}" if match.rule_id else ""
            who = f" {match.platform}:{match.account}" if match.platform else ""
            click.echo(f"#{item.id} {day} {old} -> {new}{rule}{who}  {item.subject[:60]}")
            if dry_run:
                continue
            # Compare whole statuses: a message that leaves an account can remove its status,
            # which adds no transition.
            before = {(r.platform, r.account): r.status for r in store.current_status()}
            with store.reclassifying(item.id, outcome) as done:
                if notify is not None:
                    done.notify(plan_notifications(outcome, done.transitions, notify, utc_now()))
            after = {(r.platform, r.account): r.status for r in store.current_status()}
            for platform, account in sorted(before.keys() | after.keys()):
                old_status = before.get((platform, account))
                new_status = after.get((platform, account))
                if old_status != new_status:
                    status_changes += 1
                    click.echo(
                        f"  status {platform}:{account}: {old_status or '(none)'} -> "
                        f"{new_status or '(none)'}"
                    )
        uncopied = store.uncopied_count()
    finally:
        store.close()
    verb = "would change" if dry_run else "changed"
    click.echo(
        f"reran the rules on {len(kept)} stored message(s): {changed} {verb}, "
        f"{status_changes} status change(s)",
        err=True,
    )
    if uncopied:
        click.echo(
            f"note: {uncopied} unrecognized or suspicious message(s) have no stored copy "
            "(recorded before copies were kept, or holding a code-like number) and were left "
            "as they are",
            err=True,
        )
