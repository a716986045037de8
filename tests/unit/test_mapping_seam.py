"""The mapping seam: keys, bare-path expressions, conversions and the paths they use."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.mapping.compiler import MappingError, compile_mapping
from sluice.mapping.conversions import convertible
from sluice.model.types import parse_type


def t(kind: str, **params: Any) -> Any:
    return parse_type({"kind": kind, **params})


INT8 = t("int", bitSize=8)
INT32 = t("int", bitSize=32)
OBJ = t("object", properties=[{"name": "a", "type": {"kind": "string"}}])
MAP_STR = t("map", elementType={"kind": "string"})
MAP_ARR = t("map", elementType={"kind": "array", "elementType": {"kind": "string"}})


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (t("string"), INT32, True),
        (t("string"), t("array", elementType={"kind": "string"}), False),
        (t("boolean"), INT8, True),
        (t("boolean"), INT32, False),
        (INT8, t("boolean"), True),
        (INT32, t("boolean"), False),
        (INT32, t("year"), True),
        (t("float", bitSize=64), t("year"), False),
        (t("datetime"), t("date"), True),
        (t("time"), t("date"), False),
        (t("uuid"), INT32, False),
        (t("ip"), t("string"), True),
        (t("json"), MAP_STR, True),
        (OBJ, t("json"), True),
        (
            t("array", elementType={"kind": "int", "bitSize": 16}),
            t("array", elementType={"kind": "string"}),
            True,
        ),
        (t("array", elementType={"kind": "uuid"}), t("array", elementType={"kind": "date"}), False),
        (OBJ, MAP_STR, True),
        (MAP_STR, OBJ, True),
        (MAP_ARR, OBJ, False),
        (OBJ, t("object", properties=[{"name": "b", "type": {"kind": "string"}}]), False),
    ],
)
def test_conversion_matrix(source: Any, target: Any, expected: bool) -> None:
    assert convertible(source, target) is expected


IN = t(
    "object",
    properties=[
        {"name": "email", "type": {"kind": "string"}},
        {"name": "traits", "type": {"kind": "map", "elementType": {"kind": "string"}}},
        {"name": "extra", "type": {"kind": "json"}},
    ],
)
OUT = t(
    "object",
    properties=[
        {"name": "email", "type": {"kind": "string"}},
        {"name": "note", "type": {"kind": "string"}},
    ],
)


def test_paths_into_maps_and_json_use_the_property_they_cross() -> None:
    compiled = compile_mapping({"note": "traits.vip", "email": "extra.emails.work"}, IN, OUT)
    assert compiled.output_paths == ("email", "note")
    assert compiled.input_paths == ("extra", "traits")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"note": " "}, "expression is empty"),
        (
            {"note": "lower(email)"},
            'expression "lower(email)" is not supported: only property paths are supported yet',
        ),
    ],
)
def test_unsupported_expressions_are_refused_not_ignored(
    mapping: dict[str, str], message: str
) -> None:
    with pytest.raises(MappingError) as caught:
        compile_mapping(mapping, IN, OUT)
    assert caught.value.message == message
