"""A config file's validated facts, remembered so that ``status`` and ``log`` can start
without importing pydantic (most of their start-up time) when the file has not changed.

After a full validation (:func:`watcher.config.load_config`) the facts these commands need,
the database and ``store_codes``, are written to ``<platformdirs user cache
dir>/config/<hash of the file's path>.json`` under a key made of everything the validation
depends on: the file's path and bytes, the environment that decides default paths (HOME,
XDG_*), and the validating code (the package version and the config modules' size and
mtime). The validation also looks at the filesystem (a ``ca_file`` must be a file, a
``local`` path may not exist), so the entry keeps the state (file, folder, missing) of every
path in the config, and a change there counts as a changed key.

:func:`cached_store_config` returns the facts only when all of that is unchanged and the
config uses no key these commands would show beyond the database (``meta_accounts``); in
every other case it returns None and the caller validates fully, so a broken config is
still one sentence and exit 78 (EX_CONFIG). Nothing secret is written: paths and a boolean.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher import __version__

if TYPE_CHECKING:
    from watcher.config import Config, MetaAccount

APP_NAME = "meta-watcher"  # as watcher.config.models.APP_NAME (not imported: pydantic)
ENV_CONFIG = "META_WATCHER_CONFIG"  # as watcher.config.files.ENV_CONFIG
# The environment that decides a default path (platformdirs) or which file is read.
_ENV_KEYS = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", ENV_CONFIG)
# Bump when the entry's shape changes.
_FORMAT = 1
_CODE = Path(__file__).resolve().parent.parent / "config"


@dataclass(frozen=True)
class StoreConfig:
    """What ``status`` and ``log`` need of a valid config: the database path, whether codes
    are stored in full, and no ``meta_accounts`` (a config with them is loaded in full)."""

    database: Path
    store_codes: bool
    demo: bool = False
    meta_accounts: tuple[MetaAccount, ...] = ()


def _config_file(config_path: Path | None) -> Path | None:
    """The file an explicit ``--config`` or ``$META_WATCHER_CONFIG`` names (the first two
    steps of watcher.config.choose_config); None otherwise: the default path and demo mode
    are left to the full load."""
    if config_path is not None:
        return config_path
    env = os.environ.get(ENV_CONFIG)
    return Path(env) if env else None


def _path_state(path: str) -> str:
    """ "file", "dir" or "missing": what the validation can tell of *path*."""
    p = Path(path)
    return "file" if p.is_file() else "dir" if p.is_dir() else "missing"


def _key(path: Path, data: bytes, paths: list[str]) -> str:
    """The hex digest of everything the validation of *data* read from *path* depends on."""
    digest = hashlib.sha256()
    stamp = [_FORMAT, __version__, str(path.resolve())]
    stamp += [os.environ.get(k) for k in _ENV_KEYS]
    for module in sorted(_CODE.glob("*.py")):
        st = module.stat()
        stamp += [module.name, st.st_size, st.st_mtime_ns]
    stamp += [(p, _path_state(p)) for p in paths]
    digest.update(json.dumps(stamp).encode())
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()


def cache_dir() -> Path:
    """platformdirs' user cache dir; on Linux worked out here, as platformdirs does
    ($XDG_CACHE_HOME when absolute, else ~/.cache), since importing platformdirs costs
    about a quarter of what the cache saves."""
    if sys.platform.startswith("linux"):
        xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
        return base / APP_NAME
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def _entry_file(path: Path) -> Path:
    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "config" / f"{name}.json"


def cached_store_config(config_path: Path | None) -> StoreConfig | None:
    """The remembered facts of the config chosen by *config_path*, or None when they may
    be out of date (or were never written, or the config lists meta_accounts). Never raises
    for a bad or missing cache: None."""
    path = _config_file(config_path)
    if path is None:
        return None
    try:
        data = path.read_bytes()
        entry: Any = json.loads(_entry_file(path).read_text(encoding="utf-8"))
        paths = [str(p) for p in entry["paths"]]
        if entry["key"] != _key(path, data, paths) or entry["meta_accounts"]:
            return None
        return StoreConfig(Path(entry["database"]), bool(entry["store_codes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _paths_in(value: Any) -> list[str]:
    """Every path in a dumped config (nested mappings and sequences)."""
    if isinstance(value, Path):
        return [str(value)]
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths_in(v)]
    if isinstance(value, list | tuple):
        return [p for v in value for p in _paths_in(v)]
    return []


def read_config_file(config_path: Path | None) -> bytes | None:
    """The bytes of the file an explicit *config_path* or ``$META_WATCHER_CONFIG`` names,
    read before it is validated (for :func:`remember`); None when there is none to read."""
    path = _config_file(config_path)
    try:
        return None if path is None else path.read_bytes()
    except OSError:
        return None


def remember(config_path: Path | None, data: bytes | None, config: Config) -> None:
    """Write the facts of *config*, validated from *data*, the bytes of the file
    *config_path* chose (read before the validation, so that a file changed meanwhile only
    makes the entry stale). Does nothing in demo mode or when the cache folder is not
    writable (a read-only container)."""
    path = _config_file(config_path)
    if path is None or data is None or config.demo:
        return
    try:
        paths = sorted({*_paths_in(config.model_dump()), str(config.rules_path)})
        entry = {
            "key": _key(path, data, paths),
            "paths": paths,
            "database": str(config.database),
            "store_codes": config.store_codes,
            "meta_accounts": bool(config.meta_accounts),
        }
        target = _entry_file(path)
        # Private like the config it comes from: it names the database and mail folders.
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written aside and renamed: a reader never sees half an entry.
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(entry))
        os.replace(tmp, target)
    except OSError:
        return
