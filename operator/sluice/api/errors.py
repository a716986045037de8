"""The API's error responses: ``{"error": {"code", "message"}}`` and a newline, whatever failed.

FastAPI and Starlette answer some failures themselves (validation, unknown paths, wrong
methods); the handlers here give those the same shape and status conventions as ours.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from sluice.model.errors import ApiError, bad_request
from sluice.store.store import compact_json, driver_message

log = logging.getLogger(__name__)

CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}

#: The answer while the store cannot be read: readiness fails, and so does every read.
STORE_UNREACHABLE = ApiError(503, "ServiceUnavailable", "store is not reachable")

READ_ONLY = "pipelines are read-only here: change them through their ExportPipeline manifests"

#: What a query parameter that fails validation is told, by name.
QUERY_MESSAGES = {
    "first": "first must be in the range [0, 2147483647]",
    "limit": "limit must be in the range [1, 1000]",
    "connection": "connection must be a positive integer",
    "enabled": "enabled must be true or false",
}
#: The query parameters that are numbers.
NUMBER_PARAMETERS = frozenset({"first", "limit", "connection"})


class RaisedApiError(Exception):
    """An :class:`ApiError` on its way to the error handler, with the headers its response
    carries. Starlette writes to the exceptions it handles, which a frozen ``ApiError`` refuses,
    so it travels wrapped."""

    def __init__(self, error: ApiError, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = dict(headers or {})


@contextmanager
def raised_as_failures() -> Iterator[None]:
    """Lets the ``ApiError``s raised inside reach the client as error responses."""
    try:
        yield
    except ApiError as error:
        raise RaisedApiError(error) from None


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response that keeps the members in the order given (no model in between)."""
    return json_text_response(compact_json(body), status, headers)


def json_text_response(
    text: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A response of JSON text already encoded (as the store keeps pipeline bodies)."""
    return Response(text + "\n", status, headers=dict(headers or {}), media_type="application/json")


def error_response(error: ApiError, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(error.body(), error.status, headers)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "Unauthorized", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def too_many_failures(retry_after: int) -> RaisedApiError:
    return RaisedApiError(
        ApiError(
            429,
            "TooManyRequests",
            f"too many unknown API keys from this address; try again in {retry_after} seconds",
        ),
        {"Retry-After": str(retry_after)},
    )


def invalid_pipeline_id(text: str) -> ApiError:
    return bad_request(f"identifier {json.dumps(text)} is not a valid pipeline identifier")


def validation_error(errors: Sequence[Any]) -> ApiError:
    """The first of FastAPI's validation errors, as a 400 with a message users can act on."""
    first = errors[0] if errors else {}
    where, name = (*first.get("loc", ()), "", "")[:2]
    if where == "path" and name == "id":
        return invalid_pipeline_id(str(first.get("input", "")))
    if where == "query" and name in QUERY_MESSAGES:
        return bad_request(QUERY_MESSAGES[str(name)])
    return bad_request(f"{name or 'request'} is not valid")


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_request: Request, failure: Exception) -> Response:
        assert isinstance(failure, RaisedApiError)
        headers = dict(failure.headers)
        if failure.error.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return error_response(failure.error, headers)

    async def on_store_error(_request: Request, error: Exception) -> Response:
        # The store's server is down, restarting or refusing connections: the request may
        # succeed later, so it is a 503 like readiness, not a 500.
        assert isinstance(error, sa.exc.OperationalError)
        log.warning("store is not reachable: %s", driver_message(error))
        return error_response(STORE_UNREACHABLE)

    async def on_validation_error(_request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return error_response(validation_error(error.errors()))

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return error_response(_http_error(error.status_code, request.url.path), error.headers)

    app.add_exception_handler(RaisedApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(sa.exc.OperationalError, on_store_error)


def _http_error(status: int, path: str) -> ApiError:
    """Starlette's own errors: an unknown path, or a method no route of the path accepts."""
    messages = {404: "endpoint does not exist", 405: "method is not allowed on this endpoint"}
    message = messages.get(status, "request cannot be served")
    if status == 405 and (path == "/v1/pipelines" or path.startswith("/v1/pipelines/")):
        message = READ_ONLY
    return ApiError(status, CODES.get(status, "BadRequest"), message)
