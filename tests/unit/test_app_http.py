"""The connectors' HTTP client against a scripted loopback server, on a fake clock.

The server answers each path with the responses a test scripts for it, in order, and records
what it received. Waits (backoff, Retry-After, the bucket) advance a fake clock instead of
sleeping, so every retry rule is checked in milliseconds.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.apps.connector import ConnectorError, RateLimit
from sluice.apps.http import (
    AppHttpClient,
    MalformedAnswerError,
    OutcomeUnknownError,
    RateLimitHint,
    RetryPolicy,
    TokenBucket,
    documented_json,
    parse_retry_after,
)
from tests.connector_runs import FakeTime
from tests.support import free_port


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # real seconds before answering


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.received: list[Received] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.script.clear()
            self.received.clear()
            self.max_in_flight.clear()

    def on(self, path: str, *replies: Reply) -> None:
        self.script[path] = list(replies)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append(
                Received(request.method, request.url.path, dict(request.headers), body)
            )
            replies = self.script.get(request.url.path) or [Reply(200, {"ok": True})]
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            path = request.url.path
            self.in_flight[path] = self.in_flight.get(path, 0) + 1
            self.max_in_flight[path] = max(self.max_in_flight.get(path, 0), self.in_flight[path])
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            content = b"" if reply.body is None else json.dumps(reply.body).encode()
            return Response(content, reply.status, reply.headers, media_type="application/json")
        finally:
            with self.lock:
                self.in_flight[path] -= 1


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScriptedServer, str]]:
    scripted = ScriptedServer()
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", scripted.handle, methods=methods)])
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert uv.started, "the scripted server did not start"
    yield scripted, f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def scripted(server: tuple[ScriptedServer, str]) -> ScriptedServer:
    server[0].reset()
    return server[0]


def fake_time() -> FakeTime:
    """Fake time a thousand seconds in, so that a clock at zero would show."""
    return FakeTime(1000.0)


LIMIT = RateLimit(requests_per_second=100, burst=100, max_concurrent=10)


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    limit: RateLimit = LIMIT,
    request_options: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[httpx.Response | BaseException, AppHttpClient, FakeTime]:
    """One request; returns the response or the exception it raised, the client and clock."""
    fake = fake_time()
    holder: dict[str, AppHttpClient] = {}

    async def main() -> httpx.Response | BaseException:
        client = AppHttpClient(
            "Test",
            base_url,
            limit,
            clock=fake.clock,
            wall_clock=fake.wall,
            sleep=fake.sleep,
            rand=lambda: 0.0,
            **options,
        )
        holder["client"] = client
        try:
            return await asyncio.wait_for(
                client.request(method, path, **(request_options or {})), timeout=10
            )
        except (ConnectorError, ValueError) as err:
            return err
        finally:
            await client.aclose()

    outcome = asyncio.run(main())
    return outcome, holder["client"], fake


# ---------------------------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------------------------


def test_an_idempotent_request_is_retried_after_a_5xx_with_backoff(server, scripted):
    scripted.on("/x", Reply(503), Reply(502), Reply(200, {"done": 1}))
    response, client, fake = call(server[1], "GET", "/x")
    assert isinstance(response, httpx.Response) and response.json() == {"done": 1}
    assert fake.sleeps == [0.5, 1.0]
    assert client.stats.requests == 3
    assert client.stats.retries == 2
    assert client.stats.waited_seconds == pytest.approx(1.5)


def test_backoff_doubles_to_its_cap_with_up_to_half_of_it_as_jitter():
    policy = RetryPolicy()
    assert [policy.backoff(n, lambda: 0.0) for n in range(1, 9)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]
    assert policy.backoff(1, lambda: 1.0) == 0.75
    assert policy.backoff(8, lambda: 1.0) == 45.0


def test_a_non_idempotent_request_is_never_resent_after_a_5xx(server, scripted):
    scripted.on("/create", Reply(500, {"message": "boom"}), Reply(200))
    outcome, client, _ = call(server[1], "POST", "/create", request_options={"json_body": {}})
    assert isinstance(outcome, OutcomeUnknownError)
    assert isinstance(outcome, ConnectorError)
    assert outcome.status_code == 500
    assert str(outcome) == (
        "Test may or may not have processed POST /create: 500 Internal Server Error: boom"
    )
    assert len(scripted.received) == 1
    assert client.stats.outcome_unknown == 1


def test_a_post_marked_idempotent_is_retried_after_a_5xx(server, scripted):
    scripted.on("/read", Reply(504), Reply(200, {"r": 1}))
    outcome, _, _ = call(
        server[1], "POST", "/read", request_options={"json_body": {}, "idempotent": True}
    )
    assert isinstance(outcome, httpx.Response) and outcome.json() == {"r": 1}
    assert len(scripted.received) == 2


def test_a_429_is_retried_for_every_request_after_retry_after(server, scripted):
    scripted.on("/create", Reply(429, {}, {"Retry-After": "2"}), Reply(201, {"id": "1"}))
    outcome, client, fake = call(server[1], "POST", "/create", request_options={"json_body": {}})
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 201
    assert len(scripted.received) == 2
    assert client.stats.rate_limited == 1
    assert client.stats.retries == 1
    # The bucket waits out the pause, then restarts empty: one token's time (1/100 s).
    assert fake.sleeps == [2.0, 0.01]
    assert client.stats.waited_seconds == pytest.approx(2.01)


def test_a_429_pauses_the_whole_bucket(server, scripted):
    scripted.on("/a", Reply(429, {}, {"Retry-After": "5"}))
    scripted.on("/b", Reply(200))

    async def body(client: AppHttpClient, fake: FakeTime) -> None:
        with pytest.raises(ConnectorError):
            await client.request("GET", "/a")
        started = fake.now
        await client.request("GET", "/b")
        assert fake.now - started == pytest.approx(5.01)

    fake = fake_time()

    async def main() -> None:
        client = AppHttpClient(
            "Test",
            server[1],
            LIMIT,
            retry=RetryPolicy(max_attempts=1),
            clock=fake.clock,
            sleep=fake.sleep,
        )
        try:
            await body(client, fake)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_retry_after_as_an_http_date(server, scripted):
    # The fake wall clock reads 2025-01-01 00:16:40 UTC; the server asks for 00:17:00.
    date = "Wed, 01 Jan 2025 00:17:00 GMT"
    scripted.on("/x", Reply(429, {}, {"Retry-After": date}), Reply(200))
    outcome, _, fake = call(server[1], "GET", "/x")
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 200
    assert fake.sleeps == [pytest.approx(20.0), 0.01]


def test_parse_retry_after():
    now = 1_735_689_600.0  # 2025-01-01 00:00:00 UTC
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after("1.5", now) == 1.5
    assert parse_retry_after("Wed, 01 Jan 2025 00:01:00 GMT", now) == 60.0
    assert parse_retry_after("Tue, 31 Dec 2024 23:00:00 GMT", now) == 0.0
    assert parse_retry_after("-4", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("nan", now) is None
    assert parse_retry_after(None, now) is None


def test_retries_stop_after_the_last_attempt(server, scripted):
    scripted.on("/x", Reply(503))
    outcome, client, _ = call(server[1], "GET", "/x", retry=RetryPolicy(max_attempts=3))
    assert isinstance(outcome, ConnectorError)
    assert str(outcome) == "Test gave up on GET /x after 3 attempts (last: 503 Service Unavailable)"
    assert len(scripted.received) == 3
    assert client.stats.retries == 2


def test_the_default_policy_makes_eight_attempts(server, scripted):
    scripted.on("/x", Reply(500))
    outcome, _, fake = call(server[1], "GET", "/x")
    assert str(outcome) == (
        "Test gave up on GET /x after 8 attempts (last: 500 Internal Server Error)"
    )
    assert fake.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]


def test_retries_stop_when_the_total_retry_time_would_be_exceeded(server, scripted):
    scripted.on("/x", Reply(429, {}, {"Retry-After": "400"}))
    outcome, _, fake = call(server[1], "GET", "/x")
    assert str(outcome) == (
        "Test gave up on GET /x after 1 attempt in 0.0 s: the next one would start after the "
        "300 s allowed for retries (last: 429 Too Many Requests)"
    )
    assert fake.sleeps == []
    scripted.on("/y", Reply(503))
    outcome, _, fake = call(server[1], "GET", "/y", retry=RetryPolicy(max_retry_time=10))
    assert str(outcome) == (
        "Test gave up on GET /y after 5 attempts in 7.5 s: the next one would start after the "
        "10 s allowed for retries (last: 503 Service Unavailable)"
    )


def test_a_refused_token_stops_at_once(server, scripted):
    scripted.on("/x", Reply(401, {"message": "bad token", "category": "INVALID_AUTHENTICATION"}))
    outcome, _, _ = call(server[1], "GET", "/x")
    assert str(outcome) == "Test refused the access token (401 Unauthorized): bad token"
    scripted.on("/y", Reply(403, {"message": "missing scopes"}))
    outcome, _, _ = call(server[1], "GET", "/y", credential_name="API key")
    assert str(outcome) == "Test refused the API key (403 Forbidden): missing scopes"
    assert len(scripted.received) == 2


def test_other_client_errors_go_back_to_the_connector(server, scripted):
    scripted.on("/x", Reply(404, {"message": "nope"}))
    outcome, client, _ = call(server[1], "POST", "/x", request_options={"json_body": {}})
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 404
    assert client.stats.retries == 0


def test_a_connection_that_never_opened_is_retried_even_for_a_create():
    port = free_port()  # nothing listens there
    outcome, client, fake = call(
        f"http://127.0.0.1:{port}",
        "POST",
        "/create",
        request_options={"json_body": {}},
        retry=RetryPolicy(max_attempts=3),
    )
    assert isinstance(outcome, ConnectorError)
    assert not isinstance(outcome, OutcomeUnknownError)
    assert str(outcome).startswith(
        "Test gave up on POST /create after 3 attempts (last: connection failed: ConnectError"
    )
    assert client.stats.requests == 3
    assert fake.sleeps == [0.5, 1.0]


def test_a_lost_answer_is_retried_only_for_idempotent_requests(server, scripted):
    scripted.on("/slow", Reply(200, delay=0.5), Reply(200, {"second": True}))
    outcome, _, _ = call(server[1], "GET", "/slow", timeout=0.1)
    assert isinstance(outcome, httpx.Response) and outcome.json() == {"second": True}
    scripted.on("/slow-create", Reply(201, delay=0.5))
    outcome, _, _ = call(
        server[1], "POST", "/slow-create", request_options={"json_body": {}}, timeout=0.1
    )
    assert isinstance(outcome, OutcomeUnknownError)
    assert str(outcome) == (
        "Test may or may not have processed POST /slow-create: ReadTimeout: no answer within 0.1 s"
    )


def test_a_not_processed_status_of_the_connector_is_retried_for_every_request(server, scripted):
    policy = RetryPolicy(not_processed_statuses=frozenset({429, 477}))
    scripted.on("/create", Reply(477, {}, {"Retry-After": "3"}), Reply(201))
    outcome, client, fake = call(
        server[1], "POST", "/create", request_options={"json_body": {}}, retry=policy
    )
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 201
    assert fake.sleeps == [3.0, 0.01]
    assert client.stats.rate_limited == 0


# ---------------------------------------------------------------------------------------------
# Rate limits
# ---------------------------------------------------------------------------------------------


def test_the_bucket_spaces_requests_at_its_rate_after_the_burst(server, scripted):
    limit = RateLimit(requests_per_second=2, burst=2, max_concurrent=4)

    async def body(client: AppHttpClient, fake: FakeTime) -> None:
        for _ in range(10):
            await client.request("GET", "/x")

    fake = fake_time()

    async def main() -> AppHttpClient:
        client = AppHttpClient("Test", server[1], limit, clock=fake.clock, sleep=fake.sleep)
        try:
            await body(client, fake)
        finally:
            await client.aclose()
        return client

    client = asyncio.run(main())
    # Two at once, then one every half second: eight waits of 0.5 s.
    assert fake.sleeps == [0.5] * 8
    assert client.stats.waited_seconds == pytest.approx(4.0)


def test_requests_in_flight_are_capped(server, scripted):
    scripted.on("/capped", Reply(200, delay=0.05))
    limit = RateLimit(requests_per_second=1000, burst=1000, max_concurrent=2)

    async def main() -> None:
        client = AppHttpClient("Test", server[1], limit)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(client.request("GET", "/capped") for _ in range(6))), 10
            )
        finally:
            await client.aclose()

    asyncio.run(main())
    assert len(scripted.received) == 6
    assert scripted.max_in_flight["/capped"] == 2


def test_an_endpoint_group_has_a_bucket_of_its_own(server, scripted):
    fake = fake_time()
    slow = RateLimit(requests_per_second=1, burst=1, max_concurrent=1)

    async def main() -> AppHttpClient:
        client = AppHttpClient(
            "Test", server[1], LIMIT, groups={"search": slow}, clock=fake.clock, sleep=fake.sleep
        )
        try:
            for _ in range(3):
                await client.request("POST", "/search", group="search", idempotent=True)
            for _ in range(3):
                await client.request("GET", "/other")
            with pytest.raises(ValueError, match='Test has no endpoint group "nope"'):
                await client.request("GET", "/x", group="nope")
        finally:
            await client.aclose()
        return client

    asyncio.run(main())
    assert fake.sleeps == [1.0, 1.0]  # only the group's requests waited


def test_the_token_bucket_pauses_and_restarts_empty():
    fake = fake_time()
    bucket = TokenBucket(RateLimit(10, 5, 1), fake.clock, fake.sleep)

    async def main() -> list[float]:
        waits = [await bucket.acquire() for _ in range(5)]
        bucket.pause(3)
        waits.append(await bucket.acquire())
        waits.append(await bucket.acquire())
        return waits

    waits = asyncio.run(main())
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(3.1)  # the pause, then one token's time
    assert waits[6] == pytest.approx(0.1)


def test_the_bucket_slows_to_the_window_the_application_announces():
    fake = fake_time()
    bucket = TokenBucket(RateLimit(18, 10, 4), fake.clock, fake.sleep)
    bucket.fit_window(100, 10.0)  # HubSpot Free/Starter: 100 per rolling 10 s
    assert (bucket.rate, bucket.burst) == (9.0, 10.0)
    bucket.fit_window(250, 10.0)  # a higher announcement never speeds it up
    assert (bucket.rate, bucket.burst) == (9.0, 10.0)


def test_the_rate_limit_reader_drives_pauses_and_the_window(server, scripted):
    def reader(response: httpx.Response) -> RateLimitHint | None:
        if response.status_code == 429:
            return RateLimitHint(pause=7.0, window=(50, 10.0))
        return None

    scripted.on("/x", Reply(429), Reply(200))
    outcome, client, fake = call(server[1], "GET", "/x", rate_limit_reader=reader)
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 200
    # The window (50 per 10 s) slowed the bucket to 4.5/s: after the pause, a token in 2/9 s.
    assert fake.sleeps == [7.0, pytest.approx(2 / 9)]
    assert client.bucket.rate == pytest.approx(4.5)


def test_a_reader_may_stop_the_run(server, scripted):
    def reader(response: httpx.Response) -> RateLimitHint | None:
        raise ConnectorError("daily limit used up")

    scripted.on("/x", Reply(429))
    outcome, _, _ = call(server[1], "GET", "/x", rate_limit_reader=reader)
    assert str(outcome) == "daily limit used up"


# ---------------------------------------------------------------------------------------------
# Bodies and counters
# ---------------------------------------------------------------------------------------------


def test_json_bodies_may_be_gzipped(server, scripted):
    payload = {"inputs": [{"properties": {"email": f"user{i}@example.com"}} for i in range(100)]}
    outcome, _, _ = call(
        server[1],
        "POST",
        "/x",
        request_options={"json_body": payload, "idempotent": True},
        gzip_requests=True,
    )
    assert isinstance(outcome, httpx.Response)
    (received,) = scripted.received
    assert received.headers["content-encoding"] == "gzip"
    assert received.headers["content-type"] == "application/json"
    assert json.loads(gzip.decompress(received.body)) == payload


def test_small_bodies_are_sent_as_they_are(server, scripted):
    call(server[1], "POST", "/x", request_options={"json_body": {"a": 1}}, gzip_requests=True)
    (received,) = scripted.received
    assert "content-encoding" not in received.headers
    assert json.loads(received.body) == {"a": 1}


def test_stats_serialise_for_the_run_summary(server, scripted):
    scripted.on("/x", Reply(429, {}, {"Retry-After": "1"}), Reply(200))
    _, client, _ = call(server[1], "GET", "/x")
    assert client.stats.to_json() == {
        "requests": 2,
        "retries": 1,
        "rateLimited": 1,
        "outcomeUnknown": 0,
        "waitedSeconds": 1.01,
    }
    assert client.stats.statuses == {429: 1, 200: 1}


def answered(status: int, content: bytes) -> httpx.Response:
    request = httpx.Request("POST", "https://api.example.com/v1/batch?x=1")
    return httpx.Response(status, content=content, request=request)


def test_a_documented_answer_is_read_with_its_lists():
    body = documented_json("App", answered(200, b'{"results": [], "next": null}'), "results")
    assert body == {"results": [], "next": None}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"results": [{"id": "1"}', 'a body that is not JSON (cut short?): {"results": [{'),
        (b"[]", "JSON that is not an object: []"),
        (b'{"results": {}}', 'JSON without the list "results" and "errors" it documents: {'),
        (b"", "a body that is not JSON (cut short?): (empty body)"),
    ],
)
def test_an_answer_not_in_the_documented_shape_is_an_unknown_outcome(content, problem):
    with pytest.raises(MalformedAnswerError) as raised:
        documented_json("App", answered(201, content), "results", "errors")
    assert isinstance(raised.value, OutcomeUnknownError) and raised.value.status_code == 201
    assert str(raised.value).startswith(
        f"App answered POST /v1/batch with 201 Created and {problem}"
    )
