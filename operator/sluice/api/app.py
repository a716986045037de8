"""The read-only HTTP API over the store: pipelines and their runs, per workspace."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Collection
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Security
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sluice import __version__
from sluice.api.auth import WORKSPACE_HEADER, Authenticator, Credentials
from sluice.api.errors import (
    NUMBER_PARAMETERS,
    QUERY_MESSAGES,
    STORE_UNREACHABLE,
    RaisedApiError,
    error_response,
    install_error_handlers,
    invalid_pipeline_id,
    json_response,
    json_text_response,
    raised_as_failures,
)
from sluice.api.limits import DEFAULT_FAILURE_LIMIT, FailureLimit
from sluice.api.observability import Metrics, ObservabilityMiddleware
from sluice.api.schemas import (
    Health,
    PipelineBody,
    PipelinePage,
    PipelineStatus,
    RunPage,
    errors,
)
from sluice.api.status import status_body
from sluice.model.errors import bad_request, not_found
from sluice.model.ids import id_in_range
from sluice.store import Store
from sluice.store.store import MAX_PAGE, POOL_SIZE

ID_PATTERN = r"^[1-9][0-9]*$"
MAX_FIRST = 2**31 - 1
MAX_BIGINT = 2**63 - 1

PipelineId = Annotated[
    str, Path(pattern=ID_PATTERN, description="The pipeline's id, a positive integer.")
]
First = Annotated[
    int, Query(ge=0, le=MAX_FIRST, description="How many items to skip, in the listing order.")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="How many items to return at most.")]

_ID = re.compile(ID_PATTERN)
Found = TypeVar("Found")


_DIGITS = re.compile(r"[0-9]+")


def plain_query(request: Request) -> None:
    """Query parameters as the API documents them: only the endpoint's own (a mistyped
    `limt=10` would otherwise be ignored, and the default served as if asked for), each given
    once, and numbers in plain decimal digits (the lax parsing behind them would take `1_0`,
    `+5` or ` 5`)."""
    known = _documented_query_parameters(request)
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name not in known:
            takes = f"takes {', '.join(known)}" if known else "takes no query parameter"
            raise RaisedApiError(
                bad_request(f"unknown query parameter {json.dumps(name)}: this endpoint {takes}")
            )
        if name in seen:
            raise RaisedApiError(bad_request(f'query parameter "{name}" is repeated'))
        seen.add(name)
        if name in NUMBER_PARAMETERS and not _DIGITS.fullmatch(value):
            raise RaisedApiError(bad_request(QUERY_MESSAGES[name]))


def _documented_query_parameters(request: Request) -> list[str]:
    """The query parameters the OpenAPI document lists for the request's operation."""
    route = request.scope.get("route")
    paths = request.app.openapi().get("paths", {})
    operation = paths.get(getattr(route, "path_format", ""), {}).get(request.method.lower(), {})
    return [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]


_BEARER = HTTPBearer(
    auto_error=False,
    description="An API key: `Authorization: Bearer api_<key>`. A workspace key reads its own "
    f"workspace; an admin key reads the workspace named by the `{WORKSPACE_HEADER}: "
    "<workspace id>` header, which a workspace key must not send.",
)


async def caller_credentials(
    request: Request,
    # Declared so that the OpenAPI document shows the scheme; the raw headers are read, as
    # they also tell repeated headers apart. The workspace header is described in the scheme,
    # not as a parameter: whether it is allowed depends on the key, which OpenAPI cannot say.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
) -> Credentials:
    """The request's key, checked for form before the parameters are (no I/O, so it runs on
    the event loop; the store lookup happens in the handler's thread, one hop per request).
    The client address is the peer's: behind a proxy, the proxy's, unless uvicorn is told to
    trust its ``X-Forwarded-For`` (``FORWARDED_ALLOW_IPS``)."""
    authenticator: Authenticator = request.app.state.authenticator
    address = request.client.host if request.client is not None else ""
    with raised_as_failures():
        return authenticator.credentials(request.headers, address)


Caller = Annotated[Credentials, Depends(caller_credentials)]


class SluiceApi(FastAPI):
    """FastAPI whose OpenAPI document lists the errors as this API returns them: FastAPI's own
    422 validation responses never leave the app (they become 400s)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = get_openapi(
                title=self.title,
                version=self.version,
                description=self.description,
                routes=self.routes,
            )
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = document.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            self.openapi_schema = document
        return self.openapi_schema


def create_app(
    store: Store, admin_keys: Collection[str], failure_limit: FailureLimit = DEFAULT_FAILURE_LIMIT
) -> FastAPI:
    """The API app: read-only pipelines and runs, plus health, readiness and metrics.
    ``failure_limit`` says how many unknown keys one client address may send."""
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Requests read the store in threads: no more of them than the store keeps connections,
        # as a request in a thread of its own would open one and close it (and the threads
        # contend for one interpreter). Requests beyond wait, which costs them nothing.
        anyio.to_thread.current_default_thread_limiter().total_tokens = POOL_SIZE
        yield

    app = SluiceApi(
        lifespan=lifespan,
        title="Sluice API",
        version=__version__,
        description="Read-only access to the export pipelines applied to the store, and "
        "their runs. Pipelines change only through their ExportPipeline manifests.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.authenticator = Authenticator(store, admin_keys, failure_limit)
    install_error_handlers(app)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    app.include_router(_operations_router(store, metrics))
    app.include_router(_pipelines_router(store, app.state.authenticator))
    return app


#: What a /v1 operation may answer besides 200: a refused request, and a store that is down.
V1_ERRORS = errors(400, 401, 403, 404, 429, 503)

#: The /v1 operations' ids, which the OpenAPI links name.
LIST_PIPELINES = "listPipelines"
GET_PIPELINE = "getPipeline"
GET_PIPELINE_STATUS = "getPipelineStatus"
LIST_PIPELINE_RUNS = "listPipelineRuns"


def _links(pipeline_id: str, *operation_ids: str) -> dict[str, dict[str, Any]]:
    """OpenAPI links from a 200 answer to the operations on one pipeline, as a client walks the
    API: ``pipeline_id`` is the runtime expression that finds the pipeline's id in the answer or
    its request. Each link is named after the operation it leads to."""
    return {
        operation_id: {"operationId": operation_id, "parameters": {"id": pipeline_id}}
        for operation_id in operation_ids
    }


# A listing's first pipeline (JSON Pointer cannot name the last element of an array).
_LISTED_PIPELINE_LINKS = _links(
    "$response.body#/pipelines/0/id", GET_PIPELINE, GET_PIPELINE_STATUS, LIST_PIPELINE_RUNS
)
_PIPELINE_LINKS = _links("$request.path.id", GET_PIPELINE_STATUS, LIST_PIPELINE_RUNS)


def _pipelines_router(store: Store, authenticator: Authenticator) -> APIRouter:
    router = APIRouter(
        prefix="/v1/pipelines", tags=["pipelines"], dependencies=[Depends(plain_query)]
    )

    @router.get(
        "",
        summary="List pipelines",
        operation_id=LIST_PIPELINES,
        responses={200: {"model": PipelinePage, "links": _LISTED_PIPELINE_LINKS}, **V1_ERRORS},
    )
    def list_pipelines(
        caller: Caller,
        first: First = 0,
        limit: Limit = 100,
        connection: Annotated[int | None, Query(ge=1, le=MAX_BIGINT)] = None,
        enabled: bool | None = None,
    ) -> Response:
        with raised_as_failures():
            namespace = authenticator.namespace(caller)
        items, total = store.pipelines(namespace, first, limit, connection, enabled)
        return json_text_response(f'{{"pipelines":[{",".join(items)}],"total":{total}}}')

    @router.get(
        "/{id}",
        summary="Get pipeline",
        operation_id=GET_PIPELINE,
        responses={200: {"model": PipelineBody, "links": _PIPELINE_LINKS}, **V1_ERRORS},
    )
    def get_pipeline(id: PipelineId, caller: Caller) -> Response:
        with raised_as_failures():
            namespace = authenticator.namespace(caller)
            return json_text_response(_owned(store.pipeline, namespace, id)[1])

    @router.get(
        "/{id}/status",
        summary="Whether the pipeline's newest version was accepted, with its conditions",
        operation_id=GET_PIPELINE_STATUS,
        responses={200: {"model": PipelineStatus}, **V1_ERRORS},
    )
    def get_status(id: PipelineId, caller: Caller) -> Response:
        with raised_as_failures():
            namespace = authenticator.namespace(caller)
            pipeline_id, state = _owned(store.pipeline_state, namespace, id)
        return json_response(status_body(pipeline_id, state, datetime.now(UTC)))

    @router.get(
        "/{id}/runs",
        summary="List a pipeline's runs, newest first",
        operation_id=LIST_PIPELINE_RUNS,
        responses={200: {"model": RunPage}, **V1_ERRORS},
    )
    def list_runs(id: PipelineId, caller: Caller, first: First = 0, limit: Limit = 100) -> Response:
        with raised_as_failures():
            namespace = authenticator.namespace(caller)
            pipeline_id = _owned(store.pipeline, namespace, id)[0]
        items, total = store.runs(pipeline_id, first, limit)
        return json_response({"runs": items, "total": total})

    return router


def _operations_router(store: Store, metrics: Metrics) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive", response_model=Health)
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @router.get(
        "/readyz",
        summary="The store is reachable",
        responses={200: {"model": Health}, **errors(503)},
    )
    def readyz() -> Response:
        if not _store_reachable(store):
            return error_response(STORE_UNREACHABLE)
        return json_response({"status": "ready"})

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _owned(
    lookup: Callable[[int, str], tuple[str, Found] | None], namespace: str, text_id: str
) -> tuple[int, Found]:
    """The pipeline's id and what ``lookup`` finds of it in the caller's namespace (beside the
    namespace). Another workspace's pipeline does not exist for the caller: the store reads it
    as a missing one, so neither the answer nor its timing tells whether the id is taken."""
    if not _ID.match(text_id):
        raise invalid_pipeline_id(text_id)
    pipeline_id = id_in_range(text_id)
    found = lookup(pipeline_id, namespace) if pipeline_id is not None else None
    if pipeline_id is None or found is None:
        raise not_found("pipeline does not exist")
    return pipeline_id, found[1]


def _store_reachable(store: Store) -> bool:
    try:
        with store.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except (sa.exc.SQLAlchemyError, OSError):
        return False
    return True
