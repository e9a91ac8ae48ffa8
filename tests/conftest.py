"""Shared pytest fixtures."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from dovecot import DovecotServer

# OAuth2 fixtures (oauth_idp, oauth_dovecot, oauth_reset) live in tests/oauth_provider.py.
pytest_plugins = ["oauth_provider"]

# -- Dovecot: one real server per test session, a fresh user per test --------

_user_numbers = itertools.count(1)


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
