"""The MailerLite connector: its schema rules and value encoding, then every call against the
MailerLite twin (a loopback server speaking the MailerLite API) on a fake clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from sluice.apps.connector import AppUser, ConnectorError, WriteRecord, WriteResult
from sluice.apps.mailerlite import (
    MailerLiteConnector,
    build_schema,
    connect,
    encode_value,
    read_rate_limit,
    subscriber_body,
)
from sluice.model.alignment import check_alignment
from sluice.model.types import Kind, parse_type, property_by_path
from sluice.twins.mailerlite import MailerLiteTwin, serve
from tests.connector_runs import FakeTime, run_connector

TOKEN = "mlite-unit-token"
EXAMPLE = Path(__file__).parents[2] / "examples" / "mailerlite-pipeline.yaml"
T = TypeVar("T")

# A trimmed recording of GET /api/fields: default and custom fields.
RECORDED = [
    {"id": "31986843064993541", "name": "Name", "key": "name", "type": "text"},
    {"id": "31986843064993540", "name": "Last name", "key": "last_name", "type": "text"},
    {
        "id": "41986843064993537",
        "name": "Lifetime value",
        "key": "lifetime_value",
        "type": "number",
    },
    {"id": "41986843064993538", "name": "Birthday", "key": "birthday", "type": "date"},
    {"id": "41986843064993539", "name": "Odd", "key": "odd", "type": "boolean"},
]

# ---------------------------------------------------------------------------------------------
# Schema and values (no network)
# ---------------------------------------------------------------------------------------------


def test_the_destination_schema_has_the_writable_properties_and_the_fields():
    schema = build_schema(RECORDED)
    names = [p.name for p in schema.type.properties]
    assert names == [
        "email",
        "status",
        "groups",
        "subscribed_at",
        "ip_address",
        "opted_in_at",
        "optin_ip",
        "unsubscribed_at",
        "resubscribe",
        "fields",
    ]
    for read_only in ("id", "source", "sent", "opens_count", "created_at", "updated_at"):
        assert read_only not in names
    email = property_by_path(schema.type, "email")
    assert email.create_required and not email.nullable
    status = property_by_path(schema.type, "status").type
    assert status.values == ("active", "unsubscribed", "unconfirmed", "bounced", "junk")
    assert property_by_path(schema.type, "groups").type.kind is Kind.ARRAY
    assert property_by_path(schema.type, "subscribed_at").type.kind is Kind.DATETIME
    kinds = {
        p.name: (p.type.kind, p.nullable)
        for p in property_by_path(schema.type, "fields").type.properties
    }
    assert kinds == {
        "name": (Kind.STRING, True),
        "last_name": (Kind.STRING, True),
        "lifetime_value": (Kind.DECIMAL, True),
        "birthday": (Kind.DATE, True),
    }  # an unknown field type is left out


def test_the_identity_is_the_oldest_field():
    assert build_schema(RECORDED).first_field_id == "31986843064993540"
    assert build_schema([]).first_field_id is None


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (Decimal("12"), 12),
        (Decimal("12.50"), 12.5),
        (datetime(2024, 5, 1, 12, 43, 29), "2024-05-01 12:43:29"),
        (date(2024, 5, 1), "2024-05-01"),
        ("text", "text"),
        (True, True),
        (["1", "2"], ["1", "2"]),
    ],
)
def test_values_become_mailerlite_json(value: Any, encoded: Any):
    assert encode_value(value) == encoded


def test_bodies_leave_out_what_the_request_does_not_take():
    schema = build_schema(RECORDED)
    record = {
        "email": "a@example.com",
        "status": None,
        "resubscribe": True,
        "fields": {"name": "Ada", "last_name": None},
    }
    assert subscriber_body(record, schema, update=False) == {
        "email": "a@example.com",
        "resubscribe": True,
        "fields": {"name": "Ada", "last_name": None},
    }
    assert subscriber_body(record, schema, update=True) == {
        "fields": {"name": "Ada", "last_name": None}
    }


def test_settings_and_credentials_are_checked():
    with pytest.raises(ConnectorError, match='cannot hold "audience": the only setting is'):
        connect({"audience": "x"}, {"apiToken": TOKEN})
    with pytest.raises(ConnectorError, match='"baseUrl" must be an http or https URL'):
        connect({"baseUrl": "ftp://x"}, {"apiToken": TOKEN})
    with pytest.raises(ConnectorError, match='credentials have no "apiToken"'):
        connect({}, {"accessToken": TOKEN})
    with pytest.raises(ConnectorError, match="printable ASCII characters without spaces"):
        connect({}, {"apiToken": "two words"})


def test_rate_limit_headers_fit_the_bucket_to_the_minute():
    request = httpx.Request("POST", "https://connect.mailerlite.com/api/batch")
    ok = httpx.Response(200, headers={"X-RateLimit-Limit": "60"}, request=request)
    hint = read_rate_limit(ok)
    assert hint is not None and hint.window == (60, 60.0) and hint.pause is None
    imports = httpx.Response(
        429, json={"message": "You're being rate limited on import creation."}, request=request
    )
    hint = read_rate_limit(imports)
    assert hint is not None and hint.pause == 12.0  # 5 imports per minute


# ---------------------------------------------------------------------------------------------
# Against the twin
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin_url() -> Iterator[tuple[MailerLiteTwin, str]]:
    twin = MailerLiteTwin(
        TOKEN,
        fields=[{"name": "Plan", "type": "text"}, {"name": "Score", "type": "number"}],
        groups=["Customers"],
        rate_limit=False,
    )
    with serve(twin) as url:
        yield twin, f"{url}/api"


@pytest.fixture
def twin(twin_url: tuple[MailerLiteTwin, str]) -> MailerLiteTwin:
    twin_url[0].reset()
    return twin_url[0]


def with_connector(
    url: str,
    body: Callable[[MailerLiteConnector], Awaitable[T]],
    fake: FakeTime | None = None,
    token: str = TOKEN,
) -> T:
    return run_connector(
        lambda hooks: MailerLiteConnector({"baseUrl": url}, {"apiToken": token}, **hooks),
        body,
        fake,
    )


def new(key: int, email: str | None, **fields: Any) -> WriteRecord:
    return WriteRecord(key, None, {"email": email, "fields": fields})


def batches(twin: MailerLiteTwin) -> int:
    return sum(twin.request_counts().get("POST /api/batch", {}).values())


def test_the_schema_lists_every_field_page_of_the_twin(twin, twin_url):
    schema = with_connector(twin_url[1], lambda c: c.destination_schema())
    fields = [p.name for p in property_by_path(schema, "fields").type.properties]
    assert fields[:2] == ["name", "last_name"] and fields[-2:] == ["plan", "score"]
    assert twin.request_counts()["GET /api/fields"] == {"200": 1}


def test_the_identity_is_the_account_whatever_the_token(twin_url):
    other = MailerLiteTwin("another-token", rate_limit=False, account_seed=1)
    first = with_connector(twin_url[1], lambda c: c.destination_identity())
    assert first == "mailerlite:account/73512804000000001"
    with serve(other) as url:
        assert with_connector(
            f"{url}/api", lambda c: c.destination_identity(), token="another-token"
        ) == ("mailerlite:account/1000000001")


def test_create_then_lookup_by_email_in_one_batch_each(twin, twin_url):
    records = [new(i, f"User{i}@Example.com", name=f"N{i}") for i in range(50)]
    created = with_connector(twin_url[1], lambda c: c.create("email", records))
    assert all(r.external_id and r.error is None for r in created)
    assert batches(twin) == 1

    asked = ["User7@Example.com", "nobody@example.com"]
    users = with_connector(twin_url[1], lambda c: c.lookup("email", asked))
    assert users == [AppUser(created[7].external_id or "", "User7@Example.com")]
    assert batches(twin) == 2


def test_fifty_one_records_take_two_batches(twin, twin_url):
    records = [new(i, f"u{i}@example.com") for i in range(51)]
    with_connector(twin_url[1], lambda c: c.create("email", records))
    assert batches(twin) == 2 and twin.subscriber_count() == 51


def test_a_refused_record_fails_alone_with_mailerlites_message(twin, twin_url):
    records = [
        new(1, "ok@example.com", score=3),
        new(2, "not-an-email"),
        new(3, "worse@example.com", score="many"),
        WriteRecord(4, None, {"email": "g@example.com", "groups": ["999"]}),
        new(5, "x@example.com", unknown="y"),
    ]
    results = {r.key: r for r in with_connector(twin_url[1], lambda c: c.create("email", records))}
    assert results[1].external_id is not None
    assert results[2].error == (
        "MailerLite refused the subscriber (422): The given data was invalid. "
        "(email: The email must be a valid email address.)"
    )
    assert results[3].error is not None and "fields.score: The fields.score must be a number" in (
        results[3].error
    )
    assert results[4].error is not None and "groups.0" in results[4].error
    assert results[5].error == '"fields.unknown" is not a field of this MailerLite account'
    assert twin.subscriber_count() == 1


def test_a_create_meeting_an_existing_subscriber_names_it(twin, twin_url):
    (existing,) = twin.add_subscribers([{"email": "taken@example.com"}])
    results = with_connector(
        twin_url[1], lambda c: c.create("email", [new(1, "taken@example.com")])
    )
    assert results == [WriteResult(1, existing_id=existing)]
    assert twin.subscriber_count() == 1


def test_updates_go_by_id_and_report_a_missing_subscriber_on_its_record(twin, twin_url):
    (known,) = twin.add_subscribers([{"email": "u@example.com", "fields": {"name": "Old"}}])
    group = twin.group_ids()["Customers"]
    records = [
        WriteRecord(1, known, {"email": "u@example.com", "fields": {"name": "New"}}),
        WriteRecord(2, "404404", {"fields": {"name": "Ghost"}}),
        WriteRecord(3, known, {"groups": [group], "status": "unsubscribed"}),
    ]
    results = {r.key: r for r in with_connector(twin_url[1], lambda c: c.update(records))}
    assert results[1] == WriteResult(1, external_id=known)
    assert results[2].error is not None and results[2].error.startswith(
        "MailerLite refused the subscriber (404)"
    )
    stored = twin.subscriber(known)
    assert stored is not None and stored["fields"]["name"] == "New"
    assert [g["id"] for g in stored["groups"]] == [group] and stored["status"] == "unsubscribed"


def test_upsert_creates_or_updates_and_says_which(twin, twin_url):
    twin.add_subscribers([{"email": "old@example.com"}])
    records = [new(1, "old@example.com", name="O"), new(2, "fresh@example.com", name="F")]
    results = with_connector(twin_url[1], lambda c: c.upsert("email", records))
    assert [(r.key, r.created) for r in results] == [(1, False), (2, True)]
    assert all(r.external_id for r in results)


def test_matching_is_by_email_only(twin, twin_url):
    with pytest.raises(ConnectorError, match='the matching property must be "email"'):
        with_connector(twin_url[1], lambda c: c.lookup("fields.plan", ["x"]))
    assert with_connector(twin_url[1], lambda c: c.upserts("email")) is False


def test_a_create_whose_answer_is_lost_is_checked_not_repeated(twin, twin_url):
    twin.fail_next(1, 503, path="/api/batch", after_apply=True)
    records = [new(1, "one@example.com"), new(2, "two@example.com")]
    results = with_connector(twin_url[1], lambda c: c.create("email", records))
    stored = {s["email"]: s["id"] for s in twin.subscribers()}
    assert {r.key: r.external_id for r in results} == {
        1: stored["one@example.com"],
        2: stored["two@example.com"],
    }
    assert twin.stats()["creates"] == 2 and twin.stats()["updates"] == 0
    assert batches(twin) == 2  # the lost create, then one lookup; nothing sent twice


def test_a_create_that_failed_before_applying_is_sent_again(twin, twin_url):
    twin.fail_next(1, 502, path="/api/batch")
    results = with_connector(twin_url[1], lambda c: c.create("email", [new(1, "x@example.com")]))
    assert results[0].external_id is not None
    assert twin.subscriber_count() == 1 and batches(twin) == 3  # lost, lookup, create


def test_updates_and_lookups_are_retried_after_a_5xx(twin, twin_url):
    (known,) = twin.add_subscribers([{"email": "r@example.com"}])
    twin.fail_next(2, 503, path="/api/batch")
    fake = FakeTime()
    results = with_connector(
        twin_url[1], lambda c: c.update([WriteRecord(1, known, {"fields": {"name": "R"}})]), fake
    )
    assert results == [WriteResult(1, external_id=known)]
    assert fake.sleeps[:2] == [0.5, 1.0]


def test_a_429_waits_retry_after_and_retries(twin, twin_url):
    twin.force_rate_limit(1)
    fake = FakeTime()

    async def body(c: MailerLiteConnector) -> Any:
        return await c.lookup("email", ["z@example.com"]), c.http.stats

    users, stats = with_connector(twin_url[1], body, fake)
    assert users == [] and stats.rate_limited == 1
    assert fake.sleeps and fake.sleeps[0] == 1.0  # the twin's Retry-After


def test_the_import_limit_pauses_creates_only(twin, twin_url, monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(twin.limiter, "clock", fake.clock)  # the twin's minute on the fake clock
    twin.set_rate_limiting(True)

    async def body(c: MailerLiteConnector) -> Any:
        for i in range(6):
            await c.create("email", [new(i, f"imp{i}@example.com")])
        return c.http.stats

    stats = with_connector(twin_url[1], body, fake)
    assert twin.subscriber_count() == 6
    # The import bucket spaces creates to 5 per minute, so MailerLite refused none.
    assert stats.rate_limited == 0 and fake.now >= 60.0


def test_a_revoked_token_stops_the_run(twin, twin_url):
    twin.revoke_token()
    with pytest.raises(ConnectorError) as err:
        with_connector(twin_url[1], lambda c: c.destination_schema())
    assert str(err.value) == (
        "MailerLite refused the API token (401 Unauthorized): Unauthenticated."
    )


def test_the_example_pipeline_aligns_with_the_schema_of_the_twin(twin, twin_url):
    document = yaml.safe_load(EXAMPLE.read_text())
    out_schema = parse_type(document["spec"]["outSchema"])
    schema = with_connector(twin_url[1], lambda c: c.destination_schema())
    check_alignment(out_schema, schema, "CreateOrUpdate")


def test_emails_with_path_characters_are_looked_up_whole(twin, twin_url):
    emails = ["first+tag@example.com", "o'neil/x%y@example.com"]
    created = with_connector(
        twin_url[1], lambda c: c.create("email", [new(i, e) for i, e in enumerate(emails)])
    )
    users = with_connector(twin_url[1], lambda c: c.lookup("email", emails))
    assert sorted(users, key=lambda u: u.matching_value) == [
        AppUser(created[0].external_id or "", emails[0]),
        AppUser(created[1].external_id or "", emails[1]),
    ]
