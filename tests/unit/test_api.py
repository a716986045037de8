"""The read-only REST API, in process, over stores filled by `sluice apply` (SQLite and a real
PostgreSQL): the exact pipeline body, authentication, listing, errors and operations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from sluice.api import create_app
from sluice.api.server import listen_socket, parse_listen
from sluice.installation import INSTALLED
from sluice.manifests import read_manifests
from sluice.model.capabilities import Capabilities
from sluice.model.ids import MAX_ID, pipeline_id, workspace_id
from sluice.reconcile import Applied, apply, apply_set_of
from sluice.store import FinishedRun, Store
from tests.support import (
    EVERYTHING,
    EXAMPLES,
    SEED_PAYLOAD,
    example_names,
    example_spec,
    free_port,
    seed_with_function,
)

SEED_ID = pipeline_id("marketing", "export-customers")
OTHER_SEED_ID = pipeline_id("sales", "export-customers")
#: How many pipelines the examples hold in `marketing`.
MARKETING_PIPELINES = len(example_names("marketing", "ExportPipeline"))
MARKETING_KEY = "api_marketing_dashboard_change_me"
SALES_KEY = "api_sales_dashboard"
ADMIN_KEY = "api_admin_for_tests"
READ_ONLY = "pipelines are read-only here: change them through their ExportPipeline manifests"

MARKETING = {"Authorization": f"Bearer {MARKETING_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

#: The seed API document's "Get pipeline" response for the examples' seed pipeline.
SEED_BODY: dict[str, Any] = {
    "id": SEED_ID,
    "name": SEED_PAYLOAD["name"],
    "connector": "hubspot",
    "connectorType": "Application",
    "connection": SEED_PAYLOAD["connection"],
    "connectionRole": "Destination",
    **{
        key: SEED_PAYLOAD[key]
        for key in ("target", "enabled", "filter", "matching", "exportMode", "updateOnDuplicates")
    },
    "transformation": {**SEED_PAYLOAD["transformation"], "function": None},
    "inSchema": SEED_PAYLOAD["inSchema"],
    # The API always emits a description; the seed's "contact" has none.
    "outSchema": {
        "kind": "object",
        "properties": [
            {**SEED_PAYLOAD["outSchema"]["properties"][0], "description": ""},
        ],
    },
    "running": False,
    "scheduleStart": 15,
    "schedulePeriod": "1h",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def filled_store(url: str, manifests: Path) -> Store:
    """A store holding the examples in `marketing`, a copy of them in `sales`, and whatever
    else ``manifests`` holds."""
    shutil.copytree(EXAMPLES, manifests / "marketing")
    write_seed_workspace(manifests / "sales", "sales", SALES_KEY)
    store = Store(url)
    assert not [result.error for result in apply_folder(store, manifests) if result.error]
    return store


def write_seed_workspace(folder: Path, namespace: str, key: str) -> None:
    """The examples' workspace, HubSpot connection and seed pipeline in ``namespace``, with
    ``key`` as the workspace's API key, as manifests in ``folder``."""
    folder.mkdir(parents=True)
    for name in ("workspace.yaml", "hubspot-connection.yaml", "seed-pipeline.yaml"):
        text = (
            (EXAMPLES / name).read_text().replace("namespace: marketing", f"namespace: {namespace}")
        )
        (folder / name).write_text(text.replace(MARKETING_KEY, key))


@pytest.fixture
def marketing(tmp_path: Path) -> Path:
    """A copy of the marketing examples (not the demo's), to edit."""
    shutil.copytree(EXAMPLES, tmp_path / "marketing", ignore=shutil.ignore_patterns("demo"))
    return tmp_path / "marketing"


def apply_folder(
    store: Store, folder: Path, capabilities: Capabilities = INSTALLED
) -> list[Applied]:
    return apply(store, read_manifests([folder]), capabilities, apply_set_of([folder]))


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    opened = filled_store(store_url, tmp_path / "manifests")
    yield opened
    opened.close()


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, [ADMIN_KEY])) as test_client:
        yield test_client


def sub_resources(pipeline: object) -> list[str]:
    """The paths below a pipeline's, which answer for it as its own path does."""
    return [f"/v1/pipelines/{pipeline}/runs", f"/v1/pipelines/{pipeline}/status"]


def admin_of(namespace: str) -> dict[str, str]:
    return ADMIN | {"Sluice-Workspace": str(workspace_id(namespace))}


def assert_error(response: Any, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.text.endswith("}\n")
    assert response.json() == {"error": {"code": code, "message": message}}


# ---------------------------------------------------------------------------------------------
# The pipeline body
# ---------------------------------------------------------------------------------------------


def test_get_returns_the_seed_body_member_for_member_and_in_order(client: TestClient) -> None:
    response = client.get(f"/v1/pipelines/{SEED_ID}", headers=MARKETING)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.text)
    assert list(body) == list(SEED_BODY)
    for key, expected in SEED_BODY.items():
        assert body[key] == expected, key
        assert type(body[key]) is type(expected), key
    # Nested order too: compare the serialised texts.
    assert json.dumps(body) == json.dumps(SEED_BODY)


def test_a_live_run_shows_as_running(client: TestClient, store: Store) -> None:
    store.start_run(SEED_ID, "job-1", datetime.now(UTC))
    body = client.get(f"/v1/pipelines/{SEED_ID}", headers=MARKETING).json()
    assert body["running"] is True
    assert list(body) == list(SEED_BODY)


def test_a_function_is_served_with_its_members_in_the_seed_order(
    sqlite_url: str, marketing: Path
) -> None:
    (marketing / "seed-pipeline.yaml").write_text(seed_with_function("Python"))
    store = Store(sqlite_url)
    assert all(item.error is None for item in apply_folder(store, marketing, EVERYTHING))
    with TestClient(create_app(store, [])) as client:
        response = client.get(f"/v1/pipelines/{SEED_ID}", headers=MARKETING)
    store.close()
    function = json.loads(response.text)["transformation"]["function"]
    assert list(function) == ["source", "language", "preserveJSON", "inPaths", "outPaths"]


# ---------------------------------------------------------------------------------------------
# The status: whether the newest version was accepted
# ---------------------------------------------------------------------------------------------


def status_of(client: TestClient, pipeline: int) -> dict[str, Any]:
    response = client.get(f"/v1/pipelines/{pipeline}/status", headers=MARKETING)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_refused_edit_shows_in_the_status_and_the_body_stays(
    sqlite_url: str, marketing: Path
) -> None:
    store = Store(sqlite_url)
    apply_folder(store, marketing)
    with TestClient(create_app(store, [])) as client:
        body = client.get(f"/v1/pipelines/{SEED_ID}", headers=MARKETING).text
        accepted = status_of(client, SEED_ID)
        seed = marketing / "seed-pipeline.yaml"
        seed.write_text(seed.read_text().replace("exportMode: CreateOnly", "exportMode: Sometimes"))
        apply_folder(store, marketing)
        assert client.get(f"/v1/pipelines/{SEED_ID}", headers=MARKETING).text == body
        refused = status_of(client, SEED_ID)
    store.close()
    assert accepted["valid"] is accepted["inForce"] is True and accepted["error"] is None
    assert [(c["type"], c["status"], c["reason"]) for c in accepted["conditions"]] == [
        ("Ready", "True", "ReconciliationSucceeded")
    ]
    message = 'export mode "Sometimes" is not valid'
    assert refused == {
        "id": SEED_ID,
        "valid": False,
        "inForce": True,
        "error": {"status": 400, "code": "BadRequest", "message": message},
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "ValidationFailed",
                "message": f"{message} (the last valid version keeps running)",
            },
            {"type": "Stalled", "status": "True", "reason": "ValidationFailed", "message": message},
        ],
        "generation": 1,
        "updatedAt": refused["updatedAt"],
        "running": False,
        "lastRun": None,
    }
    assert refused["updatedAt"] > accepted["updatedAt"]


def test_a_pipeline_never_valid_has_a_status_and_no_body(sqlite_url: str, marketing: Path) -> None:
    seed = marketing / "seed-pipeline.yaml"
    seed.write_text(seed.read_text().replace("connection: 230527183", "connection: 42"))
    store = Store(sqlite_url)
    apply_folder(store, marketing)
    with TestClient(create_app(store, [])) as client:
        missing = client.get(f"/v1/pipelines/{SEED_ID}", headers=MARKETING)
        status = status_of(client, SEED_ID)
    store.close()
    assert_error(missing, 404, "NotFound", "pipeline does not exist")
    assert (status["valid"], status["inForce"], status["generation"]) == (False, False, 0)
    assert status["error"]["message"] == "connection does not exist"
    assert status["conditions"][0] == {
        "type": "Ready",
        "status": "False",
        "reason": "ConnectionNotFound",
        "message": "connection does not exist",
    }


def test_the_status_shows_the_last_run(client: TestClient, store: Store) -> None:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    run = store.start_run(SEED_ID, "job-1", started)
    assert status_of(client, SEED_ID)["running"] is True
    store.finish_run(run, FinishedRun(started, "Failed", {}, "warehouse is not reachable"))
    status = status_of(client, SEED_ID)
    assert (status["running"], status["lastRun"]["jobName"]) == (False, "job-1")
    assert status["conditions"] == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "LastRunFailed",
            "message": "warehouse is not reachable",
        }
    ]


# ---------------------------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------------------------

AUTH_ERRORS = [
    ({}, 401, "Unauthorized", "request is not authenticated; provide an API key in the format "
     "'Authorization: Bearer <YOUR_API_KEY>'"),
    ({"Authorization": f"Basic {MARKETING_KEY}"}, 400, "BadRequest",
     "Authorization header is invalid; it should be in the format "
     "'Authorization: Bearer <YOUR_API_KEY>'"),
    ({"Authorization": "Bearer"}, 400, "BadRequest",
     "Authorization header is invalid; it should be in the format "
     "'Authorization: Bearer <YOUR_API_KEY>'"),
    ({"Authorization": "Bearer marketing_dashboard_change_me"}, 400, "BadRequest",
     "API key is not valid; API keys start with the api_ prefix"),
    ({"Authorization": "Bearer api_unknown"}, 401, "Unauthorized",
     "API key in the Authorization header of the request does not exist"),
    (MARKETING | {"Sluice-Workspace": str(workspace_id("marketing"))}, 400, "BadRequest",
     '"Sluice-Workspace" header cannot be provided with a workspace restricted key'),
    (ADMIN, 403, "Forbidden",
     "Sluice-Workspace header is missing; provide it in the format "
     "'Sluice-Workspace: <WORKSPACE_ID>'"),
    (ADMIN | {"Sluice-Workspace": "marketing"}, 400, "BadRequest",
     "Sluice-Workspace header is invalid; provide it in the format "
     "'Sluice-Workspace: <WORKSPACE_ID>'"),
    (ADMIN | {"Sluice-Workspace": "12345"}, 404, "NotFound", "workspace does not exist"),
    (ADMIN | {"Sluice-Workspace": str(MAX_ID * 10)}, 404, "NotFound", "workspace does not exist"),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "status", "code", "message"), AUTH_ERRORS)
def test_requests_without_a_usable_key_are_refused(
    client: TestClient, headers: dict[str, str], status: int, code: str, message: str
) -> None:
    for path in ("/v1/pipelines", f"/v1/pipelines/{SEED_ID}", *sub_resources(SEED_ID)):
        assert_error(client.get(path, headers=headers), status, code, message)


def test_an_unknown_key_is_told_to_authenticate(client: TestClient) -> None:
    response = client.get("/v1/pipelines", headers={"Authorization": "Bearer api_unknown"})
    assert response.headers["www-authenticate"] == "Bearer"
    assert "api_unknown" not in response.text


def test_several_authorization_headers_are_refused(client: TestClient) -> None:
    headers = [("Authorization", f"Bearer {MARKETING_KEY}"), ("Authorization", "Bearer api_x")]
    response = client.get("/v1/pipelines", headers=headers)
    assert_error(response, 400, "BadRequest", "request contains multiple Authorization headers")


def test_a_workspace_key_sees_only_its_workspace(client: TestClient) -> None:
    assert client.get(f"/v1/pipelines/{SEED_ID}", headers=MARKETING).status_code == 200
    sales = {"Authorization": f"Bearer {SALES_KEY}"}
    assert client.get(f"/v1/pipelines/{OTHER_SEED_ID}", headers=sales).json()["id"] == (
        OTHER_SEED_ID
    )
    # Another workspace's pipeline answers exactly like a missing one.
    for path in (f"/v1/pipelines/{OTHER_SEED_ID}", *sub_resources(OTHER_SEED_ID)):
        assert_error(
            client.get(path, headers=MARKETING), 404, "NotFound", "pipeline does not exist"
        )
    listed = client.get("/v1/pipelines", headers=sales).json()
    assert [p["id"] for p in listed["pipelines"]] == [OTHER_SEED_ID]


def test_an_admin_key_reads_the_workspace_it_names(client: TestClient) -> None:
    response = client.get(f"/v1/pipelines/{SEED_ID}", headers=admin_of("marketing"))
    assert response.json() == SEED_BODY
    assert client.get(f"/v1/pipelines/{SEED_ID}", headers=admin_of("sales")).status_code == 404
    listed = client.get("/v1/pipelines", headers=admin_of("sales")).json()
    assert listed["total"] == 1


@pytest.mark.parametrize("workspace", [str(MAX_ID + 1), "9" * 5000])
def test_an_admin_key_naming_no_workspace_gets_a_404(client: TestClient, workspace: str) -> None:
    headers = {**admin_of("marketing"), "Sluice-Workspace": workspace}
    response = client.get("/v1/pipelines", headers=headers)
    assert_error(response, 404, "NotFound", "workspace does not exist")


def test_admin_keys_must_look_like_api_keys(store: Store) -> None:
    with pytest.raises(ValueError, match="api_ prefix"):
        create_app(store, ["admin"])


# ---------------------------------------------------------------------------------------------
# Listing, pagination, runs
# ---------------------------------------------------------------------------------------------


def listed_ids(client: TestClient, query: str = "") -> tuple[list[int], int]:
    response = client.get(f"/v1/pipelines{query}", headers=MARKETING)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["pipelines", "total"]
    return [p["id"] for p in body["pipelines"]], body["total"]


def test_listing_pages_through_the_workspace_by_id(client: TestClient) -> None:
    ids, total = listed_ids(client)
    assert ids == sorted(ids) and len(ids) == total == MARKETING_PIPELINES
    assert listed_ids(client, "?first=1&limit=1") == (ids[1:2], total)
    assert listed_ids(client, f"?first={total}") == ([], total)
    assert listed_ids(client, "?limit=1000") == (ids, total)


def test_listing_filters_by_connection_and_enabled(client: TestClient) -> None:
    every, _ = listed_ids(client)
    enabled, total = listed_ids(client, "?enabled=true")
    disabled, _ = listed_ids(client, "?enabled=false")
    assert SEED_ID in enabled and total == len(enabled)
    assert sorted(enabled + disabled) == every
    # Each pipeline of the examples is listed under its own connection, and only there.
    by_connection = [
        listed_ids(client, f"?connection={example_spec('Connection', name)['id']}")
        for name in example_names("marketing", "Connection")
    ]
    assert sorted(i for ids, _ in by_connection for i in ids) == sorted(every)
    assert all(total == len(ids) > 0 for ids, total in by_connection)
    assert len(every) == MARKETING_PIPELINES
    assert listed_ids(client, "?connection=1") == ([], 0)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit must be in the range [1, 1000]"),
        ("limit=1001", "limit must be in the range [1, 1000]"),
        ("limit=ten", "limit must be in the range [1, 1000]"),
        ("first=-1", "first must be in the range [0, 2147483647]"),
        (f"first={2**40}", "first must be in the range [0, 2147483647]"),
        ("connection=x", "connection must be a positive integer"),
        (f"connection={2**70}", "connection must be a positive integer"),
        ("enabled=maybe", "enabled must be true or false"),
        # Plain decimal digits only, however lax the number parsing behind them.
        ("limit=1_0", "limit must be in the range [1, 1000]"),
        ("limit=%2B5", "limit must be in the range [1, 1000]"),
        ("limit=%205", "limit must be in the range [1, 1000]"),
        ("first=1_0", "first must be in the range [0, 2147483647]"),
        ("connection=%2B5", "connection must be a positive integer"),
        (f"connection={'9' * 5000}", "connection must be a positive integer"),
        ("limit=5&limit=6", 'query parameter "limit" is repeated'),
        ("enabled=true&enabled=false", 'query parameter "enabled" is repeated'),
        # A mistyped name is refused, not ignored with the default served in its place.
        (
            "limt=5",
            'unknown query parameter "limt": this endpoint takes first, limit, connection, enabled',
        ),
        (
            "=false",
            'unknown query parameter "": this endpoint takes first, limit, connection, enabled',
        ),
    ],
)
def test_bad_query_values_are_400s(client: TestClient, query: str, message: str) -> None:
    assert_error(
        client.get(f"/v1/pipelines?{query}", headers=MARKETING), 400, "BadRequest", message
    )


def test_an_endpoint_without_query_parameters_refuses_any(client: TestClient) -> None:
    for path in (f"/v1/pipelines/{SEED_ID}", f"/v1/pipelines/{SEED_ID}/status"):
        message = 'unknown query parameter "limit": this endpoint takes no query parameter'
        assert_error(client.get(f"{path}?limit=5", headers=MARKETING), 400, "BadRequest", message)
    runs = client.get(f"/v1/pipelines/{SEED_ID}/runs?connection=1", headers=MARKETING)
    message = 'unknown query parameter "connection": this endpoint takes first, limit'
    assert_error(runs, 400, "BadRequest", message)


@pytest.mark.parametrize("text", ["x", "0", "-5", "01", "1.0", "1_000", " 1"])
def test_malformed_pipeline_ids_are_400s(client: TestClient, text: str) -> None:
    message = f'identifier "{text}" is not a valid pipeline identifier'
    for path in (f"/v1/pipelines/{text}", *sub_resources(text)):
        assert_error(client.get(path, headers=MARKETING), 400, "BadRequest", message)


# Any length: Python refuses to convert a text of more than 4,300 digits to an int.
@pytest.mark.parametrize("text", ["12345", str(MAX_ID + 1), "9" * 40, "9" * 5000])
def test_an_unknown_pipeline_is_a_404(client: TestClient, text: str) -> None:
    for path in (f"/v1/pipelines/{text}", *sub_resources(text)):
        response = client.get(path, headers=MARKETING)
        assert_error(response, 404, "NotFound", "pipeline does not exist")


def test_runs_are_listed_newest_first(client: TestClient, store: Store) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hour in range(3):
        run = store.start_run(SEED_ID, f"job-{hour}", start + timedelta(hours=hour))
        store.finish_run(
            run, FinishedRun(start + timedelta(hours=hour, minutes=5), "Succeeded", {})
        )
    response = client.get(f"/v1/pipelines/{SEED_ID}/runs", headers=MARKETING)
    body = response.json()
    assert list(body) == ["runs", "total"] and body["total"] == 3
    assert [run["jobName"] for run in body["runs"]] == ["job-2", "job-1", "job-0"]
    assert body["runs"][0]["startTime"] == "2026-01-01T02:00:00Z"
    page = client.get(f"/v1/pipelines/{SEED_ID}/runs?first=1&limit=1", headers=MARKETING)
    assert [run["jobName"] for run in page.json()["runs"]] == ["job-1"]
    assert page.json()["total"] == 3


# ---------------------------------------------------------------------------------------------
# Read-only, unknown paths, headers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "path", ["/v1/pipelines", f"/v1/pipelines/{SEED_ID}", "/v1/pipelines/1/runs"]
)
def test_writes_are_refused_with_allow_get(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, headers=MARKETING)
    assert_error(response, 405, "MethodNotAllowed", READ_ONLY)
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/pipelines/1/logs", "/v2/pipelines"])
def test_unknown_paths_are_404s_in_the_error_shape(client: TestClient, path: str) -> None:
    assert_error(client.get(path, headers=MARKETING), 404, "NotFound", "endpoint does not exist")


def test_every_response_has_a_fresh_request_id_and_no_store(client: TestClient) -> None:
    responses = [
        client.get(f"/v1/pipelines/{SEED_ID}", headers=MARKETING),
        client.get("/v1/pipelines", headers=MARKETING),
        client.get("/v1/pipelines"),
        client.get("/v1/pipelines/x", headers=MARKETING),
        client.delete("/v1/pipelines/1"),
        client.get("/nowhere"),
        client.get("/healthz"),
        client.get("/metrics"),
    ]
    ids = {response.headers["request-id"] for response in responses}
    assert len(ids) == len(responses)
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    assert {response.headers["cache-control"] for response in responses} == {"no-store"}


# ---------------------------------------------------------------------------------------------
# Operations: health, readiness, metrics, OpenAPI
# ---------------------------------------------------------------------------------------------


def test_health_and_readiness_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/openapi.json").json()["info"]["title"] == "Sluice API"


def test_readiness_fails_when_the_store_is_unreachable(sqlite_url: str, tmp_path: Path) -> None:
    store = Store(sqlite_url)
    store.engine = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'store.db'}")
    client = TestClient(create_app(store, []))
    assert_error(client.get("/readyz"), 503, "ServiceUnavailable", "store is not reachable")
    assert client.get("/healthz").status_code == 200


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value in Prometheus text (0 when the sample is absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_metrics_count_requests_by_route_template_and_status(client: TestClient) -> None:
    for _ in range(3):
        client.get(f"/v1/pipelines/{SEED_ID}", headers=MARKETING)
    client.get("/v1/pipelines/12345", headers=MARKETING)
    client.get("/random/path")
    text = client.get("/metrics").text
    route = "/v1/pipelines/{id}"
    ok = {"method": "GET", "route": route, "status": "200"}
    assert metric(text, "sluice_api_requests_total", **ok) == 3
    assert metric(text, "sluice_api_requests_total", **(ok | {"status": "404"})) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert metric(text, "sluice_api_requests_total", **unmatched) == 1
    latency = {"method": "GET", "route": route}
    assert metric(text, "sluice_api_request_duration_seconds_count", **latency) == 4
    # Each app counts its own requests.
    assert "random/path" not in text


def test_the_openapi_document_lists_the_api_without_422s(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) >= {
        "/v1/pipelines",
        "/v1/pipelines/{id}",
        "/v1/pipelines/{id}/runs",
        "/v1/pipelines/{id}/status",
        "/healthz",
        "/readyz",
    }
    assert "422" not in json.dumps(document["paths"])
    get = document["paths"]["/v1/pipelines/{id}"]["get"]
    assert set(get["responses"]) == {"200", "400", "401", "403", "404", "429", "503"}


def test_listen_addresses_are_parsed() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for wrong in ("8080", ":80", "host:", "host:http"):
        with pytest.raises(ValueError, match="host:port"):
            parse_listen(wrong)
    for port in ("0", "70000"):
        with pytest.raises(ValueError, match="the port must be from 1 to 65535"):
            parse_listen(f"host:{port}")


def test_connections_to_the_listening_socket_send_without_delay() -> None:
    """Nagle's algorithm off (as asyncio sets it on the sockets it knows to be TCP): with it on,
    a response written in two parts waited ~40 ms for the client's delayed ACK."""

    async def accepted_nodelay(listener: socket.socket) -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Accepting(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                connection = transport.get_extra_info("socket")
                accepted.set_result(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Accepting, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname())
            writer.close()
            return await asyncio.wait_for(accepted, 10)

    with contextlib.closing(listen_socket(f"127.0.0.1:{free_port()}")) as listener:
        assert asyncio.run(accepted_nodelay(listener)) == 1
