"""The Mailchimp twin, driven over HTTP on 127.0.0.1 as the connector drives Mailchimp, and
checked against the examples of Mailchimp's documentation."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sluice.twins.mailchimp import MAX_CONNECTIONS, MailchimpTwin, serve

KEY = "0123456789abcdef0123456789abcdef-us21"
LIST = "a1b2c3d4e5"
REQUIRED_PLAN = {
    "tag": "PLAN",
    "name": "Plan",
    "type": "dropdown",
    "required": True,
    "options": {"choices": ["free", "pro"]},
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[MailchimpTwin, str]]:
    twin = MailchimpTwin(KEY)
    with serve(twin) as url:
        yield twin, url


@pytest.fixture
def api(served: tuple[MailchimpTwin, str]) -> Iterator[tuple[MailchimpTwin, httpx.Client]]:
    twin, url = served
    twin.reset()
    with httpx.Client(base_url=f"{url}/3.0", auth=("anystring", KEY), timeout=10) as client:
        yield twin, client


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def subscribe(client: httpx.Client, members: list[Any], **extra: Any) -> httpx.Response:
    return client.post(f"/lists/{LIST}", json={"members": members, **extra})


def test_the_api_root_names_the_account(api):
    twin, client = api
    response = client.get("/")
    assert response.status_code == 200
    assert response.json()["account_id"] == twin.account_id


def test_a_request_without_a_key_is_refused_as_mailchimp_documents(served):
    _, url = served
    response = httpx.get(f"{url}/3.0/lists/{LIST}")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    assert (body["title"], body["status"]) == ("API Key Missing", 401)
    wrong = httpx.get(f"{url}/3.0/", auth=("anystring", "nope-us21"))
    assert wrong.json()["title"] == "API Key Invalid"


def test_an_unknown_audience_is_a_404_problem(api):
    _, client = api
    response = client.get("/lists/nope/merge-fields")
    assert response.status_code == 404
    assert response.json()["title"] == "Resource Not Found"
    assert response.json()["detail"] == "The requested resource could not be found."


def test_merge_fields_are_the_default_audience_fields(api):
    _, client = api
    body = client.get(f"/lists/{LIST}/merge-fields", params={"count": 1000}).json()
    assert [f["tag"] for f in body["merge_fields"]] == [
        "FNAME",
        "LNAME",
        "ADDRESS",
        "PHONE",
        "BIRTHDAY",
    ]
    assert body["total_items"] == 5
    assert client.get(f"/lists/{LIST}/merge-fields", params={"count": 1001}).status_code == 400


def test_batch_subscribe_answers_per_member_as_the_documentation_shows(api):
    twin, client = api
    twin.add_members([{"email_address": "old@example.com"}])
    # The documentation's example body: members with email_address, status, merge_fields.
    response = subscribe(
        client,
        [
            {"email_address": "new@example.com", "status": "subscribed",
             "merge_fields": {"FNAME": "Ada"}},
            {"email_address": "Old@Example.com", "status": "unsubscribed"},
            {"email_address": "not-an-email", "status": "subscribed"},
        ],
        update_existing=True,
    )  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {
        "new_members",
        "updated_members",
        "errors",
        "total_created",
        "total_updated",
        "error_count",
    }
    assert [m["email_address"] for m in body["new_members"]] == ["new@example.com"]
    assert body["new_members"][0]["id"] == md5("new@example.com")
    assert [m["status"] for m in body["updated_members"]] == ["unsubscribed"]
    (error,) = body["errors"]
    assert error["email_address"] == "not-an-email"
    assert "looks fake or invalid" in error["error"]
    assert error["error_code"] == "ERROR_GENERIC"
    assert (body["total_created"], body["total_updated"], body["error_count"]) == (1, 1, 1)


def test_an_existing_member_without_update_existing_is_error_contact_exists(api):
    twin, client = api
    twin.add_members([{"email_address": "taken@example.com"}])
    body = subscribe(
        client, [{"email_address": "taken@example.com", "status": "subscribed"}]
    ).json()
    assert body["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert "update_existing:true" in body["errors"][0]["error"]


def test_a_new_member_needs_a_status_or_status_if_new(api):
    _, client = api
    body = subscribe(
        client,
        [
            {"email_address": "a@example.com"},
            {"email_address": "b@example.com", "status_if_new": "pending"},
            {"email_address": "c@example.com", "status": "archived"},
        ],
        update_existing=True,
    ).json()
    assert [e["email_address"] for e in body["errors"]] == ["a@example.com", "c@example.com"]
    assert body["new_members"][0]["status"] == "pending"


def test_status_if_new_does_not_change_an_existing_member(api):
    twin, client = api
    twin.add_members([{"email_address": "u@example.com", "status": "unsubscribed"}])
    body = subscribe(
        client,
        [{"email_address": "u@example.com", "status_if_new": "subscribed"}],
        update_existing=True,
    ).json()
    assert body["updated_members"][0]["status"] == "unsubscribed"


def test_merge_fields_are_validated(served):
    twin = MailchimpTwin(KEY, merge_fields=[REQUIRED_PLAN, {"tag": "AGE", "type": "number"}])
    with serve(twin) as url, httpx.Client(base_url=f"{url}/3.0", auth=("x", KEY)) as client:
        body = subscribe(
            client,
            [
                {"email_address": "a@example.com", "status": "subscribed"},
                {"email_address": "b@example.com", "status": "subscribed",
                 "merge_fields": {"PLAN": "gold"}},
                {"email_address": "c@example.com", "status": "subscribed",
                 "merge_fields": {"PLAN": "pro", "AGE": "old"}},
                {"email_address": "d@example.com", "status": "subscribed",
                 "merge_fields": {"PLAN": "pro", "AGE": 42}},
            ],
        ).json()  # fmt: skip
        fields = [(e["email_address"], e["field"]) for e in body["errors"]]
        assert fields == [
            ("a@example.com", "PLAN"),
            ("b@example.com", "PLAN"),
            ("c@example.com", "AGE"),
        ]
        assert body["errors"][0]["error"] == "Your merge fields were invalid."
        assert [m["email_address"] for m in body["new_members"]] == ["d@example.com"]
        skipped = client.post(
            f"/lists/{LIST}",
            params={"skip_merge_validation": "true"},
            json={"members": [{"email_address": "e@example.com", "status": "subscribed"}]},
        ).json()
        assert skipped["total_created"] == 1


def test_a_batch_of_more_than_500_members_is_refused_whole(api):
    twin, client = api
    members = [{"email_address": f"u{i}@example.com", "status": "subscribed"} for i in range(501)]
    response = subscribe(client, members)
    assert response.status_code == 400
    assert response.json()["status"] == 400
    assert twin.member_count() == 0


def test_invalid_json_is_a_json_parse_error(api):
    _, client = api
    response = client.post(
        f"/lists/{LIST}", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["title"] == "JSON Parse Error"


def test_members_are_read_and_patched_by_subscriber_hash(api):
    twin, client = api
    (member_id,) = twin.add_members([{"email_address": "Ada@Example.com"}])
    assert member_id == md5("ada@example.com")
    assert client.get(f"/lists/{LIST}/members/{member_id}").json()["email_address"] == (
        "Ada@Example.com"
    )
    assert client.get(f"/lists/{LIST}/members/{md5('nobody@example.com')}").status_code == 404
    patched = client.patch(
        f"/lists/{LIST}/members/{member_id}", json={"merge_fields": {"FNAME": "Ada"}}
    )
    assert patched.status_code == 200
    assert patched.json()["merge_fields"]["FNAME"] == "Ada"
    moved = client.patch(
        f"/lists/{LIST}/members/{member_id}", json={"email_address": "augusta@example.com"}
    )
    assert moved.json()["id"] == md5("augusta@example.com")
    bad = client.patch(
        f"/lists/{LIST}/members/{md5('augusta@example.com')}", json={"status": "archived"}
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "status"


def test_more_than_ten_simultaneous_connections_answer_429(api):
    twin, client = api
    twin.set_rate_limiting(True)
    twin.set_latency(0.3)
    statuses: list[int] = []

    def call() -> None:
        statuses.append(client.get("/").status_code)

    threads = [threading.Thread(target=call) for _ in range(MAX_CONNECTIONS + 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(429) >= 1
    assert statuses.count(200) >= MAX_CONNECTIONS - 2  # a few may not overlap
    twin.set_latency(0)
    time.sleep(0.05)
    refused = client.get("/") if twin.force_rate_limit(1) is None else None
    assert refused is not None and refused.status_code == 429
    assert refused.json()["detail"] == (
        "You have exceeded the limit of 10 simultaneous connections."
    )


def test_an_injected_fault_after_apply_keeps_the_write(api):
    twin, client = api
    twin.fail_next(1, 503, path=f"/lists/{LIST}", after_apply=True)
    response = subscribe(client, [{"email_address": "x@example.com", "status": "subscribed"}])
    assert response.status_code == 503
    assert twin.member_count() == 1
    assert twin.request_counts()["POST /3.0/lists/{list_id}"] == {"503": 1}
