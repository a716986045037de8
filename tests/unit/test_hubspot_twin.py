"""The HubSpot twin, driven over HTTP on 127.0.0.1 the way the connector drives HubSpot."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sluice.twins.hubspot import HubSpotTwin, serve

TOKEN = "pat-na1-twin-test"
CUSTOM = [
    {"name": "customer_id", "label": "Customer id", "type": "string", "fieldType": "text",
     "groupName": "contactinformation", "hasUniqueValue": True},
    {"name": "plan", "label": "Plan", "type": "enumeration", "fieldType": "select",
     "groupName": "sales_properties",
     "options": [{"label": "Free", "value": "free"}, {"label": "Pro", "value": "pro"}]},
]  # fmt: skip
CREATE = "/crm/v3/objects/contacts/batch/create"
UPDATE = "/crm/v3/objects/contacts/batch/update"
READ = "/crm/v3/objects/contacts/batch/read"
SEARCH = "/crm/v3/objects/contacts/search"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[HubSpotTwin, str]]:
    twin = HubSpotTwin(TOKEN, custom_properties=CUSTOM, rate_limit=False)
    with serve(twin) as base_url:
        yield twin, base_url


@pytest.fixture
def twin(served: tuple[HubSpotTwin, str]) -> HubSpotTwin:
    served[0].reset()
    served[0].set_rate_limiting(False)
    return served[0]


@pytest.fixture
def client(served: tuple[HubSpotTwin, str], twin: HubSpotTwin) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=served[1], headers=headers, timeout=10) as http:
        yield http


def create(client: httpx.Client, *rows: dict[str, Any], **extra: Any) -> httpx.Response:
    inputs = [{"properties": row} for row in rows]
    return client.post(CREATE, json={"inputs": inputs, **extra})


def people(n: int, prefix: str = "p") -> list[dict[str, Any]]:
    return [{"email": f"{prefix}{i}@example.com", "firstname": f"N{i}"} for i in range(n)]


# -- properties and auth ----------------------------------------------------------------------


def test_properties_list_read_only_flags_groups_and_uniqueness(client: httpx.Client) -> None:
    response = client.get("/crm/v3/properties/contacts")
    assert response.status_code == 200
    props = {p["name"]: p for p in response.json()["results"]}
    assert props["email"]["type"] == "string"
    assert props["email"]["hasUniqueValue"] is False
    assert props["email"]["modificationMetadata"]["readOnlyValue"] is False
    assert props["hs_object_id"]["modificationMetadata"]["readOnlyValue"] is True
    assert props["createdate"]["type"] == "datetime"
    assert props["lifecyclestage"]["type"] == "enumeration"
    assert "customer" in [o["value"] for o in props["lifecyclestage"]["options"]]
    assert props["date_of_birth"]["type"] == "date"
    assert props["customer_id"]["hasUniqueValue"] is True
    groups = {p["groupName"] for p in props.values()}
    assert {"contactinformation", "emailinformation", "sales_properties"} <= groups
    assert "analyticsinformation" in groups
    assert client.get("/crm/v3/properties/contact").status_code == 200


def test_missing_wrong_and_revoked_tokens_are_401(
    served: tuple[HubSpotTwin, str], twin: HubSpotTwin, client: httpx.Client
) -> None:
    base_url = served[1]
    missing = httpx.get(base_url + "/crm/v3/properties/contacts")
    assert missing.status_code == 401
    body = missing.json()
    assert body["status"] == "error"
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["correlationId"] and body["message"]
    wrong = httpx.get(
        base_url + "/crm/v3/properties/contacts", headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    twin.revoke_token()
    assert client.get("/crm/v3/properties/contacts").status_code == 401
    twin.restore_token()
    assert client.get("/crm/v3/properties/contacts").status_code == 200
    assert httpx.post(base_url + "/_twin/revoke").status_code == 200
    assert client.get("/crm/v3/properties/contacts").json()["category"] == "INVALID_AUTHENTICATION"


# -- batch create -----------------------------------------------------------------------------


def test_batch_create_answers_201_with_string_values(client: httpx.Client) -> None:
    response = create(
        client,
        {
            "email": "Ada@Example.COM",
            "numemployees": 42,
            "hs_email_optout": True,
            "date_of_birth": 1_000_000 * 86_400_000 // 1_000_000,  # 1970-01-02 at midnight UTC
            "lifecyclestage": "lead",
        },
        {"email": "bob@example.com", "date_of_birth": "1990-05-17"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "COMPLETE"
    first, second = body["results"]
    assert first["id"].isdigit() and int(second["id"]) > int(first["id"])
    props = first["properties"]
    assert props["email"] == "ada@example.com"
    assert props["numemployees"] == "42"
    assert props["hs_email_optout"] == "true"
    assert props["date_of_birth"] == "1970-01-02"
    assert props["hs_object_id"] == first["id"]
    assert props["createdate"].endswith("Z") and props["lastmodifieddate"] == props["createdate"]
    assert first["createdAt"] == props["createdate"] and first["archived"] is False
    assert second["properties"]["date_of_birth"] == "1990-05-17"


def test_creating_an_existing_email_is_a_conflict_and_creates_nothing(
    twin: HubSpotTwin, client: httpx.Client
) -> None:
    existing = create(client, {"email": "ada@example.com"}).json()["results"][0]["id"]
    response = create(client, {"email": "new@example.com"}, {"email": "ADA@example.com"})
    assert response.status_code == 409
    body = response.json()
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {existing}"
    assert twin.contact_count() == 1
    twice = create(client, {"customer_id": "c-1"}, {"customer_id": "c-1"})
    assert twice.status_code == 409


def test_trace_ids_give_207_with_each_invalid_record_tied_to_its_trace_id(
    twin: HubSpotTwin, client: httpx.Client
) -> None:
    inputs = [
        {"properties": {"email": "ok@example.com"}, "objectWriteTraceId": "t-ok"},
        {"properties": {"email": "not-an-email"}, "objectWriteTraceId": "t-bad"},
    ]
    response = client.post(CREATE, json={"inputs": inputs})
    assert response.status_code == 207
    body = response.json()
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["t-ok"]
    [error] = body["errors"]
    assert body["numErrors"] == 1 and error["context"]["objectWriteTraceId"] == ["t-bad"]
    assert error["category"] == "VALIDATION_ERROR"
    assert error["message"].startswith("Property values were not valid: ")
    assert "INVALID_EMAIL" in error["message"]
    assert twin.contact_count() == 1
    all_ok = [{"properties": {"email": "x@example.com"}, "objectWriteTraceId": "t"}]
    assert client.post(CREATE, json={"inputs": all_ok}).status_code == 201


def test_an_existing_email_refuses_a_traced_batch_whole_naming_the_first_holder(
    twin: HubSpotTwin, client: httpx.Client
) -> None:
    _, second = twin.add_contacts([{"email": "one@example.com"}, {"email": "two@example.com"}])
    inputs = [
        {"properties": {"email": "new@example.com"}, "objectWriteTraceId": "a"},
        {"properties": {"email": "TWO@example.com"}, "objectWriteTraceId": "b"},
        {"properties": {"email": "one@example.com"}, "objectWriteTraceId": "c"},
    ]
    response = client.post(CREATE, json={"inputs": inputs})
    assert response.status_code == 409
    body = response.json()
    assert (body["category"], body["message"]) == (
        "CONFLICT",
        f"Contact already exists. Existing ID: {second}",
    )
    assert "results" not in body and twin.contact_count() == 2
    same_twice = [
        {"properties": {"email": "twin@example.com"}, "objectWriteTraceId": "x"},
        {"properties": {"email": "Twin@example.com"}, "objectWriteTraceId": "y"},
    ]
    assert client.post(CREATE, json={"inputs": same_twice}).status_code == 409
    assert twin.contact_count() == 2


UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def test_batch_upsert_updates_the_holder_or_creates_and_says_which(
    twin: HubSpotTwin, client: httpx.Client
) -> None:
    (ada,) = twin.add_contacts([{"email": "ada@example.com", "firstname": "Ada"}])
    inputs = [
        {"idProperty": "email", "id": "ADA@example.com", "properties": {"firstname": "Augusta"},
         "objectWriteTraceId": "1"},
        {"idProperty": "email", "id": "grace@example.com", "properties": {"firstname": "Grace"},
         "objectWriteTraceId": "2"},
    ]  # fmt: skip
    response = client.post(UPSERT, json={"inputs": inputs})
    assert response.status_code == 200
    results = {r["objectWriteTraceId"]: r for r in response.json()["results"]}
    assert (results["1"]["id"], results["1"]["new"]) == (ada, False)
    assert results["2"]["new"] is True
    assert results["2"]["properties"]["email"] == "grace@example.com"
    contacts = {c["properties"]["email"]: c["properties"] for c in twin.contacts()}
    assert contacts["ada@example.com"]["firstname"] == "Augusta"
    assert contacts["grace@example.com"]["firstname"] == "Grace"
    again = client.post(UPSERT, json={"inputs": inputs})
    assert [r["new"] for r in again.json()["results"]] == [False, False]
    assert twin.contact_count() == 2


def test_batch_upsert_refusals(twin: HubSpotTwin, client: httpx.Client) -> None:
    def upsert(*inputs: dict[str, Any]) -> httpx.Response:
        return client.post(UPSERT, json={"inputs": list(inputs)})

    twice = upsert(
        {"idProperty": "email", "id": "a@example.com", "properties": {}},
        {"idProperty": "email", "id": "A@example.com", "properties": {}},
    )
    assert twice.status_code == 400 and "Duplicate IDs" in twice.json()["message"]
    not_unique = upsert({"idProperty": "firstname", "id": "Ada", "properties": {}})
    assert not_unique.status_code == 400
    traced = upsert(
        {"idProperty": "email", "id": "ok@example.com", "properties": {},
         "objectWriteTraceId": "1"},
        {"idProperty": "email", "id": "b@example.com", "properties": {"date_of_birth": "soon"},
         "objectWriteTraceId": "2"},
    )  # fmt: skip
    assert traced.status_code == 207
    assert [e["context"]["objectWriteTraceId"] for e in traced.json()["errors"]] == [["2"]]
    assert twin.contact_count() == 1
    assert twin.stats()["creates"] == 1


def test_account_details_give_the_portal_id(client: httpx.Client) -> None:
    response = client.get("/account-info/v3/details")
    assert response.status_code == 200
    body = response.json()
    assert body["portalId"] == 62515 and body["accountType"] == "STANDARD"
    assert client.get("/account-info/v3/details", headers={"Authorization": ""}).status_code == 401


def test_more_than_100_inputs_are_refused(twin: HubSpotTwin, client: httpx.Client) -> None:
    response = create(client, *people(101))
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert "100" in response.json()["message"]
    assert twin.contact_count() == 0


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"favorite_color": "red"}, "PROPERTY_DOESNT_EXIST"),
        ({"hs_object_id": "12"}, "READ_ONLY_VALUE"),
        ({"createdate": "2024-01-01T00:00:00Z"}, "READ_ONLY_VALUE"),
        ({"email": "nope"}, "INVALID_EMAIL"),
        ({"numemployees": "many"}, "INVALID_DECIMAL"),
        ({"lifecyclestage": "king"}, "INVALID_OPTION"),
        ({"plan": "gold"}, "INVALID_OPTION"),
        ({"date_of_birth": "17/05/1990"}, "INVALID_DATE"),
        ({"date_of_birth": 1_000}, "INVALID_DATE"),
        ({"hs_email_optout": "maybe"}, "INVALID_BOOLEAN"),
    ],
)
def test_invalid_properties_refuse_the_batch(
    twin: HubSpotTwin, client: httpx.Client, properties: dict[str, Any], code: str
) -> None:
    response = create(client, {"email": "fine@example.com"}, properties)
    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR"
    prefix = "Property values were not valid: "
    assert body["message"].startswith(prefix)
    [record] = json.loads(body["message"][len(prefix) :])
    assert record["error"] == code
    assert record["name"] == next(iter(properties))
    assert twin.contact_count() == 0


def test_date_at_another_hour_than_midnight_says_so(client: httpx.Client) -> None:
    response = create(client, {"date_of_birth": 86_400_000 + 3_600_000})
    assert "is at 01:00:00.000 UTC, not midnight!" in response.json()["message"]


# -- batch read, list, search -----------------------------------------------------------------


def test_batch_read_by_email_is_case_insensitive_and_reports_missing_ones(
    client: httpx.Client,
) -> None:
    created = create(client, {"email": "ada@example.com", "firstname": "Ada", "plan": "pro"})
    ada = created.json()["results"][0]["id"]
    found = client.post(
        READ,
        json={"inputs": [{"id": "ADA@Example.com"}], "idProperty": "email", "properties": ["plan"]},
    )
    assert found.status_code == 200
    assert found.json()["results"][0]["id"] == ada
    assert found.json()["results"][0]["properties"] == {"plan": "pro"}
    partly = client.post(
        READ,
        json={"inputs": [{"id": "ada@example.com"}, {"id": "ghost@example.com"}],
              "idProperty": "email"},
    )  # fmt: skip
    assert partly.status_code == 207
    body = partly.json()
    assert [r["id"] for r in body["results"]] == [ada]
    assert body["results"][0]["properties"]["firstname"] == "Ada"
    assert body["numErrors"] == 1
    [error] = body["errors"]
    assert error["category"] == "OBJECT_NOT_FOUND"
    assert error["context"] == {"ids": ["ghost@example.com"]}
    by_id = client.post(READ, json={"inputs": [{"id": ada}, {"id": "999999"}]})
    assert by_id.status_code == 207 and by_id.json()["results"][0]["id"] == ada
    unknown = client.post(READ, json={"inputs": [{"id": "x"}], "idProperty": "firstname"})
    assert unknown.status_code == 400


def test_listing_pages_through_every_contact_with_after(
    twin: HubSpotTwin, client: httpx.Client
) -> None:
    ids = twin.add_contacts(people(250))
    seen: list[str] = []
    after: str | None = None
    for _ in range(10):  # bounded: 3 pages expected
        params: dict[str, Any] = {"limit": 100, "properties": "email"}
        if after is not None:
            params["after"] = after
        page = client.get("/crm/v3/objects/contacts", params=params).json()
        seen.extend(r["id"] for r in page["results"])
        assert all(set(r["properties"]) == {"email"} for r in page["results"])
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    assert seen == ids
    too_many = client.get("/crm/v3/objects/contacts", params={"limit": 101})
    assert too_many.status_code == 400


def test_search_filters_sorts_and_pages(twin: HubSpotTwin, client: httpx.Client) -> None:
    rows = [
        {"email": f"s{i}@example.com", "numemployees": i, "plan": "pro" if i % 2 else "free"}
        for i in range(30)
    ]
    rows[3]["firstname"] = "Ada"
    twin.add_contacts(rows)
    wanted = ["S1@example.com", "s2@example.com", "nobody@example.com"]
    in_filter = {"propertyName": "email", "operator": "IN", "values": wanted}
    found = client.post(SEARCH, json={"filterGroups": [{"filters": [in_filter]}]}).json()
    assert found["total"] == 2
    assert sorted(r["properties"]["email"] for r in found["results"]) == [
        "s1@example.com",
        "s2@example.com",
    ]
    gte = {"propertyName": "numemployees", "operator": "GTE", "value": "25"}
    pro = {"propertyName": "plan", "operator": "EQ", "value": "pro"}
    has = {"propertyName": "firstname", "operator": "HAS_PROPERTY"}
    body = {
        "filterGroups": [{"filters": [gte, pro]}, {"filters": [has]}],
        "sorts": [{"propertyName": "numemployees", "direction": "DESCENDING"}],
        "properties": ["numemployees"],
        "limit": 2,
    }
    first = client.post(SEARCH, json=body).json()
    assert first["total"] == 4  # 25, 27, 29 and the one with a first name
    assert [r["properties"]["numemployees"] for r in first["results"]] == ["29", "27"]
    assert first["paging"]["next"]["after"] == "2"
    rest = client.post(SEARCH, json={**body, "after": "2"}).json()
    assert [r["properties"]["numemployees"] for r in rest["results"]] == ["25", "3"]
    assert "paging" not in rest
    assert client.post(SEARCH, json={"limit": 201}).status_code == 400


def test_search_refuses_to_page_past_10000_results(twin: HubSpotTwin, client: httpx.Client) -> None:
    twin.add_contacts({"email": f"m{i}@example.com"} for i in range(10_050))
    last = client.post(SEARCH, json={"limit": 200, "after": "9800"}).json()
    assert last["total"] == 10_050
    assert len(last["results"]) == 200
    assert last["paging"]["next"]["after"] == "10000"
    beyond = client.post(SEARCH, json={"limit": 10, "after": "10000"})
    assert beyond.status_code == 400
    assert beyond.json()["category"] == "VALIDATION_ERROR"


# -- batch update -----------------------------------------------------------------------------


def test_batch_update_sets_clears_and_refuses(twin: HubSpotTwin, client: httpx.Client) -> None:
    ada, bob = twin.add_contacts(
        [{"email": "ada@example.com", "firstname": "Ada", "city": "London"}, {"email": "b@x.io"}]
    )
    ok = client.post(
        UPDATE, json={"inputs": [{"id": ada, "properties": {"firstname": "Augusta", "city": ""}}]}
    )
    assert ok.status_code == 200
    [result] = ok.json()["results"]
    assert result["properties"]["firstname"] == "Augusta"
    assert "city" not in result["properties"]
    assert result["updatedAt"] >= result["createdAt"]
    by_email = client.post(
        UPDATE,
        json={"inputs": [{"id": "ADA@example.com", "idProperty": "email",
                          "properties": {"lastname": "King"}}]},
    )  # fmt: skip
    assert by_email.status_code == 200
    missing = client.post(UPDATE, json={"inputs": [{"id": "999999", "properties": {}}]})
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND"
    conflict = client.post(
        UPDATE, json={"inputs": [{"id": bob, "properties": {"email": "Ada@example.com"}}]}
    )
    assert conflict.status_code == 409
    assert conflict.json()["message"] == f"Contact already exists. Existing ID: {ada}"
    traced = client.post(
        UPDATE,
        json={"inputs": [
            {"id": bob, "properties": {"firstname": "Bob"}, "objectWriteTraceId": "u1"},
            {"id": "999999", "properties": {}, "objectWriteTraceId": "u2"},
        ]},
    )  # fmt: skip
    assert traced.status_code == 207
    assert [r["objectWriteTraceId"] for r in traced.json()["results"]] == ["u1"]
    [error] = traced.json()["errors"]
    assert error["category"] == "OBJECT_NOT_FOUND"
    assert error["context"]["objectWriteTraceId"] == ["u2"]
    contacts = {c["id"]: c["properties"] for c in twin.contacts()}
    assert contacts[ada]["lastname"] == "King" and contacts[bob]["firstname"] == "Bob"
    assert twin.stats()["updates"] == 3


# -- rate limits ------------------------------------------------------------------------------


def test_burst_limit_answers_429_with_hubspot_headers_and_body() -> None:
    twin = HubSpotTwin(TOKEN, burst=3)
    with (
        serve(twin) as base_url,
        httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
    ):
        remaining = []
        for _ in range(3):
            response = client.get("/crm/v3/properties/contacts")
            assert response.status_code == 200
            assert response.headers["X-HubSpot-RateLimit-Max"] == "3"
            assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
            assert "X-HubSpot-RateLimit-Daily-Remaining" in response.headers
            remaining.append(response.headers["X-HubSpot-RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        refused = client.get("/crm/v3/properties/contacts")
        assert refused.status_code == 429
        assert "Retry-After" not in refused.headers
        body = refused.json()
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["errorType"] == "RATE_LIMIT"
        assert body["category"] == "RATE_LIMITS"
        assert body["status"] == "error" and body["correlationId"]


def test_search_has_its_own_limit_of_five_per_second() -> None:
    twin = HubSpotTwin(TOKEN, burst=100)
    with (
        serve(twin) as base_url,
        httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
    ):
        statuses = [client.post(SEARCH, json={}).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        refused = client.post(SEARCH, json={})
        assert refused.json()["policyName"] == "SECONDLY"
        assert refused.json()["message"] == "You have reached your secondly limit."


def test_forced_429s(twin: HubSpotTwin, client: httpx.Client) -> None:
    twin.force_rate_limit(2)
    statuses = [client.get("/crm/v3/properties/contacts").status_code for _ in range(3)]
    assert statuses == [429, 429, 200]


# -- faults and admin -------------------------------------------------------------------------


def test_injected_5xx_only_on_the_matching_path(twin: HubSpotTwin, client: httpx.Client) -> None:
    twin.fail_next(1, 503, path="/batch/create")
    assert client.get("/crm/v3/properties/contacts").status_code == 200
    assert create(client, {"email": "a@example.com"}).status_code == 503
    assert twin.contact_count() == 0
    assert create(client, {"email": "a@example.com"}).status_code == 201


def test_a_lost_response_still_applies_the_write(twin: HubSpotTwin, client: httpx.Client) -> None:
    twin.fail_next(1, 502, after_apply=True)
    response = create(client, {"email": "lost@example.com"})
    assert response.status_code == 502
    assert [c["properties"]["email"] for c in twin.contacts()] == ["lost@example.com"]
    again = create(client, {"email": "lost@example.com"})
    assert again.status_code == 409


@pytest.mark.parametrize("after_apply", [False, True])
def test_a_reset_drops_the_connection_without_an_answer(
    twin: HubSpotTwin, client: httpx.Client, after_apply: bool
) -> None:
    twin.fail_next(path="/batch/create", kind="reset", after_apply=after_apply)
    with pytest.raises(httpx.RemoteProtocolError):
        create(client, {"email": "reset@example.com"})
    assert twin.contact_count() == (1 if after_apply else 0)
    assert twin.request_counts() == {}  # no answer to count


def test_a_slow_answer_comes_late_and_its_request_is_carried_out(
    served: tuple[HubSpotTwin, str], twin: HubSpotTwin
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=served[1], headers=headers, timeout=0.2) as impatient:
        twin.fail_next(path="/batch/create", kind="slow", seconds=0.5, after_apply=True)
        with pytest.raises(httpx.ReadTimeout):
            create(impatient, {"email": "first@example.com"})
        assert twin.contact_count() == 1  # carried out at once, answered late
        twin.fail_next(path="/batch/create", kind="slow", seconds=0.5)
        with pytest.raises(httpx.ReadTimeout):
            create(impatient, {"email": "late@example.com"})
        assert twin.contact_count() == 1
    time.sleep(0.5)  # carried out once the seconds have passed, though nobody waits
    assert twin.contact_count() == 2


def test_a_spoiled_answer_keeps_its_status_and_content_type(
    twin: HubSpotTwin, client: httpx.Client
) -> None:
    twin.fail_next(path="/batch/create", kind="truncated", after_apply=True)
    twin.fail_next(path="/batch/create", kind="wrong-shape", after_apply=True)
    truncated = create(client, {"email": "a@example.com"})
    shapeless = create(client, {"email": "b@example.com"})
    whole = create(client, {"email": "c@example.com"})
    for spoiled in (truncated, shapeless):
        assert spoiled.status_code == whole.status_code == 201
        assert spoiled.headers["content-type"] == whole.headers["content-type"]
    assert whole.content.startswith(truncated.content[:20])
    assert len(whole.content) // 2 - 10 < len(truncated.content) < len(whole.content) // 2 + 10
    assert shapeless.json() == {}
    assert twin.contact_count() == 3


def test_a_status_fault_may_say_when_to_retry(twin: HubSpotTwin, client: httpx.Client) -> None:
    twin.fail_next(2, 429, retry_after=1.5)
    assert client.get("/crm/v3/properties/contacts").headers["retry-after"] == "1.5"
    assert "retry-after" in client.get("/crm/v3/properties/contacts").headers
    twin.fail_next(1, 429)
    assert "retry-after" not in client.get("/crm/v3/properties/contacts").headers


def test_faults_that_make_no_sense_are_refused(
    served: tuple[HubSpotTwin, str], twin: HubSpotTwin
) -> None:
    for wrong in (
        {"kind": "truncated"},  # spoils an answer: needs after_apply
        {"kind": "slow"},  # without seconds
        {"kind": "reset", "retry_after": 1.0},
        {"kind": "garbled"},
    ):
        with pytest.raises(ValueError):
            twin.fail_next(**wrong)
    admin = httpx.post(served[1] + "/_twin/faults", json={"kind": "slow", "seconds": 0})
    assert admin.status_code == 400 and "seconds" in admin.json()["error"]
    fault = {"kind": "slow", "seconds": 2, "afterApply": True, "path": "/batch/"}
    listed = httpx.post(served[1] + "/_twin/faults", json=fault).json()["faults"]
    assert listed == [{**fault, "status": 503, "count": 1, "retryAfter": None}]


def test_added_latency(twin: HubSpotTwin, client: httpx.Client) -> None:
    twin.set_latency(0.2)
    started = time.monotonic()
    assert client.get("/crm/v3/properties/contacts").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_admin_endpoints_drive_and_inspect_the_twin(
    served: tuple[HubSpotTwin, str], twin: HubSpotTwin, client: httpx.Client
) -> None:
    admin = httpx.Client(base_url=served[1] + "/_twin")
    fault = {"status": 500, "count": 1, "path": "/batch/create", "afterApply": True}
    assert admin.post("/faults", json=fault).status_code == 200
    assert create(client, {"email": "a@example.com"}).status_code == 500
    assert admin.post("/rate-limit", json={"count": 1}).status_code == 200
    assert create(client, {"email": "b@example.com"}).status_code == 429
    assert admin.post("/latency", json={"seconds": 0}).status_code == 200
    assert admin.get("/contacts", params={"count": 1}).json() == {"count": 1}
    listed = admin.get("/contacts").json()
    assert listed["results"][0]["properties"]["email"] == "a@example.com"
    stats = admin.get("/stats").json()
    assert stats["requests"]["POST /crm/v3/objects/contacts/batch/create"] == {"429": 1, "500": 1}
    assert stats["creates"] == 1 and stats["contacts"] == 1
    seeded = admin.post("/contacts", json={"contacts": [{"email": "c@example.com"}]}).json()
    assert len(seeded["ids"]) == 1
    assert admin.post("/reset").status_code == 200
    assert admin.get("/contacts", params={"count": 1}).json() == {"count": 0}
    admin.close()


def test_process_entry_point() -> None:
    command = [sys.executable, "-m", "sluice.twins.hubspot", "--listen", "127.0.0.1:0",
               "--token", TOKEN, "--no-rate-limit"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        base_url = line.removeprefix("listening on ")
        response = httpx.get(
            base_url + "/crm/v3/properties/contacts",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 200
        assert "X-HubSpot-RateLimit-Max" not in response.headers
    finally:
        process.terminate()
        process.wait(timeout=10)
