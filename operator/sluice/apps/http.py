"""The HTTP client every connector uses: rate limits, bounded retries, idempotency.

One :class:`AppHttpClient` per connector instance, that is per connection in one export
process. It owns:

* a token bucket (requests/s and burst) and a cap on requests in flight, from the connector's
  :class:`~sluice.apps.connector.RateLimit`, plus optional named endpoint groups with limits of
  their own (HubSpot's search endpoint has a lower one);
* retries with exponential backoff and jitter, bounded in attempts *and* in total time;
* the rule that decides what may be sent again. A status that says the request was not
  processed (429, and those a connector adds, such as HubSpot's 477) is retried for every
  request, after pausing the whole bucket. A 5xx or a lost connection leaves the outcome
  unknown: an idempotent request is retried, a non-idempotent one raises
  :class:`OutcomeUnknownError` so that the connector can look its records up before creating them
  again. A connection that could not even be opened sent nothing, and is retried for all.

Krenalis (its §6.8) retried 429 and 5xx on every request, creates included, with no bound on
the attempts; this client never blindly repeats a create and always gives up, with the number
of attempts and the last status in the message.

Clock, sleep and randomness are injectable so that tests run the backoff without waiting.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypedDict

import httpx

from sluice.apps.connector import ConnectorError, RateLimit
from sluice.apps.transport import AiohttpTransport
from sluice.fastjson import decode_json, encode_json

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


#: Methods idempotent by HTTP's definition; POSTs are idempotent only when the caller says so.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# Transport errors raised before any byte of the request left: nothing was processed.
_NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

_GZIP_MIN_BYTES = 1024
_EPSILON = 1e-6


class OutcomeUnknownError(ConnectorError):
    """A non-idempotent request failed in a way that leaves its effect unknown (a 5xx, a
    lost connection): the application may or may not have processed it. It is never sent
    again blindly; the connector checks what exists before re-sending. Left uncaught it
    stops the run like any :class:`ConnectorError`."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class MalformedAnswerError(OutcomeUnknownError):
    """A success whose body is not the JSON the application documents (cut short, or without
    the members documented): what it did is unknown, as after a lost answer. A create is then
    settled by lookup; anything else stops the run."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to retry. Waits double from ``base_delay`` up to ``max_delay``, plus
    0 to ``jitter`` of themselves at random."""

    max_attempts: int = 8
    max_retry_time: float = 300.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    #: Statuses retried only for idempotent requests (the outcome of others is unknown).
    retry_statuses: frozenset[int] = frozenset({500, 502, 503, 504})
    #: Statuses meaning "not processed, come back later": retried for every request. A 429
    #: also pauses the whole bucket.
    not_processed_statuses: frozenset[int] = frozenset({429})

    def backoff(self, retry: int, rand: Callable[[], float]) -> float:
        """The wait before retry number ``retry`` (1 for the first)."""
        delay: float = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return delay * (1 + self.jitter * rand())


@dataclass(frozen=True, slots=True)
class RateLimitHint:
    """What an application's rate-limit headers say.

    ``pause``: seconds every request of the bucket must wait (for a 429, or when the window is
    used up). ``window``: the budget the application announces, ``(requests, seconds)``; the
    bucket slows down to fit it, never speeds up beyond the connector's own limit.
    """

    pause: float | None = None
    window: tuple[int, float] | None = None


#: Reads a connector's own rate-limit headers (and body, for a 429). May raise
#: :class:`ConnectorError` when waiting cannot help (a daily quota used up).
RateLimitReader = Callable[[httpx.Response], RateLimitHint | None]
#: Extracts the application's error message from a response body.
ErrorMessage = Callable[[httpx.Response], str]


@dataclass(slots=True)
class HttpStats:
    """Counters the engine reports for a run."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    outcome_unknown: int = 0
    waited_seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "rateLimited": self.rate_limited,
            "outcomeUnknown": self.outcome_unknown,
            "waitedSeconds": round(self.waited_seconds, 3),
        }


class TokenBucket:
    """A token bucket that also caps requests in flight and can be paused as a whole.

    Waiters are served in arrival order (one lock), so a burst of callers drains the bucket
    evenly instead of racing for each token.
    """

    def __init__(self, limit: RateLimit, clock: Clock, sleep: Sleep) -> None:
        if limit.requests_per_second <= 0 or limit.burst < 1 or limit.max_concurrent < 1:
            raise ValueError(f"invalid rate limit {limit}")
        self.nominal = limit
        self.rate = limit.requests_per_second
        self.burst = float(limit.burst)
        self._tokens = float(limit.burst)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.in_flight = asyncio.Semaphore(limit.max_concurrent)

    def _refill(self, now: float) -> None:
        # After a pause ``_updated`` lies in the future: no token accrues until then.
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    async def acquire(self) -> float:
        """Take one token, waiting for it (and for any pause); returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                now = self._clock()
                self._refill(now)
                if now < self._paused_until:
                    delay = self._paused_until - now
                elif self._tokens >= 1 - _EPSILON:  # float refills land just below 1
                    self._tokens = max(0.0, self._tokens - 1)
                    return waited
                else:
                    delay = max((1 - self._tokens) / self.rate, _EPSILON)
                await self._sleep(delay)
                waited += delay

    def pause(self, seconds: float) -> None:
        """No request of this bucket starts for ``seconds``, and it restarts empty."""
        now = self._clock()
        self._refill(now)
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0
        self._updated = self._paused_until

    def pause_left(self) -> float:
        return max(0.0, self._paused_until - self._clock())

    def fit_window(self, requests: int, seconds: float) -> None:
        """Slow down to never exceed ``requests`` per ``seconds`` (a rolling window): a bucket
        sends at most ``burst + rate·seconds`` in any such window."""
        if requests < 1 or seconds <= 0:
            return
        burst = float(max(1, min(self.nominal.burst, requests // 10)))
        rate = (requests - burst) / seconds
        if 0 < rate < self.rate:
            self._refill(self._clock())
            self.rate = rate
            self.burst = min(self.burst, burst)
            self._tokens = min(self._tokens, self.burst)


class ClientHooks(TypedDict, total=False):
    """What tests give a connector to pass on to its :class:`AppHttpClient`: another retry
    policy, a shorter timeout, fake time and randomness, a transport. A connector and its
    factory take them as ``**hooks``."""

    retry: RetryPolicy
    timeout: float
    clock: Clock
    wall_clock: Clock
    sleep: Sleep
    rand: Callable[[], float]
    transport: httpx.AsyncBaseTransport | None


class AppHttpClient:
    """HTTP calls to one application account, rate-limited and retried by the rules above.

    ``groups`` names endpoint groups with their own bucket (a request says which with
    ``group=``); requests without a group use the connection's main bucket.
    """

    def __init__(
        self,
        app_name: str,
        base_url: str,
        rate_limit: RateLimit,
        *,
        headers: Mapping[str, str] | None = None,
        groups: Mapping[str, RateLimit] | None = None,
        retry: RetryPolicy | None = None,
        rate_limit_reader: RateLimitReader | None = None,
        error_message: ErrorMessage | None = None,
        credential_name: str = "access token",
        gzip_requests: bool = False,
        timeout: float = 30.0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.app_name = app_name
        self.retry = retry or RetryPolicy()
        self.stats = HttpStats()
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rand = rand
        self._reader = rate_limit_reader
        self._error_message = error_message or default_error_message
        self._credential_name = credential_name
        self._gzip = gzip_requests
        self.bucket = TokenBucket(rate_limit, clock, sleep)
        self.groups = {
            name: TokenBucket(limit, clock, sleep) for name, limit in (groups or {}).items()
        }
        # Enough connections for every request the buckets allow in flight.
        connections = rate_limit.max_concurrent + sum(
            g.max_concurrent for g in (groups or {}).values()
        )
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=timeout,
            transport=transport or AiohttpTransport(connections, timeout),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        group: str | None = None,
    ) -> httpx.Response:
        """Send a request and return the application's response, retried as the rules say.

        Returns 2xx responses and the 4xx ones the connector interprets (400, 404, 409...).
        Raises :class:`ConnectorError` for a refused credential (401/403) and when retries run
        out, :class:`OutcomeUnknownError` when a non-idempotent request may have been processed.
        ``idempotent`` defaults to the method's HTTP semantics.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        bucket = self._bucket(group)
        content, headers = self._encode(json_body)
        started = self._clock()
        what = f"{method} {path}"
        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            async with bucket.in_flight:
                waited = await bucket.acquire()
                self.stats.waited_seconds += waited
                self.stats.requests += 1
                try:
                    response = await self._client.request(
                        method, path, content=content, params=params, headers=headers
                    )
                except _NOT_SENT_ERRORS as err:
                    response = None
                    last = f"connection failed: {_describe(err)}"
                except httpx.TransportError as err:
                    if not idempotent:
                        self.stats.outcome_unknown += 1
                        raise OutcomeUnknownError(
                            f"{self.app_name} may or may not have processed {what}: "
                            f"{_describe(err)}"
                        ) from err
                    response = None
                    last = f"network error: {_describe(err)}"
            if response is not None:
                status = response.status_code
                self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
                last = _status_text(status)
                hint = self._read_hint(response)
                if hint is not None and hint.window is not None:
                    bucket.fit_window(*hint.window)
                if status < 400 or (
                    status not in self.retry.not_processed_statuses
                    and status not in self.retry.retry_statuses
                    and status not in (401, 403)
                ):
                    if hint is not None and hint.pause is not None and status < 400:
                        bucket.pause(hint.pause)
                    return response
                if status in (401, 403):
                    raise ConnectorError(
                        f"{self.app_name} refused the {self._credential_name} "
                        f"({last}): {self._error_message(response)}"
                    )
                if status in self.retry.not_processed_statuses:
                    # Not processed: the application wants every request of the connection
                    # to wait, so the whole bucket pauses and the next attempt waits there.
                    if status == 429:
                        self.stats.rate_limited += 1
                    bucket.pause(self._not_processed_wait(response, hint, attempt))
                    wait = 0.0
                else:
                    if not idempotent:
                        self.stats.outcome_unknown += 1
                        raise OutcomeUnknownError(
                            f"{self.app_name} may or may not have processed {what}: {last}: "
                            f"{self._error_message(response)}",
                            status,
                        )
                    after = self._retry_after(response)
                    wait = after if after is not None else self.retry.backoff(attempt, self._rand)
            else:
                wait = self.retry.backoff(attempt, self._rand)
            if attempt == self.retry.max_attempts:
                break
            elapsed = self._clock() - started
            left = self.retry.max_retry_time - elapsed
            pending = max(wait, bucket.pause_left())
            if pending > left:
                raise ConnectorError(
                    f"{self.app_name} gave up on {what} after {attempt} attempt"
                    f"{'s' if attempt > 1 else ''} in {elapsed:.1f} s: the next one would "
                    f"start after the {self.retry.max_retry_time:g} s allowed for retries "
                    f"(last: {last})"
                )
            self.stats.retries += 1
            if wait > 0:
                await self._sleep(wait)
                self.stats.waited_seconds += wait
        raise ConnectorError(
            f"{self.app_name} gave up on {what} after {self.retry.max_attempts} attempts "
            f"(last: {last})"
        )

    def _bucket(self, group: str | None) -> TokenBucket:
        if group is None:
            return self.bucket
        try:
            return self.groups[group]
        except KeyError:
            raise ValueError(f'{self.app_name} has no endpoint group "{group}"') from None

    def _encode(self, body: Any) -> tuple[bytes | None, dict[str, str]]:
        if body is None:
            return None, {}
        content = encode_json(body)
        headers = {"Content-Type": "application/json"}
        if self._gzip and len(content) >= _GZIP_MIN_BYTES:
            content = gzip.compress(content, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        return content, headers

    def _read_hint(self, response: httpx.Response) -> RateLimitHint | None:
        return self._reader(response) if self._reader is not None else None

    def _not_processed_wait(
        self, response: httpx.Response, hint: RateLimitHint | None, attempt: int
    ) -> float:
        """Retry-After first, then what the application's headers say, then backoff."""
        wait = self._retry_after(response)
        if wait is None and hint is not None:
            wait = hint.pause
        return wait if wait is not None else self.retry.backoff(attempt, self._rand)

    def _retry_after(self, response: httpx.Response) -> float | None:
        return parse_retry_after(response.headers.get("Retry-After"), self._wall_clock())


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds (decimals accepted) or an
    HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object; an empty one when the body is not a JSON object, so that a
    malformed answer reads as one without the members expected."""
    try:
        body = decode_json(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def documented_json(app: str, response: httpx.Response, *lists: str) -> dict[str, Any]:
    """The JSON object of a success answer, holding each member named in ``lists`` as a list;
    a :class:`MalformedAnswerError` naming the application, the request and what is wrong,
    in one line, when it is not."""
    try:
        body = decode_json(response.content)
    except ValueError:
        problem = "a body that is not JSON (cut short?)"
    else:
        if not isinstance(body, dict):
            problem = "JSON that is not an object"
        else:
            missing = [f'"{name}"' for name in lists if not isinstance(body.get(name), list)]
            if not missing:
                return body
            problem = f"JSON without the list {' and '.join(missing)} it documents"
    request = response.request
    excerpt = " ".join(response.text.split())[:100] or "(empty body)"
    raise MalformedAnswerError(
        f"{app} answered {request.method} {request.url.path} with "
        f"{_status_text(response.status_code)} and {problem}: {excerpt}",
        response.status_code,
    )


def default_error_message(response: httpx.Response) -> str:
    """The ``message`` member of a JSON error body, else the start of the body."""
    try:
        body = decode_json(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    text = response.text.strip()
    return text[:300] if text else "(empty body)"


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _describe(err: Exception) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
