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
    pipeline: str, profiles: str, monkeypatch: pytest.MonkeyPatch, *options: str
) -> tuple[int, list[Any]]:
    """The preview of ``profiles``, given on standard input, by the examples' ``pipeline``."""
    return preview(
        "-f",
        pipeline,
        "--workspace",
        str(EXAMPLES),
        "--profiles",
        "-",
        *options,
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


def test_a_python_function_shapes_the_records(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = str(EXAMPLES / "python-function-pipeline.yaml")
    profiles = (
        '{"first_name": "  ada ", "last_name": "lovelace", "email": "ada@example.com",'
        ' "loyalty_points": 5000}\n'
        '{"first_name": "grace", "last_name": "HOPPER", "email": "grace@example.com",'
        ' "loyalty_points": 1200}\n'
        '{"first_name": "alan", "email": "alan@example.com"}\n'
        '{"first_name": "nobody", "loyalty_points": 10}\n'
    )
    code, lines = preview_on_stdin(pipeline, profiles, monkeypatch)
    assert code == 0
    # A new contact gets the lifecycle stage its loyalty points give.
    assert lines == [
        {
            "line": 1,
            "record": {
                "contact": {
                    "firstname": "Ada",
                    "lastname": "Lovelace",
                    "lifecyclestage": "evangelist",
                    "email": "ada@example.com",
                }
            },
        },
        {
            "line": 2,
            "record": {
                "contact": {
                    "firstname": "Grace",
                    "lastname": "Hopper",
                    "lifecyclestage": "customer",
                    "email": "grace@example.com",
                }
            },
        },
        {
            "line": 3,
            "record": {
                "contact": {
                    "firstname": "Alan",
                    "lastname": None,
                    "lifecyclestage": "lead",
                    "email": "alan@example.com",
                }
            },
        },
        {"line": 4, "step": "Filter", "error": "the profile does not match the filter"},
    ]
    # An existing one keeps the stage its sales team set.
    code, lines = preview_on_stdin(pipeline, profiles, monkeypatch, "--purpose", "update")
    assert code == 0
    assert [line.get("record") for line in lines] == [
        contact("Ada", "Lovelace"),
        contact("Grace", "Hopper"),
        contact("Alan", None),
        None,
    ]


def test_a_javascript_function_shapes_the_records() -> None:
    code, lines = preview(
        "-f",
        str(EXAMPLES / "javascript-function-pipeline.yaml"),
        "--workspace",
        str(EXAMPLES),
        "--profiles",
        str(EXAMPLES / "profiles.jsonl"),
    )
    assert code == 0
    assert lines[2:] == [
        {
            "line": 3,
            "record": {
                "contact": {
                    "firstname": "Alan",
                    "lastname": "TURING",
                    "city": "London",
                    "country": "GB (Europe)",
                    "email": "alan@example.co.uk",
                }
            },
        },
        {
            "line": 4,
            "record": {
                "contact": {
                    "firstname": None,
                    "lastname": "NOBODY",
                    "city": None,
                    "country": "US (Americas)",
                    "email": "nobody@example.com",
                }
            },
        },
        {
            "line": 5,
            "step": "InputValidation",
            "error": 'property "address.country" is longer than 2 characters: "USA"',
        },
    ]


@pytest.mark.parametrize("language", ["Python", "JavaScript"])
def test_a_function_doing_what_the_mapping_does_gives_the_same_records(
    tmp_path: Path, language: str
) -> None:
    pipeline = tmp_path / "function.yaml"
    pipeline.write_text(seed_with_function(language))
    profiles = str(EXAMPLES / "profiles.jsonl")
    by_function = preview("-f", str(pipeline), "--workspace", str(EXAMPLES), "--profiles", profiles)
    by_mapping = preview("-f", SEED, "--workspace", str(EXAMPLES), "--profiles", profiles)
    assert by_function == by_mapping


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
