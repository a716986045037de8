"""Workspaces, Connections, pipeline ids, and a namespace's resources validated together."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sluice.apps.catalog import CONNECTORS
from sluice.model.connection import validate_connection
from sluice.model.errors import ApiError
from sluice.model.ids import assign_pipeline_ids, id_candidates, pipeline_id
from sluice.model.pipeline import Pipeline
from sluice.model.resources import Resource, validate_resources
from sluice.model.workspace import validate_workspace
from tests.support import EVERYTHING, example_spec, seed_spec


def workspace_error(edit: Any) -> ApiError:
    spec = example_spec("Workspace", "marketing")
    edit(spec)
    with pytest.raises(ApiError) as caught:
        validate_workspace("marketing", "marketing", spec)
    return caught.value


def profile_property(**fields: Any) -> dict[str, Any]:
    return {"name": "nickname", "type": {"kind": "string"}, "readOptional": True, **fields}


def add_profile_property(**fields: Any) -> Any:
    return lambda spec: spec["profileSchema"]["properties"].append(profile_property(**fields))


WORKSPACE_ERRORS = [
    (
        "postgres without dsn",
        lambda s: s["warehouse"].pop("dsnSecretRef"),
        "a PostgreSQL warehouse needs dsnSecretRef",
    ),
    (
        "postgres with path",
        lambda s: s["warehouse"].update(path="/data/w.duckdb"),
        "path is only for DuckDB warehouses",
    ),
    (
        "duckdb with both",
        lambda s: s["warehouse"].update(type="DuckDB", path="/data/w.duckdb"),
        "a DuckDB warehouse needs exactly one of path and dsnSecretRef",
    ),
    (
        "duckdb with neither",
        lambda s: s["warehouse"].update(type="DuckDB") or s["warehouse"].pop("dsnSecretRef"),
        "a DuckDB warehouse needs exactly one of path and dsnSecretRef",
    ),
    (
        "misspelled field",
        lambda s: s["warehouse"].update(profileTable="people"),
        'unknown field "profileTable" in spec.warehouse (did you mean "profilesTable"?)',
    ),
    (
        "unknown warehouse",
        lambda s: s["warehouse"].update(type="Snowflake"),
        "spec.warehouse.type: input should be 'PostgreSQL' or 'DuckDB'",
    ),
    (
        "bad table",
        lambda s: s["warehouse"].update(profilesTable="profiles; drop table x"),
        'profiles table "profiles; drop table x" is not a valid table name',
    ),
    (
        "bad id column",
        lambda s: s["warehouse"].update(profileIdColumn="1d"),
        'profile id column "1d" is not a valid column name',
    ),
    (
        "profile schema not an object",
        lambda s: s.update(profileSchema={"kind": "string"}),
        "profile schema must be an object",
    ),
    (
        "meta property",
        add_profile_property(name="_kpid"),
        "profile schema property \"_kpid\" is a meta property: names starting with '_' are "
        "reserved",
    ),
    (
        "not read-optional",
        add_profile_property(readOptional=False),
        'profile schema property "nickname" must have ReadOptional set to true',
    ),
    (
        "nullable",
        add_profile_property(nullable=True),
        'profile schema property "nickname" cannot have Nullable set to true',
    ),
    (
        "required",
        add_profile_property(createRequired=True),
        'profile schema property "nickname" cannot be required for creation or update',
    ),
    (
        "prefilled",
        add_profile_property(prefilled="Bob"),
        'profile schema property "nickname" cannot have a prefilled value',
    ),
    (
        "enum string",
        add_profile_property(type={"kind": "string", "values": ["a", "b"]}),
        'profile schema property "nickname" cannot have values or a pattern',
    ),
    (
        "array of arrays",
        add_profile_property(
            type={"kind": "array", "elementType": {"kind": "array", "elementType": {"kind": "ip"}}}
        ),
        'profile schema property "nickname" cannot have type array(array(ip))',
    ),
    (
        "bounded array",
        add_profile_property(
            type={"kind": "array", "elementType": {"kind": "ip"}, "maxElements": 3}
        ),
        'profile schema property "nickname" cannot limit its number of elements',
    ),
    (
        "column collision",
        add_profile_property(name="ADDRESS_city"),
        'two profile schema properties would have the same column name "address_city" in the '
        "data warehouse, case-insensitively",
    ),
]


@pytest.mark.parametrize(
    ("edit", "message"),
    [(e, m) for _, e, m in WORKSPACE_ERRORS],
    ids=[n for n, _, _ in WORKSPACE_ERRORS],
)
def test_workspace_errors(edit: Any, message: str) -> None:
    assert workspace_error(edit).message == message


def test_a_duckdb_workspace_takes_a_path() -> None:
    spec = example_spec("Workspace", "marketing")
    spec["warehouse"] = {"type": "DuckDB", "path": "/var/lib/sluice/warehouse.duckdb"}
    workspace = validate_workspace("demo", "demo", spec)
    assert workspace.warehouse.path == "/var/lib/sluice/warehouse.duckdb"
    assert (workspace.warehouse.profiles_table, workspace.warehouse.profile_id_column) == (
        "profiles",
        "_kpid",
    )


def connection_error(**changes: Any) -> ApiError:
    spec = {**example_spec("Connection", "hubspot"), **changes}
    with pytest.raises(ApiError) as caught:
        validate_connection("marketing", "hubspot", spec, CONNECTORS)
    return caught.value


def test_an_unknown_connector_does_not_exist() -> None:
    error = connection_error(connector="salesforce")
    assert (error.status, error.code, error.message) == (
        422,
        "ConnectorNotExist",
        "connector does not exist",
    )
    assert "hubspot" in str(error.cause)


def test_settings_cannot_hold_secrets() -> None:
    error = connection_error(settings={"listId": "abc", "apiKey": "xyz"})
    assert error.message == (
        'settings cannot hold secrets: move "apiKey" to the Secret named by credentialsSecretRef'
    )
    assert error.location == ("spec", "settings", "apiKey")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": 0}, "spec.id: input should be greater than or equal to 1"),
        ({"id": 2**31}, "spec.id: input should be less than or equal to 2147483647"),
        ({"id": "12"}, "spec.id must be an integer"),
        ({"role": "Source"}, "spec.role: input should be 'Destination'"),
        (
            {"credentialSecretRef": {"name": "x"}},
            'unknown field "credentialSecretRef" in spec (did you mean "credentialsSecretRef"?)',
        ),
    ],
)
def test_connection_shape(changes: dict[str, Any], message: str) -> None:
    assert connection_error(**changes).message == message


# ---- a namespace validated together ------------------------------------------------------


def namespace(*extra: Resource, **replace: Any) -> list[Resource]:
    resources = {
        "Workspace": Resource(
            "Workspace", "marketing", "marketing", example_spec("Workspace", "marketing")
        ),
        "Connection": Resource(
            "Connection", "marketing", "hubspot", example_spec("Connection", "hubspot")
        ),
        "ExportPipeline": Resource("ExportPipeline", "marketing", "export-customers", seed_spec()),
    }
    resources.update(replace)
    return [*resources.values(), *extra]


def errors(resources: list[Resource], **kwargs: Any) -> dict[str, str | None]:
    outcomes = validate_resources(resources, EVERYTHING, **kwargs)
    return {
        f"{o.resource.kind}/{o.resource.name}": str(o.error) if o.error else None for o in outcomes
    }


def test_the_examples_namespace_is_valid() -> None:
    assert set(errors(namespace()).values()) == {None}


def test_a_second_workspace_in_a_namespace_is_refused() -> None:
    other = Resource("Workspace", "marketing", "other", example_spec("Workspace", "marketing"))
    found = errors(namespace(other))
    message = "a namespace has one Workspace, but marketing has marketing, other"
    assert found["Workspace/marketing"] == found["Workspace/other"] == message
    assert found["ExportPipeline/export-customers"] == (
        f"workspace does not exist (the namespace's Workspace is not valid: {message})"
    )


def test_a_connection_id_declared_twice_is_refused_everywhere() -> None:
    twin = Resource("Connection", "marketing", "hubspot-eu", example_spec("Connection", "hubspot"))
    found = errors(namespace(twin))
    assert found["Connection/hubspot"] == (
        'connection id 230527183 is also declared by Connection "hubspot-eu"'
    )
    assert found["Connection/hubspot-eu"] == (
        'connection id 230527183 is also declared by Connection "hubspot"'
    )
    assert str(found["ExportPipeline/export-customers"]).startswith("connection does not exist")


def test_a_pipeline_on_a_connection_with_an_unknown_connector() -> None:
    spec = {**example_spec("Connection", "hubspot"), "connector": "pipedrive"}
    found = errors(namespace(Connection=Resource("Connection", "marketing", "hubspot", spec)))
    assert str(found["ExportPipeline/export-customers"]).startswith("connector does not exist")


def test_a_warehouse_type_this_installation_cannot_read_is_refused() -> None:
    spec = example_spec("Workspace", "marketing")
    spec["warehouse"] = {"type": "DuckDB", "path": "/var/lib/sluice/warehouse.duckdb"}
    resources = namespace(Workspace=Resource("Workspace", "marketing", "marketing", spec))
    without_duckdb = dataclasses.replace(EVERYTHING, warehouses=frozenset({"PostgreSQL"}))

    outcomes = validate_resources(resources, without_duckdb)

    refused, _, pipeline = outcomes
    assert refused.error is not None
    assert refused.error.message.startswith("this installation cannot read DuckDB warehouses")
    assert pipeline.error is not None and "workspace does not exist" in pipeline.error.message
    assert all(o.error is None for o in validate_resources(resources, EVERYTHING))


def test_namespaces_do_not_see_each_other() -> None:
    elsewhere = Resource("ExportPipeline", "sales", "export-customers", seed_spec())
    found = validate_resources([*namespace(), elsewhere], EVERYTHING)
    assert found[-1].error is not None and found[-1].error.message == "workspace does not exist"


def test_a_secret_without_the_referenced_key_is_reported() -> None:
    found = errors(namespace(), secrets={("marketing", "warehouse"): {"url"}})
    assert found["Workspace/marketing"] == 'Secret "warehouse" has no key "dsn"'
    assert errors(namespace(), secrets={("marketing", "warehouse"): {"dsn"}}) == errors(namespace())


def test_an_invalid_pipeline_still_has_its_id() -> None:
    spec = seed_spec()
    spec["name"] = ""
    pipeline = Resource("ExportPipeline", "marketing", "export-customers", spec)
    outcome = validate_resources(namespace(ExportPipeline=pipeline), EVERYTHING)[-1]
    assert outcome.error is not None
    assert outcome.pipeline_id == pipeline_id("marketing", "export-customers")


# ---- ids ----------------------------------------------------------------------------------


def test_ids_are_positive_31_bit_and_deterministic() -> None:
    ids = {pipeline_id("ns", f"pipeline-{i}") for i in range(2000)}
    assert len(ids) == 2000
    assert all(0 < i < 2**31 for i in ids)
    assert pipeline_id("marketing", "export-customers") == pipeline_id(
        "marketing", "export-customers"
    )
    assert pipeline_id("a", "b-c") != pipeline_id("a-b", "c")


def test_a_taken_id_moves_to_the_next_candidate() -> None:
    first, second, *_ = (c for _, c in zip(range(3), id_candidates("ns", "p"), strict=False))
    assert pipeline_id("ns", "p", taken={first}) == second


def test_colliding_ids_resolve_the_same_way_in_any_order(monkeypatch: pytest.MonkeyPatch) -> None:
    real = id_candidates

    def colliding(namespace: str, name: str) -> Any:
        # Force both pipelines onto the same first candidate.
        candidates = real(namespace, name)
        next(candidates)
        yield 12345
        yield from candidates

    monkeypatch.setattr("sluice.model.ids.id_candidates", colliding)
    keys = [("ns", "a"), ("ns", "b")]
    forward = assign_pipeline_ids(keys)
    backward = assign_pipeline_ids(reversed(keys))
    assert forward == backward
    assert forward["ns", "a"] == 12345 and forward["ns", "b"] != 12345


def test_validated_pipelines_carry_the_assigned_id() -> None:
    outcome = validate_resources(namespace(), EVERYTHING)[-1]
    assert isinstance(outcome.value, Pipeline)
    assert outcome.value.id == outcome.pipeline_id == pipeline_id("marketing", "export-customers")


def test_pipelines_keep_the_ids_they_already_have() -> None:
    keys = [("ns", "a"), ("ns", "b")]
    held = {("ns", "b"): 7}
    ids = assign_pipeline_ids(iter(keys), existing=held)
    assert ids == {("ns", "a"): pipeline_id("ns", "a", taken={7}), ("ns", "b"): 7}
    # A new pipeline never takes an id held by another, even if it is its first candidate.
    first = next(id_candidates("ns", "c"))
    assert assign_pipeline_ids([("ns", "c")], existing={("ns", "x"): first})["ns", "c"] != first
