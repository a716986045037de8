"""How a benchmark ends: each target it missed on a line of its own, and its exit code."""

from __future__ import annotations

from collections.abc import Sequence


def verdict(missed: Sequence[str], met: str) -> int:
    """Print every missed target, or ``met`` when none was missed; 1 when one was, else 0."""
    for failure in missed:
        print(f"target MISSED: {failure}")
    if not missed:
        print(f"targets: {met}: ok")
    return 1 if missed else 0
