"""The Mailchimp connector: its schema rules and value encoding, then every call against the
Mailchimp twin (a loopback server speaking the Marketing API 3.0) on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from sluice.apps.connector import AppUser, ConnectorError, WriteRecord, WriteResult
from sluice.apps.mailchimp import (
    MailchimpConnector,
    build_schema,
    connect,
    member_body,
    subscriber_hash,
)
from sluice.model.types import Kind, property_by_path
from sluice.twins.mailchimp import MailchimpTwin, serve
from tests.connector_runs import FakeTime, run_connector

KEY = "0123456789abcdef0123456789abcdef-us21"
LIST = "a1b2c3d4e5"
T = TypeVar("T")

RECORDED = [
    {"tag": "LNAME", "name": "Last Name", "type": "text", "display_order": 3, "options": {}},
    {"tag": "FNAME", "name": "First Name", "type": "text", "display_order": 2,
     "options": {"size": 5}},
    {"tag": "AGE", "name": "Age", "type": "number", "display_order": 4},
    {"tag": "PLAN", "name": "Plan", "type": "dropdown", "required": True, "display_order": 5,
     "options": {"choices": ["free", "pro"]}},
    {"tag": "SINCE", "name": "Since", "type": "date", "display_order": 6},
    {"tag": "ADDRESS", "name": "Address", "type": "address", "display_order": 7},
    {"tag": "EMPTY", "name": "No choice", "type": "radio", "options": {"choices": []}},
]  # fmt: skip


def test_the_schema_has_writable_member_properties_and_merge_fields():
    t = build_schema(RECORDED).type
    names = [p.name for p in t.properties]
    assert names[0] == "email_address" and names[-1] == "merge_fields"
    for read_only in (
        "id",
        "unique_email_id",
        "web_id",
        "contact_id",
        "full_name",
        "stats",
        "member_rating",
        "last_changed",
        "email_client",
        "source",
        "tags_count",
    ):
        assert read_only not in names  # fmt: skip
    email = property_by_path(t, "email_address")
    assert email.create_required and email.update_required and not email.nullable
    assert property_by_path(t, "status").type.values == (
        "subscribed",
        "unsubscribed",
        "cleaned",
        "pending",
        "transactional",
    )
    merge = property_by_path(t, "merge_fields").type
    assert [p.name for p in merge.properties] == [
        "FNAME",
        "LNAME",
        "AGE",
        "PLAN",
        "SINCE",
        "ADDRESS",
    ]
    assert property_by_path(t, "merge_fields.AGE").type.kind is Kind.FLOAT
    assert property_by_path(t, "merge_fields.SINCE").type.kind is Kind.DATE
    plan = property_by_path(t, "merge_fields.PLAN")
    assert plan.create_required and not plan.update_required and plan.type.values == ("free", "pro")
    assert property_by_path(t, "merge_fields.ADDRESS.city").type.kind is Kind.STRING


def test_values_become_mailchimp_json():
    schema = build_schema(RECORDED)
    body = member_body(
        {
            "email_address": "a@example.com",
            "status": None,
            "vip": True,
            "location": {"latitude": Decimal("45.5"), "longitude": None},
            "merge_fields": {"FNAME": None, "AGE": Decimal("42"), "ADDRESS": {"city": "Rome"}},
        },
        schema,
    )
    assert body == {
        "email_address": "a@example.com",
        "vip": True,
        "location": {"latitude": 45.5},
        "merge_fields": {"FNAME": "", "AGE": 42, "ADDRESS": {"city": "Rome"}},
    }


def test_settings_and_credentials_are_checked():
    with pytest.raises(ConnectorError, match='the Mailchimp credentials have no "apiKey"'):
        connect({"audienceId": LIST}, {})
    with pytest.raises(ConnectorError, match='ending in "-<data centre>"'):
        connect({"audienceId": LIST}, {"apiKey": "0123456789abcdef"})
    with pytest.raises(ConnectorError) as err:
        connect({"audienceId": LIST, "listId": "x"}, {"apiKey": KEY})
    assert str(err.value) == (
        'Mailchimp connection settings cannot hold "listId": the settings are "audienceId" and '
        '"baseUrl"'
    )
    with pytest.raises(ConnectorError, match='need "audienceId"'):
        connect({}, {"apiKey": KEY})


def test_the_base_url_comes_from_the_key_data_centre():
    async def url() -> str:
        connector = connect({"audienceId": LIST}, {"apiKey": KEY})
        try:
            return str(connector.http._client.base_url)
        finally:
            await connector.aclose()

    assert asyncio.run(url()) == "https://us21.api.mailchimp.com/3.0/"


# ---------------------------------------------------------------------------------------------
# Against the twin
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin_url() -> Iterator[tuple[MailchimpTwin, str]]:
    twin = MailchimpTwin(KEY)
    with serve(twin) as url:
        yield twin, url


@pytest.fixture
def twin(twin_url: tuple[MailchimpTwin, str]) -> MailchimpTwin:
    twin_url[0].reset()
    return twin_url[0]


def with_connector(
    url: str,
    body: Callable[[MailchimpConnector], Awaitable[T]],
    fake: FakeTime | None = None,
    audience: str = LIST,
) -> T:
    return run_connector(
        lambda hooks: MailchimpConnector(
            {"baseUrl": f"{url}/3.0", "audienceId": audience}, {"apiKey": KEY}, **hooks
        ),
        body,
        fake,
    )


def member(key: int, email: str | None, **merge: Any) -> WriteRecord:
    return WriteRecord(
        key,
        None,
        {"email_address": email, "status_if_new": "subscribed", "merge_fields": merge},
    )


def test_the_identity_is_account_and_audience(twin, twin_url):
    identity = with_connector(twin_url[1], lambda c: c.destination_identity())
    assert identity == f"mailchimp:account/{twin.account_id}/audience/{LIST}"


def test_a_missing_audience_is_named(twin, twin_url):
    with pytest.raises(ConnectorError) as err:
        with_connector(twin_url[1], lambda c: c.destination_identity(), audience="gone")
    assert str(err.value).startswith('the Mailchimp audience "gone" does not exist in this account')


def test_create_then_lookup_by_email(twin, twin_url):
    async def body(c: MailchimpConnector) -> tuple[list[WriteResult], list[AppUser]]:
        created = await c.create(
            "email_address",
            [member(1, "ada@example.com", FNAME="Ada"), member(2, "Grace@Example.com")],
        )
        found = await c.lookup(
            "email_address", ["ADA@example.com", "grace@example.com", "nobody@example.com"]
        )
        return created, found

    created, found = with_connector(twin_url[1], body)
    assert [(r.key, r.external_id, r.created) for r in created] == [
        (1, subscriber_hash("ada@example.com"), True),
        (2, subscriber_hash("grace@example.com"), True),
    ]
    # Answered with the values asked for: Mailchimp ignores the case of emails.
    assert sorted(found, key=lambda u: u.matching_value) == [
        AppUser(subscriber_hash("ada@example.com"), "ADA@example.com"),
        AppUser(subscriber_hash("grace@example.com"), "grace@example.com"),
    ]
    assert twin.member("ada@example.com")["merge_fields"]["FNAME"] == "Ada"
    assert twin.request_counts()["POST /3.0/lists/{list_id}"] == {"200": 1}


def test_a_create_of_an_existing_email_names_the_member(twin, twin_url):
    (existing,) = twin.add_members([{"email_address": "taken@example.com"}])
    results = with_connector(
        twin_url[1],
        lambda c: c.create(
            "email_address",
            [member(1, "new@example.com"), member(2, "Taken@Example.com"), member(3, "bad")],
        ),
    )
    assert results[0].external_id and results[0].error is None
    assert (results[1].existing_id, results[1].error) == (existing, None)
    assert results[2].error is not None and "looks fake or invalid" in results[2].error


def test_upsert_creates_or_updates_in_one_request(twin, twin_url):
    (ada,) = twin.add_members(
        [{"email_address": "ada@example.com", "merge_fields": {"FNAME": "A"}}]
    )
    records = [
        member(1, "Ada@Example.com", FNAME="Augusta"),
        member(2, "grace@example.com", FNAME="Grace"),
        WriteRecord(3, None, {"merge_fields": {"FNAME": "No email"}}),
        member(4, "ada@example.com", FNAME="Twice"),
    ]
    results = with_connector(twin_url[1], lambda c: c.upsert("email_address", records))
    assert (results[0].external_id, results[0].created) == (ada, False)
    assert results[1].external_id and results[1].created is True
    assert results[2].error == 'no value of "email_address" to name the member by'
    assert results[3].error is not None and "another record of this batch" in results[3].error
    assert twin.member("ada@example.com")["merge_fields"]["FNAME"] == "Augusta"
    assert twin.request_counts()["POST /3.0/lists/{list_id}"] == {"200": 1}


def test_a_value_longer_than_the_merge_field_fails_only_its_record(twin_url):
    twin = MailchimpTwin(
        KEY, merge_fields=[{"tag": "FNAME", "type": "text", "options": {"size": 3}}]
    )
    with serve(twin) as url:
        results = with_connector(
            url,
            lambda c: c.upsert(
                "email_address",
                [member(1, "a@example.com", FNAME="Long"), member(2, "b@example.com", FNAME="Ab")],
            ),
        )
    assert results[0].error == (
        '"merge_fields.FNAME" is longer than 3 characters, the size Mailchimp gives this '
        "merge field"
    )
    assert results[1].external_id


def test_update_by_id_batches_by_email_and_patches_a_changed_email(twin, twin_url):
    (known,) = twin.add_members([{"email_address": "u@example.com"}])
    results = with_connector(
        twin_url[1],
        lambda c: c.update(
            [
                WriteRecord(
                    1,
                    known,
                    {
                        "email_address": "u@example.com",
                        "merge_fields": {"FNAME": "New"},
                        "status_if_new": "subscribed",
                    },
                ),
                WriteRecord(
                    2, subscriber_hash("ghost@example.com"), {"merge_fields": {"FNAME": "G"}}
                ),
            ]
        ),
    )
    assert results[0] == WriteResult(1, external_id=known)
    assert results[1].error == "Resource Not Found: The requested resource could not be found."
    assert twin.member("u@example.com")["merge_fields"]["FNAME"] == "New"
    counts = twin.request_counts()
    assert counts["POST /3.0/lists/{list_id}"] == {"200": 1}
    assert counts["PATCH /3.0/lists/{list_id}/members/{subscriber_hash}"] == {"404": 1}


async def create_failing(
    twin: MailchimpTwin,
    c: MailchimpConnector,
    records: list[WriteRecord],
    status: int,
    after_apply: bool,
) -> list[WriteResult]:
    """A create whose batch subscribe (the next request to the audience once the schema is
    read) answers ``status``."""
    await c.schema()
    twin.fail_next(1, status, path=f"/lists/{LIST}", after_apply=after_apply)
    return await c.create("email_address", records)


def test_a_create_whose_answer_is_lost_is_checked_not_repeated(twin, twin_url):
    records = [member(1, "one@example.com"), member(2, "two@example.com")]
    results = with_connector(twin_url[1], lambda c: create_failing(twin, c, records, 503, True))
    assert [r.external_id for r in results] == [
        subscriber_hash("one@example.com"),
        subscriber_hash("two@example.com"),
    ]
    counts = twin.request_counts()
    assert counts["POST /3.0/lists/{list_id}"] == {"503": 1}  # not sent again
    assert counts["GET /3.0/lists/{list_id}/members/{subscriber_hash}"] == {"200": 2}


def test_a_create_that_failed_before_applying_is_sent_again(twin, twin_url):
    results = with_connector(
        twin_url[1], lambda c: create_failing(twin, c, [member(1, "x@example.com")], 502, False)
    )
    assert results[0].external_id is not None
    assert twin.member_count() == 1


def test_a_429_pauses_and_retries(twin, twin_url):
    twin.force_rate_limit(1)
    fake = FakeTime()

    async def body(c: MailchimpConnector) -> Any:
        return await c.lookup("email_address", ["z@example.com"]), c.http.stats

    users, stats = with_connector(twin_url[1], body, fake)
    assert users == [] and stats.rate_limited == 1
    assert fake.sleeps and fake.sleeps[0] == 0.5  # no Retry-After: backoff


def test_a_revoked_key_stops_the_run(twin, twin_url):
    twin.revoke_token()
    with pytest.raises(ConnectorError) as err:
        with_connector(twin_url[1], lambda c: c.destination_schema())
    assert str(err.value) == (
        "Mailchimp refused the API key (401 Unauthorized): API Key Invalid: Your API key may be "
        "invalid, or you've attempted to access the wrong datacenter."
    )


def test_matching_on_another_property_is_refused(twin, twin_url):
    assert with_connector(twin_url[1], lambda c: c.upserts("merge_fields.FNAME")) is False
    with pytest.raises(ConnectorError, match="finds members by email address only"):
        with_connector(twin_url[1], lambda c: c.lookup("merge_fields.FNAME", ["x"]))


def test_lookups_stay_below_the_connection_cap(twin, twin_url):
    twin.set_rate_limiting(True)
    twin.set_latency(0.02)
    emails = [f"user{i}@example.com" for i in range(40)]
    twin.add_members([{"email_address": e} for e in emails[:20]])
    found = with_connector(twin_url[1], lambda c: c.lookup("email_address", emails))
    assert len(found) == 20
    assert twin.stats()["peakInFlight"] <= 8
    assert "429" not in twin.request_counts()["GET /3.0/lists/{list_id}/members/{subscriber_hash}"]
