"""The HTTP face of the HubSpot twin: a Starlette app with HubSpot's CRM v3 contact routes and
the twin's own admin routes under ``/_twin/``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.twins.common import admin_endpoint, admin_routes
from sluice.twins.hubspot_control import rate_limit_body
from sluice.twins.hubspot_state import Answer, error_body

if TYPE_CHECKING:
    from sluice.twins.hubspot import HubSpotTwin

_JSON = "application/json;charset=utf-8"
_CONTACT_TYPES = frozenset({"contacts", "contact", "0-1"})
_MISSING_CREDENTIALS = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_BAD_TOKEN = "The access token provided is invalid, expired or revoked."


def _encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _respond(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status_code=status, headers=headers, media_type=_JSON)


def _fault(status: int) -> Response:
    body = error_body("INTERNAL_ERROR", f"The twin answered {status} on purpose (injected fault)")
    return _respond(status, body)


Operation = Callable[["HubSpotTwin", Request, Any], Answer]


def _api(name: str, operation: Operation, *, method: str, search: bool = False) -> Any:
    """An endpoint of HubSpot's API: faults, auth, rate limit, then ``operation`` under the
    twin's lock; counted in the stats as ``method name``."""
    endpoint = f"{method} {name}"
    wants_body = method == "POST"

    async def handle(request: Request) -> Response:
        twin: HubSpotTwin = request.app.state.twin
        answer = await twin.answer(
            request, request.url.path, lambda: perform(twin, request), _fault
        )
        return twin.counted(endpoint, answer)

    async def perform(twin: HubSpotTwin, request: Request) -> Response:
        object_type = request.path_params.get("object_type", "contacts")
        authorization = request.headers.get("authorization")
        if authorization is None:
            return _respond(401, error_body("INVALID_AUTHENTICATION", _MISSING_CREDENTIALS))
        scheme, _, token = authorization.partition(" ")
        accepted = twin.credential
        if scheme.lower() != "bearer" or accepted is None or token.strip() != accepted:
            return _respond(401, error_body("INVALID_AUTHENTICATION", _BAD_TOKEN))
        with twin.lock:
            refused, headers = twin.limiter.admit(search)
        if refused is not None:
            return _respond(429, rate_limit_body(refused), headers)
        if object_type not in _CONTACT_TYPES:
            answer: Answer = (
                400,
                error_body("VALIDATION_ERROR", f"Unable to infer object type from: {object_type}"),
            )
            return _respond(*answer, headers)
        body: Any = None
        if wants_body:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError as bad:
                answer = 400, error_body("VALIDATION_ERROR", f"Invalid input JSON: {bad}")
                return _respond(*answer, headers)
        with twin.lock:
            status, result = operation(twin, request, body)
            encoded = _encode(result)
        return Response(encoded, status_code=status, headers=headers, media_type=_JSON)

    return handle


def _properties_of(request: Request) -> list[str]:
    names: list[str] = []
    for value in request.query_params.getlist("properties"):
        names.extend(n for n in value.split(",") if n)
    return names


def _list(twin: HubSpotTwin, request: Request, body: Any) -> Answer:
    query = request.query_params
    return twin.store.list_page(query.get("limit"), query.get("after"), _properties_of(request))


def _account_details(twin: HubSpotTwin, request: Request, body: Any) -> Answer:
    return 200, {
        "portalId": twin.portal_id,
        "accountType": "STANDARD",
        "timeZone": "US/Eastern",
        "companyCurrency": "USD",
        "additionalCurrencies": [],
        "utcOffset": "-05:00",
        "utcOffsetMilliseconds": -18_000_000,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
    }


def _routes() -> list[Route]:
    objects = "/crm/v3/objects/{object_type}"
    contacts = "/crm/v3/objects/contacts"

    def route(path: str, name: str, operation: Operation, method: str, **kw: Any) -> Route:
        return Route(path, _api(name, operation, method=method, **kw), methods=[method])

    return [
        route(
            "/crm/v3/properties/{object_type}",
            "/crm/v3/properties/contacts",
            lambda t, r, b: t.store.properties_json(),
            "GET",
        ),
        route(objects, contacts, _list, "GET"),
        route(
            objects + "/batch/read",
            contacts + "/batch/read",
            lambda t, r, b: t.store.batch_read(b),
            "POST",
        ),
        route(
            objects + "/batch/create",
            contacts + "/batch/create",
            lambda t, r, b: t.store.batch_create(b),
            "POST",
        ),
        route(
            objects + "/batch/update",
            contacts + "/batch/update",
            lambda t, r, b: t.store.batch_update(b),
            "POST",
        ),
        route(
            objects + "/batch/upsert",
            contacts + "/batch/upsert",
            lambda t, r, b: t.store.batch_upsert(b),
            "POST",
        ),
        route("/account-info/v3/details", "/account-info/v3/details", _account_details, "GET"),
        route(
            objects + "/search",
            contacts + "/search",
            lambda t, r, b: t.store.search(b),
            "POST",
            search=True,
        ),
        *admin_routes(Route("/_twin/contacts", admin_endpoint(_contacts), methods=["GET", "POST"])),
    ]


# -- admin --------------------------------------------------------------------------------------


def _contacts(twin: HubSpotTwin, body: dict[str, Any], request: Request) -> Any:
    if request.method == "POST":
        return {"ids": twin.add_contacts(body["contacts"])}
    if request.query_params.get("count") not in (None, "", "0", "false"):
        return {"count": twin.contact_count()}
    return {"count": twin.contact_count(), "results": twin.contacts()}


def create_app(twin: HubSpotTwin) -> Starlette:
    app = Starlette(routes=_routes())
    app.state.twin = twin
    return app
