"""The seeded demo profiles of `make demo`: deterministic, valid, flawed at the documented rates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from sluice.demo.profiles import (
    count_profiles,
    demo_profile_schema,
    demo_profiles,
    load_demo_profiles,
    main,
)
from sluice.model.types import parse_type
from sluice.model.values import decode_record
from sluice.warehouses import open_warehouse
from tests.support import EXAMPLES

Profiles = list[tuple[str, dict[str, Any]]]

COLUMNS = [
    "_kpid",
    "first_name",
    "last_name",
    "email",
    "phone",
    "loyalty_points",
    "address_city",
    "address_country",
]
EXAMPLE_EMAIL = re.compile(r"[a-z0-9._]+@([a-z]+\.)?example\.(com|org|net)")


@pytest.fixture(scope="module")
def profiles() -> Profiles:
    return list(demo_profiles(20_000))


def test_the_same_seed_gives_the_same_profiles() -> None:
    assert list(demo_profiles(500, seed=7)) == list(demo_profiles(500, seed=7))
    assert list(demo_profiles(500, seed=7)) != list(demo_profiles(500, seed=8))


def test_a_larger_count_only_adds_profiles() -> None:
    fewer = [profile for _, profile in demo_profiles(500)]
    more = [profile for _, profile in demo_profiles(1_000)]
    assert more[:500] == fewer


def test_ids_are_zero_padded_to_the_width_of_the_count(profiles: Profiles) -> None:
    ids = [profile_id for profile_id, _ in profiles]
    assert ids[0] == "p00001"
    assert ids[-1] == "p20000"
    assert len(set(ids)) == len(ids)


def test_rates_land_in_the_documented_ranges(profiles: Profiles) -> None:
    counts = count_profiles(profiles)
    assert counts.total == 20_000
    assert 0.40 <= counts.in_us / counts.total <= 0.55
    assert 0.005 <= counts.without_email / counts.total <= 0.015
    assert 0.0025 <= counts.sharing_email / counts.total <= 0.0075
    without_last_name = sum("last_name" not in profile for _, profile in profiles)
    without_city = sum("city" not in profile["address"] for _, profile in profiles)
    assert 0.005 <= without_last_name / counts.total <= 0.015
    assert 0.005 <= without_city / counts.total <= 0.015


def test_profiles_are_valid_with_example_emails(profiles: Profiles) -> None:
    schema = demo_profile_schema()
    for _, profile in profiles:
        assert decode_record(schema, profile) == profile
        if "email" in profile:
            assert EXAMPLE_EMAIL.fullmatch(profile["email"]), profile["email"]
        assert re.fullmatch(r"\+[1-9][0-9]{9,13}", profile["phone"]), profile["phone"]
        assert 0 <= profile["loyalty_points"] <= 50_000


def test_a_shared_email_is_shared_by_exactly_two_profiles_of_one_person(
    profiles: Profiles,
) -> None:
    by_email: dict[str, list[dict[str, Any]]] = {}
    for _, profile in profiles:
        if "email" in profile:
            by_email.setdefault(profile["email"], []).append(profile)
    shared = [same for same in by_email.values() if len(same) > 1]
    assert shared
    for first, second in shared:
        assert first["first_name"] == second["first_name"]
        assert first["address"]["country"] == second["address"]["country"]
    assert all(len(same) <= 2 for same in by_email.values())


def test_count_profiles() -> None:
    counts = count_profiles(
        [
            ("p1", {"email": "a@example.com", "address": {"country": "US"}}),
            ("p2", {"email": "a@example.com", "address": {"country": "FR"}}),
            ("p3", {"email": "b@example.com", "address": {"city": "Boston", "country": "US"}}),
            ("p4", {"first_name": "Ana"}),
        ]
    )
    assert (counts.total, counts.in_us, counts.without_email, counts.sharing_email) == (4, 2, 1, 2)


def table(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    with duckdb.connect(str(path)) as connection:
        cursor = connection.execute("SELECT * FROM profiles ORDER BY _kpid")
        return [column[0] for column in cursor.description], cursor.fetchall()


def test_load_creates_the_table_and_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    warehouse = open_warehouse("DuckDB", path=str(path))
    try:
        assert load_demo_profiles(warehouse, 1_500) == 1_500
        assert load_demo_profiles(warehouse, 300, seed=1) == 300
    finally:
        warehouse.close()
    columns, rows = table(path)
    assert columns == COLUMNS
    assert len(rows) == 300
    first_id, first = next(demo_profiles(300, seed=1))
    assert rows[0] == (
        first_id,
        first["first_name"],
        first.get("last_name"),
        first.get("email"),
        first["phone"],
        first["loyalty_points"],
        first["address"].get("city"),
        first["address"]["country"],
    )


def test_the_command_line_creates_the_warehouse_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "warehouse.duckdb"
    assert main(["--duckdb", str(path), "--count", "2000", "--seed", "5"]) == 0
    counts = count_profiles(demo_profiles(2_000, seed=5))
    assert capsys.readouterr().out == (
        f"created 2,000 demo profiles in {path} ({counts.in_us:,} in the US, "
        f"{counts.without_email:,} without email, {counts.sharing_email:,} sharing an email)\n"
    )
    assert len(table(path)[1]) == 2_000


def test_the_schema_is_the_demo_workspaces() -> None:
    documents = yaml.safe_load_all((EXAMPLES / "demo" / "workspace.yaml").read_text())
    workspace = next(d for d in documents if d["kind"] == "Workspace")
    assert demo_profile_schema() == parse_type(workspace["spec"]["profileSchema"])
