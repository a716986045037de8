"""The HTTP face of the Klaviyo twin: Klaviyo's profile, import-job and account routes, its
per-endpoint rate limits, and the twin's admin routes under ``/_twin/``.

Every API request goes through, in order: an injected fault or latency, the private key
(``Authorization: Klaviyo-API-Key <key>``), the ``revision`` header, the endpoint's rate limit,
the request's media type, then the operation under the twin's lock.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.twins.common import admin_endpoint, admin_routes, json_response
from sluice.twins.klaviyo_state import Answer, Job, RefusedError, errors, invalid

if TYPE_CHECKING:
    from sluice.twins.klaviyo import KlaviyoTwin

_JSON_API = "application/vnd.api+json"
_REVISION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(\.pre)?\Z")
_MEDIA_TYPES = frozenset({_JSON_API, "application/json"})


@dataclass(frozen=True, slots=True)
class Tier:
    """A Klaviyo rate limit: requests per 1 s (burst) and per 60 s (steady), fixed windows."""

    burst: int
    steady: int


#: The documented limits of the endpoints the twin serves (each endpoint's API reference).
PROFILES_TIER = Tier(75, 750)
JOBS_TIER = Tier(10, 150)
ACCOUNTS_TIER = Tier(1, 15)


class RateLimiter:
    """Fixed one-second and one-minute windows per endpoint, per account. Not thread-safe: the
    twin calls it under its lock."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.reset()

    def reset(self) -> None:
        self.forced = 0
        self._windows: dict[tuple[str, str, int], int] = {}

    def admit(self, endpoint: str, tier: Tier) -> tuple[bool, dict[str, str]]:
        """``(admitted, headers)``: ``RateLimit-*`` when admitted, ``Retry-After`` when not."""
        now = time.time()
        if self.forced > 0:
            self.forced -= 1
            return False, {"Retry-After": "1"}
        second, minute = int(now), int(now // 60)
        used_second = self._windows.get((endpoint, "s", second), 0)
        used_minute = self._windows.get((endpoint, "m", minute), 0)
        reset = max(1, math.ceil((minute + 1) * 60 - now))
        if self.enabled:
            if used_second >= tier.burst:
                return False, {"Retry-After": "1"}
            if used_minute >= tier.steady:
                return False, {"Retry-After": str(reset)}
        self._windows = {key: n for key, n in self._windows.items() if key[2] in (second, minute)}
        self._windows[endpoint, "s", second] = used_second + 1
        self._windows[endpoint, "m", minute] = used_minute + 1
        if not self.enabled:
            return True, {}
        return True, {
            "RateLimit-Limit": str(tier.steady),
            "RateLimit-Remaining": str(max(0, tier.steady - used_minute - 1)),
            "RateLimit-Reset": str(reset),
        }


def _respond(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, body, headers, media_type=_JSON_API)


def _throttled(headers: dict[str, str]) -> Response:
    wait = headers.get("Retry-After", "1")
    unit = "second" if wait == "1" else "seconds"
    status, body = errors(
        429,
        "throttled",
        "Request was throttled.",
        f"Request was throttled. Expected available in {wait} {unit}.",
    )
    body["errors"][0]["links"] = {
        "type": "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling"
    }
    return _respond(status, body, headers)


Operation = Callable[["KlaviyoTwin", Request, Any, int], Answer]


def _api(name: str, operation: Operation, *, method: str, tier: Tier) -> Any:
    endpoint = f"{method} {name}"

    async def handle(request: Request) -> Response:
        twin: KlaviyoTwin = request.app.state.twin
        answer = await twin.answer(
            request, request.url.path, lambda: perform(twin, request), _fault
        )
        return twin.counted(endpoint, answer)

    async def perform(twin: KlaviyoTwin, request: Request) -> Response:
        refused = _authenticate(twin, request)
        if refused is not None:
            return _respond(*refused)
        revision = request.headers.get("revision")
        if revision is None or not _REVISION.match(revision.strip()):
            what = "missing" if revision is None else f"invalid ({revision!r})"
            answer = invalid(
                f"The revision header is {what}; send the API revision as YYYY-MM-DD.",
                parameter="revision",
            )
            return _respond(*answer)
        with twin.lock:
            admitted, headers = twin.limiter.admit(name, tier)
        if not admitted:
            return _throttled(headers)
        body: Any = None
        size = 0
        if method == "POST":
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media not in _MEDIA_TYPES:
                answer = errors(
                    415,
                    "unsupported_media_type",
                    "Unsupported media type.",
                    f'Unsupported media type "{media}" in request.',
                )
                return _respond(*answer, headers)
            raw = await request.body()
            size = len(raw)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                answer = errors(400, "parse_error", "Malformed request.", "JSON parse error.")
                return _respond(*answer, headers)
        with twin.lock:
            try:
                status, result = operation(twin, request, body, size)
            except RefusedError as refusal:
                status, result = refusal.answer
            return _respond(status, result, headers)

    return handle


def _fault(status: int) -> Response:
    return _respond(
        *errors(status, "error", "A server error occurred.", "The twin failed on purpose.")
    )


def _authenticate(twin: KlaviyoTwin, request: Request) -> Answer | None:
    authorization = request.headers.get("authorization")
    scheme, _, key = (authorization or "").partition(" ")
    if authorization is None or scheme != "Klaviyo-API-Key":
        return errors(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.",
        )
    if twin.credential is None or key.strip() != twin.credential:
        return errors(
            401,
            "authentication_failed",
            "Incorrect authentication credentials.",
            "Incorrect authentication credentials.",
        )
    return None


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _job_answer(job: Job, request: Request, status: int) -> Answer:
    return status, {"data": job.to_json(_base(request)), "links": {"self": str(request.url)}}


def _submit(twin: KlaviyoTwin, request: Request, body: Any, size: int) -> Answer:
    status, result = twin.store.submit(body, size)
    job = result.get("data")
    return _job_answer(job, request, status) if isinstance(job, Job) else (status, result)


def _poll(twin: KlaviyoTwin, request: Request, body: Any, size: int) -> Answer:
    job_id = request.path_params["job_id"]
    job = twin.store.poll(job_id)
    if job is None:
        return errors(404, "not_found", "Not found.", f"Job {job_id} does not exist.")
    return _job_answer(job, request, 200)


def _accounts(twin: KlaviyoTwin, request: Request, body: Any, size: int) -> Answer:
    base = _base(request)
    return 200, {
        "data": [
            {
                "type": "account",
                "id": twin.account_id,
                "attributes": {
                    "test_account": False,
                    "contact_information": {
                        "default_sender_name": "Sluice Twin",
                        "default_sender_email": "hello@example.com",
                        "website_url": "https://example.com",
                        "organization_name": "Sluice Twin",
                        "street_address": {
                            "address1": "125 Summer Street",
                            "address2": None,
                            "city": "Boston",
                            "region": "MA",
                            "country": "US",
                            "zip": "02110",
                        },
                    },
                    "industry": "Software / SaaS",
                    "timezone": "US/Eastern",
                    "preferred_currency": "USD",
                    "public_api_key": twin.account_id,
                    "locale": "en-US",
                },
                "links": {"self": f"{base}/api/accounts/{twin.account_id}/"},
            }
        ],
        "links": {"self": f"{base}/api/accounts/", "next": None, "prev": None},
    }


def _routes() -> list[Route]:
    jobs = "/api/profile-bulk-import-jobs"

    def route(
        path: str, operation: Operation, method: str, tier: Tier, name: str = ""
    ) -> list[Route]:
        handler = _api(name or path, operation, method=method, tier=tier)
        # Klaviyo answers with and without the trailing slash.
        return [Route(p, handler, methods=[method]) for p in (path, path + "/")]

    return [
        *route(
            "/api/profiles",
            lambda t, r, b, s: t.store.list_profiles(r.query_params, _base(r)),
            "GET",
            PROFILES_TIER,
        ),
        *route(jobs, _submit, "POST", JOBS_TIER),
        *route(
            jobs + "/{job_id}/import-errors",
            lambda t, r, b, s: t.store.import_errors(
                r.path_params["job_id"], r.query_params, _base(r)
            ),
            "GET",
            JOBS_TIER,
            jobs + "/{id}/import-errors",
        ),
        *route(jobs + "/{job_id}", _poll, "GET", JOBS_TIER, jobs + "/{id}"),
        *route("/api/accounts", _accounts, "GET", ACCOUNTS_TIER),
        *admin_routes(
            Route(
                "/_twin/run-jobs", admin_endpoint(lambda t, b, r: t.run_jobs()), methods=["POST"]
            ),
            Route("/_twin/profiles", admin_endpoint(_profiles), methods=["GET", "POST"]),
        ),
    ]


# -- admin --------------------------------------------------------------------------------------


def _profiles(twin: KlaviyoTwin, body: dict[str, Any], request: Request) -> Any:
    if request.method == "POST":
        return {"ids": twin.add_profiles(body["profiles"])}
    return {"count": len(twin.profiles()), "results": twin.profiles()}


def create_app(twin: KlaviyoTwin) -> Starlette:
    app = Starlette(routes=_routes())
    app.state.twin = twin
    return app
