"""Exports against real warehouses (DuckDB files, a throw-away PostgreSQL server) and the
loopback HubSpot twin: the fixtures every integration test shares."""

from __future__ import annotations

import copy
import functools
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sluice.cli import check_manifests, select_pipeline
from sluice.controller.builders import export_config
from sluice.controller.summary import RunSummary
from sluice.engine.config import ExportConfig, parse_config
from sluice.engine.export import run_export
from sluice.model.connection import Connection
from sluice.model.types import parse_type
from sluice.model.workspace import Workspace
from sluice.twins.hubspot import HubSpotTwin, serve
from sluice.warehouses import Warehouse, open_warehouse
from sluice.warehouses.loading import create_profiles_table, insert_profiles
from tests.operator_process import ROOT
from tests.postgres import temporary_database

TOKEN = "pat-na1-test-token"
DSN_ENV = "SLUICE_WAREHOUSE_DSN"
#: A non-unique HubSpot property: matching on it needs the search API, and app-side duplicates
#: can exist.
CUSTOMER_CODE = {
    "name": "customer_code",
    "label": "Customer code",
    "type": "string",
    "fieldType": "text",
    "groupName": "contactinformation",
    "hasUniqueValue": False,
}

#: The examples' profile schema plus an int and a uuid property, to match on.
PROFILE_SCHEMA: dict[str, Any] = {
    "kind": "object",
    "properties": [
        {"name": "first_name", "type": {"kind": "string", "maxLength": 100}, "readOptional": True},
        {"name": "last_name", "type": {"kind": "string", "maxLength": 100}, "readOptional": True},
        {"name": "email", "type": {"kind": "string", "maxLength": 254}, "readOptional": True},
        {"name": "customer_id", "type": {"kind": "int", "bitSize": 32}, "readOptional": True},
        {"name": "account_id", "type": {"kind": "uuid"}, "readOptional": True},
        {"name": "loyalty_points", "type": {"kind": "int", "bitSize": 32}, "readOptional": True},
        {
            "name": "address",
            "type": {
                "kind": "object",
                "properties": [
                    {
                        "name": "city",
                        "type": {"kind": "string", "maxLength": 100},
                        "readOptional": True,
                    },
                    {
                        "name": "country",
                        "type": {"kind": "string", "maxLength": 2},
                        "readOptional": True,
                    },
                ],
            },
            "readOptional": True,
        },
    ],
}

OUT_SCHEMA: dict[str, Any] = {
    "kind": "object",
    "properties": [
        {
            "name": "contact",
            "type": {
                "kind": "object",
                "properties": [
                    {"name": name, "type": {"kind": "string"}, "nullable": True}
                    for name in ("email", "firstname", "lastname", "customer_code")
                ],
            },
        }
    ],
}


@dataclass
class Target:
    """A warehouse of one kind, its profiles table, and the twin it exports to."""

    kind: str  # "DuckDB" | "PostgreSQL"
    location: str  # DuckDB path or PostgreSQL DSN
    twin: HubSpotTwin
    base_url: str

    def open(self) -> Warehouse:
        if self.kind == "DuckDB":
            return open_warehouse("DuckDB", path=self.location)
        return open_warehouse("PostgreSQL", dsn=self.location)

    def load(self, profiles: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the profiles table with these profiles, by id."""
        schema = parse_type(PROFILE_SCHEMA)
        warehouse = self.open()
        try:
            create_profiles_table(warehouse, "profiles", "_kpid", schema)
            insert_profiles(warehouse, "profiles", "_kpid", schema, profiles.items())
        finally:
            warehouse.close()

    def sql(self, statement: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        warehouse = self.open()
        try:
            return warehouse.execute(statement, params)
        finally:
            warehouse.close()

    def config(self, *, example: str | None = None, **pipeline: Any) -> ExportConfig:
        """The seed pipeline's export config, pointed at this warehouse and twin, with the
        pipeline members given changed (API names: ``exportMode=…``); with ``example``, that
        example pipeline of ``examples/`` as it ships, pointed at them."""
        document = copy.deepcopy(_example_document(example or "export-customers"))
        body = document["pipeline"]
        if example is None:
            body["inSchema"] = PROFILE_SCHEMA
            body["outSchema"] = OUT_SCHEMA
        body.update(pipeline)
        document["workspace"]["profileSchema"] = PROFILE_SCHEMA
        warehouse = document["workspace"]["warehouse"]
        warehouse["type"] = self.kind
        warehouse["path"] = self.location if self.kind == "DuckDB" else None
        warehouse["dsnEnv"] = DSN_ENV if self.kind == "PostgreSQL" else None
        document["connection"]["settings"] = {"baseUrl": self.base_url}
        return parse_config(
            document, environ={DSN_ENV: self.location}, credentials={"accessToken": TOKEN}
        )

    def export(self, config: ExportConfig | None = None, *, full: bool = False) -> RunSummary:
        return run_export(config or self.config(), full=full, out=io.StringIO(), err=io.StringIO())

    def contacts(self) -> dict[str, dict[str, Any]]:
        """The twin's contacts by email."""
        return {c["properties"]["email"]: c for c in self.twin.contacts()}


@functools.cache
def _example_document(name: str) -> dict[str, Any]:
    """An example pipeline's export config, as the operator writes it (callers copy it)."""
    manifests, outcomes, _ = check_manifests([str(ROOT / "examples")])
    pipeline = select_pipeline(manifests, outcomes, name, "marketing")
    assert pipeline is not None
    values = [o.value for o in outcomes if o.resource.namespace == "marketing"]
    workspace = next(v for v in values if isinstance(v, Workspace))
    connection = next(
        v for v in values if isinstance(v, Connection) and v.id == pipeline.connection
    )
    return export_config(pipeline, workspace, connection)


@pytest.fixture(scope="session")
def hubspot() -> Iterator[tuple[HubSpotTwin, str]]:
    twin = HubSpotTwin(TOKEN, custom_properties=[CUSTOMER_CODE], rate_limit=False)
    with serve(twin) as base_url:
        yield twin, base_url


@pytest.fixture(params=["DuckDB", "PostgreSQL"])
def target(
    request: pytest.FixtureRequest, hubspot: tuple[HubSpotTwin, str], tmp_path: Path
) -> Iterator[Target]:
    """Each test runs against a DuckDB file and a PostgreSQL database, and a reset twin."""
    twin, base_url = hubspot
    twin.reset()
    twin.set_rate_limiting(False)
    twin.restore_token()
    twin.set_latency(0)
    if request.param == "DuckDB":
        path = tmp_path / "warehouse.duckdb"
        import duckdb  # noqa: PLC0415

        duckdb.connect(str(path)).close()
        yield Target("DuckDB", str(path), twin, base_url)
        return
    postgres_url = request.getfixturevalue("postgres_url")
    with temporary_database(postgres_url) as url:
        dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        yield Target("PostgreSQL", dsn, twin, base_url)
