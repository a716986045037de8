"""`sluice preview`: what a pipeline would send for sample profiles, profile by profile."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from sluice.cli import main
from tests.support import EXAMPLES, seed_with_function

SEED = str(EXAMPLES / "seed-pipeline.yaml")


def preview(*argv: str, stdin: str | None = None, **kwargs: Any) -> tuple[int, list[Any]]:
    out = io.StringIO()
    if stdin is not None:
        kwargs["monkeypatch"].setattr("sys.stdin", io.StringIO(stdin))
    code = main(["preview", *argv], out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def preview_on_stdin(
    pipeline: str, profiles: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[Any]]:
    """The preview of ``profiles``, given on standard input, by the examples' ``pipeline``."""
    return preview(
        "-f",
        pipeline,
        "--workspace",
        str(EXAMPLES),
        "--profiles",
        "-",
        stdin=profiles,
        monkeypatch=monkeypatch,
    )


def contact(first: str | None, last: str | None, email: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"firstname": first, "lastname": last}
    if email is not None:
        record["email"] = email
    return {"contact": record}


def test_each_sample_profile_gets_its_record_or_the_step_that_stopped_it() -> None:
    code, lines = preview(
        "-f", SEED, "--workspace", str(EXAMPLES), "--profiles", str(EXAMPLES / "profiles.jsonl")
    )
    assert code == 0
    assert lines == [
        {"line": 1, "record": contact("Ada", "Lovelace", "ada@example.com")},
        {"line": 2, "record": contact("Grace", "Hopper", "grace@example.com")},
        {"line": 3, "step": "Filter", "error": "the profile does not match the filter"},
        # No first name: the destination property is nullable, so it is cleared explicitly.
        {"line": 4, "record": contact(None, "Nobody", "nobody@example.com")},
        {
            "line": 5,
            "step": "InputValidation",
            "error": 'property "address.country" is longer than 2 characters: "USA"',
        },
    ]


def test_updates_do_not_carry_the_matching_value() -> None:
    code, lines = preview(
        "-f",
        SEED,
        "--workspace",
        str(EXAMPLES),
        "--profiles",
        str(EXAMPLES / "profiles.jsonl"),
        "--purpose",
        "update",
    )
    assert code == 0
    assert lines[0] == {"line": 1, "record": contact("Ada", "Lovelace")}


def test_profiles_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = (
        '{"first_name": "Ada", "last_name": "Lovelace", "address": {"country": "US"}}\n'
        "\n"
        "not json\n"
        '["a list"]\n'
        '{"first_name": "Ada", "email": "ada@example.com", "age": 36}\n'
    )
    code, lines = preview_on_stdin(SEED, profiles, monkeypatch)
    assert code == 0
    assert lines == [
        {
            "line": 1,
            "step": "InputValidation",
            "error": 'the matching property "email" has no value',
        },
        {
            "line": 3,
            "step": "InputValidation",
            "error": "not JSON: Expecting value at column 1",
        },
        {"line": 4, "step": "InputValidation", "error": "a profile must be a JSON object"},
        {"line": 5, "step": "InputValidation", "error": 'property "age" does not exist'},
    ]


def test_a_null_is_the_warehouse_null_an_absent_property(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Rows pasted from a query: every column present, NULL where a profile has no value.
    profiles = (
        '{"first_name": null, "last_name": "Nobody", "email": "nobody@example.com", '
        '"address": {"city": null, "country": "US"}}\n'
        '{"first_name": "Ada", "last_name": null, "email": "ada@example.com", '
        '"address": {"city": null, "country": null}}\n'
        '{"first_name": "Ada", "last_name": "Lovelace", "email": null, "address": null}\n'
        '{"first_name": null, "last_name": null, "email": null, "address": {"country": "US"}}\n'
    )
    code, lines = preview_on_stdin(SEED, profiles, monkeypatch)
    assert code == 0
    # Each as the same profile without its null members: line 1 is examples/profiles.jsonl's 4.
    assert lines == [
        {"line": 1, "record": contact(None, "Nobody", "nobody@example.com")},
        {"line": 2, "step": "Filter", "error": "the profile does not match the filter"},
        {"line": 3, "step": "Filter", "error": "the profile does not match the filter"},
        {
            "line": 4,
            "step": "InputValidation",
            "error": 'the matching property "email" has no value',
        },
    ]


def test_the_pipeline_file_may_hold_its_own_workspace(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(
        "\n---\n".join(
            (EXAMPLES / name).read_text()
            for name in ("workspace.yaml", "hubspot-connection.yaml", "seed-pipeline.yaml")
        )
    )
    profiles = tmp_path / "one.jsonl"
    profiles.write_text(
        '{"first_name": "Ada", "email": "ada@example.com", "address": {"country": "US"}}\n'
    )
    code, lines = preview("-f", str(bundle), "--profiles", str(profiles))
    assert code == 0
    assert lines == [{"line": 1, "record": contact("Ada", None, "ada@example.com")}]


def test_an_invalid_pipeline_is_not_previewed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(Path(SEED).read_text().replace("exportMode: CreateOnly", "exportMode: X"))
    code, lines = preview(
        "-f", str(pipeline), "--workspace", str(EXAMPLES), "--profiles", "/dev/null"
    )
    assert (code, lines) == (1, [])
    assert 'export mode "X" is not valid' in capsys.readouterr().err


def test_function_pipelines_are_refused_clearly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pipeline = tmp_path / "function.yaml"
    pipeline.write_text(seed_with_function("Python"))
    code, _ = preview(
        "-f",
        str(pipeline),
        "--workspace",
        str(EXAMPLES),
        "--profiles",
        str(EXAMPLES / "profiles.jsonl"),
    )
    assert code == 1
    assert "transformation language is not supported" in capsys.readouterr().err


def test_a_missing_profiles_file_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = preview("-f", SEED, "--workspace", str(EXAMPLES), "--profiles", "/nonexistent.jsonl")
    assert code == 1
    assert "No such file" in capsys.readouterr().err


def test_expressions_shape_the_records(monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = (
        '{"first_name": "  ada ", "last_name": "Lovelace", "email": "ada@example.com",'
        ' "loyalty_points": 5000, "address": {"city": "Boston", "country": "US"}}\n'
        '{"first_name": "grace", "email": "grace@example.com", "loyalty_points": 1200,'
        ' "address": {"country": "US"}}\n'
        '{"email": "alan@example.com", "loyalty_points": 999}\n'
    )
    code, lines = preview_on_stdin(
        str(EXAMPLES / "expressions-pipeline.yaml"), profiles, monkeypatch
    )
    assert code == 0
    assert lines[0]["record"]["contact"] == {
        "firstname": "Ada",
        "lastname": "LOVELACE",
        "city": "Boston",
        "tier": "platinum",
        "summary": "Ada from Boston (5000 points)",
        "email": "ada@example.com",
    }
    assert lines[1]["record"]["contact"] == {
        "firstname": "Grace",
        "lastname": None,
        "city": "Unknown",
        "tier": "gold",
        "summary": "Grace from US (1200 points)",
        "email": "grace@example.com",
    }
    assert lines[2] == {
        "line": 3,
        "step": "Filter",
        "error": "the profile does not match the filter",
    }
