"""Where the config comes from and reading it: first match wins, ``--config FILE``,
``$META_WATCHER_CONFIG``, ``<platformdirs user config dir>/config.yaml``. When none exists the
watcher runs in *demo mode* on the bundled example Maildir with its own demo database, and
says so. A bad file becomes one ConfigError sentence naming the file and the key."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import yaml
from pydantic import ValidationError

from watcher.config.accounts import LocalSource
from watcher.config.models import Config
from watcher.config.values import APP_NAME, package_file
from watcher.errors import ConfigError

ENV_CONFIG = "META_WATCHER_CONFIG"
# A config is a few kilobytes; the bound keeps a hostile or mistaken file from costing
# memory and time before it is refused.
MAX_CONFIG_BYTES = 1024 * 1024
DEFAULT_TRUSTED_DEMO = ("mx.home.example",)


def default_config_path() -> Path:
    """``<platformdirs user config dir>/config.yaml``."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.yaml"


@dataclass(frozen=True)
class ConfigChoice:
    """Which config file applies and why; ``path`` is None in demo mode."""

    path: Path | None
    explicit: bool


def choose_config(cli_path: Path | None) -> ConfigChoice:
    """Pick the config file: ``--config``, then ``$META_WATCHER_CONFIG``, then the default path."""
    if cli_path is not None:
        return ConfigChoice(cli_path, True)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return ConfigChoice(Path(env), True)
    path = default_config_path()
    return ConfigChoice(path if path.exists() else None, False)


def demo_config() -> Config:
    """The config used when none exists: the bundled example Maildir and a demo database."""
    return Config(
        database=Path(platformdirs.user_data_dir(APP_NAME)) / "demo.sqlite3",
        trusted_authserv_ids=DEFAULT_TRUSTED_DEMO,
        local=(LocalSource(name="example", path=package_file("examples/Maildir")),),
        demo=True,
    )


def os_reason(exc: OSError) -> str:
    """Why *exc* happened in plain lower-case words ("permission denied", "is a directory"):
    the C library's text for its errno (os.strerror), else the exception's own message."""
    if exc.errno is not None:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    return str(exc) or type(exc).__name__


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def refuse_aliases(
    text: str,
    path: Path,
    *,
    what: str = "config file",
    error: type[ConfigError] = ConfigError,
    loader: type[Any] = yaml.SafeLoader,
) -> None:
    """*error* (ConfigError) when the YAML uses an alias (``*name``): ten nested anchors stand
    for 10**10 values ("billion laughs", YAML 1.2 §3.2.2.2), and neither a config nor a rules
    file needs one. The sentence starts with *what* and *path* ("config file PATH", "rules
    file PATH"). Reads the event stream only (with *loader*, a PyYAML loader class), which is
    linear in the text; yaml.YAMLError when the text is not YAML."""
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            raise error(
                f"{what} {path} uses a YAML alias (*{event.anchor}) at line {line}; "
                "write the value out instead"
            )


def refuse_duplicate_keys(
    text: str,
    path: Path,
    *,
    what: str = "config file",
    error: type[ConfigError] = ConfigError,
    loader: type[Any] = yaml.SafeLoader,
) -> None:
    """*error* (ConfigError) naming the key and its line when a mapping repeats a key: PyYAML
    keeps the last value silently, so `poll_interval: 5m` then `poll_interval: 1m` would change
    a setting (or a second ``decisive:`` replace a rule's first) without a word (YAML 1.2
    §3.2.1.1 requires mapping keys to be unique). Keys compare by their text as written (all
    config and rules keys are plain scalars). *what*, *path* and *loader* as for
    :func:`refuse_aliases`; call after it: without aliases the node tree is as large as the
    text. yaml.YAMLError when the text is not YAML."""
    root = yaml.compose(text, Loader=loader)
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    ident = (key.tag, key.value)
                    if ident in seen:
                        line = key.start_mark.line + 1
                        raise error(
                            f"{what} {path} repeats the key {key.value!r} at line {line}; "
                            "keep one of them"
                        )
                    seen.add(ident)
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def load_config(cli_path: Path | None = None) -> Config:
    """Load and validate the config chosen by :func:`choose_config`.

    Relative paths in the file are taken relative to the file's folder. Raises ConfigError
    with one sentence naming the file and the key when anything is wrong.
    """
    choice = choose_config(cli_path)
    if choice.path is None:
        return demo_config()
    path = choice.path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {os_reason(exc)}") from None
    if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        refuse_aliases(text, path)
        refuse_duplicate_keys(text, path)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{at}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    return parse_config(data, path)


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    def fix(value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return None  # an empty path is an error, not "the config's folder"
            p = Path(value).expanduser()
            return str(p if p.is_absolute() else base / p)
        return value

    out = dict(data)
    for key in ("database", "rules"):
        if key in out:
            out[key] = fix(out[key])
    if isinstance(out.get("user_rules"), list):
        out["user_rules"] = [fix(v) for v in out["user_rules"]]
    for key, fields in (("accounts", ("ca_file", "password_file")), ("local", ("path",))):
        items = out.get(key)
        if isinstance(items, list):
            out[key] = [
                {k: (fix(v) if k in fields else v) for k, v in item.items()}
                if isinstance(item, dict)
                else item
                for item in items
            ]
    accounts = out.get("accounts")
    for item in accounts if isinstance(accounts, list) else []:
        oauth2 = item.get("oauth2") if isinstance(item, dict) else None
        if isinstance(oauth2, dict) and "token_file" in oauth2:
            item["oauth2"] = {**oauth2, "token_file": fix(oauth2["token_file"])}
    return out


# pydantic's wording for the commonest mistakes, said the way a config file's reader would.
_PLAIN_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "this key is required",
    "tuple_type": "must be a list, e.g. [INBOX]",
    "list_type": "must be a list",
    "path_type": "must be a file or folder path",
    "string_pattern_mismatch": "may only contain letters, digits and _ . @ + -",
    "string_too_short": "must not be empty",
    "bool_parsing": "must be true or false",
    "int_parsing": "must be a whole number",
}


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate a config mapping read from *path*; raises ConfigError naming the first bad key."""
    try:
        config = Config.model_validate(_resolve_paths(data, path.parent))
    except ValidationError as exc:
        first = exc.errors()[0]
        default = str(first["msg"]).removeprefix("Value error, ")
        msg = _PLAIN_MESSAGES.get(str(first["type"]), default.replace("Input should be", "must be"))
        where = _format_loc(first["loc"])
        raise ConfigError(f"config file {path}: {where}: {msg}") from None
    return config.model_copy(update={"source_path": path})
