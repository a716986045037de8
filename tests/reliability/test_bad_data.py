"""Warehouse values the schemas do not allow: strings too long, ints out of range, bytes that are
not UTF-8, NaN, dates past year 9999. Each fails its own profile with the API's message, naming
the property and the problem, as the preview would; every other profile is exported, and the
next run tries the failed ones again without sending anything new.

Both warehouses refuse invalid UTF-8 in text columns and out-of-range values in the columns
Sluice creates, so those rows are held where a customer's table could hold them: the string in a
binary column (``bytea``, ``BLOB``), the int in a ``BIGINT`` column.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, date, datetime
from typing import Any

from sluice.model.types import parse_type
from sluice.warehouses.loading import create_profiles_table, insert_profiles
from sluice.warehouses.queries import ERRORS_TABLE
from tests.integration.conftest import (
    OUT_SCHEMA,
    PROFILE_SCHEMA,
    Target,
    hubspot,  # noqa: F401 - the twin ``target`` exports to
)
from tests.integration.test_export import WRITES, person, requests_to

#: The integration tests' profile schema, with a property of each kind left to go wrong.
SCHEMA: dict[str, Any] = copy.deepcopy(PROFILE_SCHEMA)
SCHEMA["properties"] += [
    {"name": "score", "type": {"kind": "float", "bitSize": 64}, "readOptional": True},
    {"name": "birth_date", "type": {"kind": "date"}, "readOptional": True},
    # Read, so checked, though not mapped.
    {"name": "last_seen", "type": {"kind": "datetime"}, "readOptional": True},
    {"name": "nickname", "type": {"kind": "string", "maxLength": 20}, "readOptional": True},
]
#: HubSpot's contact properties the new ones are mapped to, as its schema has them.
HUBSPOT_PROPERTIES = [
    {"name": "numemployees", "type": {"kind": "decimal", "precision": 76, "scale": 37}},
    {"name": "date_of_birth", "type": {"kind": "date"}},
    {"name": "company", "type": {"kind": "string"}},
]
OUT: dict[str, Any] = copy.deepcopy(OUT_SCHEMA)
OUT["properties"][0]["type"]["properties"] += [{**p, "nullable": True} for p in HUBSPOT_PROPERTIES]
MAPPING = {
    "contact.firstname": "first_name",
    "contact.numemployees": "score",
    "contact.date_of_birth": "birth_date",
    "contact.company": "nickname",
}
MAPPED = [key.removeprefix("contact.") for key in MAPPING]
PROFILES = 12


def profile(i: int) -> dict[str, Any]:
    return person(
        i,
        score=i + 0.5,
        birth_date=date(1990, 1, i + 1),
        last_seen=datetime(2024, 5, i + 1, 12, tzinfo=UTC),
        nickname=f"Zoë {i}",
    )


#: The bad values: the profile holding one, the column set to it, and how the profile fails.
BAD_VALUES = [
    (
        "p1",
        "first_name = repeat('x', 101)",
        "InputValidation",
        'property "first_name" is longer than 100 characters: "' + "x" * 50 + '…"',
    ),
    (
        "p2",
        "address_country = 'USA'",
        "InputValidation",
        'property "address.country" is longer than 2 characters: "USA"',
    ),
    (
        "p3",
        "customer_id = 2147483648",
        "InputValidation",
        'property "customer_id" is out of range [-2147483648, 2147483647]: 2147483648',
    ),
    (
        "p4",
        "nickname = {not_utf8}",
        "InputValidation",
        'property "nickname" contains invalid UTF-8 encoded characters',
    ),
    (
        "p5",
        "score = 'NaN'",  # a float(64) allows NaN; HubSpot's numbers do not
        "OutputValidation",
        "number «score» is not a «decimal(76,37)» value while mapping to «contact.numemployees»",
    ),
    (
        "p6",
        "birth_date = '20000-01-01'",
        "InputValidation",
        'property "birth_date" is not a valid date (YYYY-MM-DD): "20000-01-01"',
    ),
    (
        "p7",
        "last_seen = '20000-06-01 12:00:00'",
        "InputValidation",
        'property "last_seen" is not a valid datetime (ISO 8601): "20000-06-01 12:00:00"',
    ),
]
#: Per warehouse: the nickname column made binary, and bytes that are not UTF-8.
BINARY = {
    "DuckDB": ("BLOB USING encode(nickname)", "'\\xFF\\xFE'::BLOB"),
    "PostgreSQL": ("BYTEA USING convert_to(nickname, 'UTF8')", "'\\xfffe'::BYTEA"),
}


def load_bad_data(target: Target) -> None:
    schema = parse_type(SCHEMA)
    warehouse = target.open()
    try:
        create_profiles_table(warehouse, "profiles", "_kpid", schema)
        insert_profiles(
            warehouse, "profiles", "_kpid", schema, ((f"p{i}", profile(i)) for i in range(PROFILES))
        )
    finally:
        warehouse.close()
    binary_type, not_utf8 = BINARY[target.kind]
    target.sql(f"ALTER TABLE profiles ALTER COLUMN nickname TYPE {binary_type}")
    target.sql("ALTER TABLE profiles ALTER COLUMN customer_id TYPE BIGINT")
    for profile_id, assignment, _, _ in BAD_VALUES:
        setting = assignment.format(not_utf8=not_utf8)
        target.sql(f"UPDATE profiles SET {setting} WHERE _kpid = '{profile_id}'")


def test_values_the_schemas_do_not_allow_fail_their_profiles_and_the_run_goes_on(
    target: Target,
) -> None:
    load_bad_data(target)
    config = target.config(
        filter=None,
        inSchema=SCHEMA,
        outSchema=OUT,
        transformation={"mapping": MAPPING, "function": None},
    )
    config = dataclasses.replace(config, profile_schema=parse_type(SCHEMA))

    summary = target.export(config)

    assert summary.outcome == "PartiallyFailed"
    assert summary.error == f"{len(BAD_VALUES)} of {PROFILES} profiles failed"
    counts = {k: v for k, v in summary.counts.items() if v}
    assert counts == {
        "selected": PROFILES,
        "read": PROFILES,
        "invalidInput": len(BAD_VALUES) - 1,
        "outputValidationFailed": 1,
        "created": PROFILES - len(BAD_VALUES),
    }
    failures = {(profile_id, step, message) for profile_id, _, step, message in BAD_VALUES}
    assert {(s.profile, s.step, s.message) for s in summary.error_samples} == failures
    recorded = target.sql(f"SELECT profile_id, step, message FROM {ERRORS_TABLE}")
    assert {tuple(row) for row in recorded} == failures
    good = [0, *range(len(BAD_VALUES) + 1, PROFILES)]
    contacts = target.contacts()
    assert sorted(contacts) == sorted(f"user{i}@example.com" for i in good)
    assert {k: contacts["user8@example.com"]["properties"][k] for k in MAPPED} == {
        "firstname": "First8",
        "numemployees": "8.5",
        "date_of_birth": "1990-01-09",
        "company": "Zoë 8",  # UTF-8 bytes in a binary column: text
    }

    writes = requests_to(target, WRITES)
    rerun = target.export(config)

    assert rerun.outcome == "PartiallyFailed"
    assert (rerun.counts["unchanged"], rerun.counts["read"]) == (
        PROFILES - len(BAD_VALUES),
        len(BAD_VALUES),
    )
    assert {(s.profile, s.step, s.message) for s in rerun.error_samples} == failures
    assert requests_to(target, WRITES) == writes
