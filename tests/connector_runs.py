"""Running a connector in a test: fake time that sleeping advances, so retries and pacing take
no real time, and one event loop per call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from sluice.apps.http import ClientHooks

#: 2025-01-01T00:00:00Z, where the fake wall clock starts.
WALL_START = 1_735_689_600.0


class FakeTime:
    """A monotonic clock that sleeping advances, from ``now``; a wall clock that follows it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_START + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def hooks(self) -> ClientHooks:
        """A connector's client hooks on this clock, with backoff jitter off."""
        return {"clock": self.clock, "sleep": self.sleep, "rand": lambda: 0.0}


class _Closable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=_Closable)
T = TypeVar("T")


def run_connector(
    connect: Callable[[ClientHooks], C],
    body: Callable[[C], Awaitable[T]],
    fake: FakeTime | None = None,
    timeout: float = 15.0,
) -> T:
    """``body(connector)`` in a fresh event loop, the connector built by ``connect`` with the
    hooks of ``fake`` (a new FakeTime when None) and closed afterwards."""
    hooks = (fake or FakeTime()).hooks()

    async def main() -> Any:
        connector = connect(hooks)
        try:
            return await asyncio.wait_for(body(connector), timeout=timeout)
        finally:
            await connector.aclose()

    result: T = asyncio.run(main())
    return result
