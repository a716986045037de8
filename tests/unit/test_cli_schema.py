"""`sluice schema` and `sluice validate --online`: the application's schema and the profiles
table's, read from where they are, as a user pastes them into manifests."""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
import yaml

from sluice.cli import main
from sluice.model.types import parse_type
from sluice.twins.hubspot import HubSpotTwin, serve
from tests.support import EXAMPLES

TOKEN = "pat-na1-00000000-0000-0000-0000-000000000000"  # examples/hubspot-connection.yaml's


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def hubspot() -> Iterator[tuple[HubSpotTwin, str]]:
    # The portal of the examples has the custom properties their expressions pipeline writes.
    options = [{"label": v.title(), "value": v} for v in ("gold", "platinum")]
    custom = [
        {"name": "tier", "type": "enumeration", "fieldType": "select", "options": options},
        {"name": "summary", "type": "string", "fieldType": "textarea"},
    ]
    twin = HubSpotTwin(
        TOKEN,
        rate_limit=False,
        custom_properties=[{**c, "groupName": "contactinformation"} for c in custom],
    )
    with serve(twin) as base_url:
        yield twin, base_url


@pytest.fixture
def repo(tmp_path: Path, hubspot: tuple[HubSpotTwin, str]) -> Path:
    """The marketing examples of HubSpot, its Connection pointed at the twin."""
    # The HubSpot examples only: the other applications' are not reachable from tests.
    others = [f"{app}-*" for app in ("mailchimp", "klaviyo", "brevo", "mailerlite")]
    shutil.copytree(
        EXAMPLES, tmp_path / "manifests", ignore=shutil.ignore_patterns("demo", *others)
    )
    connection = tmp_path / "manifests" / "hubspot-connection.yaml"
    text = connection.read_text()
    connection.write_text(text.replace("settings: {}", f"settings: {{baseUrl: {hubspot[1]}}}"))
    hubspot[0].restore_token()
    return tmp_path / "manifests"


def test_the_application_schema_prints_as_yaml_to_paste_into_out_schema(repo: Path) -> None:
    code, out = run("schema", "--connection", "hubspot", "-f", str(repo))

    assert code == 0
    schema = parse_type(yaml.safe_load(out))
    contact = schema.property("contact")
    assert contact is not None and contact.type.property("email") is not None
    # Read-only properties are not offered for writing.
    everything = out.split()
    assert "hs_object_id" not in everything and "createdate" not in everything


def test_properties_prune_the_schema_and_a_connection_is_found_by_file_or_id(repo: Path) -> None:
    by_name = run(
        "schema", "--connection", "hubspot", "-f", str(repo), "--properties", "contact.email"
    )
    by_file = run(
        "schema",
        "--connection",
        str(repo / "hubspot-connection.yaml"),
        "--properties",
        "contact.email",
    )
    by_id = run(
        "schema", "--connection", "230527183", "-f", str(repo), "--properties", "contact.email"
    )

    assert by_name == by_file == by_id
    assert yaml.safe_load(by_name[1]) == {
        "kind": "object",
        "properties": [
            {
                "name": "contact",
                "type": {
                    "kind": "object",
                    "properties": [
                        {
                            "name": "email",
                            "type": {"kind": "string"},
                            "nullable": True,
                            "description": "Email",
                        }
                    ],
                },
            }
        ],
    }


def test_an_unknown_property_or_a_refused_token_is_one_line(
    repo: Path, hubspot: tuple[HubSpotTwin, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run("schema", "--connection", "hubspot", "-f", str(repo), "--properties", "nope")
    assert (code, out) == (1, "")
    assert capsys.readouterr().err.startswith('error: there is no property "nope" (top-level')

    hubspot[0].revoke_token()
    code, out = run("schema", "--connection", "hubspot", "-f", str(repo))
    assert (code, out) == (1, "")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused the access token (401 Unauthorized)" in err


def test_validate_online_finds_a_property_the_application_does_not_have(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run("validate", "--online", str(repo))
    assert first == (0, ""), first[1]
    pipeline = repo / "seed-pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("name: lastname", "name: surname"))
    pipeline.write_text(pipeline.read_text().replace("contact.lastname:", "contact.surname:"))
    assert run("validate", str(repo))[0] == 0  # offline, the manifests are consistent

    code, out = run("validate", "--online", str(repo))

    assert code == 1
    # The problem points at the output schema's first line.
    line = 1 + next(
        n for n, text in enumerate(pipeline.read_text().splitlines(), 1) if "outSchema" in text
    )
    assert out == (
        f"{pipeline}:{line}: ExportPipeline/marketing/export-customers: in the output schema, "
        '"contact.surname" property does not exist in the application\'s schema. Please review '
        "and update the pipeline before attempting to export the users.\n"
    )


WORKSPACE = """apiVersion: sluice.dev/v1
kind: Workspace
metadata: {{name: shop, namespace: shop}}
spec:
  warehouse: {warehouse}
  profileSchema:
    kind: object
    properties:
      - name: address
        type:
          kind: object
          properties:
            - {{name: country, type: {{kind: string}}, readOptional: true, description: Country}}
        readOptional: true
"""
COLUMNS = (
    "_kpid TEXT PRIMARY KEY, email VARCHAR(254), address_country VARCHAR, points INTEGER, "
    "balance DECIMAL(12,2), seen TIMESTAMP, tags VARCHAR[], {binary}"
)


def read_schema(workspace: Path) -> tuple[Any, str]:
    out = io.StringIO()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["schema", "--workspace", str(workspace)], out)
    assert code == 0, err.getvalue()
    return parse_type(yaml.safe_load(out.getvalue())), err.getvalue()


def assert_read_as_declared(schema: Any, email_length: int | None) -> None:
    assert [p.name for p in schema.properties] == [
        "email",
        "address",
        "points",
        "balance",
        "seen",
        "tags",
    ]
    assert schema.property("email").type.max_length == email_length
    country = schema.property("address").type.property("country")
    assert country is not None and country.description == "Country"
    assert str(schema.property("points").type) == "int(32)"
    assert str(schema.property("balance").type) == "decimal(12,2)"
    assert str(schema.property("seen").type) == "datetime"
    assert str(schema.property("tags").type) == "array(string)"


def test_the_profile_schema_is_read_from_a_duckdb_table(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as db:
        db.execute(f"CREATE TABLE profiles ({COLUMNS.format(binary='blob BLOB')})")
    workspace = tmp_path / "workspace.yaml"
    location = (
        f"{{type: DuckDB, path: {warehouse}, profilesTable: profiles, profileIdColumn: _kpid}}"
    )
    workspace.write_text(WORKSPACE.format(warehouse=location))

    schema, notes = read_schema(workspace)

    assert_read_as_declared(schema, None)  # DuckDB keeps no VARCHAR length
    assert notes == "note: column blob (BLOB) left out: Sluice cannot read its type\n"


def test_the_profile_schema_is_read_from_a_postgresql_table(
    tmp_path: Path, postgres_database: str
) -> None:
    dsn = sa.make_url(postgres_database).set(drivername="postgresql").render_as_string(False)
    engine = sa.create_engine(postgres_database)
    with engine.begin() as db:
        db.execute(sa.text(f"CREATE TABLE profiles ({COLUMNS.format(binary='blob BYTEA')})"))
    engine.dispose()
    workspace = tmp_path / "workspace.yaml"
    location = (
        "{type: PostgreSQL, dsnSecretRef: {name: dsn, key: dsn}, profilesTable: profiles, "
        "profileIdColumn: _kpid}"
    )
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: dsn, namespace: shop}\n"
    secret += f"stringData: {{dsn: '{dsn}'}}\n---\n"
    workspace.write_text(secret + WORKSPACE.format(warehouse=location))

    schema, notes = read_schema(workspace)

    assert_read_as_declared(schema, 254)
    assert notes == "note: column blob (bytea) left out: Sluice cannot read its type\n"
