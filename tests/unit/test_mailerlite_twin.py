"""The MailerLite twin against the examples of MailerLite's documentation (developers.mailerlite
.com: Getting started, Subscribers, Fields, Batching): request bodies, answers and error bodies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sluice.twins.mailerlite import MailerLiteTwin, serve

TOKEN = "mlite-twin-token"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Content-Type": "application/json",
    "Accept": "application/json",
}
# The keys of a subscriber in the documented answers ("Create/upsert subscriber").
SUBSCRIBER_KEYS = {
    "id",
    "email",
    "status",
    "source",
    "sent",
    "opens_count",
    "clicks_count",
    "open_rate",
    "click_rate",
    "ip_address",
    "subscribed_at",
    "unsubscribed_at",
    "created_at",
    "updated_at",
    "fields",
    "groups",
    "opted_in_at",
    "optin_ip",
}
INVALID_EMAIL = {
    "message": "The given data was invalid.",
    "errors": {"email": ["The email must be a valid email address."]},
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[MailerLiteTwin, str]]:
    twin = MailerLiteTwin(TOKEN, groups=["Newsletter", "Customers", "Leads"], rate_limit=False)
    with serve(twin) as url:
        yield twin, url


@pytest.fixture
def api(served: tuple[MailerLiteTwin, str]) -> Iterator[httpx.Client]:
    served[0].reset()
    with httpx.Client(base_url=f"{served[1]}/api", headers=HEADERS, timeout=10) as client:
        yield client


@pytest.fixture
def twin(served: tuple[MailerLiteTwin, str], api: httpx.Client) -> MailerLiteTwin:
    return served[0]


def documented_create(twin: MailerLiteTwin) -> dict[str, Any]:
    """The documented create body, with this account's group ids."""
    return {
        "email": "dummy@example.com",
        "fields": {"name": "Dummy", "last_name": "Testerson"},
        "groups": list(twin.group_ids().values()),
    }


def test_create_answers_201_then_200_for_the_same_email(twin, api):
    first = api.post("/subscribers", json=documented_create(twin))
    assert first.status_code == 201
    data = first.json()["data"]
    assert set(data) == SUBSCRIBER_KEYS
    assert (data["email"], data["status"], data["source"]) == ("dummy@example.com", "active", "api")
    assert data["fields"]["name"] == "Dummy" and data["fields"]["z_i_p"] is None
    assert len(data["groups"]) == 3 and len(data["subscribed_at"]) == len("2021-08-31 14:22:08")

    again = api.post(
        "/subscribers", json={"email": "dummy@example.com", "fields": {"city": "Oslo"}}
    )
    assert again.status_code == 200
    kept = again.json()["data"]
    # Non-destructive: what is omitted is kept.
    assert kept["id"] == data["id"] and kept["fields"]["name"] == "Dummy"
    assert kept["fields"]["city"] == "Oslo" and len(kept["groups"]) == 3


def test_an_invalid_email_is_the_documented_422(api):
    answer = api.post("/subscribers", json={"email": "not-an-email"})
    assert (answer.status_code, answer.json()) == (422, INVALID_EMAIL)


def test_validation_follows_the_documented_limitations(twin, api):
    answer = api.post(
        "/subscribers",
        json={
            "email": "v@example.com",
            "status": "deleted",
            "subscribed_at": "2021-08-31T14:22:08Z",
            "ip_address": "not-an-ip",
            "groups": ["1"],
            "fields": {"nope": "x"},
        },
    )
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {
        "status",
        "subscribed_at",
        "ip_address",
        "groups.0",
        "fields.nope",
    }
    assert twin.subscriber_count() == 0


def test_fetch_by_id_or_email_and_404(twin, api):
    (subscriber_id,) = twin.add_subscribers([{"email": "dummy@example.com"}])
    by_id = api.get(f"/subscribers/{subscriber_id}")
    by_email = api.get("/subscribers/dummy@example.com")
    assert by_id.status_code == by_email.status_code == 200
    assert by_id.json() == by_email.json()
    assert api.get("/subscribers/missing@example.com").status_code == 404


def test_the_documented_update_clears_a_field_and_replaces_the_groups(twin, api):
    groups = twin.group_ids()
    (subscriber_id,) = twin.add_subscribers([documented_create(twin)])
    answer = api.put(
        f"/subscribers/{subscriber_id}",
        json={"fields": {"name": "Dummy", "last_name": None}, "groups": [groups["Leads"]]},
    )
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["fields"]["last_name"] is None
    assert [g["id"] for g in data["groups"]] == [groups["Leads"]]
    assert api.put("/subscribers/123", json={}).status_code == 404


def test_an_unsubscribed_subscriber_is_not_reactivated_by_the_api(twin, api):
    (subscriber_id,) = twin.add_subscribers([{"email": "u@example.com", "status": "unsubscribed"}])
    api.put(f"/subscribers/{subscriber_id}", json={"status": "active"})
    assert twin.subscriber(subscriber_id)["status"] == "unsubscribed"  # type: ignore[index]
    api.post("/subscribers", json={"email": "u@example.com", "resubscribe": True})
    assert twin.subscriber(subscriber_id)["status"] == "active"  # type: ignore[index]


def test_fields_are_listed_in_pages(api):
    first = api.get("/fields", params={"limit": 5, "page": 1}).json()
    assert set(first["data"][0]) == {"id", "name", "key", "type"}
    assert [f["key"] for f in first["data"]] == ["name", "last_name", "company", "country", "city"]
    assert first["meta"]["last_page"] == 2 and first["links"]["next"].endswith("page=2")
    second = api.get("/fields", params={"limit": 5, "page": 2}).json()
    assert [f["key"] for f in second["data"]] == ["phone", "state", "z_i_p"]
    assert second["links"]["next"] is None
    assert api.get("/fields", params={"limit": 101}).status_code == 422


def test_a_batch_answers_each_request_in_order(twin, api):
    answer = api.post(
        "/batch",
        json={
            "requests": [
                {"method": "GET", "path": "api/fields"},
                {"method": "POST", "path": "api/subscribers", "body": {"email": "b@example.com"}},
                {"method": "GET", "path": "api/subscribers/nobody@example.com"},
                {"method": "POST", "path": "api/subscribers", "body": {"email": "bad"}},
            ]
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["total"], body["successful"], body["failed"]) == (4, 2, 2)
    assert [r["code"] for r in body["responses"]] == [200, 201, 404, 422]
    assert body["responses"][0]["body"]["data"][0]["key"] == "name"
    assert body["responses"][3]["body"] == INVALID_EMAIL
    assert twin.request_counts() == {"POST /api/batch": {"200": 1}}  # one request


def test_a_batch_is_refused_past_fifty_requests_or_outside_api(api):
    too_many = [{"method": "GET", "path": "api/fields"}] * 51
    assert api.post("/batch", json={"requests": too_many}).status_code == 422
    outside = api.post("/batch", json={"requests": [{"method": "GET", "path": "/api/fields"}]})
    assert outside.status_code == 422
    assert "requests.0.path" in outside.json()["errors"]


def test_the_documented_429(twin, api):
    twin.force_rate_limit(1)
    answer = api.get("/fields")
    assert (answer.status_code, answer.json()) == (429, {"message": "Too Many Attempts."})
    assert answer.headers["X-RateLimit-Limit"] == "120"
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert int(answer.headers["Retry-After"]) >= 1
    assert api.get("/fields").status_code == 200


def test_120_requests_per_minute(twin, api):
    twin.set_rate_limiting(True)
    statuses = [api.get("/fields").status_code for _ in range(121)]
    assert statuses.count(200) == 120 and statuses[-1] == 429


def test_batches_of_upserts_only_are_imports_limited_to_five_a_minute(twin, api):
    twin.set_rate_limiting(True)

    def upserts(i: int) -> dict[str, Any]:
        body = {"email": f"i{i}@example.com"}
        return {"requests": [{"method": "POST", "path": "api/subscribers", "body": body}]}

    statuses = [api.post("/batch", json=upserts(i)).status_code for i in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = api.post("/batch", json=upserts(9))
    assert refused.json() == {"message": "You're being rate limited on import creation."}
    mixed = upserts(7)
    mixed["requests"].append({"method": "GET", "path": "api/subscribers/i7@example.com"})
    assert api.post("/batch", json=mixed).status_code == 200


def test_a_bad_token_is_the_documented_401(twin, api):
    answer = api.get("/fields", headers={"Authorization": "Bearer wrong"})
    assert (answer.status_code, answer.json()) == (401, {"message": "Unauthenticated."})
    twin.revoke_token()
    assert api.get("/fields").status_code == 401


def test_a_fault_after_apply_loses_only_the_answer(twin, api):
    twin.fail_next(1, 502, path="/api/batch", after_apply=True)
    request = {"method": "POST", "path": "api/subscribers", "body": {"email": "l@example.com"}}
    assert api.post("/batch", json={"requests": [request]}).status_code == 502
    assert twin.subscriber_count() == 1


def test_a_fault_aims_at_batches_by_their_first_sub_request(twin, api):
    twin.fail_next(1, 503, path="/api/batch POST api/subscribers")
    lookup = {"method": "GET", "path": "api/subscribers/l@example.com"}
    create = {"method": "POST", "path": "api/subscribers", "body": {"email": "l@example.com"}}
    assert api.post("/batch", json={"requests": [lookup]}).status_code == 200
    assert api.post("/batch", json={"requests": [create]}).status_code == 503
    assert twin.subscriber_count() == 0
