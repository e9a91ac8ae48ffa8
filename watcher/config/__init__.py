"""The configuration: models.py (the validated, frozen models; validation only) and files.py
(which file, demo mode, reading and validating it). The names below are the interface."""

from watcher.config.files import (
    ConfigChoice,
    choose_config,
    default_config_path,
    demo_config,
    load_config,
    parse_config,
)
from watcher.config.models import (
    SECRET_SOURCES,
    Account,
    Config,
    LocalSource,
    MetaAccount,
    MqttSettings,
    NotifyTarget,
    OAuth2Settings,
    is_loopback,
    oauth2_token_file,
    package_file,
    parse_duration,
)

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
