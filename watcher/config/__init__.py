"""The configuration: the validated, frozen models (validation only) in models.py (the top
level, daemon settings and limits), accounts.py (accounts and sources), targets.py
(notification targets) and values.py (durations, loopback hosts, package files); files.py
(which file, demo mode, reading and validating it). The names below are the interface."""

from watcher.config.accounts import (
    SECRET_SOURCES,
    Account,
    LocalSource,
    MetaAccount,
    OAuth2Settings,
    oauth2_token_file,
)
from watcher.config.files import (
    ConfigChoice,
    choose_config,
    default_config_path,
    demo_config,
    load_config,
    parse_config,
)
from watcher.config.models import Config
from watcher.config.targets import MqttSettings, NotifyTarget
from watcher.config.values import is_loopback, package_file, parse_duration

__all__ = [
    "SECRET_SOURCES",
    "Account",
    "Config",
    "ConfigChoice",
    "LocalSource",
    "MetaAccount",
    "MqttSettings",
    "NotifyTarget",
    "OAuth2Settings",
    "choose_config",
    "default_config_path",
    "demo_config",
    "is_loopback",
    "load_config",
    "oauth2_token_file",
    "package_file",
    "parse_config",
    "parse_duration",
]
