"""Workspace key lookups are reused briefly, bounded, and keyed by digest."""

from __future__ import annotations

import time

from sluice.api.auth import _RecentLookups


def test_a_lookup_is_reused_until_it_expires() -> None:
    calls: list[str] = []

    def lookup(key: str) -> tuple[int, str] | None:
        calls.append(key)
        return (1, "marketing") if key == "api_known" else None

    recent = _RecentLookups(seconds=0.2, entries=10)
    assert recent.get("api_known", lookup) == (1, "marketing")
    assert recent.get("api_known", lookup) == (1, "marketing")
    assert recent.get("api_unknown", lookup) is None
    assert calls == ["api_known", "api_unknown"]
    time.sleep(0.25)
    recent.get("api_known", lookup)
    assert calls == ["api_known", "api_unknown", "api_known"]


def test_the_memory_is_bounded_and_holds_no_key() -> None:
    recent = _RecentLookups(seconds=60, entries=3)
    for number in range(10):
        recent.get(f"api_{number}", lambda key: None)
    assert len(recent._found) <= 3
    assert not any(key.startswith("api_") for key in recent._found)
