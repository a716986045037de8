"""The Klaviyo twin against examples from Klaviyo's documentation: request and answer bodies of
the bulk import, the job, the import errors, profile filters and pages, and its refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sluice.twins.klaviyo import KlaviyoTwin, serve

KEY = "pk_" + "c3" * 17
HEADERS = {
    "Authorization": f"Klaviyo-API-Key {KEY}",
    "revision": "2026-07-15",
    "accept": "application/vnd.api+json",
    "content-type": "application/vnd.api+json",
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[KlaviyoTwin, httpx.Client]]:
    twin = KlaviyoTwin(KEY)
    with serve(twin) as url, httpx.Client(base_url=url, headers=HEADERS) as client:
        yield twin, client


@pytest.fixture
def twin(served: tuple[KlaviyoTwin, httpx.Client]) -> KlaviyoTwin:
    served[0].reset()
    served[0].set_rate_limiting(False)
    served[0].set_job_polls(1)
    return served[0]


@pytest.fixture
def client(served: tuple[KlaviyoTwin, httpx.Client], twin: KlaviyoTwin) -> httpx.Client:
    return served[1]


def import_job(*profiles: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {
                "profiles": {"data": [{"type": "profile", "attributes": p} for p in profiles]}
            },
        }
    }


def only_error(response: httpx.Response) -> dict[str, Any]:
    (item,) = response.json()["errors"]
    assert {"id", "status", "code", "title", "detail"} <= set(item)
    return dict(item)


def test_the_bulk_import_guide_example_runs_as_a_job(client, twin):
    # The guide's example: profiles with an email and a list-valued custom property.
    body = import_job(
        {
            "email": "sarah.mason@klaviyo-demo.com",
            "properties": {"preferences": ["comedy", "drama"]},
        },
        {"email": "john.smith@klaviyo-demo.com", "properties": {"preferences": ["action"]}},
    )
    submitted = client.post("/api/profile-bulk-import-jobs", json=body)
    assert submitted.status_code == 202
    job = submitted.json()["data"]
    assert job["type"] == "profile-bulk-import-job"
    assert job["attributes"]["status"] == "queued"
    assert job["attributes"]["total_count"] == 2
    assert twin.profiles() == []  # asynchronous: nothing is written before the job runs

    polled = client.get(f"/api/profile-bulk-import-jobs/{job['id']}")
    attributes = polled.json()["data"]["attributes"]
    assert set(attributes) == {
        "status", "created_at", "total_count", "completed_count", "failed_count",
        "completed_at", "expires_at", "started_at",
    }  # fmt: skip
    assert (attributes["status"], attributes["completed_count"], attributes["failed_count"]) == (
        "complete", 2, 0,
    )  # fmt: skip
    stored = {p["attributes"]["email"]: p for p in twin.profiles()}
    assert stored["sarah.mason@klaviyo-demo.com"]["attributes"]["properties"] == {
        "preferences": ["comedy", "drama"]
    }


def test_a_job_completes_at_the_configured_poll_and_in_submission_order(client, twin):
    twin.set_job_polls(2)
    first = client.post("/api/profile-bulk-import-jobs", json=import_job({"email": "a@x.io"}))
    second = client.post(
        "/api/profile-bulk-import-jobs", json=import_job({"email": "a@x.io", "first_name": "A"})
    )
    second_id = second.json()["data"]["id"]
    assert (
        client.get(f"/api/profile-bulk-import-jobs/{second_id}").json()["data"]["attributes"][
            "status"
        ]
        == "processing"
    )
    assert (
        client.get(f"/api/profile-bulk-import-jobs/{second_id}").json()["data"]["attributes"][
            "status"
        ]
        == "complete"
    )
    first_id = first.json()["data"]["id"]
    assert (
        client.get(f"/api/profile-bulk-import-jobs/{first_id}").json()["data"]["attributes"][
            "status"
        ]
        == "complete"
    )
    (profile,) = twin.profiles()
    assert profile["attributes"]["first_name"] == "A"  # the later job was applied last


def test_import_errors_carry_the_profile_as_sent(client, twin):
    twin.add_profiles([{"email": "held@x.io"}, {"phone_number": "+15005550006"}])
    body = import_job(
        {"email": "ok@x.io"},
        {"email": "not-an-email", "first_name": "Ava"},
        {"first_name": "nobody"},
        {"email": "held@x.io", "phone_number": "+15005550006"},
    )
    job_id = client.post("/api/profile-bulk-import-jobs", json=body).json()["data"]["id"]
    assert (
        client.get(f"/api/profile-bulk-import-jobs/{job_id}").json()["data"]["attributes"][
            "failed_count"
        ]
        == 3
    )
    page = client.get(
        f"/api/profile-bulk-import-jobs/{job_id}/import-errors", params={"page[size]": 2}
    )
    first = page.json()
    assert [e["type"] for e in first["data"]] == ["import-error", "import-error"]
    invalid = first["data"][0]["attributes"]
    assert invalid["code"] == "invalid"
    assert invalid["original_payload"] == {
        "type": "profile",
        "attributes": {"email": "not-an-email", "first_name": "Ava"},
    }
    assert invalid["source"] == {"pointer": "/data/attributes/profiles/data/1"}
    rest = client.get(first["links"]["next"]).json()
    assert rest["links"]["next"] is None
    assert rest["data"][0]["attributes"]["code"] == "duplicate_profile"


def test_profiles_are_filtered_with_equals_and_any(client, twin):
    twin.add_profiles(
        [
            {
                "email": "sarah.mason@klaviyo-demo.com",
                "external_id": "63f64a2b-c6bf-40c7-b81f-bed08162edbe",
            }
        ]
    )
    twin.add_profiles({"email": f"p{i}@x.io"} for i in range(5))
    one = client.get(
        "/api/profiles", params={"filter": 'equals(email,"sarah.mason@klaviyo-demo.com")'}
    )
    (profile,) = one.json()["data"]
    assert profile["type"] == "profile" and len(profile["id"]) == 26
    assert profile["attributes"]["external_id"] == "63f64a2b-c6bf-40c7-b81f-bed08162edbe"
    many = client.get(
        "/api/profiles",
        params={
            "filter": "any(email,['p0@x.io','p1@x.io','p2@x.io'])",
            "page[size]": "2",
            "fields[profile]": "email",
        },
    ).json()
    assert [p["attributes"] for p in many["data"]] == [{"email": "p0@x.io"}, {"email": "p1@x.io"}]
    following = client.get(many["links"]["next"]).json()
    assert [p["attributes"]["email"] for p in following["data"]] == ["p2@x.io"]
    assert following["links"]["next"] is None


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"filter": 'equals(first_name,"Ada")'}, "not a valid field for the filter"),
        ({"filter": 'equals(email,"a@x.io"'}, "Invalid filter"),
        ({"filter": "any(email,'a@x.io')"}, "takes a list"),
        ({"page[size]": "101"}, "Invalid page size"),
        ({"fields[profile]": "email,shoe_size"}, "not a valid field"),
    ],
)
def test_malformed_queries_are_refused(client, params, detail):
    response = client.get("/api/profiles", params=params)
    assert response.status_code == 400
    assert detail in only_error(response)["detail"]


def test_refused_jobs(client, twin):
    too_many = import_job(*({"email": f"u{i}@x.io"} for i in range(10_001)))
    response = client.post("/api/profile-bulk-import-jobs", json=too_many)
    assert response.status_code == 400
    assert "at most 10000 profiles" in only_error(response)["detail"]
    unknown = client.post("/api/profile-bulk-import-jobs", json=import_job({"nickname": "x"}))
    assert unknown.status_code == 202  # refused per profile, in the job's import errors


def test_credentials_and_revision_are_required(client, twin):
    anonymous = client.get("/api/profiles", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert only_error(anonymous)["code"] == "not_authenticated"
    wrong = client.get("/api/profiles", headers={"Authorization": "Klaviyo-API-Key pk_nope"})
    assert only_error(wrong)["code"] == "authentication_failed"
    no_revision = httpx.get(
        f"{client.base_url}/api/profiles", headers={"Authorization": f"Klaviyo-API-Key {KEY}"}
    )
    assert no_revision.status_code == 400
    assert only_error(no_revision)["source"] == {"parameter": "revision"}


def test_rate_limits_follow_the_endpoint_tiers(client, twin):
    twin.set_rate_limiting(True)
    ok = client.get("/api/profiles")
    assert ok.headers["RateLimit-Limit"] == "750"
    assert int(ok.headers["RateLimit-Remaining"]) == 749
    assert client.get("/api/accounts").headers["RateLimit-Limit"] == "15"
    # The accounts endpoint allows one request per second.
    throttled = client.get("/api/accounts")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert "RateLimit-Limit" not in throttled.headers
    error = only_error(throttled)
    assert (error["code"], error["title"]) == ("throttled", "Request was throttled.")
    assert error["detail"] == "Request was throttled. Expected available in 1 second."


def test_forced_rate_limit_and_accounts(client, twin):
    twin.force_rate_limit(1)
    assert client.get("/api/accounts").status_code == 429
    account = client.get("/api/accounts").json()["data"][0]
    assert (account["type"], account["id"]) == ("account", "Tw1nAc")


def test_seeding_checks_uniqueness_without_case_for_emails(twin):
    twin.add_profiles([{"email": "Ada@Example.com"}])
    (same,) = twin.add_profiles([{"email": "ada@example.com", "first_name": "Ada"}])
    assert [p["id"] for p in twin.profiles()] == [same]
    with pytest.raises(ValueError, match="Invalid email address"):
        twin.add_profiles([{"email": "nope"}])
