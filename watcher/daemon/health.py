"""Whether the running daemon is well: every watcher thread's heartbeat judged against the
config (``meta-watcher health``). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from watcher.config import Account, Config
from watcher.store.rows import Heartbeat


def worker_name(account: Account, folder: str) -> str:
    """The heartbeat name of an IMAP folder: ``account/folder``."""
    return f"{account.name}/{folder}"


def worker_names(config: Config) -> list[str]:
    """Every heartbeat the running daemon is expected to keep fresh for *config*."""
    names = [worker_name(a, f) for a in config.accounts for f in a.folders]
    return names + [f"local:{s.name}" for s in config.local]


@dataclass(frozen=True)
class WorkerHealth:
    """One expected worker: healthy or not, and one sentence saying so."""

    worker: str
    ok: bool
    sentence: str


def health_report(config: Config, beats: dict[str, Heartbeat], now: datetime) -> list[WorkerHealth]:
    """Judge every expected worker by its heartbeat: healthy when its state is ``ok`` and it
    reported within its own ``stale_after_seconds``. Pure."""
    out: list[WorkerHealth] = []
    for name in worker_names(config):
        beat = beats.get(name)
        if beat is None:
            out.append(WorkerHealth(name, False, "has never reported (is the daemon running?)"))
            continue
        age = (now - beat.beat_at).total_seconds()
        detail = f" ({beat.detail})" if beat.detail else ""
        if age > beat.stale_after_seconds:
            out.append(
                WorkerHealth(
                    name,
                    False,
                    f"last report {round(age)}s ago, expected every "
                    f"{round(beat.stale_after_seconds)}s: the daemon is stopped or stuck "
                    f"(last state {beat.state}{detail})",
                )
            )
        elif beat.state != "ok":
            out.append(WorkerHealth(name, False, f"{beat.state}{detail}"))
        else:
            out.append(WorkerHealth(name, True, f"ok{detail}, {round(age)}s ago"))
    return out
