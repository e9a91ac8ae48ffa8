"""Shared pytest fixtures."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dovecot import DovecotServer

# meta-watcher refuses YAML aliases in its config (issue 12: billion laughs). Tests build configs
# from dicts that may share one value (two accounts with the same folder list), which PyYAML
# would write as an anchor and alias: write every value out, as a person would.
yaml.SafeDumper.ignore_aliases = lambda self, data: True  # type: ignore[method-assign]

# OAuth2 fixtures (oauth_idp, oauth_dovecot, oauth_reset) live in tests/oauth_provider.py.
pytest_plugins = ["oauth_provider"]


def venv_tool(name: str) -> str:
    """Absolute path of *name*, a command the project installs (``meta-watcher``) or its test
    extra brings (``hadolint``, ``ruff``, ``mypy``): the file next to the running interpreter,
    ``Path(sys.executable).parent / name``, i.e. ``.venv/bin/NAME`` under scripts/test.

    Never looked up on PATH: scripts/test does not put ``.venv/bin`` on it, and a copy installed
    elsewhere on one machine would hide a missing dependency on a fresh one. Fails the test (never
    skips) with an install hint when the file is missing or not executable.
    """
    path = Path(sys.executable).parent / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{name} is not installed next to {sys.executable}: "
            f"install the package with its test extra: {sys.executable} -m pip install -e '.[test]'"
        )
    return str(path)


# -- Dovecot: one real server per test session, a fresh user per test --------

_user_numbers = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep what commands cache (status's validated config facts) out of the user's own
    ~/.cache while the suite runs; child processes inherit it through the environment."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A running DovecotServer for the whole session, with user `anna`.

    anna's password is `dovecot.password` (also `dovecot.passwords["anna"]`).
    Fails (never skips) if Dovecot is not installed.
    """
    with DovecotServer(user="anna") as server:
        yield server


@pytest.fixture
def dovecot_user(dovecot: DovecotServer) -> Iterator[tuple[str, str]]:
    """(username, password) of a new user with an empty INBOX on `dovecot`."""
    if not dovecot.running:  # an earlier test stopped the shared server
        dovecot.start()
    name = f"user{next(_user_numbers)}"
    password = dovecot.add_user(name)
    yield name, password
    # Drop sessions the test left open (e.g. IDLE) so they don't pile up.
    if dovecot.running:
        dovecot.kick(name)
