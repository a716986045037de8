"""The Mailchimp twin: a loopback server speaking the Marketing API 3.0 for one account and one
audience, reached with one API key.

    twin = MailchimpTwin(api_key="0123456789abcdef0123456789abcdef-us21")
    with serve(twin) as url:
        ...  # requests to f"{url}/3.0/lists/{twin.list_id}"

or, in a process of its own::

    python -m sluice.twins.mailchimp --listen 127.0.0.1:0 --api-key KEY [--no-rate-limit]
        [--batch-operations-per-second N]

which prints ``listening on http://127.0.0.1:PORT`` once it accepts connections. Batch
operations (``POST /3.0/batches``) run in the background on the event loop that serves the twin,
one operation at a time, each dispatched to the very routes the server answers. What it
implements, and which documented Mailchimp behaviour each part follows, is in
``docs/mailchimp-twin.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from sluice.twins.common import TwinControls, admin_endpoint, admin_routes, json_response
from sluice.twins.mailchimp_batches import Batch, BatchQueue
from sluice.twins.mailchimp_batches import Operation as BatchOperation
from sluice.twins.mailchimp_state import (
    DEFAULT_MERGE_FIELDS,
    Answer,
    Audience,
    not_found,
    problem,
    subscriber_hash,
)
from sluice.twins.serving import parse_listen, run_process, serve

__all__ = ["DEFAULT_MERGE_FIELDS", "MAX_CONNECTIONS", "MailchimpTwin", "main", "serve"]

#: Mailchimp's limit of simultaneous connections per account.
MAX_CONNECTIONS = 10
DEFAULT_LIST_ID = "a1b2c3d4e5"
DEFAULT_ACCOUNT_ID = "8d3a3db4d97663a9074efcc16"

_JSON = "application/json; charset=utf-8"
_PROBLEM = "application/problem+json; charset=utf-8"
#: The methods whose requests carry a JSON body.
_WITH_BODY = ("POST", "PUT", "PATCH")


class MailchimpTwin(TwinControls[Any]):
    """One Mailchimp account with one audience. ``merge_fields`` replaces the audience's merge
    fields (dicts in the shape of Mailchimp's merge field API: ``{"tag": "CUSTID", "name":
    "Customer id", "type": "text", "required": true}``). ``rate_limit`` False turns the
    connection cap off. ``batch_operations_per_second`` slows batch operations down to that
    pace (None: as fast as the twin runs them; Mailchimp documents no pace)."""

    #: The twin keeps its state in memory only.
    def __init__(
        self,
        api_key: str,
        *,
        list_id: str = DEFAULT_LIST_ID,
        account_id: str = DEFAULT_ACCOUNT_ID,
        merge_fields: Iterable[Mapping[str, Any]] = DEFAULT_MERGE_FIELDS,
        rate_limit: bool = True,
        batch_operations_per_second: float | None = None,
    ) -> None:
        super().__init__(api_key)
        self.list_id = list_id
        self.account_id = account_id
        self._merge_fields = [dict(f) for f in merge_fields]
        self.audience = Audience(list_id, "Sluice customers", self._merge_fields)
        self.rate_limiting = rate_limit
        self.forced_429 = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.batch_queue = BatchQueue()
        self.batch_pause = (
            0.0 if batch_operations_per_second is None else 1 / batch_operations_per_second
        )
        self._runner: asyncio.Task[None] | None = None

    # -- controls -------------------------------------------------------------------------

    def force_rate_limit(self, count: int) -> None:
        """The next ``count`` API requests answer 429 as Mailchimp does past 10 connections."""
        with self.lock:
            self.forced_429 = count

    def set_rate_limiting(self, enabled: bool) -> None:
        with self.lock:
            self.rate_limiting = enabled

    def reset(self) -> None:
        """No members, no batches, no faults, statistics zeroed, key restored, connection cap
        off."""
        with self.lock:
            self.audience = Audience(self.list_id, "Sluice customers", self._merge_fields)
            self.batch_queue = BatchQueue()
            self.rate_limiting = False
            self.forced_429 = 0
            self.peak_in_flight = 0
            self.reset_controls()

    # -- seeding and inspection -----------------------------------------------------------

    def add_members(self, members: Iterable[Mapping[str, Any]]) -> list[str]:
        """Store members directly (not counted, no limit): ``{"email_address": ...,
        "status": ..., "merge_fields": {...}}``; returns their subscriber hashes."""
        with self.lock:
            return [
                self.audience.add(
                    m["email_address"], **{k: v for k, v in m.items() if k != "email_address"}
                )
                for m in members
            ]

    def members(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.audience.member_json(m) for m in self.audience.members.values()]

    def member(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.audience.find(subscriber_hash(email))
            return None if found is None else self.audience.member_json(found)

    def member_count(self) -> int:
        with self.lock:
            return len(self.audience.members)

    def batches(self) -> list[dict[str, Any]]:
        """The batches submitted, as ``GET /3.0/batches/{batch_id}`` answers them."""
        with self.lock:
            return [b.to_json() for b in self.batch_queue.batches.values()]

    def stats(self) -> dict[str, Any]:
        return {"requests": self.request_counts(), "peakInFlight": self.peak_in_flight}

    def app(self) -> Starlette:
        app = Starlette(routes=_routes())
        app.state.twin = self
        return app

    # -- request checks -------------------------------------------------------------------

    def authorized(self, header: str | None) -> Answer | None:
        """None when the request carries the key (HTTP Basic with any user name, or Bearer),
        else Mailchimp's 401."""
        if not header:
            return 401, problem(401, "API Key Missing", "Your request did not include an API key.")
        scheme, _, value = header.partition(" ")
        key = value.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(key, validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        elif scheme.lower() != "bearer":
            key = ""
        if self.credential is None or key != self.credential:
            return 401, problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        return None

    def admit(self) -> Answer | None:
        """Mailchimp's 429 past its connections (or when forced); counts the request in flight
        otherwise (the caller calls :meth:`leave`)."""
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            if self.forced_429 > 0:
                self.forced_429 -= 1
                refused = True
            else:
                refused = self.rate_limiting and self.in_flight > MAX_CONNECTIONS
        if not refused:
            return None
        return 429, problem(
            429,
            "Too Many Requests",
            f"You have exceeded the limit of {MAX_CONNECTIONS} simultaneous connections.",
        )

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    # -- batch operations -----------------------------------------------------------------

    def start_batches(self) -> None:
        """Run the queued batches in the background unless they run already: on the event loop
        serving the twin, as Mailchimp runs them on its side. Called, under the lock, by the
        operation that submits a batch."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run_batches())

    async def _run_batches(self) -> None:
        """One operation at a time, oldest batch first, until none is left (a reset or a
        DELETE may empty the queue meanwhile)."""
        while True:
            await asyncio.sleep(self.batch_pause)  # polls are answered between operations
            with self.lock:
                step = self.batch_queue.next_operation()
                if step is None:
                    return
                batch, operation = step
                batch.record(operation, _run_operation(self, batch, operation))


# -- the HTTP face -------------------------------------------------------------------------------

Operation = Callable[[MailchimpTwin, Request, Any], Answer]


def _respond(status: int, body: Any) -> Response:
    return json_response(status, body, media_type=_PROBLEM if status >= 400 else _JSON)


def _api(endpoint: str, operation: Operation, method: str) -> Callable[[Request], Any]:
    """An endpoint of Mailchimp's API: fault, key, connection cap, then ``operation`` under the
    twin's lock; counted in the stats as ``METHOD endpoint``."""
    name = f"{method} {endpoint}"

    async def handle(request: Request) -> Response:
        twin: MailchimpTwin = request.app.state.twin
        refused = twin.admit()
        try:
            response = await twin.answer(
                request,
                f"{request.method} {request.url.path}",
                lambda: perform(twin, request, refused),
                _fault,
            )
            return twin.counted(name, response)
        finally:
            twin.leave()

    async def perform(twin: MailchimpTwin, request: Request, refused: Answer | None) -> Response:
        answer = twin.authorized(request.headers.get("authorization")) or refused
        if answer is None:
            raw = await request.body() if method in _WITH_BODY else b""
            answer = _perform(twin, request, operation, raw)
        return _respond(*answer)

    return handle


def _perform(twin: MailchimpTwin, request: Request, operation: Operation, raw: bytes) -> Answer:
    """``operation`` on the request's JSON body ``raw``, under the twin's lock, for the server
    and for a batch's operations alike."""
    body: Any = None
    if request.method in _WITH_BODY and raw:
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, problem(
                400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
            )
    list_id = request.path_params.get("list_id")
    with twin.lock:
        if list_id is not None and list_id != twin.list_id:
            return not_found()
        return operation(twin, request, body)


def _fault(status: int) -> Response:
    return _respond(
        status,
        problem(
            status, "Internal Server Error", "The twin answered this on purpose (injected fault)"
        ),
    )


def _root(twin: MailchimpTwin, request: Request, body: Any) -> Answer:
    return 200, {
        "account_id": twin.account_id,
        "login_id": "31419935",
        "account_name": "Sluice",
        "email": "owner@sluice.test",
        "username": "sluice",
        "role": "owner",
        "pricing_plan_type": "monthly",
        "account_timezone": "UTC",
        "total_subscribers": twin.audience.count("subscribed"),
        "_links": [],
    }


def _query_flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _get_member(twin: MailchimpTwin, request: Request, body: Any) -> Answer:
    found = twin.audience.find(request.path_params["subscriber_hash"])
    if found is None:
        return not_found()
    member = twin.audience.member_json(found)
    fields = [f for f in request.query_params.get("fields", "").split(",") if f]
    return 200, {k: v for k, v in member.items() if k in fields} if fields else member


def _start_batch(twin: MailchimpTwin, request: Request, body: Any) -> Answer:
    answer = twin.batch_queue.submit(body, str(request.base_url).rstrip("/"))
    if answer[0] == 200:
        twin.start_batches()
    return answer


def _api_route(method: str, path: str, operation: Operation) -> tuple[Route, Operation]:
    """``METHOD /3.0<path>``, counted in the stats under that name."""
    endpoint = "/3.0" + path
    return Route(endpoint, _api(endpoint, operation, method), methods=[method]), operation


_MEMBER = "/lists/{list_id}/members/{subscriber_hash}"
#: Mailchimp's API as the twin serves it: the server's routes, and what a batch's operations
#: are dispatched to.
_API_ROUTES = (
    _api_route("GET", "/", _root),
    _api_route("GET", "/lists/{list_id}", lambda t, r, b: (200, t.audience.list_json())),
    _api_route(
        "POST",
        "/lists/{list_id}",
        lambda t, r, b: t.audience.batch_subscribe(
            b, _query_flag(r, "skip_merge_validation"), _query_flag(r, "skip_duplicate_check")
        ),
    ),
    _api_route(
        "GET",
        "/lists/{list_id}/merge-fields",
        lambda t, r, b: t.audience.merge_fields_page(
            r.query_params.get("count"), r.query_params.get("offset")
        ),
    ),
    _api_route("GET", _MEMBER, _get_member),
    _api_route(
        "PUT",
        _MEMBER,
        lambda t, r, b: t.audience.put(
            r.path_params["subscriber_hash"], b, _query_flag(r, "skip_merge_validation")
        ),
    ),
    _api_route(
        "PATCH", _MEMBER, lambda t, r, b: t.audience.patch(r.path_params["subscriber_hash"], b)
    ),
    _api_route("POST", "/batches", _start_batch),
    _api_route(
        "GET",
        "/batches",
        lambda t, r, b: t.batch_queue.page(
            r.query_params.get("count"), r.query_params.get("offset")
        ),
    ),
    _api_route(
        "GET", "/batches/{batch_id}", lambda t, r, b: t.batch_queue.get(r.path_params["batch_id"])
    ),
    _api_route(
        "DELETE",
        "/batches/{batch_id}",
        lambda t, r, b: t.batch_queue.delete(r.path_params["batch_id"]),
    ),
)


def _routes() -> list[Route]:
    return [
        *(route for route, _ in _API_ROUTES),
        Route("/batch-results/{batch_id}.tar.gz", _batch_results, methods=["GET"]),
        *admin_routes(Route("/_twin/members", admin_endpoint(_members), methods=["GET", "POST"])),
    ]


def _run_operation(twin: MailchimpTwin, batch: Batch, operation: BatchOperation) -> Answer:
    """A batch's operation as Mailchimp runs it on its side: dispatched to the route its method
    and path name, with no key, connection cap or fault (an unknown path is its 404). An
    operation that raises answers 500, as it would over HTTP, rather than stop the batches."""
    base = urlsplit(batch.base_url)
    scope: dict[str, Any] = {
        "type": "http",
        "scheme": base.scheme,
        "server": None,
        "root_path": "",
        "method": operation.method,
        "path": "/3.0" + operation.path,
        "query_string": operation.query_string().encode(),
        "headers": [(b"host", base.netloc.encode())],
    }
    allowed = False
    for route, perform in _API_ROUTES:
        match, child = route.matches(scope)
        if match is Match.FULL:
            request = Request({**scope, **child})
            try:
                return _perform(twin, request, perform, (operation.body or "").encode())
            except Exception as error:
                return 500, problem(500, "Internal Server Error", repr(error))
        allowed = allowed or match is Match.PARTIAL
    if allowed:
        return 405, problem(
            405,
            "Method Not Allowed",
            "The requested method and resource are not compatible. See the Allow header for "
            "this resource's available methods.",
        )
    return not_found()


async def _batch_results(request: Request) -> Response:
    """A finished batch's archive. It stands in for the pre-signed storage URL Mailchimp gives,
    so it needs no key and is outside ``/3.0``."""
    twin: MailchimpTwin = request.app.state.twin
    with twin.lock:
        batch = twin.batch_queue.finished(request.path_params["batch_id"])
    if batch is None:
        response = Response(status_code=404)
    else:
        response = Response(batch.archive(), media_type="application/x-gzip")
    return twin.counted("GET /batch-results/{batch_id}.tar.gz", response)


# -- admin ---------------------------------------------------------------------------------------


def _members(twin: MailchimpTwin, body: dict[str, Any], request: Request) -> Any:
    if request.method == "POST":
        return {"ids": twin.add_members(body["members"])}
    return {"count": twin.member_count(), "members": twin.members()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluice.twins.mailchimp",
        description="A loopback server speaking Mailchimp's Marketing API 3.0 for one audience.",
    )
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0))
    parser.add_argument("--api-key", "--token", dest="api_key", required=True)
    parser.add_argument("--list-id", default=DEFAULT_LIST_ID, help="the audience's id")
    parser.add_argument("--no-rate-limit", action="store_true", help="no connection cap")
    parser.add_argument(
        "--batch-operations-per-second",
        type=float,
        help="the pace of batch operations (default: as fast as the twin runs them)",
    )
    args = parser.parse_args(argv)
    twin = MailchimpTwin(
        args.api_key,
        list_id=args.list_id,
        rate_limit=not args.no_rate_limit,
        batch_operations_per_second=args.batch_operations_per_second,
    )
    return run_process(twin, *args.listen)


if __name__ == "__main__":
    sys.exit(main())
