"""Exports end to end: a real warehouse (DuckDB and PostgreSQL), the HubSpot connector, the
loopback HubSpot twin. Each test asserts what a user sees: the run summary, what the
application holds, what was sent, and Sluice's bookkeeping in the warehouse."""

from __future__ import annotations

import dataclasses
import io
import uuid
from typing import Any

import pytest

from sluice.engine.export import run_export
from sluice.filters.evaluate import compile_predicate
from sluice.filters.model import parse_filter
from sluice.model.types import parse_type
from sluice.model.values import decode_record
from sluice.twins.hubspot import HubSpotTwin, serve
from tests.integration.conftest import CUSTOMER_CODE, PROFILE_SCHEMA, TOKEN, Target

WRITES = (
    "POST /crm/v3/objects/contacts/batch/create",
    "POST /crm/v3/objects/contacts/batch/update",
    "POST /crm/v3/objects/contacts/batch/upsert",
)
READ = "POST /crm/v3/objects/contacts/batch/read"
US_ONLY = {
    "logical": "and",
    "conditions": [{"property": "address.country", "operator": "is", "values": ["US"]}],
}


def person(i: int, **changes: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "email": f"user{i}@example.com",
        "customer_id": 1000 + i,
        "account_id": uuid.uuid5(uuid.NAMESPACE_URL, f"account-{i}"),
        "loyalty_points": i * 10,
        "address": {"city": f"City{i % 7}", "country": "US" if i % 2 == 0 else "GB"},
    }
    profile.update(changes)
    return profile


def people(count: int, start: int = 0) -> dict[str, dict[str, Any]]:
    return {f"p{i:05d}": person(i) for i in range(start, start + count)}


def requests_to(target: Target, endpoints: tuple[str, ...]) -> int:
    stats = target.twin.stats()["requests"]
    return sum(sum(stats.get(endpoint, {}).values()) for endpoint in endpoints)


def exported_rows(target: Target) -> int:
    ((count,),) = target.sql("SELECT COUNT(*) FROM sluice_exported_profiles")
    return int(count)


# -------------------------------------------------------------------------------------------
# Change detection
# -------------------------------------------------------------------------------------------


def test_a_first_run_creates_the_selected_profiles_and_a_rerun_sends_nothing(
    target: Target,
) -> None:
    profiles = people(60)
    profiles["p00002"]["email"] = None  # US, no matching value
    profiles["p00004"]["email"] = "user6@example.com"  # US, shares p00006's email
    target.load(profiles)

    first = target.export()

    assert first.outcome == "PartiallyFailed"
    assert first.counts["selected"] == 30
    assert first.counts["withoutMatchingValue"] == 1
    assert first.counts["duplicated"] == 2
    assert first.counts["created"] == 27
    contacts = target.contacts()
    assert sorted(contacts) == sorted(
        f"user{i}@example.com" for i in range(0, 60, 2) if i not in (2, 4, 6)
    )
    assert contacts["user8@example.com"]["properties"]["firstname"] == "First8"
    samples = {(s.profile, s.step) for s in first.error_samples}
    assert ("p00004", "Receive") in samples and ("p00006", "Receive") in samples
    assert ("p00002", "Receive") in samples  # reported, not silently dropped

    before = requests_to(target, (*WRITES, "POST /crm/v3/objects/contacts/batch/read"))
    second = target.export()

    assert second.counts["unchanged"] == 27
    assert second.counts["read"] == 2  # only the duplicates, reported again
    assert second.counts["created"] == 0
    assert requests_to(target, (*WRITES, "POST /crm/v3/objects/contacts/batch/read")) == before


def test_a_rerun_after_changes_sends_exactly_the_changed_profiles(target: Target) -> None:
    target.load(people(400))
    config = target.config(exportMode="CreateOrUpdate", filter=US_ONLY)
    assert target.export(config).counts["created"] == 200
    changed = [f"p{i:05d}" for i in range(0, 400, 2)][:2]  # 1 % of the selected profiles
    for profile_id in changed:
        target.sql(
            "UPDATE profiles SET first_name = 'Renamed' WHERE _kpid = "
            + ("%s" if target.kind == "PostgreSQL" else "?"),
            [profile_id],
        )
    updates_before = target.twin.stats()["updates"]

    rerun = target.export(config)

    assert rerun.outcome == "Succeeded"
    assert (rerun.counts["read"], rerun.counts["updated"], rerun.counts["created"]) == (2, 2, 0)
    assert rerun.counts["unchanged"] == 198
    assert target.twin.stats()["updates"] - updates_before == 2
    assert target.contacts()["user0@example.com"]["properties"]["firstname"] == "Renamed"


def test_a_changed_mapping_re_evaluates_every_profile(target: Target) -> None:
    target.load(people(20))
    target.export(target.config(exportMode="CreateOrUpdate"))
    mapping = {"contact.firstname": "last_name", "contact.lastname": "first_name"}

    rerun = target.export(
        target.config(
            exportMode="CreateOrUpdate", transformation={"mapping": mapping, "function": None}
        )
    )

    assert rerun.counts["updated"] == 10
    assert target.contacts()["user2@example.com"]["properties"]["firstname"] == "Last2"


def test_full_re_evaluates_unchanged_profiles(target: Target) -> None:
    target.load(people(20))
    config = target.config(exportMode="CreateOrUpdate")
    target.export(config)
    assert target.export(config, full=True).counts["updated"] == 10


# -------------------------------------------------------------------------------------------
# Export modes and duplicates
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("CreateOnly", {"created": 3, "alreadyInApplication": 2, "updated": 0}),
        ("UpdateOnly", {"created": 0, "notInApplication": 3, "updated": 2}),
        ("CreateOrUpdate", {"created": 3, "updated": 2}),
    ],
)
def test_export_modes_decide_between_create_and_update(
    target: Target, mode: str, expected: dict[str, int]
) -> None:
    target.load({f"p{i}": person(i) for i in (0, 2, 4, 6, 8)})
    target.twin.add_contacts(
        [{"email": "USER0@example.com", "firstname": "Old"}, {"email": "user2@example.com"}]
    )

    summary = target.export(target.config(exportMode=mode))

    assert summary.outcome == "Succeeded"
    assert {k: summary.counts[k] for k in expected} == expected
    contacts = target.contacts()
    first_name = contacts["user0@example.com"]["properties"]["firstname"]
    assert first_name == ("First0" if mode != "CreateOnly" else "Old")
    assert ("user4@example.com" in contacts) == (mode != "UpdateOnly")
    assert len(contacts) == (2 if mode == "UpdateOnly" else 5)


def conflicts(target: Target) -> int:
    """How many answers of the twin were 409s."""
    return sum(statuses.get("409", 0) for statuses in target.twin.stats()["requests"].values())


@pytest.mark.parametrize(
    ("mode", "expected", "contacts_after"),
    [
        ("CreateOnly", {"created": 900, "alreadyInApplication": 100}, 1000),
        ("UpdateOnly", {"updated": 100, "notInApplication": 900}, 100),
        ("CreateOrUpdate", {"created": 900, "updated": 100}, 1000),
    ],
)
def test_a_tenth_already_in_the_app_and_no_bookkeeping_costs_no_conflict(
    target: Target, mode: str, expected: dict[str, int], contacts_after: int
) -> None:
    target.load(people(2000))  # 1,000 US profiles selected
    target.twin.add_contacts(
        [{"email": f"USER{i}@example.com", "firstname": "Old"} for i in range(0, 2000, 20)]
    )

    summary = target.export(target.config(exportMode=mode))

    assert summary.outcome == "Succeeded"
    assert {k: summary.counts[k] for k in expected} == expected
    assert conflicts(target) == 0
    contacts = target.contacts()
    assert len(contacts) == contacts_after
    kept = contacts["user20@example.com"]["properties"]["firstname"]
    assert kept == ("Old" if mode == "CreateOnly" else "First20")
    # A read (or nothing, for upserts) and a write per 100 profiles: 10 batches of targets.
    sent = requests_to(target, (*WRITES, READ))
    assert sent == {"CreateOnly": 10 + 9, "UpdateOnly": 10 + 1, "CreateOrUpdate": 10}[mode]


@pytest.mark.parametrize("mode", ["CreateOnly", "UpdateOnly", "CreateOrUpdate"])
def test_a_connection_pointed_at_another_account_starts_afresh_there(
    target: Target, mode: str
) -> None:
    target.load(people(40))  # 20 US profiles
    first = target.export(target.config(exportMode="CreateOrUpdate"))
    assert first.counts["created"] == 20 and not first.notes
    other_twin = HubSpotTwin(
        TOKEN, custom_properties=[CUSTOMER_CODE], portal_id=4_000_001, rate_limit=False
    )
    other_twin.add_contacts([{"email": "user0@example.com"}, {"email": "user2@example.com"}])
    with serve(other_twin) as url:
        other = dataclasses.replace(target, twin=other_twin, base_url=url)

        moved = other.export(other.config(exportMode=mode))

        expected = {
            "CreateOnly": {"created": 18, "alreadyInApplication": 2},
            "UpdateOnly": {"updated": 2, "notInApplication": 18},
            "CreateOrUpdate": {"created": 18, "updated": 2},
        }[mode]
        assert {k: moved.counts[k] for k in expected} == expected
        assert moved.counts["unchanged"] == 0
        assert len(moved.notes) == 1
        assert "hubspot:portal/4000001 instead of hubspot:portal/62515" in moved.notes[0]
        assert len(other.contacts()) == (2 if mode == "UpdateOnly" else 20)
        # Back to the first account: it is new again to the bookkeeping, and nothing is lost.
        back = target.export(target.config(exportMode="CreateOrUpdate"))
        assert back.counts["updated"] == 20 and len(back.notes) == 1
        assert len(target.contacts()) == 20


def test_a_new_account_forgets_only_that_pipelines_acknowledgements(target: Target) -> None:
    target.load(people(20))
    moving = target.config(exportMode="CreateOrUpdate")
    staying = dataclasses.replace(moving, pipeline_id=moving.pipeline_id + 1)
    target.export(moving)
    target.export(staying)
    other_twin = HubSpotTwin(
        TOKEN, custom_properties=[CUSTOMER_CODE], portal_id=4_000_002, rate_limit=False
    )
    with serve(other_twin) as url:
        other = dataclasses.replace(target, twin=other_twin, base_url=url)
        other.export(dataclasses.replace(moving, settings={"baseUrl": url}))

    rows = target.sql(
        "SELECT pipeline_id, COUNT(*) FROM sluice_exported_profiles GROUP BY pipeline_id "
        "ORDER BY pipeline_id"
    )
    assert [tuple(row) for row in rows] == [(moving.pipeline_id, 10), (staying.pipeline_id, 10)]
    destinations = target.sql(
        "SELECT pipeline_id, destination FROM sluice_destinations ORDER BY pipeline_id"
    )
    assert [tuple(row) for row in destinations] == [
        (moving.pipeline_id, "hubspot:portal/4000002"),
        (staying.pipeline_id, "hubspot:portal/62515"),
    ]
    assert target.export(staying).counts["unchanged"] == 10


def test_a_new_token_for_the_same_account_changes_nothing(target: Target) -> None:
    target.load(people(20))
    target.export(target.config(exportMode="CreateOrUpdate"))
    target.twin.credential = "pat-rotated"  # the same portal, another private-app token
    config = target.config(exportMode="CreateOrUpdate")
    rotated = dataclasses.replace(config, credentials={"accessToken": "pat-rotated"})

    rerun = target.export(rotated)

    assert rerun.outcome == "Succeeded" and not rerun.notes
    assert (rerun.counts["unchanged"], rerun.counts["read"]) == (10, 0)


@pytest.mark.parametrize("update_on_duplicates", [False, True])
@pytest.mark.parametrize("mode", ["CreateOnly", "UpdateOnly", "CreateOrUpdate"])
def test_every_mode_meets_duplicates_on_both_sides(
    target: Target, mode: str, update_on_duplicates: bool
) -> None:
    """p0 matches two app users; p2 and p4 share a matching value in the warehouse; p6
    matches nobody."""
    target.load(
        {"p0": person(0), "p2": person(2), "p4": person(4, customer_id=1002), "p6": person(6)}
    )
    target.twin.add_contacts(
        [
            {"email": "a@example.com", "customer_code": "1000"},
            {"email": "b@example.com", "customer_code": "1000"},
            {"email": "c@example.com", "customer_code": "1002"},
        ]
    )
    config = target.config(
        exportMode=mode,
        updateOnDuplicates=update_on_duplicates,
        matching={"in": "customer_id", "out": "contact.customer_code"},
    )

    summary = target.export(config)

    names = {
        c["properties"].get("customer_code"): c["properties"].get("firstname")
        for c in target.twin.contacts()
        if c["properties"].get("email") != "a@example.com"
    }
    first_a = next(
        c["properties"].get("firstname")
        for c in target.twin.contacts()
        if c["properties"].get("email") == "a@example.com"
    )
    messages = {(s.profile, s.message) for s in summary.error_samples}
    shared = "profile has the same «customer_id» (the matching property) as other profiles "
    assert {("p2", shared + "selected for export"), ("p4", shared + "selected for export")} <= (
        messages
    )
    assert names["1002"] is None  # the shared value's user is left alone
    fans_out = mode != "CreateOnly" and update_on_duplicates
    assert (first_a == "First0") == fans_out
    expected = {
        "duplicated": 2 + (mode != "CreateOnly" and not update_on_duplicates),
        "updated": 1 if fans_out else 0,  # profiles: p0, written to both of its users
        "alreadyInApplication": 1 if mode == "CreateOnly" else 0,
        "created": 0 if mode == "UpdateOnly" else 1,
        "notInApplication": 1 if mode == "UpdateOnly" else 0,
    }
    assert {k: summary.counts[k] for k in expected} == expected
    app_duplicates = (
        "p0",
        "duplicates found for the matching property customer_id in the app users",
    )
    assert (app_duplicates in messages) == (mode != "CreateOnly" and not update_on_duplicates)
    assert ("1006" in names) == (mode != "UpdateOnly")
    assert summary.outcome == "PartiallyFailed"


def test_int_and_uuid_matching_values_match_on_both_warehouses(target: Target) -> None:
    """Krenalis compared a native int or uuid column with text on PostgreSQL, which fails."""
    target.load({"p0": person(0), "p2": person(2)})
    account = str(person(2)["account_id"])
    target.twin.add_contacts([{"email": "known@example.com", "customer_code": account}])
    config = target.config(
        exportMode="CreateOrUpdate", matching={"in": "account_id", "out": "contact.customer_code"}
    )

    summary = target.export(config)

    assert (summary.counts["created"], summary.counts["updated"]) == (1, 1)
    codes = {c["properties"]["customer_code"] for c in target.twin.contacts()}
    assert codes == {account, str(person(0)["account_id"])}
    assert target.export(config).counts["read"] == 0


def test_a_run_where_the_application_refuses_every_record_fails(target: Target) -> None:
    target.load({"p0": person(0, email="not an email at all")})

    summary = target.export()

    assert summary.outcome == "Failed"
    assert summary.counts["failed"] == 1
    assert summary.error_samples[0].profile == "p0"
    assert "INVALID_EMAIL" in summary.error_samples[0].message
    ((step, message),) = target.sql("SELECT step, message FROM sluice_run_errors")
    assert step == "Finalize" and "INVALID_EMAIL" in message
    assert exported_rows(target) == 0


# -------------------------------------------------------------------------------------------
# Filters: the warehouse selects what the in-memory evaluator selects
# -------------------------------------------------------------------------------------------

FILTERS = [
    US_ONLY,
    {
        "logical": "and",
        "conditions": [{"property": "address.country", "operator": "is not", "values": ["US"]}],
    },
    {
        "logical": "or",
        "conditions": [
            {"property": "loyalty_points", "operator": "is between", "values": ["100", "200"]},
            {"property": "first_name", "operator": "starts with", "values": ["First3"]},
        ],
    },
    {
        "logical": "and",
        "conditions": [
            {"property": "address.city", "operator": "is one of", "values": ["City1", "City2"]},
            {"property": "last_name", "operator": "ends with", "values": ["1"]},
        ],
    },
    {"logical": "and", "conditions": [{"property": "address.city", "operator": "does not exist"}]},
]


@pytest.mark.parametrize("filter_json", FILTERS, ids=range(len(FILTERS)))
def test_the_warehouse_selects_what_the_preview_selects(
    target: Target, filter_json: dict[str, Any]
) -> None:
    profiles = people(40)
    for i in (3, 13, 21):
        profiles[f"p{i:05d}"]["address"].pop("city")
    target.load(profiles)
    schema = parse_type(PROFILE_SCHEMA)
    keep = compile_predicate(parse_filter(filter_json, schema), schema)
    expected = sorted(
        str(p["email"]) for p in profiles.values() if keep(decode_record(schema, _as_json(p)))
    )

    summary = target.export(target.config(filter=filter_json))

    assert summary.counts["selected"] == len(expected)
    assert sorted(target.contacts()) == expected


def _as_json(profile: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in profile.items()}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_line_instead_of_json_logs(target: Target) -> None:
    target.load(people(300))
    terminal = _Terminal()

    summary = run_export(target.config(), out=io.StringIO(), err=terminal)

    assert summary.counts["created"] == 150
    shown = terminal.getvalue()
    assert shown.startswith("\r") and shown.endswith("\n")
    assert " created, 0 updated, 0 failed) of 150 read" in shown
    assert '"event"' not in shown
