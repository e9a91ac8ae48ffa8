"""The status machine: replay in mail-date order, whatever order mail was processed in."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from watcher.pipeline.status import Event, next_status, replay

T0 = datetime(2024, 5, 23, 10, 0, tzinfo=UTC)


def event(ref: int, kind: str, days: float) -> Event:
    return Event(ref, kind, T0 + timedelta(days=days), f"rule.{kind}", f"<{ref}@x>")


def final(events: list[Event]) -> str | None:
    transitions = replay(events)
    return transitions[-1].to_status if transitions else None


def test_policy_update_on_fresh_account_sets_notified() -> None:
    assert final([event(1, "policy_update", 0)]) == "notified"


def test_policy_update_after_acceptance_keeps_status_accepted() -> None:
    events = [event(1, "objection_accepted", 0), event(2, "policy_update", 300)]
    assert final(events) == "accepted"
    assert [t.to_status for t in replay(events)] == ["accepted"]


def test_policy_update_after_rejection_sets_notified_again() -> None:
    events = [event(1, "objection_rejected", 0), event(2, "policy_update", 300)]
    assert [t.to_status for t in replay(events)] == ["rejected", "notified"]


def test_policy_update_does_not_override_a_pending_code() -> None:
    assert next_status("code_received", "policy_update") is None


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("verification_code", "code_received"),
        ("objection_accepted", "accepted"),
        ("objection_rejected", "rejected"),
        ("info_requested", "info_requested"),
    ],
)
def test_every_decision_kind_sets_its_status(kind: str, status: str) -> None:
    assert final([event(1, "policy_update", 0), event(2, kind, 1)]) == status


def test_unknown_kinds_change_nothing() -> None:
    assert replay([event(1, "unrecognized", 0), event(2, "other", 1)]) == []


def test_replay_is_independent_of_processing_order() -> None:
    events = [
        event(1, "policy_update", 0),
        event(2, "verification_code", 10),
        event(3, "info_requested", 12),
        event(4, "verification_code", 13),
        event(5, "objection_accepted", 14),
        event(6, "policy_update", 330),
    ]
    expected = [(t.from_status, t.to_status, t.event.ref) for t in replay(events)]
    assert expected[-1][1] == "accepted"
    for order in itertools.permutations(events):
        got = [(t.from_status, t.to_status, t.event.ref) for t in replay(order)]
        assert got == expected


def test_duplicate_event_adds_no_transition() -> None:
    once = replay([event(1, "policy_update", 0), event(2, "objection_accepted", 5)])
    twice = replay(
        [
            event(1, "policy_update", 0),
            event(2, "objection_accepted", 5),
            event(3, "objection_accepted", 5),
        ]
    )
    assert [t.to_status for t in twice] == [t.to_status for t in once]


def test_same_date_events_follow_metas_process_order() -> None:
    # A code and a decision stamped the same second: the decision comes last.
    events = [event(2, "objection_accepted", 1), event(1, "verification_code", 1)]
    assert [t.to_status for t in replay(events)] == ["code_received", "accepted"]
