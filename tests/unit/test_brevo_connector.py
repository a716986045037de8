"""The Brevo connector: its schema rules and value encoding, then every call against the Brevo
twin (a loopback server speaking Brevo's API v3) on a fake clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from typing import Any, TypeVar

import httpx
import pytest

from sluice.apps.brevo import BrevoConnector, build_schema, connect, read_rate_limit
from sluice.apps.connector import AppUser, ConnectorError, WriteRecord, WriteResult
from sluice.model.types import Kind, parse_type, property_by_path, type_to_json
from sluice.twins.brevo import BrevoTwin, serve
from sluice.twins.brevo_state import Attribute
from tests.connector_runs import FakeTime, run_connector

API_KEY = "xkeysib-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab-Ab12Cd34Ef56Gh78"
T = TypeVar("T")

# A trimmed recording of GET /contacts/attributes.
RECORDED = [
    {"name": "EMAIL", "category": "normal", "type": "text"},
    {"name": "LASTNAME", "category": "normal", "type": "text"},
    {"name": "FIRSTNAME", "category": "normal", "type": "text"},
    {"name": "EXT_ID", "category": "normal", "type": "id"},
    {"name": "BIRTHDAY", "category": "normal", "type": "date"},
    {"name": "SCORE", "category": "normal", "type": "float"},
    {"name": "VIP", "category": "normal", "type": "boolean"},
    {
        "name": "TITLE",
        "category": "category",
        "type": "text",
        "enumeration": [{"value": 1, "label": "Mr"}, {"value": 2, "label": "Ms"}],
    },
    {
        "name": "INTERESTS",
        "category": "normal",
        "type": "multiple-choice",
        "multiCategoryOptions": ["sport", "music"],
    },
    {"name": "ORDER_ID", "category": "transactional", "type": "id"},
    {"name": "CA_TOTAL", "category": "calculated", "type": "float", "calculatedValue": "SUM"},
    {"name": "GLOBAL_TOTAL", "category": "global", "type": "float", "calculatedValue": "SUM"},
]

# ---------------------------------------------------------------------------------------------
# Schema and values (no network)
# ---------------------------------------------------------------------------------------------


def test_the_destination_schema_has_the_contact_fields_then_the_writable_attributes():
    schema = build_schema(RECORDED)
    assert [p.name for p in schema.type.properties] == [
        "email",
        "ext_id",
        "emailBlacklisted",
        "smsBlacklisted",
        "listIds",
        "attributes",
    ]
    attributes = schema.type.properties[-1].type
    # EMAIL and EXT_ID are written as contact fields; calculated and global ones are Brevo's.
    assert [p.name for p in attributes.properties] == [
        "BIRTHDAY",
        "FIRSTNAME",
        "INTERESTS",
        "LASTNAME",
        "ORDER_ID",
        "SCORE",
        "TITLE",
        "VIP",
    ]
    assert all(p.nullable for p in attributes.properties)
    assert parse_type(type_to_json(schema.type)) == schema.type


def test_brevo_types_become_sluice_types():
    t = build_schema(RECORDED).type
    assert property_by_path(t, "attributes.BIRTHDAY").type.kind is Kind.DATE
    assert str(property_by_path(t, "attributes.SCORE").type) == "float(64)"
    assert property_by_path(t, "attributes.VIP").type.kind is Kind.BOOLEAN
    title = property_by_path(t, "attributes.TITLE")
    assert title.type.values == ("1", "2")
    assert title.description == "TITLE\n\n1: Mr, 2: Ms"
    interests = property_by_path(t, "attributes.INTERESTS").type
    assert interests.kind is Kind.ARRAY and interests.element_type is not None
    assert interests.element_type.values == ("sport", "music")
    assert str(property_by_path(t, "listIds").type) == "array(int(64))"


def test_settings_and_credentials_are_checked():
    with pytest.raises(ConnectorError) as err:
        connect({"listId": 3}, {"apiKey": API_KEY})
    assert str(err.value) == (
        'Brevo connection settings cannot hold "listId": the only setting is "baseUrl"'
    )
    with pytest.raises(ConnectorError, match='the Brevo credentials have no "apiKey"'):
        connect({}, {})
    with pytest.raises(ConnectorError, match="is an SMTP key"):
        connect({}, {"apiKey": "xsmtpsib-0123456789abcdef"})
    with pytest.raises(ConnectorError, match='must be an API v3 key: "xkeysib-"'):
        connect({}, {"apiKey": "0123456789abcdef"})
    with pytest.raises(ConnectorError, match='"baseUrl" must be an http or https URL'):
        connect({"baseUrl": "ftp://x"}, {"apiKey": API_KEY})


def _response(status: int, headers: dict[str, str]) -> httpx.Response:
    body = b'{"code":"too_many_requests","message":"The expected rate limit is exceeded."}'
    return httpx.Response(status, headers=headers, content=body)


def test_the_rate_limit_headers_pause_the_bucket_or_stop_the_run():
    second = {"x-sib-ratelimit-limit": "10", "x-sib-ratelimit-reset": "1"}
    hint = read_rate_limit(_response(429, {**second, "x-sib-ratelimit-remaining": "0"}))
    assert hint is not None and hint.pause == 1.0
    used_up = read_rate_limit(_response(200, {**second, "x-sib-ratelimit-remaining": "0"}))
    assert used_up is not None and used_up.pause == 1.0
    assert read_rate_limit(_response(200, {**second, "x-sib-ratelimit-remaining": "4"})) is None
    hourly = {"x-sib-ratelimit-limit": "36000", "x-sib-ratelimit-reset": "1800"}
    with pytest.raises(ConnectorError, match="36000 requests is used up for 1800 more seconds"):
        read_rate_limit(_response(429, hourly))


# ---------------------------------------------------------------------------------------------
# Against the twin
# ---------------------------------------------------------------------------------------------

ATTRIBUTES = [
    Attribute("BIRTHDAY", type="date"),
    Attribute("TITLE", category="category", enumeration={1: "Mr", 2: "Ms"}),
    Attribute("CA_TOTAL", category="calculated", type="float", calculated_value="SUM"),
]


@pytest.fixture(scope="module")
def twin_url() -> Iterator[tuple[BrevoTwin, str]]:
    twin = BrevoTwin(API_KEY, attributes=ATTRIBUTES)
    with serve(twin) as url:
        yield twin, url + "/v3"


@pytest.fixture
def twin(twin_url: tuple[BrevoTwin, str]) -> BrevoTwin:
    twin_url[0].reset()
    return twin_url[0]


def with_connector(
    url: str,
    body: Callable[[BrevoConnector], Awaitable[T]],
    fake: FakeTime | None = None,
    key: str = API_KEY,
) -> T:
    return run_connector(
        lambda hooks: BrevoConnector({"baseUrl": url}, {"apiKey": key}, **hooks),
        body,
        fake,
    )


def person(key: int, email: str | None, external_id: str | None = None, **attributes: Any):
    properties: dict[str, Any] = {"email": email}
    if attributes:
        properties["attributes"] = attributes
    return WriteRecord(key, external_id, properties)


def by_email(twin: BrevoTwin) -> dict[str, dict[str, Any]]:
    return {c["email"]: c for c in twin.contacts()}


def test_identity_is_the_organization_whatever_the_key(twin, twin_url):
    assert with_connector(twin_url[1], lambda c: c.destination_identity()) == (
        "brevo:account/62a7f5c1e4b0d3a9c8f1e2d4"
    )


def test_a_refused_key_is_a_connector_error_with_brevo_s_message(twin, twin_url):
    other = API_KEY[:-1] + "x"
    with pytest.raises(ConnectorError) as err:
        with_connector(twin_url[1], lambda c: c.destination_schema(), key=other)
    assert str(err.value) == (
        "Brevo refused the API key (401 Unauthorized): unauthorized: Key not found"
    )


def test_the_schema_read_from_the_twin_leaves_calculated_attributes_out(twin, twin_url):
    schema = with_connector(twin_url[1], lambda c: c.destination_schema())
    attributes = property_by_path(schema, "attributes").type
    assert [p.name for p in attributes.properties] == [
        "BIRTHDAY",
        "FIRSTNAME",
        "LASTNAME",
        "SMS",
        "TITLE",
    ]


def test_create_then_lookup_by_email(twin, twin_url):
    async def body(c: BrevoConnector) -> tuple[list[WriteResult], list[AppUser]]:
        created = await c.create(
            "email",
            [
                person(1, "ada@example.com", FIRSTNAME="Ada", BIRTHDAY="1815-12-10"),
                person(2, "Grace@Example.com", FIRSTNAME="Grace", TITLE="2"),
            ],
        )
        found = await c.lookup(
            "email", ["ada@example.com", "Grace@Example.com", "nobody@example.com"]
        )
        return created, found

    created, found = with_connector(twin_url[1], body)
    ids = {r.key: r.external_id for r in created}
    assert all(r.error is None and r.external_id for r in created)
    assert sorted(found, key=lambda u: u.matching_value) == [
        AppUser(ids[2], "Grace@Example.com"),  # answered with the value asked for
        AppUser(ids[1], "ada@example.com"),
    ]
    contacts = by_email(twin)
    assert contacts["ada@example.com"]["attributes"] == {
        "FIRSTNAME": "Ada",
        "BIRTHDAY": "1815-12-10",
    }
    assert contacts["grace@example.com"]["attributes"]["TITLE"] == 2


def test_a_create_meeting_an_existing_email_names_its_holder(twin, twin_url):
    (holder,) = twin.add_contacts([{"email": "taken@example.com"}])
    results = with_connector(
        twin_url[1],
        lambda c: c.create("email", [person(1, "new@example.com"), person(2, "Taken@example.com")]),
    )
    assert results[0].external_id and results[0].error is None
    assert (results[1].existing_id, results[1].error) == (str(holder), None)


def test_a_refused_record_fails_alone_with_brevo_s_message(twin, twin_url):
    results = with_connector(
        twin_url[1],
        lambda c: c.create(
            "email",
            [
                person(1, "not-an-email"),
                person(2, "ok@example.com"),
                person(3, "cat@example.com", TITLE="7"),
                person(4, "day@example.com", BIRTHDAY=date(2024, 2, 29)),
            ],
        ),
    )
    assert results[0].error == "invalid_parameter: Invalid email address"
    assert results[1].error is None
    assert results[2].error == (
        '"attributes.TITLE" must be one of the options of the Brevo category attribute: 1, 2'
    )
    assert results[3].error is None
    assert by_email(twin)["day@example.com"]["attributes"]["BIRTHDAY"] == "2024-02-29"


def test_a_create_whose_answer_was_lost_is_found_not_sent_again(twin, twin_url):
    twin.fail_next(1, 503, path="POST /v3/contacts", after_apply=True)
    results = with_connector(twin_url[1], lambda c: c.create("email", [person(1, "a@example.com")]))
    assert results[0].error is None
    assert results[0].external_id == str(by_email(twin)["a@example.com"]["id"])
    assert twin.request_counts()["POST /v3/contacts"] == {"503": 1}
    assert len(twin.contacts()) == 1


def test_a_create_that_failed_before_brevo_applied_it_is_sent_again_after_a_lookup(twin, twin_url):
    twin.fail_next(1, 500, path="POST /v3/contacts")
    results = with_connector(twin_url[1], lambda c: c.create("email", [person(1, "a@example.com")]))
    assert results[0].external_id and results[0].error is None
    counts = twin.request_counts()
    assert counts["POST /v3/contacts"] == {"500": 1, "201": 1}
    assert counts["GET /v3/contacts/{identifier}"] == {"404": 1}


def test_upsert_creates_or_updates_by_email_and_answers_ids(twin, twin_url):
    (existing,) = twin.add_contacts([{"email": "old@example.com", "attributes": {"LASTNAME": "X"}}])

    async def body(c: BrevoConnector) -> tuple[bool, list[WriteResult]]:
        upserts = await c.upserts("email")
        return upserts, await c.upsert(
            "email",
            [person(1, "old@example.com", FIRSTNAME="Old"), person(2, "new@example.com")],
        )

    upserts, results = with_connector(twin_url[1], body)
    assert upserts
    assert (results[0].external_id, results[0].created) == (str(existing), False)
    assert results[1].created and results[1].external_id
    assert by_email(twin)["old@example.com"]["attributes"] == {"LASTNAME": "X", "FIRSTNAME": "Old"}


def test_updates_go_in_batches_of_100_and_clear_null_attributes(twin, twin_url):
    ids = twin.add_contacts(
        {"email": f"p{i}@example.com", "attributes": {"LASTNAME": "L"}} for i in range(150)
    )
    records = [
        WriteRecord(i, str(contact_id), {"attributes": {"FIRSTNAME": f"F{i}", "LASTNAME": None}})
        for i, contact_id in enumerate(ids)
    ]
    results = with_connector(twin_url[1], lambda c: c.update(records))
    assert all(r.error is None and r.external_id == str(ids[r.key]) for r in results)
    assert twin.request_counts()["POST /v3/contacts/batch"] == {"204": 2}
    assert by_email(twin)["p7@example.com"]["attributes"] == {"FIRSTNAME": "F7"}


def test_a_batch_update_s_failed_contacts_are_sent_alone_to_learn_why(twin, twin_url):
    first, second = twin.add_contacts([{"email": "a@example.com"}, {"email": "b@example.com"}])
    records = [
        WriteRecord(1, str(first), {"attributes": {"FIRSTNAME": "A"}}),
        WriteRecord(2, "999999", {"attributes": {"FIRSTNAME": "Gone"}}),
        WriteRecord(3, str(second), {"email": "a@example.com"}),  # a's email: a duplicate
    ]
    results = with_connector(twin_url[1], lambda c: c.update(records))
    assert results[0].error is None
    assert results[1].error == "document_not_found: Contact does not exist"
    assert results[2].error == (
        "duplicate_parameter: Unable to update contact, email is already associated with "
        "another Contact"
    )
    counts = twin.request_counts()
    assert counts["POST /v3/contacts/batch"] == {"207": 1}
    assert counts["PUT /v3/contacts/{identifier}"] == {"404": 1, "400": 1}


def test_429_waits_for_brevo_s_reset_header_then_goes_on(twin, twin_url):
    twin.force_rate_limit(2)
    fake = FakeTime()
    found = with_connector(twin_url[1], lambda c: c.lookup("email", ["x@example.com"]), fake)
    assert found == []
    assert fake.sleeps.count(1.0) >= 2
    assert twin.request_counts()["GET /v3/contacts/attributes"]["429"] == 2


def test_a_5xx_storm_on_lookups_gives_up_with_the_status(twin, twin_url):
    twin.fail_next(100, 503, path="identifierType=email_id")
    with pytest.raises(ConnectorError, match="503"):
        with_connector(twin_url[1], lambda c: c.lookup("email", ["x@example.com"]))


def test_matching_by_an_attribute_brevo_cannot_find_by_is_refused(twin, twin_url):
    with pytest.raises(ConnectorError, match="finds contacts by email or ext_id only"):
        with_connector(twin_url[1], lambda c: c.lookup("attributes.FIRSTNAME", ["Ada"]))
