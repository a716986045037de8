"""The functions of the mapping language: values, nil arguments, and run-time errors."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from sluice.mapping import Purpose, RecordError, compile_mapping
from sluice.model.types import parse_type

STRING = {"kind": "string"}


def props(**types: Any) -> list[dict[str, Any]]:
    return [{"name": name, "type": t, "nullable": True} for name, t in types.items()]


IN = parse_type(
    {
        "kind": "object",
        "properties": props(
            s=STRING,
            t=STRING,
            n={"kind": "int", "bitSize": 32},
            f={"kind": "float", "bitSize": 64},
            d={"kind": "decimal", "precision": 10, "scale": 2},
            b={"kind": "boolean"},
            b8={"kind": "int", "bitSize": 8},
            j={"kind": "json"},
            k={"kind": "json"},
            arr={"kind": "array", "elementType": STRING},
            m={"kind": "map", "elementType": {"kind": "int", "bitSize": 32}},
            o={"kind": "object", "properties": props(a=STRING)},
            dt={"kind": "datetime"},
            day={"kind": "date"},
        ),
    }
)
OUT = parse_type(
    {
        "kind": "object",
        "properties": props(
            text=STRING,
            flag={"kind": "boolean"},
            number={"kind": "int", "bitSize": 32},
            blob={"kind": "json"},
        ),
    }
)
DESTINATIONS = {str: "text", bool: "flag", int: "number"}


def evaluate(expression: str, key: str = "text", **profile: Any) -> Any:
    record = compile_mapping({key: expression}, IN, OUT).transform(profile, Purpose.CREATE)
    return record[key]


def not_a(argument: str, described: str, what: str, function: str) -> str:
    """The message for an argument that does not convert to its parameter's type."""
    return (
        f"«{argument}» ({described}) does not represent {what} "
        f"when passed to the «{function}» function"
    )


def transformation_error(expression: str, key: str = "text", **profile: Any) -> str:
    with pytest.raises(RecordError) as caught:
        evaluate(expression, key, **profile)
    assert caught.value.step == "Transformation"
    suffix = f" while mapping to «{key}»"
    assert caught.value.message.endswith(suffix)
    return caught.value.message.removesuffix(suffix)


Case = tuple[str, dict[str, Any], Any]


def cases(key: str, *rows: Case) -> list[Any]:
    return [
        pytest.param(key, expression, profile, expected, id=expression)
        for expression, profile, expected in rows
    ]


@pytest.mark.parametrize(
    ("key", "expression", "profile", "expected"),
    [
        *cases(
            "flag",
            ("and(b, b)", {"b": True}, True),
            ("and(b, true, false)", {"b": True}, False),
            ("and(b, b8)", {"b": True}, None),
            ("and(b, b)", {}, None),
            ("and(b, false)", {}, False),
            ("and(b, s)", {"b": False, "s": "maybe"}, False),  # decided before s is read
            ("and(s, b8)", {"s": "yes", "b8": 2}, True),
            ("and(s, b)", {"s": "", "b": True}, None),
            ("and(j, b)", {"j": True, "b": True}, True),
            ("or(b, false)", {"b": True}, True),
            ("or(false, false)", {}, False),
            ("or(b, false)", {}, None),
            ("or(b, true)", {}, True),
            ("or(true, s)", {"s": "maybe"}, True),
            ("not(b)", {"b": True}, False),
            ("not(b)", {}, None),
            ("not(s)", {"s": "no"}, True),
            ("not(j)", {"j": None}, None),
            ("eq(n, 36)", {"n": 36}, True),
            ('eq(n, "36")', {"n": 36}, True),
            ("eq(s, n)", {"s": "036", "n": 36}, True),
            ("eq(n, s)", {"s": "036", "n": 36}, False),
            ("eq(s, n)", {"s": "abc", "n": 36}, False),
            ("ne(s, n)", {"s": "abc", "n": 36}, True),
            ("eq(f, n)", {"f": 1.0, "n": 1}, True),
            ("eq(f, d)", {"f": 0.1, "d": Decimal("0.10")}, False),
            ("eq(d, n)", {"d": Decimal("2.00"), "n": 2}, True),
            ("eq(j, n)", {"j": 2.0, "n": 2}, True),
            ("eq(n, j)", {"j": 2.5, "n": 2}, False),
            ('eq(j, "x")', {"j": "x"}, True),
            ("eq(j, k)", {"j": True, "k": 1}, False),
            ("eq(j, k)", {"j": {"a": [1, None]}, "k": {"a": [1.0, None]}}, True),
            ("eq(j, k)", {"j": None, "k": None}, True),
            (
                "eq(dt, day)",
                {"dt": datetime(2024, 1, 2, 23, tzinfo=UTC), "day": date(2024, 1, 2)},
                True,
            ),
            ("eq(arr, arr)", {"arr": ["a"]}, True),
            ("eq(o, o)", {"o": {"a": "x"}}, True),
            ("eq(n, 1)", {}, None),
            ("ne(n, 35)", {"n": 36}, True),
            ("ne(n, 36)", {"n": 36}, False),
            ("ne(1, n)", {}, None),
            ('eq(if(b, n, s), "7")', {"b": True, "n": 7}, True),
            ("eq(if(b, n, s), 7)", {"b": False, "s": "7"}, True),
            ("eq(coalesce(s, n), coalesce(t, n))", {"s": "5", "n": 5}, True),
        ),
        *cases(
            "text",
            ('if(b, "y", "n")', {"b": True}, "y"),
            ('if(b, "y", "n")', {}, "n"),
            ('if(b, "y")', {"b": False}, None),
            ('if(s, "y", "n")', {"s": "yes"}, "y"),
            ("if(b, n, s)", {"b": True, "n": 36}, "36"),
            ("if(b, n, s)", {"b": False, "s": "x"}, "x"),
            ("coalesce(s, t)", {"t": "second"}, "second"),
            ("coalesce(s, t)", {}, None),
            ('coalesce(s, "x")', {"s": ""}, ""),
            ('coalesce(s, t, "default")', {}, "default"),
            ("coalesce(j, s)", {"j": None, "s": "x"}, None),  # JSON null is a value
            ('coalesce(if(b, s), t, "z")', {"b": True, "t": "t"}, "t"),
            ('coalesce(if(b, s, n), "z")', {"b": False, "n": 3}, "3"),
            ("lower(s)", {"s": "ÀbC"}, "àbc"),
            ("upper(s)", {"s": "àbc"}, "ÀBC"),
            ("lower(n)", {"n": 5}, "5"),
            ("lower(s)", {}, None),
            ("trim(s)", {"s": "\u00a0 x y\u2003\n"}, "x y"),
            ("ltrim(s)", {"s": "  x  "}, "x  "),
            ("rtrim(s)", {"s": "  x  "}, "  x"),
            ("initcap(s)", {"s": "hello wORLD"}, "Hello World"),
            ("initcap(s)", {"s": "1st o'neil mcdonald_jr"}, "1st O'Neil Mcdonald_jr"),
            ("initcap(s)", {"s": "élan vital"}, "Élan Vital"),
            ("initcap(s)", {}, None),
            ("substring(s, 2)", {"s": "hello"}, "ello"),
            ("substring(s, 2, 3)", {"s": "hello"}, "ell"),
            ("substring(s, 0, 2)", {"s": "hello"}, "he"),
            ("substring(s, -5, 2)", {"s": "hello"}, "he"),
            ("substring(s, 10)", {"s": "hello"}, ""),
            ("substring(s, 2, 0)", {"s": "hello"}, ""),
            ("substring(s, 2, 1)", {"s": "héllo"}, "é"),
            ("substring(s, n)", {"s": "hello"}, None),
            ("substring(s, n, n)", {"s": "hello", "n": 2}, "el"),
            ("substring(s, f)", {"s": "hello", "f": 2.5}, "llo"),
            ("substring(s, 1, n)", {"s": "hello"}, None),
            ("substring(s, t)", {"t": "oops"}, None),  # s is nil: the start is not read
            ("substring(s, 2)", {}, None),
            ("json_parse(s)", {"s": '"x"'}, "x"),
        ),
        *cases(
            "number",
            ("if(b, n, s)", {"b": False, "s": "12"}, 12),
            ("coalesce(s, n)", {"s": "", "n": 5}, None),  # "" is not nil until converted
            ("len(s)", {"s": "héllo"}, 5),
            ("len(arr)", {"arr": ["a", "b"]}, 2),
            ("len(m)", {"m": {"x": 1}}, 1),
            ("len(o)", {"o": {"a": "x"}}, 1),
            ("len(j)", {"j": {"a": 1, "b": 2}}, 2),
            ("len(j)", {"j": [1, 2, 3]}, 3),
            ("len(j)", {"j": "abc"}, 3),
            ("len(j)", {"j": 12.5}, 4),
            ("len(j)", {"j": True}, 4),
            ("len(j)", {"j": None}, 0),
            ("len(s)", {}, 0),
            ("len(n)", {"n": -12}, 3),
            ("len(f)", {"f": 1.5}, 3),
            ("len(b)", {"b": False}, 5),
            ("len(d)", {"d": Decimal("1.50")}, 4),
            ("len(dt)", {"dt": datetime(2024, 1, 2, tzinfo=UTC)}, 20),
            ("len(day)", {"day": date(2024, 1, 2)}, 10),
            ("len(coalesce(s, arr))", {"arr": ["a"]}, 1),
        ),
        *cases(
            "blob",
            ("json_parse(s)", {"s": '{"a": [1, 2.5, null]}'}, {"a": [1, 2.5, None]}),
            ("json_parse(j)", {"j": "[1]"}, [1]),
            ("json_parse(s)", {}, None),
            ("json_parse(s)", {"s": "null"}, None),
            ("json_parse(s)", {"s": r'"\ud800"'}, "\ufffd"),
            (
                "array(s, n, t, dt)",
                {"s": "a", "n": 1, "dt": datetime(2024, 1, 2, tzinfo=UTC)},
                ["a", 1, None, "2024-01-02T00:00:00Z"],
            ),
            ("array()", {}, []),
            ("array(j, null)", {"j": None}, [None, None]),
            ('map("a", s, "b", t)', {"s": "x"}, {"a": "x"}),
            ('map("a", null, "b", lower(t))', {}, {"a": None, "b": None}),
            ('map("n", n, "d", d)', {"n": 1, "d": Decimal("1.50")}, {"n": 1, "d": 1.5}),
            ("map()", {}, {}),
        ),
    ],
)
def test_functions(key: str, expression: str, profile: dict[str, Any], expected: Any) -> None:
    value = evaluate(expression, key, **profile)
    assert (value, type(value)) == (expected, type(expected))


@pytest.mark.parametrize(
    ("key", "expression", "profile", "message"),
    [
        (
            "flag",
            "and(b, s)",
            {"b": True, "s": "maybe"},
            not_a("s", "type string", "a boolean", "and"),
        ),
        (
            "flag",
            "or(b, s, t)",
            {"b": False, "s": "no", "t": "maybe"},
            not_a("t", "type string", "a boolean", "or"),
        ),
        (
            "flag",
            "and(j, b)",
            {"j": 1, "b": True},
            not_a("j", "JSON number", "a boolean", "and"),
        ),
        (
            "flag",
            "not(s)",
            {"s": "nope"},
            not_a("s", "type string", "a boolean", "not"),
        ),
        (
            "text",
            'if(s, "y", "n")',
            {"s": "perhaps"},
            not_a("s", "type string", "a boolean", "if"),
        ),
        (
            "text",
            "lower(j)",
            {"j": [1]},
            not_a("j", "JSON array", "a string", "lower"),
        ),
        (
            "text",
            "substring(s, t)",
            {"s": "hello", "t": "two"},
            not_a("t", "type string", "an int(32)", "substring"),
        ),
        (
            "text",
            "substring(s, 1, t)",
            {"s": "hello", "t": "two"},
            not_a("t", "type string", "an int(32)", "substring"),
        ),
        (
            "text",
            "substring(s, 1, f)",
            {"s": "hello", "f": math.inf},
            not_a("f", "type float(64)", "an int(32)", "substring"),
        ),
        (
            "text",
            "substring(s, 1, j)",
            {"s": "hello", "j": {"a": 1}},
            not_a("j", "JSON object", "an int(32)", "substring"),
        ),
        (
            "text",
            "substring(s, 2, -1)",
            {"s": "hello"},
            "substring: negative substring length is not allowed",
        ),
        (
            "text",
            "substring(s, 2, n)",
            {"s": "hello", "n": -3},
            "substring: negative substring length is not allowed",
        ),
        (
            "blob",
            "json_parse(s)",
            {"s": "{oops"},
            "«s» cannot be parsed by «json_parse» because it is not valid JSON",
        ),
        (
            "blob",
            "json_parse(s)",
            {"s": "NaN"},
            "«s» cannot be parsed by «json_parse» because it is not valid JSON",
        ),
        (
            "blob",
            "json_parse(j)",
            {"j": 12},
            not_a("j", "JSON number", "a string", "json_parse"),
        ),
        (
            "text",
            '"x" j',
            {"j": {"a": 1}},
            "«j» (JSON object) cannot be written in a string template",
        ),
    ],
)
def test_function_errors(key: str, expression: str, profile: dict[str, Any], message: str) -> None:
    assert transformation_error(expression, key, **profile) == message


def test_arrays_of_values_that_are_not_json_fail_validation() -> None:
    with pytest.raises(RecordError) as caught:
        evaluate("array(s, f)", "blob", s="x", f=math.nan)
    assert caught.value.step == "OutputValidation"
    assert (
        caught.value.message == "«f» is not convertible to the «json» type while mapping to «blob»"
    )


@pytest.mark.parametrize("function", ["lower", "upper", "trim", "ltrim", "rtrim", "initcap"])
def test_string_functions_keep_nil_and_refuse_json_containers(function: str) -> None:
    assert evaluate(f"{function}(s)") is None
    assert transformation_error(f"{function}(j)", j={"a": 1}) == not_a(
        "j", "JSON object", "a string", function
    )
