"""Arbitrary documents never make validation fail with anything but a validation error."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.manifests import read_manifests
from sluice.model.errors import ApiError
from sluice.model.resources import Resource, validate_resources
from tests.support import EVERYTHING, example_spec, seed_spec

# Keys Sluice knows, so generated documents reach deep into validation instead of stopping at
# the first unknown field.
KEYS = [
    "name", "connection", "target", "enabled", "filter", "logical", "conditions", "property",
    "operator", "values", "matching", "in", "out", "exportMode", "updateOnDuplicates",
    "transformation", "mapping", "function", "source", "language", "inPaths", "outPaths",
    "inSchema", "outSchema", "kind", "properties", "type", "readOptional", "nullable",
    "elementType", "maxLength", "bitSize", "precision", "scale", "minimum", "maximum",
    "schedulePeriod", "scheduleStart", "warehouse", "profileSchema", "id", "connector",
    "settings", "dsnSecretRef", "path",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["", "User", "object", "string", "int", "is", "exists", "email", "CreateOnly", "x.y"]
    ),
    st.text(max_size=8),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=5),
    ),
    max_leaves=30,
)


def mutated(base: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """The base spec with a few members replaced by arbitrary values, at any depth."""
    spec = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 4))):
        target: Any = spec
        while isinstance(target, dict | list) and target and data.draw(st.booleans()):
            key = data.draw(
                st.sampled_from(list(target) if isinstance(target, dict) else range(len(target)))
            )
            if not isinstance(target[key], dict | list):
                break
            target = target[key]
        if isinstance(target, dict) and target:
            target[data.draw(st.sampled_from(list(target)))] = data.draw(JSON)
        elif isinstance(target, list) and target:
            target[data.draw(st.integers(0, len(target) - 1))] = data.draw(JSON)
    return spec


def namespace_with(kind: str, spec: Any) -> list[Resource]:
    resources = {
        "Workspace": example_spec("Workspace", "marketing"),
        "Connection": example_spec("Connection", "hubspot"),
        "ExportPipeline": seed_spec(),
    }
    resources[kind] = spec
    names = {"Workspace": "marketing", "Connection": "hubspot", "ExportPipeline": "p"}
    return [Resource(k, "marketing", names[k], s) for k, s in resources.items()]


def only_validation_errors(resources: list[Resource]) -> None:
    for outcome in validate_resources(resources, EVERYTHING):
        assert outcome.error is None or isinstance(outcome.error, ApiError)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(["Workspace", "Connection", "ExportPipeline"]))
def test_mutated_documents_only_fail_validation(data: st.DataObject, kind: str) -> None:
    base = {
        "Workspace": example_spec("Workspace", "marketing"),
        "Connection": example_spec("Connection", "hubspot"),
        "ExportPipeline": seed_spec(),
    }[kind]
    only_validation_errors(namespace_with(kind, mutated(base, data)))


@settings(max_examples=200, deadline=None)
@given(JSON, st.sampled_from(["Workspace", "Connection", "ExportPipeline"]))
def test_arbitrary_specs_only_fail_validation(spec: Any, kind: str) -> None:
    only_validation_errors(namespace_with(kind, spec))


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abk:- \n{}[]'\"#&*!|>%@`0.")), max_size=80))
def test_any_text_reads_as_documents_or_located_problems(tmp_path_factory: Any, text: str) -> None:
    path: Path = tmp_path_factory.mktemp("yaml") / "doc.yaml"
    path.write_text("apiVersion: sluice.dev/v1\nkind: Connection\n" + text)
    manifests = read_manifests([path])
    assert all(p.file == str(path) for p in manifests.problems)
