"""The value types every config model shares: durations ("30s", "5m"), loopback hosts,
files shipped with the package, and the frozen base model (unknown keys refused)."""

from __future__ import annotations

import ipaddress
import math
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

APP_NAME = "meta-watcher"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


# The longest duration any setting takes. A poll every 10**27 s or every NaN s reached the
# scheduler and crashed `run`; a year is far beyond any sensible interval or age.
MAX_DURATION_SECONDS = 365 * 86400.0

# The shortest poll_interval: a poll is a round trip to every account's server (and the
# scheduler skips a poll while the last one runs, warning each time); 0.001 s filled the log
# with hundreds of warnings a second. Tests poll every 1 s at the fastest.
MIN_POLL_SECONDS = 1.0


def parse_duration(value: object) -> float:
    """Return *value* ("90", "30s", "5m", "1h", "2d" or a number) in seconds.

    Raises ValueError for anything else, for a duration that is not positive, and for one
    that is not finite or longer than MAX_DURATION_SECONDS (365 days).
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration like 30s, 5m or 1h")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if math.isnan(seconds):
        raise ValueError(f"{value!r} is not a duration like 30s, 5m or 1h")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError("a duration must be at most 365 days (365d)")
    return seconds


Seconds = Annotated[float, BeforeValidator(parse_duration)]


def package_file(name: str) -> Path:
    """Return the path of a file shipped with the package (``rules.yaml``, ``examples/Maildir``).

    In a wheel the files live inside ``watcher/``; in a source checkout (editable install or
    tests) they live at the repository's top level.
    """
    package = Path(__file__).resolve().parents[1]  # watcher/ (this file is watcher/config/)
    inside = package / name
    if inside.exists():
        return inside
    return package.parent / name


def is_loopback(host: str) -> bool:
    """Return True when *host* is ``localhost`` or a loopback IP literal (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Frozen(BaseModel):
    """The base of every config model: immutable, and a key it does not know is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


_LABEL = re.compile(r"(?!-)[\w-]{1,63}(?<!-)")  # a DNS label (IDN in Unicode allowed)


def host_problem(host: str) -> str | None:
    """Why *host* is no host name or IP address, as words ending a sentence; None when it is
    one: a DNS name of labels (letters, digits, hyphens inside; IDN in Unicode), an IPv4
    address, or an IPv6 one with or without brackets. "imap example org", "imaps://x",
    "-imap.example.org" and "999.1.1.1" are typos to say when the config is read."""
    if "://" in host:
        return f"{host!r} is a URL: give the host name alone (like imap.example.org)"
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in bare or bare.replace(".", "").isdigit():
        try:
            ipaddress.ip_address(bare)
        except ValueError:
            return f"{host!r} is not an IP address"
        return None
    labels = bare[:-1].split(".") if bare.endswith(".") else bare.split(".")
    if len(bare) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return f"{host!r} is not a host name (like imap.example.org)"
    return None
