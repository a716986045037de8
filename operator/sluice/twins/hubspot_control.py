"""Rate limits of the HubSpot twin.

The rate limits follow HubSpot's usage guidelines for privately distributed apps: a rolling
burst window of ``burst`` requests per 10 seconds (100 on Free and Starter, 190 on Professional
and Enterprise), a daily allowance, and the search endpoints' own limit of 5 requests per second
per account. Allowed responses carry the ``X-HubSpot-RateLimit-*`` headers; refused ones are
429 with HubSpot's body (``errorType: RATE_LIMIT``, ``policyName``) and no ``Retry-After``.
Search responses carry no rate-limit headers.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from typing import Any

INTERVAL_MS = 10_000
SEARCH_PER_SECOND = 5


def rate_limit_body(policy: str) -> dict[str, Any]:
    message = (
        "You have reached your secondly limit."
        if policy == "SECONDLY"
        else f"You have reached your {policy.lower()} limit."
    )
    return {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "category": "RATE_LIMITS",
    }


class RateLimiter:
    """The account's burst window, daily allowance and search limit. Not thread-safe: the twin
    calls it under its lock."""

    def __init__(self, *, enabled: bool, burst: int, daily: int) -> None:
        self.enabled = enabled
        self.burst = burst
        self.daily = daily
        self.reset()

    def reset(self) -> None:
        self._window: deque[float] = deque()
        self._search: deque[float] = deque()
        self._used_today = 0
        self.forced = 0

    def admit(self, search: bool) -> tuple[str | None, dict[str, str]]:
        """``(policy refused, headers)``: the policy is None when the request may go on."""
        if self.forced > 0:
            self.forced -= 1
            return "TEN_SECONDLY_ROLLING", self._headers(time.monotonic(), search)
        if not self.enabled:
            return None, {}
        now = time.monotonic()
        window = self._window
        while window and window[0] <= now - INTERVAL_MS / 1000:
            window.popleft()
        if search:
            searches = self._search
            while searches and searches[0] <= now - 1:
                searches.popleft()
            if len(searches) >= SEARCH_PER_SECOND:
                return "SECONDLY", {}
        if self._used_today >= self.daily:
            return "DAILY", self._headers(now, search)
        if len(window) >= self.burst:
            return "TEN_SECONDLY_ROLLING", self._headers(now, search)
        window.append(now)
        self._used_today += 1
        if search:
            self._search.append(now)
        return None, self._headers(now, search)

    def _headers(self, now: float, search: bool) -> dict[str, str]:
        if search or not self.enabled:
            return {}
        remaining = max(0, self.burst - len(self._window))
        secondly = max(1, self.burst // 10)
        in_last_second = sum(1 for t in self._window if t > now - 1)
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily - self._used_today)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(INTERVAL_MS),
            "X-HubSpot-RateLimit-Max": str(self.burst),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - in_last_second)),
        }
