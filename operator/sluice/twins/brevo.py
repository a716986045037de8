"""The Brevo twin: a loopback server that speaks Brevo's API v3 for contacts.

Tests, benchmarks and the demo point the Brevo connector at it instead of
``https://api.brevo.com/v3``::

    twin = BrevoTwin(api_key="xkeysib-...")
    with serve(twin) as base_url:
        ...  # the connector's baseUrl is f"{base_url}/v3"

or, in a process of its own::

    python -m sluice.twins.brevo --listen 127.0.0.1:0 --api-key KEY [--no-rate-limit]

which prints ``listening on http://127.0.0.1:PORT`` once it accepts connections. What it
implements, and which documented Brevo behaviour each part follows, is in
``docs/brevo-twin.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.twins.brevo_state import Answer, Attribute, ContactStore, error
from sluice.twins.common import TwinControls, json_response
from sluice.twins.serving import parse_listen, run_process, serve

#: Brevo's general limits: every /contacts endpoint 10 requests per second and 36,000 per hour;
#: every endpoint without a limit of its own (``/account``) 100 per hour.
CONTACTS_PER_SECOND = 10
CONTACTS_PER_HOUR = 36_000
OTHER_PER_HOUR = 100
DEFAULT_ORGANIZATION_ID = "62a7f5c1e4b0d3a9c8f1e2d4"

__all__ = ["Attribute", "BrevoTwin", "main", "serve"]

_UNAUTHORIZED = error("unauthorized", "Key not found")
# [not documented] Brevo's 429 body; its headers are documented.
_RATE_LIMITED = error("too_many_requests", "The expected rate limit is exceeded.")


class _Window:
    """A fixed window of ``limit`` requests per ``seconds``."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.started = -math.inf
        self.used = 0

    def take(self, now: float) -> bool:
        if now - self.started >= self.seconds:
            self.started, self.used = now, 0
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self, now: float) -> dict[str, str]:
        reset = max(0.0, self.started + self.seconds - now)
        return {
            "x-sib-ratelimit-limit": str(self.limit),
            "x-sib-ratelimit-remaining": str(max(0, self.limit - self.used)),
            "x-sib-ratelimit-reset": str(max(1, math.ceil(reset))),
        }


class RateLimiter:
    """Brevo's windows per endpoint group. Not thread-safe: used under the twin's lock."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.reset()

    def reset(self) -> None:
        self.windows = {
            "contacts": (
                _Window(CONTACTS_PER_SECOND, 1.0),
                _Window(CONTACTS_PER_HOUR, 3600.0),
            ),
            "other": (_Window(OTHER_PER_HOUR, 3600.0),),
        }
        self.forced = 0

    def admit(self, group: str) -> tuple[bool, dict[str, str]]:
        """``(admitted, headers)``: the headers of the tightest window."""
        now = time.monotonic()
        windows = self.windows[group]
        if self.forced > 0:
            self.forced -= 1
            return False, {
                "x-sib-ratelimit-limit": str(windows[0].limit),
                "x-sib-ratelimit-remaining": "0",
                "x-sib-ratelimit-reset": "1",
            }
        if not self.enabled:
            return True, {}
        for window in windows:
            if not window.take(now):
                return False, window.headers(now)
        tightest = min(windows, key=lambda w: w.limit - w.used)
        return True, tightest.headers(now)


class BrevoTwin(TwinControls[RateLimiter]):
    """One Brevo account with its contacts, reached with one API key.

    ``attributes`` adds contact attributes to Brevo's defaults (EMAIL, FIRSTNAME, LASTNAME,
    SMS, EXT_ID). ``rate_limit`` False turns the limits off; ``organization_id`` is what
    ``GET /account`` answers.
    """

    def __init__(
        self,
        api_key: str,
        *,
        attributes: Iterable[Attribute] = (),
        rate_limit: bool = True,
        organization_id: str = DEFAULT_ORGANIZATION_ID,
    ) -> None:
        super().__init__(api_key)
        self.store = ContactStore(attributes)
        self.limiter = RateLimiter(enabled=rate_limit)
        self.organization_id = organization_id

    # -- controls ------------------------------------------------------------------------------

    def reset(self) -> None:
        """No contacts, no faults, no latency, statistics zeroed, key restored, rate limits
        off."""
        with self.lock:
            self.store.clear()
            self.limiter.reset()
            self.limiter.enabled = False
        self.reset_controls()

    # -- seeding and inspection ----------------------------------------------------------------

    def add_contacts(self, rows: Iterable[Mapping[str, Any]]) -> list[int]:
        """Create contacts directly (no rate limit, not counted), each row as the body of
        ``POST /contacts``; answers their ids."""
        ids = []
        with self.lock:
            for row in rows:
                status, body = self.store.create(dict(row))
                if status != 201:
                    raise ValueError(f"the twin refused {row}: {body}")
                ids.append(body["id"])
        return ids

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact as ``GET /contacts/{id}`` answers it, in id order."""
        with self.lock:
            return [c.to_json() for _, c in sorted(self.store.contacts.items())]

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self._stats.to_json(),
                "creates": self.store.creates,
                "updates": self.store.updates,
                "contacts": len(self.store.contacts),
            }

    def app(self) -> Starlette:
        app = Starlette(routes=_routes())
        app.state.twin = self
        return app


Operation = Callable[[BrevoTwin, Request, Any], Answer]


def _api(endpoint: str, operation: Operation, *, group: str = "contacts") -> Any:
    """One endpoint of Brevo's API: fault, api-key, rate limit, then ``operation`` under the
    twin's lock; counted as ``endpoint``."""

    async def handle(request: Request) -> Response:
        twin: BrevoTwin = request.app.state.twin
        # Faults match "METHOD /v3/path?query": a test can aim at creates ("POST /v3/contacts")
        # apart from lookups ("identifierType=email_id").
        query = request.url.query
        answer = await twin.answer(
            request,
            f"{request.method} {request.url.path}" + (f"?{query}" if query else ""),
            lambda: perform(twin, request),
            _fault,
        )
        return twin.counted(endpoint, answer)

    async def perform(twin: BrevoTwin, request: Request) -> Response:
        key = request.headers.get("api-key")
        with twin.lock:
            accepted = twin.credential is not None and key == twin.credential
            admitted, headers = twin.limiter.admit(group) if accepted else (True, {})
        if not accepted:
            return json_response(401, _UNAUTHORIZED)
        if not admitted:
            return json_response(429, _RATE_LIMITED, headers)
        body: Any = None
        if request.method in ("POST", "PUT"):
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return json_response(400, error("bad_request", "Invalid JSON body"), headers)
        with twin.lock:
            status, result = operation(twin, request, body)
        return json_response(status, result, headers)

    return handle


def _fault(status: int) -> Response:
    return json_response(status, error("internal_error", f"injected fault ({status})"))


def _account(twin: BrevoTwin, request: Request, body: Any) -> Answer:
    return 200, {
        "organization_id": twin.organization_id,
        "user_id": 9_876_543,
        "enterprise": False,
        "email": "owner@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "companyName": "Example",
        "address": {"street": "", "city": "", "zipCode": "", "country": ""},
        "plan": [{"type": "free", "credits": 300, "creditsType": "sendLimit"}],
        "relay": {"enabled": False, "data": {"userName": "", "relay": "", "port": 587}},
    }


def _identifier(request: Request) -> tuple[str, str | None]:
    return request.path_params["identifier"], request.query_params.get("identifierType")


def _routes() -> list[Route]:
    def api(path: str, method: str, operation: Operation, group: str = "contacts") -> Route:
        endpoint = f"{method} /v3{path}"
        return Route("/v3" + path, _api(endpoint, operation, group=group), methods=[method])

    return [
        api("/account", "GET", _account, group="other"),
        api("/contacts/attributes", "GET", lambda t, r, b: t.store.attributes_json()),
        api("/contacts/batch", "POST", lambda t, r, b: t.store.batch_update(b)),
        api("/contacts", "POST", lambda t, r, b: t.store.create(b)),
        api("/contacts/{identifier}", "GET", lambda t, r, b: t.store.get(*_identifier(r))),
        api(
            "/contacts/{identifier}",
            "PUT",
            lambda t, r, b: t.store.update(*_identifier(r), b),
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluice.twins.brevo",
        description="A loopback server speaking Brevo's API v3 for contacts.",
    )
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0))
    parser.add_argument("--api-key", required=True, help="the one valid API key")
    parser.add_argument("--no-rate-limit", action="store_true", help="turn every limit off")
    parser.add_argument("--organization-id", default=DEFAULT_ORGANIZATION_ID)
    args = parser.parse_args(argv)
    twin = BrevoTwin(
        args.api_key, rate_limit=not args.no_rate_limit, organization_id=args.organization_id
    )
    return run_process(twin, *args.listen)


if __name__ == "__main__":
    sys.exit(main())
