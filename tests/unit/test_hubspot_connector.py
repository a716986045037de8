"""The HubSpot connector: its schema rules and value encoding, then every call against the
HubSpot twin (a loopback server speaking HubSpot's CRM v3 API) on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from sluice.apps.connector import AppUser, ConnectorError, WriteRecord, WriteResult
from sluice.apps.hubspot import (
    FREE_TEXT_MAX_LENGTH,
    HubSpotConnector,
    build_schema,
    encode_value,
)
from sluice.apps.registry import connector_factory
from sluice.model.alignment import check_alignment
from sluice.model.types import Kind, parse_type, property_by_path, type_to_json
from sluice.twins.hubspot import HubSpotTwin, serve
from tests.connector_runs import FakeTime, run_connector
from tests.support import SEED_PAYLOAD

TOKEN = "pat-na1-test"
T = TypeVar("T")


def prop(name: str, type_: str, group: str = "contactinformation", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "label": name.title(),
        "type": type_,
        "fieldType": "text",
        "groupName": group,
        "modificationMetadata": {"readOnlyValue": extra.pop("read_only", False)},
        **extra,
    }


# A trimmed recording of GET /crm/v3/properties/contacts.
RECORDED = [
    prop("hs_language", "enumeration", options=[{"value": "en", "hidden": False}]),
    prop("email", "string", description="A contact's email address"),
    prop("firstname", "string"),
    prop("hs_object_id", "number", read_only=True),
    prop("createdate", "datetime", read_only=True),
    prop("date_of_birth", "date"),
    prop("annualrevenue", "number"),
    prop("phone", "phone_number"),
    prop(
        "lifecyclestage",
        "enumeration",
        group="contactlcs",
        options=[
            {"value": "lead", "hidden": False},
            {"value": "legacy", "hidden": True},
            {"value": "customer", "hidden": False},
        ],
    ),
    prop("retired", "enumeration", options=[{"value": "x", "hidden": True}]),
    prop("hs_email_optout", "bool", group="emailinformation"),
    prop("hs_geo", "object_coordinates"),
    prop("last_seen", "datetime", group="analyticsinformation"),
    prop("loyalty_tier", "string", group="Loyalty & rewards"),
]


# ---------------------------------------------------------------------------------------------
# Schema and values (no network)
# ---------------------------------------------------------------------------------------------


def test_the_destination_schema_groups_properties_as_krenalis_does():
    schema = build_schema(RECORDED)
    assert [p.name for p in schema.type.properties] == [
        "contact",
        "emails",
        "analytics",
        "contact_lifecycle",
        "Loyalty___rewards",
    ]
    contact = schema.type.properties[0]
    # Read-only (hs_object_id, createdate), internal (hs_geo) and all-hidden enums are left
    # out; hs_* come last.
    assert [p.name for p in contact.type.properties] == [
        "email",
        "firstname",
        "date_of_birth",
        "annualrevenue",
        "phone",
        "hs_language",
    ]
    assert not contact.read_optional
    assert schema.type.properties[-1].read_optional  # a group without a fixed name
    assert all(p.nullable for _, p in _leaves(schema.type))


def test_hubspot_types_become_sluice_types():
    t = build_schema(RECORDED).type
    email = property_by_path(t, "contact.email")
    assert email.type.kind is Kind.STRING
    assert email.type.max_length is None  # the limit is enforced per record instead
    assert email.description == "Email\n\nA contact's email address"
    assert str(property_by_path(t, "contact.annualrevenue").type) == "decimal(76,37)"
    assert property_by_path(t, "contact.date_of_birth").type.kind is Kind.DATE
    assert property_by_path(t, "analytics.last_seen").type.kind is Kind.DATETIME
    assert property_by_path(t, "emails.hs_email_optout").type.kind is Kind.BOOLEAN
    assert property_by_path(t, "contact.phone").type.kind is Kind.STRING
    stage = property_by_path(t, "contact_lifecycle.lifecyclestage").type
    assert stage.values == ("lead", "customer")  # hidden options are not offered


def test_the_schema_round_trips_through_its_json():
    t = build_schema(RECORDED).type
    assert parse_type(type_to_json(t)) == t


def test_output_paths_map_to_hubspot_property_names():
    fields = build_schema(RECORDED).fields
    assert fields["contact.email"].name == "email"
    assert fields["contact.email"].unique
    assert not fields["contact.firstname"].unique
    assert fields["Loyalty___rewards.loyalty_tier"].name == "loyalty_tier"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        ("Ada", "Ada"),
        (42, "42"),
        (Decimal("12.5000"), "12.5"),
        (Decimal("1E+3"), "1000"),
        (Decimal("-0.00"), "0"),
        (3.0, "3"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (date(2024, 2, 29), "2024-02-29"),
    ],
)
def test_values_become_hubspot_text(value: Any, text: str):
    assert encode_value(value) == text


def test_settings_and_credentials_are_checked():
    factory = connector_factory("hubspot")
    with pytest.raises(ConnectorError) as err:
        factory({"portal": 1}, {"accessToken": TOKEN})
    assert str(err.value) == (
        'HubSpot connection settings cannot hold "portal": the only setting is "baseUrl"'
    )
    with pytest.raises(ConnectorError, match='the HubSpot credentials have no "accessToken"'):
        factory({}, {})
    with pytest.raises(ConnectorError, match="1 to 255 printable ASCII characters"):
        factory({}, {"accessToken": "tab\there"})
    with pytest.raises(ConnectorError, match="1 to 255 printable ASCII characters"):
        factory({}, {"accessToken": "x" * 256})
    with pytest.raises(ConnectorError, match='"baseUrl" must be an http or https URL'):
        factory({"baseUrl": "ftp://x"}, {"accessToken": TOKEN})


# ---------------------------------------------------------------------------------------------
# Against the twin
# ---------------------------------------------------------------------------------------------

CUSTOMER_ID = {"name": "customer_id", "type": "string", "fieldType": "text"}
MEMBER_NO = {
    "name": "member_no",
    "type": "string",
    "fieldType": "text",
    "hasUniqueValue": True,
}


@pytest.fixture(scope="module")
def twin_url() -> Iterator[tuple[HubSpotTwin, str]]:
    twin = HubSpotTwin(TOKEN, custom_properties=[CUSTOMER_ID, MEMBER_NO])
    with serve(twin) as url:
        yield twin, url


@pytest.fixture
def twin(twin_url: tuple[HubSpotTwin, str]) -> HubSpotTwin:
    twin_url[0].reset()
    return twin_url[0]


def with_connector(
    url: str, body: Callable[[HubSpotConnector], Awaitable[T]], fake: FakeTime | None = None
) -> T:
    return run_connector(
        lambda hooks: HubSpotConnector({"baseUrl": url}, {"accessToken": TOKEN}, **hooks),
        body,
        fake,
    )


def test_a_value_longer_than_hubspot_holds_fails_only_its_record(twin, twin_url):
    async def body(c: HubSpotConnector) -> list[WriteResult]:
        return await c.create(
            "contact.email",
            [
                contact(1, "long@example.com", firstname="x" * (FREE_TEXT_MAX_LENGTH + 1)),
                contact(2, "short@example.com", firstname="x" * FREE_TEXT_MAX_LENGTH),
            ],
        )

    results = {r.key: r for r in with_connector(twin_url[1], body)}
    assert results[1].error == (
        '"contact.firstname" is longer than 65,536 characters, the most a HubSpot property holds'
    )
    assert results[2].error is None and results[2].external_id


def contact(key: int, email: str | None, **more: Any) -> WriteRecord:
    return WriteRecord(key, None, {"contact": {"email": email, **more}})


def test_the_destination_schema_from_the_twin_aligns_with_a_seed_like_pipeline(twin, twin_url):
    schema = with_connector(twin_url[1], lambda c: c.destination_schema())
    email = property_by_path(schema, "contact.email")
    assert email.nullable
    assert property_by_path(schema, "contact.customer_id").type.kind is Kind.STRING
    out = parse_type(SEED_PAYLOAD["outSchema"])  # the seed's outSchema, as written
    check_alignment(out, schema, "CreateOnly", other="the application's schema")


def test_create_then_lookup_by_email(twin, twin_url):
    async def body(c: HubSpotConnector) -> tuple[list[WriteResult], list[AppUser]]:
        created = await c.create(
            "contact.email",
            [
                contact(1, "ada@example.com", firstname="Ada"),
                contact(2, "Grace@Example.com", firstname="Grace"),
            ],
        )
        found = await c.lookup(
            "contact.email", ["ada@example.com", "grace@example.com", "nobody@example.com"]
        )
        return created, found

    created, found = with_connector(twin_url[1], body)
    assert [r.key for r in created] == [1, 2]
    assert all(r.external_id and r.error is None for r in created)
    ids = {r.key: r.external_id for r in created}
    # HubSpot stores emails lower-cased; lookup returns the value as HubSpot holds it.
    assert sorted(found, key=lambda u: u.external_id) == [
        AppUser(ids[1], "ada@example.com"),
        AppUser(ids[2], "grace@example.com"),
    ]
    assert {c["properties"]["firstname"] for c in twin.contacts()} == {"Ada", "Grace"}


def test_lookup_by_a_non_unique_property_uses_search(twin, twin_url):
    twin.add_contacts(
        [
            {"email": "a@example.com", "customer_id": "C1"},
            {"email": "b@example.com", "customer_id": "C1"},
            {"email": "c@example.com", "customer_id": "C2"},
        ]
    )
    found = with_connector(twin_url[1], lambda c: c.lookup("contact.customer_id", ["C1", "C3"]))
    assert sorted(u.matching_value for u in found) == ["C1", "C1"]
    assert "POST /crm/v3/objects/contacts/search" in twin.stats()["requests"]


def test_lookup_by_a_unique_custom_property_reads_by_id_property(twin, twin_url):
    twin.add_contacts([{"email": "a@example.com", "member_no": "M-7"}])
    found = with_connector(twin_url[1], lambda c: c.lookup("contact.member_no", ["M-7", "M-8"]))
    assert [u.matching_value for u in found] == ["M-7"]
    assert "POST /crm/v3/objects/contacts/search" not in twin.stats()["requests"]


def test_a_create_colliding_on_the_matching_value_names_the_holder(twin, twin_url):
    (existing,) = twin.add_contacts([{"email": "taken@example.com"}])
    results = with_connector(
        twin_url[1],
        lambda c: c.create(
            "contact.email",
            [contact(1, "new@example.com"), contact(2, "Taken@Example.com")],
        ),
    )
    assert results[0].external_id is not None and results[0].error is None
    assert (results[1].external_id, results[1].error) == (None, None)
    assert results[1].existing_id == existing


def test_a_conflict_on_a_property_that_is_not_the_matching_one_fails_its_record(twin, twin_url):
    (existing,) = twin.add_contacts([{"email": "taken@example.com", "member_no": "M-1"}])
    results = with_connector(
        twin_url[1],
        lambda c: c.create(
            "contact.member_no",
            [contact(1, "taken@example.com", member_no="M-2")],
        ),
    )
    assert results[0].existing_id is None
    assert results[0].error is not None and results[0].error.startswith("CONFLICT: ")
    assert existing in results[0].error


def test_a_create_refused_whole_for_existing_emails_reads_once_and_creates_the_rest(twin, twin_url):
    taken = twin.add_contacts([{"email": "b@example.com"}, {"email": "d@example.com"}])
    emails = ["a@example.com", "B@example.com", "c@example.com", "d@example.com"]
    results = with_connector(
        twin_url[1],
        lambda c: c.create("contact.email", [contact(k, e) for k, e in enumerate(emails)]),
    )
    assert [r.existing_id for r in results] == [None, taken[0], None, taken[1]]
    assert all(r.error is None for r in results)
    assert results[0].external_id and results[2].external_id
    assert twin.contact_count() == 4
    requests = twin.stats()["requests"]
    # One whole-batch 409, one read of the batch's emails, one create of the two missing.
    assert requests["POST /crm/v3/objects/contacts/batch/create"] == {"409": 1, "201": 1}
    assert sum(requests["POST /crm/v3/objects/contacts/batch/read"].values()) == 1


def test_upsert_creates_or_updates_by_email_in_one_request(twin, twin_url):
    (ada,) = twin.add_contacts([{"email": "ada@example.com", "firstname": "Ada"}])
    records = [
        contact(1, "Ada@Example.com", firstname="Augusta"),
        contact(2, "grace@example.com", firstname="Grace"),
        WriteRecord(3, None, {"contact": {"firstname": "No email"}}),
    ]
    results = with_connector(twin_url[1], lambda c: c.upsert("contact.email", records))
    assert (results[0].external_id, results[0].created) == (ada, False)
    assert results[1].external_id and results[1].created is True
    assert results[2].error == 'no value of "email" to find the contact by'
    names = {c["properties"]["email"]: c["properties"]["firstname"] for c in twin.contacts()}
    assert names == {"ada@example.com": "Augusta", "grace@example.com": "Grace"}
    assert twin.stats()["requests"]["POST /crm/v3/objects/contacts/batch/upsert"] == {"200": 1}


def test_upserts_by_unique_properties_only(twin, twin_url):
    async def which(c: HubSpotConnector) -> list[bool]:
        return [
            await c.upserts(path)
            for path in ("contact.email", "contact.member_no", "contact.customer_id")
        ]

    assert with_connector(twin_url[1], which) == [True, True, False]


def test_the_destination_identity_is_the_portal_whatever_the_token():
    other = HubSpotTwin("pat-other", portal_id=7)
    with serve(other) as url:

        async def identity() -> str:
            connector = HubSpotConnector({"baseUrl": url}, {"accessToken": "pat-other"})
            try:
                return await connector.destination_identity()
            finally:
                await connector.aclose()

        assert asyncio.run(identity()) == "hubspot:portal/7"


def test_a_twin_is_portal_62515_unless_told_another(twin_url):
    assert with_connector(twin_url[1], lambda c: c.destination_identity()) == (
        "hubspot:portal/62515"
    )


def test_an_invalid_value_fails_only_its_record(twin, twin_url):
    results = with_connector(
        twin_url[1],
        lambda c: c.create(
            "contact.email",
            [
                contact(1, "ok@example.com"),
                contact(2, "fine@example.com", date_of_birth="not a date"),
            ],
        ),
    )
    assert results[0].error is None
    assert results[1].error is not None and results[1].external_id is None


def test_update_by_id_reports_a_missing_contact_on_its_record_only(twin, twin_url):
    (known,) = twin.add_contacts([{"email": "u@example.com", "firstname": "Old"}])
    results = with_connector(
        twin_url[1],
        lambda c: c.update(
            [
                WriteRecord(1, known, {"contact": {"firstname": "New", "lastname": None}}),
                WriteRecord(2, "999999", {"contact": {"firstname": "Ghost"}}),
            ]
        ),
    )
    assert results[0] == WriteResult(1, external_id=known)
    assert results[1].error is not None and results[1].error.startswith("OBJECT_NOT_FOUND: ")
    assert twin.contacts()[0]["properties"]["firstname"] == "New"


def test_a_create_whose_answer_is_lost_is_checked_not_repeated(twin, twin_url):
    twin.fail_next(1, 503, path="batch/create", after_apply=True)
    records = [contact(1, "one@example.com"), contact(2, "two@example.com")]
    results = with_connector(twin_url[1], lambda c: c.create("contact.email", records))
    assert all(r.external_id for r in results)
    assert twin.contact_count() == 2  # no duplicate, no second create
    assert twin.stats()["creates"] == 2
    stored = {c["properties"]["email"]: c["id"] for c in twin.contacts()}
    assert {r.key: r.external_id for r in results} == {
        1: stored["one@example.com"],
        2: stored["two@example.com"],
    }


def test_a_create_that_failed_before_applying_is_sent_again(twin, twin_url):
    twin.fail_next(1, 502, path="batch/create")
    results = with_connector(
        twin_url[1], lambda c: c.create("contact.email", [contact(1, "x@example.com")])
    )
    assert results[0].external_id is not None
    assert twin.contact_count() == 1


def test_updates_are_retried_after_a_5xx(twin, twin_url):
    (known,) = twin.add_contacts([{"email": "r@example.com"}])
    twin.fail_next(2, 503, path="batch/update")
    fake = FakeTime()
    results = with_connector(
        twin_url[1],
        lambda c: c.update([WriteRecord(1, known, {"contact": {"firstname": "R"}})]),
        fake,
    )
    assert results == [WriteResult(1, external_id=known)]
    assert fake.sleeps[:2] == [0.5, 1.0]


def test_a_429_pauses_and_retries(twin, twin_url):
    twin.force_rate_limit(1)
    fake = FakeTime()

    async def body(c: HubSpotConnector) -> Any:
        users = await c.lookup("contact.email", ["z@example.com"])
        return users, c.http.stats

    users, stats = with_connector(twin_url[1], body, fake)
    assert users == []
    assert stats.rate_limited == 1
    assert fake.sleeps and fake.sleeps[0] == 10.0  # X-HubSpot-RateLimit-Interval-Milliseconds


def test_a_revoked_token_stops_the_run(twin, twin_url):
    twin.revoke_token()
    with pytest.raises(ConnectorError) as err:
        with_connector(twin_url[1], lambda c: c.destination_schema())
    assert str(err.value).startswith("HubSpot refused the access token (401 Unauthorized): ")


def test_a_batch_of_one_hundred_is_one_call(twin, twin_url):
    records = [contact(i, f"user{i}@example.com") for i in range(100)]
    results = with_connector(twin_url[1], lambda c: c.create("contact.email", records))
    assert all(r.external_id for r in results)
    assert twin.stats()["requests"]["POST /crm/v3/objects/contacts/batch/create"] == {"201": 1}


def _leaves(t: Any) -> list[tuple[str, Any]]:
    out = []
    for p in t.properties:
        if p.type.kind is Kind.OBJECT:
            out += _leaves(p.type)
        else:
            out.append((p.name, p))
    return out
