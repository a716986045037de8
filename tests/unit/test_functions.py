"""Transformation functions without an export around them: the values each language sees and
returns (§5.1 of the API), the output rules, the source checks at validation, and the
workers' limits, sandbox and recovery."""

from __future__ import annotations

import asyncio
import datetime as datetime_module
import json
import math
import os
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sluice.functions import pool as pool_module
from sluice.functions.transformer import (
    FunctionError,
    FunctionSettings,
    FunctionTransformer,
    check_source,
    installed_languages,
)
from sluice.mapping import Purpose, RecordError, TimeLayouts
from sluice.model.types import parse_type

CREATE, UPDATE = Purpose.CREATE, Purpose.UPDATE

IN_SCHEMA = parse_type(
    {
        "kind": "object",
        "properties": [
            {"name": "name", "type": {"kind": "string"}},
            {"name": "big", "type": {"kind": "int", "bitSize": 64}},
            {"name": "small", "type": {"kind": "int", "bitSize": 32}},
            {"name": "ratio", "type": {"kind": "float", "bitSize": 64}},
            {"name": "price", "type": {"kind": "decimal", "precision": 10, "scale": 2}},
            {"name": "seen", "type": {"kind": "datetime"}},
            {"name": "born", "type": {"kind": "date"}},
            {"name": "opens", "type": {"kind": "time"}},
            {"name": "account", "type": {"kind": "uuid"}},
            {"name": "extra", "type": {"kind": "json"}},
            {
                "name": "address",
                "type": {
                    "kind": "object",
                    "properties": [
                        {"name": "city", "type": {"kind": "string"}},
                        {"name": "zip", "type": {"kind": "string"}},
                    ],
                },
            },
        ],
    }
)
OUT_SCHEMA = parse_type(
    {
        "kind": "object",
        "properties": [
            {"name": "text", "type": {"kind": "string"}, "nullable": True},
            {"name": "count", "type": {"kind": "int", "bitSize": 64}},
            {"name": "ratio", "type": {"kind": "float", "bitSize": 64}},
            {"name": "when", "type": {"kind": "datetime"}},
            {"name": "code", "type": {"kind": "string"}, "createRequired": True},
            {"name": "tiny", "type": {"kind": "int", "bitSize": 8}},
            {
                "name": "contact",
                "type": {
                    "kind": "object",
                    "properties": [{"name": "city", "type": {"kind": "string"}, "nullable": True}],
                },
            },
        ],
    }
)
ALL_IN = [p.name for p in IN_SCHEMA.properties]
ALL_OUT = [p.name for p in OUT_SCHEMA.properties]
PROFILE: dict[str, Any] = {
    "name": "Ada",
    "big": 2**62 + 1,
    "small": 7,
    "ratio": float("nan"),
    "price": Decimal("12.50"),
    "seen": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    "born": date(1815, 12, 10),
    "opens": time(9, 30, 0, 500000),
    "account": uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
    "extra": {"tags": ["a", "b"], "n": 1},
    "address": {"city": "London"},
}


def transformer(
    language: str,
    source: str,
    *,
    in_paths: list[str] | None = None,
    out_paths: list[str] | None = None,
    preserve_json: bool = False,
    **settings: Any,
) -> FunctionTransformer:
    return FunctionTransformer(
        language=language,
        source=source,
        preserve_json=preserve_json,
        in_paths=in_paths or ALL_IN,
        out_paths=out_paths or ALL_OUT,
        in_schema=IN_SCHEMA,
        out_schema=OUT_SCHEMA,
        time_layouts=None,
        settings=FunctionSettings(**{"workers": 1, "timeout": 2.0, **settings}),
    )


def run(
    language: str, source: str, profiles: list[dict[str, Any]], purpose: Purpose = CREATE, **kw: Any
) -> list[dict[str, object] | RecordError]:
    function = transformer(language, source, **kw)
    try:
        function.start()
        return function.transform([(profile, purpose) for profile in profiles])
    finally:
        function.close()


def echo(language: str) -> str:
    """A function returning what it received, as JSON text, in ``text``."""
    if language == "Python":
        return "def transform(profile):\n    return {'text': repr(profile), 'code': 'c'}\n"
    return (
        "function transform(profile) {\n"
        "  const kinds = Object.fromEntries(Object.entries(profile).map(([k, v]) =>"
        "    [k, typeof v === 'bigint' ? 'bigint:' + v : typeof v + ':' + JSON.stringify(v)]));\n"
        "  return {text: JSON.stringify(kinds), code: 'c'};\n"
        "}\n"
    )


def test_both_languages_are_installed() -> None:
    assert installed_languages() == {"Python", "JavaScript"}


# -- values in --------------------------------------------------------------------------------


def test_python_receives_the_api_s_python_values() -> None:
    (record,) = run("Python", echo("Python"), [PROFILE])
    assert isinstance(record, dict)
    seen = eval(
        str(record["text"]),
        {"Decimal": Decimal, "datetime": datetime_module, "UUID": uuid.UUID, "nan": math.nan},
    )
    assert seen["price"] == Decimal("12.50")
    assert seen["seen"] == datetime(2024, 5, 6, 7, 8, 9, 123456)  # naive, UTC implied
    assert seen["born"] == date(1815, 12, 10)
    assert seen["opens"] == time(9, 30, 0, 500000)
    assert seen["account"] == PROFILE["account"]
    assert seen["big"] == 2**62 + 1
    assert seen["extra"] == {"tags": ["a", "b"], "n": 1}
    assert seen["address"] == {"city": "London"}  # absent values are absent keys


def test_javascript_receives_the_api_s_javascript_values() -> None:
    (record,) = run("JavaScript", echo("JavaScript"), [PROFILE])
    assert isinstance(record, dict)
    seen = json.loads(str(record["text"]))
    assert seen["big"] == f"bigint:{2**62 + 1}"
    assert seen["small"] == "number:7"
    assert seen["ratio"] == "number:null"  # NaN, which JSON.stringify writes as null
    assert seen["price"] == 'string:"12.50"'
    assert seen["seen"] == 'string:"2024-05-06T07:08:09.123456000Z"'
    assert seen["born"] == 'string:"1815-12-10"'
    assert seen["opens"] == 'string:"09:30:00.500000000"'
    assert seen["account"] == 'string:"6ba7b810-9dad-11d1-80b4-00c04fd430c8"'
    assert seen["extra"] == 'object:{"tags":["a","b"],"n":1}'


@pytest.mark.parametrize("language", ["Python", "JavaScript"])
def test_only_the_input_paths_are_passed_and_json_may_stay_text(language: str) -> None:
    source = (
        "def transform(p):\n    return {'text': repr(sorted(p.items())), 'code': 'c'}\n"
        if language == "Python"
        else "function transform(p) { return {text: JSON.stringify(p), code: 'c'}; }"
    )
    (record,) = run(language, source, [PROFILE], in_paths=["extra", "name"], preserve_json=True)
    assert isinstance(record, dict)
    text = str(record["text"])
    assert "London" not in text and "Ada" in text
    assert '{"tags":["a","b"],"n":1}' in text.replace("\\", "")


def test_a_string_starting_with_nul_survives_the_javascript_encoding() -> None:
    source = "function transform(p) { return {text: p.name, code: 'c', count: p.big}; }"
    (record,) = run("JavaScript", source, [{"name": "\u0000n12", "big": 5}])
    assert record == {"text": "\u0000n12", "code": "c", "count": 5}


# -- values out -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "source"),
    [
        (
            "Python",
            "import datetime\n"
            "def transform(p):\n"
            "    return {'count': str(2**63 - 1), 'ratio': float('inf'), 'code': 'c',\n"
            "            'when': datetime.datetime(2024, 1, 2, 3, 4, 5), 'text': None}\n",
        ),
        (
            "JavaScript",
            "function transform(p) {\n"
            "  return {count: 2n ** 63n - 1n, ratio: Infinity, code: 'c', tiny: undefined,\n"
            "          when: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)), text: null};\n"
            "}\n",
        ),
    ],
)
def test_returned_values_are_converted_to_the_output_types(language: str, source: str) -> None:
    (record,) = run(language, source, [{}])
    assert record == {
        "count": 2**63 - 1,
        "ratio": float("inf"),
        "code": "c",
        "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "text": None,
    }


@pytest.mark.parametrize(
    ("returned", "purpose", "message"),
    [
        ("{'code': 'c', 'nope': 1}", CREATE, "property «nope» is not part of output schema"),
        ("{'code': 'c', 'contact': {'zip': '1'}}", CREATE, "property «contact.zip» is not part"),
        ("{'code': None}", CREATE, "property «code» cannot be «None», but it is set to «None»"),
        ("{'text': 'x'}", CREATE, "property «code» is missing but it is required for creation"),
        ("{'code': 'c', 'tiny': 300}", CREATE, "number «tiny» is greater than 127"),
        ("{'code': 'c', 'count': 'many'}", CREATE, "«count» is not convertible"),
    ],
)
def test_output_that_breaks_the_rules_fails_with_the_api_s_message(
    returned: str, purpose: Purpose, message: str
) -> None:
    (record,) = run("Python", f"def transform(p):\n    return {returned}\n", [{}], purpose)
    assert isinstance(record, RecordError)
    assert record.step == "OutputValidation"
    assert record.message.startswith(message), record.message


def test_required_for_creation_is_not_required_for_update() -> None:
    (record,) = run("Python", "def transform(p):\n    return {'text': 'x'}\n", [{}], UPDATE)
    assert record == {"text": "x"}


@pytest.mark.parametrize("language", ["Python", "JavaScript"])
def test_the_second_argument_says_create_or_update(language: str) -> None:
    source = (
        "def transform(p, purpose):\n    return {'code': purpose}\n"
        if language == "Python"
        else "function transform(p, purpose) { return {code: purpose}; }"
    )
    assert run(language, source, [{}], CREATE) == [{"code": "create"}]
    assert run(language, source, [{}], UPDATE) == [{"code": "update"}]


@pytest.mark.parametrize(
    ("language", "body", "message"),
    [
        ("Python", "return [1]", "Python: TypeError: transform returned list"),
        ("Python", "return {'code': {1, 2}}", "Python: TypeError: Object of type set"),
        ("JavaScript", "return null;", "JavaScript: TypeError: transform returned null"),
        ("JavaScript", "throw 'plain';", "JavaScript: Error: plain"),
        ("Python", "print('looking at', p); raise KeyError('x')",
         "Python: KeyError: 'x' (it printed: \"looking at {}\")"),
        ("JavaScript", "console.log('seen', 1); return p.a.b;",
         "JavaScript: TypeError: Cannot read properties of undefined (reading 'b') "
         "(it printed: \"seen 1\")"),
    ],
)  # fmt: skip
def test_a_failing_function_fails_its_record_in_the_transformation_step(
    language: str, body: str, message: str
) -> None:
    source = (
        f"def transform(p):\n    {body}\n"
        if language == "Python"
        else f"function transform(p) {{ {body} }}"
    )
    (record,) = run(language, source, [{}])
    assert isinstance(record, RecordError)
    assert record.step == "Transformation"
    assert record.message.startswith(message), record.message


# -- sources ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "source", "problem"),
    [
        ("Python", "def transform(p):\n    return {\n",
         "line 2, column 12: SyntaxError: '{' was never closed"),
        ("Python", "def transfrom(p):\n    return {}\n",
         "line 1, column 1: Function 'transform' is not defined"),
        ("JavaScript", "function transform(p) {\n  return {a: 1\n}",
         "line 3, column 2: SyntaxError: Unexpected end of input"),
        ("JavaScript", "function transform(p) {\n  let x = ;\n}",
         "line 2, column 11: SyntaxError: Unexpected token ';'"),
        ("JavaScript", "const x = 1;\n", "line 1, column 1: Function 'transform' is not defined"),
    ],
)  # fmt: skip
def test_sources_are_compiled_at_validation_with_line_and_column(
    language: str, source: str, problem: str
) -> None:
    assert str(check_source(language, source)) == problem


def test_javascript_compiles_inside_an_event_loop_as_the_operator_validates() -> None:
    async def validate() -> object:
        return check_source("JavaScript", "function transform(p) {\n  return {a: 1\n}")

    assert str(asyncio.run(validate())) == "line 3, column 2: SyntaxError: Unexpected end of input"


@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("Python", "from operator import itemgetter as transform\n"),
        ("Python", "transform = lambda p: p\n"),
        ("JavaScript", "const transform = (p) => p;\n"),
        ("JavaScript", "var transform = function (p) { return p; };\n"),
        ("JavaScript", "while (true) {}\nfunction transform(p) { return p; }\n"),  # never run
    ],
)
def test_any_top_level_definition_of_transform_is_accepted(language: str, source: str) -> None:
    assert check_source(language, source) is None


@pytest.mark.parametrize(
    ("language", "source", "message"),
    [
        ("Python", "raise RuntimeError('boom')\ndef transform(p):\n    return {}\n",
         "Python: RuntimeError: boom"),
        ("JavaScript", "throw new Error('boom');\nfunction transform(p) { return {}; }",
         "JavaScript: Error: boom"),
        ("JavaScript", "globalThis.other = 1;", "Function 'transform' is not defined"),
    ],
)  # fmt: skip
def test_a_source_that_cannot_start_fails_the_run(language: str, source: str, message: str) -> None:
    function = transformer(language, source)
    try:
        with pytest.raises(FunctionError, match="^" + message):
            function.start()
    finally:
        function.close()


# -- limits and recovery ---------------------------------------------------------------------


@pytest.mark.parametrize("language", ["Python", "JavaScript"])
def test_a_record_past_the_time_limit_fails_alone_and_the_others_go_on(language: str) -> None:
    source = (
        "def transform(p):\n    while p.get('name') == 'loop':\n        pass\n"
        "    return {'code': p.get('name', '-')}\n"
        if language == "Python"
        else "function transform(p) { while (p.name === 'loop') {} return {code: p.name ?? '-'}; }"
    )
    profiles = [{"name": "a"}, {"name": "loop"}, {"name": "b"}] + [
        {"name": f"n{i}"} for i in range(150)
    ]
    records = run(language, source, profiles, timeout=1.0)
    assert isinstance(records[1], RecordError)
    assert records[1].message == f"{language}: timed out after 1 s"
    assert records[0] == {"code": "a"} and records[2] == {"code": "b"}
    assert records[-1] == {"code": "n149"}


@pytest.mark.parametrize(
    ("language", "source", "message"),
    [
        ("Python", "def transform(p):\n    x = bytearray(1 << 30)\n    return {'code': 'c'}\n",
         "Python: ran out of memory (its worker is limited to 128 MiB)"),
        ("JavaScript",
         "function transform(p) { const a = []; while (true) a.push(new Array(1e6).fill(1)); }",
         "JavaScript: ran out of memory (its heap is limited to 128 MiB)"),
        ("Python", "import os\ndef transform(p):\n    os._exit(3)\n",
         "Python: its worker died (exit code 3)"),
        ("Python", "def transform(p):\n    return {'code': 'x' * (2 << 20)}\n",
         "Python: the returned value is larger than 1024 KiB"),
        ("JavaScript", "function transform(p) { return {code: 'x'.repeat(2 << 20)}; }",
         "JavaScript: the returned value is larger than 1024 KiB"),
    ],
)  # fmt: skip
def test_limits_fail_the_record_and_a_fresh_worker_takes_the_next(
    language: str, source: str, message: str
) -> None:
    fine = (
        "\ndef fine(p):\n    return {'code': 'ok'}\n"
        if language == "Python"
        else "\nfunction fine(p) { return {code: 'ok'}; }"
    )
    wrapped = source.replace("def transform", "def harmful").replace(
        "function transform", "function harmful"
    )
    dispatch = (
        "\ndef transform(p):\n    return harmful(p) if p.get('name') == 'bad' else fine(p)\n"
        if language == "Python"
        else "\nfunction transform(p) { return p.name === 'bad' ? harmful(p) : fine(p); }"
    )
    records = run(
        language, wrapped + fine + dispatch, [{"name": "bad"}, {"name": "x"}], memory_mib=128
    )
    assert isinstance(records[0], RecordError)
    assert records[0].message == message
    assert records[1] == {"code": "ok"}


def test_a_hung_record_cannot_block_a_large_batch_sent_behind_it() -> None:
    # The second batch (2 MB) cannot wait in the pipe while the first one hangs: it is sent
    # once the worker is free, and the time limit still ends the hung record.
    source = (
        "def transform(p):\n    while p['name'] == 'loop':\n        pass\n"
        "    return {'code': str(len(p['name']))}\n"
    )
    large = [{"name": f"{i:05d}" + "y" * 20_000} for i in range(100)]  # each its own string
    profiles = [{"name": "loop"}] + [{"name": "x"}] * 99 + large
    records = run("Python", source, profiles, timeout=1.0)
    assert isinstance(records[0], RecordError)
    assert records[0].message == "Python: timed out after 1 s"
    assert records[1:100] == [{"code": "1"}] * 99
    assert records[100:] == [{"code": "20005"}] * 100


def test_most_records_hitting_the_limits_fails_the_run() -> None:
    source = "def transform(p):\n    while True:\n        pass\n"
    function = transformer("Python", source, timeout=0.2)
    try:
        function.start()
        with pytest.raises(
            FunctionError,
            match=r"most records hit the function's limits \(10 of 10\): Python: timed out after",
        ):
            function.transform([({"name": str(i)}, CREATE) for i in range(10)])
    finally:
        function.close()


JAVASCRIPT_ESCAPES = {
    "process.env.SLUICE_TEST_SECRET": "JavaScript: ReferenceError: process is not defined",
    "require('fs').readFileSync('/etc/passwd')": "JavaScript: ReferenceError: require is not",
    "fetch('http://127.0.0.1:1/')": "JavaScript: ReferenceError: fetch is not defined",
    "new XMLHttpRequest()": "JavaScript: ReferenceError: XMLHttpRequest is not defined",
    "Deno.env.get('HOME')": "JavaScript: ReferenceError: Deno is not defined",
}  # fmt: skip


def test_javascript_has_no_way_out() -> None:
    cases = list(JAVASCRIPT_ESCAPES)
    source = (
        f"const CASES = {json.dumps(cases)};\n"
        "function transform(p) {\n"
        "  if (p.name === 'ok') return {code: 'ok'};\n"
        "  return {code: String(eval(CASES[Number(p.name)]))};\n"
        "}\n"
    )
    records = run(
        "JavaScript", source, [{"name": str(i)} for i in range(len(cases))] + [{"name": "ok"}]
    )
    for case, record in zip(cases, records, strict=False):
        assert isinstance(record, RecordError), case
        assert record.message.startswith(JAVASCRIPT_ESCAPES[case]), (case, record.message)
    assert records[-1] == {"code": "ok"}


def test_the_worker_gets_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_TEST_SECRET", "sk-unit-secret")
    source = (
        "import os\ndef transform(p):\n    return {'text': repr(dict(os.environ)), 'code': 'c'}\n"
    )
    assert run("Python", source, [{}]) == [{"text": "{}", "code": "c"}]


def test_where_the_sandbox_cannot_be_set_up_functions_do_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        pool_module.sandbox,
        "unavailable",
        lambda: "this kernel has no Landlock (Linux 5.13 or later is needed)",
    )
    with pytest.raises(FunctionError) as refused:
        transformer("Python", echo("Python"))
    assert str(refused.value) == (
        "functions cannot run here: their sandbox cannot be set up: this kernel has no Landlock "
        "(Linux 5.13 or later is needed); set SLUICE_FUNCTION_SANDBOX=off (the chart's "
        "runner.functions.sandbox: false) to run them unsandboxed"
    )
    # The operator's explicit choice runs them, without the sandbox.
    source = "def transform(p):\n    return {'code': str(len(open('/etc/hostname').read()) > 0)}\n"
    assert run("Python", source, [{}], sandbox=False) == [{"code": "True"}]
    assert os.path.exists("/etc/hostname")


def test_raw_writes_to_standard_output_never_reach_the_channel() -> None:
    source = (
        "import os\n"
        "def transform(p):\n"
        "    os.write(1, b'\\x00\\x00\\x00\\x10garbage')\n"
        "    os.write(2, b'{\"results\": []}')\n"
        "    return {'code': p['name']}\n"
    )
    assert run("Python", source, [{"name": "a"}, {"name": "b"}]) == [{"code": "a"}, {"code": "b"}]


@pytest.mark.parametrize(
    ("cpu_max", "expected"), [("max 100000", 2), ("150000 100000", 2), ("50000 100000", 1)]
)
def test_workers_follow_the_cpus_the_pod_may_use(
    cpu_max: str, expected: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max + "\n")
    assert pool_module.available_cpus(str(quota)) == expected
    assert pool_module.available_cpus(str(tmp_path / "none")) == 2  # cgroup v1: the affinity


def test_settings_come_from_the_environment() -> None:
    settings = FunctionSettings.from_environment(
        {
            "SLUICE_FUNCTION_TIMEOUT": "2.5",
            "SLUICE_FUNCTION_MEMORY": "64",
            "SLUICE_FUNCTION_WORKERS": "3",
            "SLUICE_FUNCTION_SANDBOX": "off",
        }
    )
    assert settings == FunctionSettings(timeout=2.5, memory_mib=64, workers=3, sandbox=False)
    with pytest.raises(FunctionError, match="SLUICE_FUNCTION_"):
        FunctionSettings.from_environment({"SLUICE_FUNCTION_TIMEOUT": "soon"})


def test_time_layouts_apply_to_returned_datetimes() -> None:
    function = FunctionTransformer(
        language="Python",
        source="def transform(p):\n    return {'code': 'c', 'when': '2024-01-02T03:04:05Z'}\n",
        preserve_json=False,
        in_paths=["name"],
        out_paths=["code", "when"],
        in_schema=IN_SCHEMA,
        out_schema=OUT_SCHEMA,
        time_layouts=TimeLayouts(datetime="unix"),
        settings=FunctionSettings(workers=1),
    )
    try:
        function.start()
        assert function.transform([({}, CREATE)]) == [{"code": "c", "when": 1704164645}]
    finally:
        function.close()
