"""The Klaviyo connector: its schema, settings and rate-limit reading, then every call against
the Klaviyo twin (a loopback server speaking Klaviyo's profiles API) on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest

from sluice.apps.connector import AppUser, ConnectorError, WriteRecord, WriteResult
from sluice.apps.http import RateLimitHint
from sluice.apps.klaviyo import (
    KlaviyoConnector,
    connect,
    destination_schema,
    profile_attributes,
    read_rate_limit,
)
from sluice.model.alignment import check_alignment
from sluice.model.types import Kind, parse_type, property_by_path, type_to_json
from sluice.twins.klaviyo import KlaviyoTwin, serve
from tests.apps.klaviyo import CASE
from tests.connector_runs import FakeTime, run_connector

KEY = "pk_" + "a1" * 17
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Schema, values, settings (no network)
# ---------------------------------------------------------------------------------------------


def test_the_schema_lists_writable_attributes_only():
    schema = destination_schema()
    names = [p.name for p in schema.properties]
    assert names[:3] == ["email", "phone_number", "external_id"]
    for read_only in ("id", "created", "updated", "last_event_date", "predictive_analytics"):
        assert read_only not in names
    assert property_by_path(schema, "location.latitude").type.kind is Kind.FLOAT
    custom = property_by_path(schema, "properties").type
    assert (custom.kind, custom.element_type.kind) == (Kind.MAP, Kind.JSON)  # type: ignore[union-attr]
    assert all(p.nullable for p in schema.properties)
    assert parse_type(type_to_json(schema)) == schema


def test_the_test_pipeline_aligns_with_the_schema():
    out = parse_type(dict(CASE.out_schema))
    check_alignment(out, destination_schema(), "CreateOrUpdate", other="the application's schema")


def test_values_become_json_and_unknown_attributes_are_refused():
    attributes = profile_attributes(
        {
            "email": "a@example.com",
            "first_name": None,
            "properties": {"n": Decimal("2"), "x": Decimal("1.5")},
        }
    )
    assert attributes == {
        "email": "a@example.com",
        "first_name": None,
        "properties": {"n": 2, "x": 1.5},
    }
    with pytest.raises(Exception, match='"nickname" is not a writable Klaviyo profile attribute'):
        profile_attributes({"nickname": "x"})


def test_settings_and_credentials_are_checked():
    with pytest.raises(ConnectorError) as err:
        connect({"list": 1}, {"privateApiKey": KEY})
    assert str(err.value) == (
        'Klaviyo connection settings cannot hold "list": the only setting is "baseUrl"'
    )
    with pytest.raises(ConnectorError, match='the Klaviyo credentials have no "privateApiKey"'):
        connect({}, {})
    with pytest.raises(ConnectorError, match='must be "pk_" followed by at least 34'):
        connect({}, {"privateApiKey": "AbC123"})  # a public key
    with pytest.raises(ConnectorError, match='"baseUrl" must be an http or https URL'):
        connect({"baseUrl": "ftp://x"}, {"privateApiKey": KEY})


def _response(status: int, headers: dict[str, str], body: bytes = b"{}") -> httpx.Response:
    return httpx.Response(status, headers=headers, content=body)


def test_rate_limit_headers_fit_the_bucket_and_pause_it_when_used_up():
    ok = _response(
        200, {"RateLimit-Limit": "750", "RateLimit-Remaining": "12", "RateLimit-Reset": "31"}
    )
    assert read_rate_limit(ok) == RateLimitHint(pause=None, window=(750, 60.0))
    used_up = _response(
        200, {"RateLimit-Limit": "150", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"}
    )
    assert read_rate_limit(used_up) == RateLimitHint(pause=7.0, window=(150, 60.0))
    throttled = _response(
        429,
        {},
        b'{"errors":[{"id":"x","status":429,"code":"throttled","title":"Request was throttled.",'
        b'"detail":"Request was throttled. Expected available in 3 seconds."}]}',
    )
    assert read_rate_limit(throttled) == RateLimitHint(pause=3.0)
    assert read_rate_limit(_response(200, {})) is None


# ---------------------------------------------------------------------------------------------
# Against the twin
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin_url() -> Iterator[tuple[KlaviyoTwin, str]]:
    twin = KlaviyoTwin(KEY, rate_limit=False)
    with serve(twin) as url:
        yield twin, url


@pytest.fixture
def twin(twin_url: tuple[KlaviyoTwin, str]) -> KlaviyoTwin:
    twin_url[0].reset()
    twin_url[0].set_job_polls(1)
    return twin_url[0]


def with_connector(
    url: str,
    body: Callable[[KlaviyoConnector], Awaitable[T]],
    fake: FakeTime | None = None,
    **options: Any,
) -> T:
    return run_connector(
        lambda hooks: KlaviyoConnector(
            {"baseUrl": url}, {"privateApiKey": KEY}, **options, **hooks
        ),
        body,
        fake,
        timeout=20.0,
    )


def person(key: int, email: str | None, **more: Any) -> WriteRecord:
    return WriteRecord(key, None, {"email": email, **more})


def emails(twin: KlaviyoTwin) -> dict[str, dict[str, Any]]:
    return {p["attributes"]["email"]: p for p in twin.profiles()}


def requests(twin: KlaviyoTwin, endpoint: str) -> dict[str, int]:
    return twin.request_counts().get(endpoint, {})


def test_create_imports_in_one_job_then_finds_the_new_ids(twin, twin_url):
    records = [person(i, f"User{i}@Example.com", first_name=f"U{i}") for i in range(150)]
    results = with_connector(twin_url[1], lambda c: c.create("email", records))
    stored = emails(twin)
    assert len(stored) == 150
    assert [r.external_id for r in results] == [
        stored[f"user{i}@example.com"]["id"] for i in range(150)
    ]
    assert requests(twin, "POST /api/profile-bulk-import-jobs") == {"202": 1}
    # Before: 2 lookups of the 150 values (100 per request); after: 2 more.
    assert requests(twin, "GET /api/profiles") == {"200": 4}


def test_a_create_meeting_an_existing_profile_names_it_and_leaves_it(twin, twin_url):
    (existing,) = twin.add_profiles([{"email": "taken@example.com", "first_name": "Before"}])
    results = with_connector(
        twin_url[1],
        lambda c: c.create(
            "email",
            [person(1, "new@example.com"), person(2, "Taken@Example.com", first_name="After")],
        ),
    )
    assert results[0].external_id and results[0].error is None
    assert results[1] == WriteResult(2, existing_id=existing)
    assert emails(twin)["taken@example.com"]["attributes"]["first_name"] == "Before"


def test_lookup_by_email_phone_and_external_id(twin, twin_url):
    ids = twin.add_profiles(
        [
            {"email": "ada@example.com", "phone_number": "+15005550006", "external_id": "C-1"},
            {"email": "grace@example.com"},
        ]
    )

    async def body(c: KlaviyoConnector) -> list[list[AppUser]]:
        return [
            await c.lookup("email", ["Ada@Example.com", "nobody@example.com", 'bad"quote']),
            await c.lookup("phone_number", ["+15005550006", "+15005550007"]),
            await c.lookup("external_id", ["C-1", "c-1"]),
        ]

    by_email, by_phone, by_external = with_connector(twin_url[1], body)
    # Answered with the value asked for, as Klaviyo ignores the case of addresses.
    assert by_email == [AppUser(ids[0], "Ada@Example.com")]
    assert by_phone == [AppUser(ids[0], "+15005550006")]
    assert by_external == [AppUser(ids[0], "C-1")]


def test_lookup_asks_for_one_hundred_values_per_request(twin, twin_url):
    twin.add_profiles({"email": f"p{i}@example.com"} for i in range(120))
    found = with_connector(
        twin_url[1], lambda c: c.lookup("email", [f"p{i}@example.com" for i in range(250)])
    )
    assert len(found) == 120
    assert requests(twin, "GET /api/profiles") == {"200": 3}


def test_matching_by_another_attribute_is_refused(twin_url):
    with pytest.raises(ConnectorError, match='not by "first_name"'):
        with_connector(twin_url[1], lambda c: c.lookup("first_name", ["Ada"]))


def test_upsert_creates_and_updates_in_one_job_and_says_which(twin, twin_url):
    (ada,) = twin.add_profiles([{"email": "ada@example.com", "first_name": "Ada"}])
    records = [
        person(1, "ada@example.com", first_name="Augusta"),
        person(2, "grace@example.com", first_name="Grace", properties={"tier": "gold"}),
        WriteRecord(3, None, {"first_name": "No email"}),
    ]
    results = with_connector(twin_url[1], lambda c: c.upsert("email", records))
    assert (results[0].external_id, results[0].created) == (ada, False)
    assert results[1].external_id and results[1].created is True
    assert results[2].error == 'no value of "email" to find the profile by'
    stored = emails(twin)
    assert stored["ada@example.com"]["attributes"]["first_name"] == "Augusta"
    assert stored["grace@example.com"]["attributes"]["properties"] == {"tier": "gold"}
    assert requests(twin, "POST /api/profile-bulk-import-jobs") == {"202": 1}


def test_upserts_by_identifiers_only(twin_url):
    async def which(c: KlaviyoConnector) -> list[bool]:
        return [await c.upserts(p) for p in ("email", "phone_number", "external_id", "first_name")]

    assert with_connector(twin_url[1], which) == [True, True, True, False]


def test_update_by_id_answers_each_record(twin, twin_url):
    (known,) = twin.add_profiles([{"email": "u@example.com", "first_name": "Old"}])
    results = with_connector(
        twin_url[1],
        lambda c: c.update(
            [
                WriteRecord(1, known, {"first_name": "New", "last_name": None}),
                WriteRecord(2, "01J00000000000000000099999", {"first_name": "Ghost"}),
            ]
        ),
    )
    assert results[0] == WriteResult(1, external_id=known)
    assert results[1].error is not None and results[1].error.startswith("not_found: ")
    assert emails(twin)["u@example.com"]["attributes"]["first_name"] == "New"
    assert "GET /api/profiles" not in twin.request_counts()  # ids known: nothing looked up


def test_a_profile_klaviyo_refuses_fails_alone(twin, twin_url):
    results = with_connector(
        twin_url[1],
        lambda c: c.create(
            "email",
            [
                person(1, "ok@example.com"),
                person(2, "not-an-email"),
                person(3, "fine@example.com", phone_number="555-1234"),
            ],
        ),
    )
    assert results[0].external_id is not None
    assert results[1].error == "invalid: Invalid email address: 'not-an-email'."
    assert results[2].error is not None and "Invalid phone number" in results[2].error
    assert sorted(emails(twin)) == ["ok@example.com"]


def test_a_job_is_polled_on_the_clock_until_complete(twin, twin_url):
    twin.set_job_polls(4)
    fake = FakeTime()
    results = with_connector(
        twin_url[1], lambda c: c.create("email", [person(1, "slow@example.com")]), fake
    )
    assert results[0].external_id is not None
    assert fake.sleeps == [1.0, 2.0, 4.0]  # the first poll is immediate
    assert requests(twin, "GET /api/profile-bulk-import-jobs/{id}") == {"200": 4}


def test_a_job_outliving_the_time_allowed_stops_the_run(twin, twin_url):
    twin.set_job_polls(1000)
    with pytest.raises(ConnectorError, match=r"did not finish within 30 s"):
        with_connector(
            twin_url[1],
            lambda c: c.create("email", [person(1, "stuck@example.com")]),
            job_timeout=30.0,
        )


def test_a_create_whose_answer_is_lost_is_checked_not_repeated_blindly(twin, twin_url):
    (known,) = twin.add_profiles([{"email": "other@example.com"}])
    twin.fail_next(1, 502, path="/api/profile-bulk-import-jobs", after_apply=True)
    twin.set_job_polls(1)
    records = [person(1, "one@example.com"), person(2, "two@example.com")]

    async def body(c: KlaviyoConnector) -> list[WriteResult]:
        return await c.create("email", records)

    results = with_connector(twin_url[1], body)
    stored = emails(twin)
    assert len(stored) == 3  # no duplicate
    assert {r.key: r.external_id for r in results} == {
        1: stored["one@example.com"]["id"],
        2: stored["two@example.com"]["id"],
    }
    assert known in {p["id"] for p in stored.values()}


def test_an_upsert_job_is_retried_after_a_5xx(twin, twin_url):
    twin.fail_next(2, 503, path="/api/profile-bulk-import-jobs")
    fake = FakeTime()
    results = with_connector(
        twin_url[1], lambda c: c.upsert("email", [person(1, "r@example.com")]), fake
    )
    assert results[0].created and results[0].external_id
    assert fake.sleeps[:2] == [0.5, 1.0]


def test_a_429_waits_for_retry_after(twin, twin_url):
    twin.force_rate_limit(1)
    fake = FakeTime()

    async def body(c: KlaviyoConnector) -> Any:
        return await c.lookup("email", ["z@example.com"]), c.http.stats

    users, stats = with_connector(twin_url[1], body, fake)
    assert users == [] and stats.rate_limited == 1
    assert fake.sleeps[0] == 1.0


def test_a_revoked_key_stops_the_run(twin, twin_url):
    twin.revoke_token()
    with pytest.raises(ConnectorError) as err:
        with_connector(twin_url[1], lambda c: c.lookup("email", ["a@example.com"]))
    assert str(err.value) == (
        "Klaviyo refused the private API key (401 Unauthorized): "
        "authentication_failed: Incorrect authentication credentials."
    )


def test_the_identity_is_the_account_whatever_the_key():
    other = KlaviyoTwin("pk_" + "b2" * 17, account_id="XyZ789")
    with serve(other) as url:

        async def identity() -> str:
            connector = KlaviyoConnector({"baseUrl": url}, {"privateApiKey": "pk_" + "b2" * 17})
            try:
                return await connector.destination_identity()
            finally:
                await connector.aclose()

        assert asyncio.run(identity()) == "klaviyo:account/XyZ789"
