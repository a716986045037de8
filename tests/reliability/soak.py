"""How much longer `make soak` runs this suite: ``SLUICE_SOAK=N`` multiplies the kill points
and the generated inputs by N (1, the default, is what `make test` runs)."""

from __future__ import annotations

import os


def _factor() -> int:
    text = os.environ.get("SLUICE_SOAK") or "1"
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"SLUICE_SOAK must be a whole number from 1 up, not {text!r}")
    return int(text)


FACTOR = _factor()
