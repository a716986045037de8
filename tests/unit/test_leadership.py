"""Who may hold the operator's Lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sluice.controller.leadership import LeaseState, may_take

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_free_or_own_lease_may_be_taken() -> None:
    assert may_take(None, "a", NOW)
    assert may_take(LeaseState(None, None, 15), "a", NOW)
    assert may_take(LeaseState("a", NOW, 15), "a", NOW)


def test_another_holder_keeps_the_lease_until_it_expires() -> None:
    renewed = NOW - timedelta(seconds=14)
    assert not may_take(LeaseState("b", renewed, 15), "a", NOW)
    assert may_take(LeaseState("b", renewed, 15), "a", NOW + timedelta(seconds=1))
