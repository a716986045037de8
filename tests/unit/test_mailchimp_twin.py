"""The Mailchimp twin, driven over HTTP on 127.0.0.1 as the connector drives Mailchimp, and
checked against the examples of Mailchimp's documentation."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
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


# -- "Add or update list member" (PUT) ------------------------------------------------------


def test_put_adds_a_new_member_then_updates_it(api):
    twin, client = api
    email = "urist.mcvankab@freddiesjokes.com"  # the reference's example member
    path = f"/lists/{LIST}/members/{md5(email)}"
    created = client.put(path, json={"email_address": email, "status_if_new": "subscribed"})
    assert created.status_code == 200
    assert (created.json()["id"], created.json()["status"]) == (md5(email), "subscribed")
    updated = client.put(
        path,
        json={
            "email_address": email,
            "status_if_new": "pending",  # only for a new member
            "merge_fields": {"FNAME": "Urist", "LNAME": "McVankab"},
        },
    )
    assert updated.status_code == 200
    assert updated.json() == client.get(path).json()  # the member, as GET answers it
    member = twin.member(email)
    assert member is not None and member["status"] == "subscribed"
    assert member["full_name"] == "Urist McVankab"
    status = client.put(path, json={"email_address": email, "status": "unsubscribed"})
    assert status.json()["status"] == "unsubscribed"
    assert twin.member_count() == 1


def test_put_refuses_what_mailchimp_refuses(api):
    twin, client = api
    email = "new@example.com"
    cases = [
        # the email must hash to the path's subscriber hash
        (md5("other@example.com"), {"email_address": email, "status_if_new": "subscribed"}),
        # a new member needs status_if_new ("required only if the email address is not
        # already present on the list")
        (md5(email), {"email_address": email, "status": "subscribed"}),
        (md5(email), {"status_if_new": "subscribed"}),
        (md5(email), {"email_address": email, "status_if_new": "archived"}),
        (md5("not-an-email"), {"email_address": "not-an-email", "status_if_new": "subscribed"}),
        (
            md5(email),
            {"email_address": email, "status_if_new": "subscribed",
             "merge_fields": {"BIRTHDAY": "1815-12-10"}},
        ),
    ]  # fmt: skip
    fields = []
    for subscriber, body in cases:
        response = client.put(f"/lists/{LIST}/members/{subscriber}", json=body)
        assert response.status_code == 400
        assert response.json()["title"] == "Invalid Resource"
        fields.append([e["field"] for e in response.json().get("errors", [])])
    assert fields == [
        ["email_address"],
        ["status_if_new"],
        ["email_address"],
        ["status_if_new"],
        [],  # "looks fake or invalid" is the detail, as Mailchimp answers it
        ["BIRTHDAY"],
    ]
    assert twin.member_count() == 0


def test_put_requires_required_merge_fields_on_a_new_member_only():
    twin = MailchimpTwin(KEY, merge_fields=[REQUIRED_PLAN])
    twin.add_members([{"email_address": "old@example.com", "merge_fields": {"PLAN": "free"}}])
    with serve(twin) as url, httpx.Client(base_url=f"{url}/3.0", auth=("x", KEY)) as client:

        def put(email: str, **params: str) -> httpx.Response:
            body = {"email_address": email, "status_if_new": "subscribed"}
            return client.put(f"/lists/{LIST}/members/{md5(email)}", json=body, params=params)

        refused = put("new@example.com")
        assert refused.json()["detail"] == "Your merge fields were invalid."
        assert refused.json()["errors"] == [{"field": "PLAN", "message": "Please enter a value"}]
        assert put("old@example.com").status_code == 200
        assert put("new@example.com", skip_merge_validation="true").status_code == 200


# -- batch operations ---------------------------------------------------------------------------


def put_operation(email: str, operation_id: str | None = None, **body: Any) -> dict[str, Any]:
    """A batch operation writing a member by PUT; its body is a JSON string, as documented."""
    operation = {
        "method": "PUT",
        "path": f"/lists/{LIST}/members/{md5(email)}",
        "body": json.dumps({"email_address": email, "status_if_new": "subscribed", **body}),
    }
    return operation | ({} if operation_id is None else {"operation_id": operation_id})


def finished(client: httpx.Client, batch_id: str, seconds: float = 20) -> dict[str, Any]:
    """The batch once ``finished``, polled as the guide polls it."""
    deadline = time.monotonic() + seconds
    while (batch := client.get(f"/batches/{batch_id}").json())["status"] != "finished":
        assert time.monotonic() < deadline, batch
        time.sleep(0.02)
    return batch


def archive_files(url: str) -> list[list[dict[str, Any]]]:
    """The JSON files of a results archive, each an array of results."""
    response = httpx.get(url)  # a pre-signed URL: no API key
    assert response.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
        return [json.load(tar.extractfile(m)) for m in tar.getmembers()]  # type: ignore[arg-type]


@contextlib.contextmanager
def paced(per_second: float) -> Iterator[tuple[MailchimpTwin, httpx.Client]]:
    """A twin of its own whose batch operations run at ``per_second``."""
    twin = MailchimpTwin(KEY, batch_operations_per_second=per_second)
    with serve(twin) as url, httpx.Client(base_url=f"{url}/3.0", auth=("x", KEY)) as client:
        yield twin, client


def test_a_batch_of_puts_finishes_with_one_result_per_operation_in_a_gzipped_tar(api):
    twin, client = api
    operations = [put_operation(f"u{i}@example.com", f"op-{i}") for i in range(1000)]
    operations.append(put_operation("not-an-email", "op-fake"))
    response = client.post("/batches", json={"operations": operations})
    assert response.status_code == 200
    submitted = response.json()
    assert submitted["status"] == "pending"
    assert (submitted["total_operations"], submitted["finished_operations"]) == (1001, 0)
    assert (submitted["completed_at"], submitted["response_body_url"]) == ("", "")
    assert len(submitted["id"]) == 10

    batch = finished(client, submitted["id"])
    assert (batch["finished_operations"], batch["errored_operations"]) == (1001, 1)
    assert batch["completed_at"] and batch["response_body_url"].endswith(".tar.gz")
    assert twin.member_count() == 1000

    files = archive_files(batch["response_body_url"])
    assert len(files) > 1  # a client reading the first file only misses results
    results = {r["operation_id"]: r for file in files for r in file}
    assert len(results) == 1001 == sum(len(file) for file in files)
    assert results["op-7"]["status_code"] == 200
    assert json.loads(results["op-7"]["response"])["email_address"] == "u7@example.com"
    fake = results["op-fake"]
    assert fake["status_code"] == 400
    assert json.loads(fake["response"])["title"] == "Invalid Resource"  # a JSON string
    assert twin.request_counts()["POST /3.0/batches"] == {"200": 1}


def test_an_operation_on_an_unknown_path_is_its_own_404(api):
    _, client = api
    operations = [
        {"method": "GET", "path": f"/lists/{LIST}"},
        {"method": "GET", "path": "/campaigns", "operation_id": "unknown"},
        {"method": "GET", "path": f"/lists/{LIST}/merge-fields", "params": {"count": 2}},
    ]
    batch = finished(client, client.post("/batches", json={"operations": operations}).json()["id"])
    assert batch["errored_operations"] == 1
    (results,) = archive_files(batch["response_body_url"])
    assert [r["status_code"] for r in results] == [200, 404, 200]
    assert json.loads(results[1]["response"])["title"] == "Resource Not Found"
    assert len(json.loads(results[2]["response"])["merge_fields"]) == 2


def test_batches_run_one_at_a_time_in_submission_order():
    with paced(50) as (twin, client):
        first = client.post("/batches", json={"operations": [
            put_operation(f"a{i}@example.com") for i in range(10)
        ]}).json()["id"]  # fmt: skip
        second = client.post("/batches", json={"operations": [
            put_operation(f"b{i}@example.com") for i in range(2)
        ]}).json()["id"]  # fmt: skip
        seen = set()
        while (batch := client.get(f"/batches/{first}").json())["status"] != "finished":
            seen.add(batch["status"])
            waiting = client.get(f"/batches/{second}").json()
            assert (waiting["status"], waiting["finished_operations"]) == ("pending", 0)
            time.sleep(0.01)
        assert "started" in seen
        finished(client, second)
        listing = client.get("/batches", params={"count": 1, "offset": 1}).json()
        assert listing["total_items"] == 2
        assert [b["id"] for b in listing["batches"]] == [second]
        assert [b["id"] for b in twin.batches()] == [first, second]


def test_more_than_500_pending_batches_are_refused():
    with paced(0.001) as (twin, client):  # nothing finishes during the test
        body = {"operations": [{"method": "GET", "path": "/"}]}
        for _ in range(500):
            assert client.post("/batches", json=body).status_code == 200
        refused = client.post("/batches", json=body)
        assert refused.status_code == 429
        assert refused.json()["title"] == "Too Many Requests"
        assert len(twin.batches()) == 500
        assert client.delete(f"/batches/{twin.batches()[-1]['id']}").status_code == 204
        assert client.post("/batches", json=body).status_code == 200


def test_delete_stops_a_batch_and_forgets_it():
    with paced(20) as (twin, client):
        operations = [put_operation(f"u{i}@example.com") for i in range(20)]
        batch_id = client.post("/batches", json={"operations": operations}).json()["id"]
        while client.get(f"/batches/{batch_id}").json()["finished_operations"] < 2:
            time.sleep(0.01)
        deleted = client.delete(f"/batches/{batch_id}")
        assert (deleted.status_code, deleted.content) == (204, b"")
        written = twin.member_count()
        time.sleep(0.3)
        assert twin.member_count() == written < 20
        assert client.get(f"/batches/{batch_id}").status_code == 404
        assert client.delete(f"/batches/{batch_id}").status_code == 404


def test_an_unknown_batch_is_a_404_problem(api, served):
    _, client = api
    response = client.get("/batches/0123456789")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["title"] == "Resource Not Found"
    assert httpx.get(f"{served[1]}/batch-results/0123456789.tar.gz").status_code == 404


def test_a_lost_answer_to_a_batch_still_runs_it(api):
    twin, client = api
    twin.fail_next(1, 503, path="POST /3.0/batches", after_apply=True)
    response = client.post("/batches", json={"operations": [put_operation("x@example.com")]})
    assert response.status_code == 503
    (batch,) = twin.batches()
    assert finished(client, batch["id"])["finished_operations"] == 1
    assert twin.member("x@example.com") is not None
    assert twin.request_counts()["POST /3.0/batches"] == {"503": 1}


def test_invalid_operations_are_refused_whole(api):
    twin, client = api
    good = {"method": "GET", "path": "/"}
    bodies = [
        {},
        {"operations": good},
        {"operations": [good, "GET /"]},
        {"operations": [good, {"method": "FETCH", "path": "/"}]},
        {"operations": [good, {"method": "GET"}]},
        {"operations": [good, {"method": "PUT", "path": "/", "body": {"email_address": "x"}}]},
        {"operations": [good, {**good, "operation_id": 7}]},
    ]
    fields = []
    for body in bodies:
        response = client.post("/batches", json=body)
        assert response.status_code == 400
        assert response.json()["title"] == "Invalid Resource"
        fields.append([e["field"] for e in response.json()["errors"]])
    assert fields == [
        ["operations"],
        ["operations"],
        ["operations.1"],
        ["operations.1.method"],
        ["operations.1.path"],
        ["operations.1.body"],
        ["operations.1.operation_id"],
    ]
    not_json = client.post("/batches", content=b"{", headers={"content-type": "application/json"})
    assert not_json.json()["title"] == "JSON Parse Error"
    assert twin.batches() == []
