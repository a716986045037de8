"""The MailerLite twin: a loopback server speaking the MailerLite API (``connect.mailerlite.com``)
for one account, reached with one API token.

    twin = MailerLiteTwin(token="mlite-test-token")
    with serve(twin) as url:
        ...  # the connector's baseUrl is f"{url}/api"

or, in a process of its own::

    python -m sluice.twins.mailerlite --listen 127.0.0.1:0 --token TOKEN [--no-rate-limit]

which prints ``listening on http://127.0.0.1:PORT`` once it accepts connections. What it
implements, and which documented MailerLite behaviour each part follows, is in
``docs/mailerlite-twin.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.twins.common import TwinControls, admin_endpoint, admin_routes, encode_json
from sluice.twins.mailerlite_state import Account, Answer, RateLimiter, is_import
from sluice.twins.serving import parse_listen, run_process, serve

__all__ = ["DEFAULT_ACCOUNT_SEED", "MailerLiteTwin", "main", "serve"]

#: Makes the account's ids (and so its identity) differ from another twin's.
DEFAULT_ACCOUNT_SEED = 73_512_804
_JSON = "application/json"


class MailerLiteTwin(TwinControls[RateLimiter]):
    """One MailerLite account. ``fields`` adds subscriber fields (``{"name": "Plan", "type":
    "text"}``, type text, number or date) to the default ones; ``groups`` names groups to
    create (their ids: :meth:`group_ids`). ``rate_limit`` False turns both rate limits off.
    ``account_seed`` makes another account, with other ids."""

    #: The twin keeps its state in memory only.
    def __init__(
        self,
        token: str,
        *,
        fields: Iterable[Mapping[str, Any]] = (),
        groups: Iterable[str] = (),
        rate_limit: bool = True,
        account_seed: int = DEFAULT_ACCOUNT_SEED,
    ) -> None:
        super().__init__(token)
        self._fields = [dict(f) for f in fields]
        self._groups = list(groups)
        self._seed = account_seed
        self.account = Account(account_seed, self._fields, self._groups)
        self.limiter = RateLimiter(enabled=rate_limit)

    # -- controls -------------------------------------------------------------------------

    def reset(self) -> None:
        """No subscribers, no faults, statistics zeroed, token restored, rate limits off."""
        with self.lock:
            self.account = Account(self._seed, self._fields, self._groups)
            self.limiter.enabled = False
            self.limiter.reset()
            self.reset_controls()

    # -- seeding and inspection -----------------------------------------------------------

    def add_subscribers(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Store subscribers directly (not counted, no rate limit), each row a ``POST
        api/subscribers`` body (``{"email": ..., "fields": {"name": ...}}``); returns their
        ids."""
        with self.lock:
            return self.account.seed(rows)

    def subscribers(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.account.subscriber_json(s) for s in self.account.subscribers.values()]

    def subscriber(self, id_or_email: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.account.find(id_or_email)
            return None if found is None else self.account.subscriber_json(found)

    def subscriber_count(self) -> int:
        with self.lock:
            return len(self.account.subscribers)

    def group_ids(self) -> dict[str, str]:
        """Group name → id."""
        with self.lock:
            return {name: group_id for group_id, name in self.account.groups.items()}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self._stats.to_json(),
                "creates": self.account.creates,
                "updates": self.account.updates,
                "subscribers": len(self.account.subscribers),
            }

    def app(self) -> Starlette:
        app = Starlette(routes=_routes())
        app.state.twin = self
        return app

    # -- request checks -------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        return (
            scheme.lower() == "bearer" and self.credential is not None and token == self.credential
        )


# -- the HTTP face -------------------------------------------------------------------------------

Operation = Callable[[MailerLiteTwin, Request, Any], Answer]


def _respond(answer: Answer, headers: Mapping[str, str] | None = None) -> Response:
    status, body = answer
    content = b"" if body is None else encode_json(body)
    return Response(content, status_code=status, headers=dict(headers or {}), media_type=_JSON)


async def _fault_path(request: Request) -> str:
    """What faults match: the path, and for a batch its first sub-request's method and path
    (``/api/batch GET api/subscribers/ada@example.com``), so that a test can aim at lookups
    apart from writes, which share the endpoint."""
    path = request.url.path
    if path != "/api/batch":
        return path
    try:
        first = json.loads(await request.body())["requests"][0]
        return f"{path} {first['method']} {first['path']}"
    except (ValueError, LookupError, TypeError):
        return path


def _fault(status: int) -> Response:
    return _respond((status, {"message": "Server Error"}))


def _api(endpoint: str, operation: Operation, method: str) -> Callable[[Request], Any]:
    """An endpoint of MailerLite's API: fault, token, rate limit, then ``operation`` under the
    twin's lock; counted in the stats as ``METHOD endpoint``."""
    name = f"{method} {endpoint}"

    async def handle(request: Request) -> Response:
        twin: MailerLiteTwin = request.app.state.twin
        answer = await twin.answer(
            request, await _fault_path(request), lambda: perform(twin, request), _fault
        )
        return twin.counted(name, answer)

    async def perform(twin: MailerLiteTwin, request: Request) -> Response:
        with twin.lock:
            if not twin.authorized(request.headers.get("authorization")):
                return _respond((401, {"message": "Unauthenticated."}))
            refused, headers = twin.limiter.admit()
        if refused is not None:
            return _respond(refused, headers)
        body: Any = None
        if method in ("POST", "PUT"):
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return _respond((400, {"message": "Malformed JSON."}), headers)
        with twin.lock:
            answer = operation(twin, request, body)
        return _respond(answer, headers)

    return handle


def _batch(twin: MailerLiteTwin, request: Request, body: Any) -> Answer:
    refused = twin.account.validate_batch(body)
    if refused is not None:
        return refused
    requests = list(body["requests"])
    if is_import(requests):
        limited = twin.limiter.admit_import()
        if limited is not None:
            return limited
    return twin.account.run_batch(requests)


def _routes() -> list[Route]:
    def route(path: str, operation: Operation, method: str) -> Route:
        return Route(path, _api(path, operation, method), methods=[method])

    subscriber = "/api/subscribers/{subscriber}"
    return [
        route(
            "/api/fields",
            lambda t, r, b: t.account.fields_page(
                r.query_params.get("limit"), r.query_params.get("page")
            ),
            "GET",
        ),
        route("/api/subscribers", lambda t, r, b: t.account.upsert(b), "POST"),
        route(subscriber, lambda t, r, b: t.account.get(r.path_params["subscriber"]), "GET"),
        route(subscriber, lambda t, r, b: t.account.update(r.path_params["subscriber"], b), "PUT"),
        route("/api/batch", _batch, "POST"),
        *admin_routes(
            Route("/_twin/subscribers", admin_endpoint(_subscribers), methods=["GET", "POST"])
        ),
    ]


# -- admin ---------------------------------------------------------------------------------------


def _subscribers(twin: MailerLiteTwin, body: dict[str, Any], request: Request) -> Any:
    if request.method == "POST":
        return {"ids": twin.add_subscribers(body["subscribers"])}
    return {"count": twin.subscriber_count(), "subscribers": twin.subscribers()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluice.twins.mailerlite",
        description="A loopback server speaking the MailerLite API for one account.",
    )
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0))
    parser.add_argument("--token", "--api-key", dest="token", required=True)
    parser.add_argument("--no-rate-limit", action="store_true", help="turn both limits off")
    args = parser.parse_args(argv)
    twin = MailerLiteTwin(args.token, rate_limit=not args.no_rate_limit)
    return run_process(twin, *args.listen)


if __name__ == "__main__":
    sys.exit(main())
