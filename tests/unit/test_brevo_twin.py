"""The Brevo twin against examples from Brevo's API reference and changelog: request bodies as
the documentation writes them, answers with the documented status codes and bodies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sluice.twins.brevo import BrevoTwin, main, serve
from sluice.twins.brevo_state import Attribute

KEY = "xkeysib-twin-test-key"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[BrevoTwin, httpx.Client]]:
    twin = BrevoTwin(
        KEY,
        attributes=[
            Attribute("FNAME"),
            Attribute("LNAME"),
            Attribute("flagged", type="boolean"),
            Attribute("DOB", type="date"),
            Attribute("GENDER", category="category", enumeration={1: "Men", 2: "Women"}),
            Attribute("NB_BASKET", category="calculated", type="float", calculated_value="COUNT"),
        ],
    )
    with serve(twin) as url, httpx.Client(base_url=url + "/v3", headers={"api-key": KEY}) as client:
        yield twin, client


@pytest.fixture
def twin(served: tuple[BrevoTwin, httpx.Client]) -> BrevoTwin:
    served[0].reset()
    return served[0]


@pytest.fixture
def client(served: tuple[BrevoTwin, httpx.Client], twin: BrevoTwin) -> httpx.Client:
    return served[1]


def test_create_a_contact_as_the_reference_shows_answers_201_with_its_id(client):
    # "Create a contact" request example.
    response = client.post(
        "/contacts",
        json={
            "email": "elly@example.com",
            "ext_id": "externalId",
            "attributes": {"FNAME": "Elly", "LNAME": "Roger"},
            "emailBlacklisted": False,
            "smsBlacklisted": False,
            "listIds": [36],
            "updateEnabled": False,
        },
    )
    assert response.status_code == 201
    assert set(response.json()) == {"id"} and isinstance(response.json()["id"], int)
    found = client.get("/contacts/elly@example.com", params={"identifierType": "email_id"})
    assert found.status_code == 200
    body = found.json()
    assert body["email"] == "elly@example.com"
    assert body["attributes"] == {"FNAME": "Elly", "LNAME": "Roger", "EXT_ID": "externalId"}
    assert body["listIds"] == [36]


def test_a_second_contact_with_the_same_email_is_a_duplicate_parameter(client):
    assert client.post("/contacts", json={"email": "dup@example.com"}).status_code == 201
    response = client.post("/contacts", json={"email": "Dup@Example.com"})
    assert response.status_code == 400
    assert response.json() == {
        "code": "duplicate_parameter",
        "message": "Unable to create contact, email is already associated with another Contact",
        "metadata": {"duplicate_identifiers": ["email"]},
    }


def test_update_enabled_updates_the_holder_and_answers_204_without_a_body(client, twin):
    client.post("/contacts", json={"email": "u@example.com", "attributes": {"FNAME": "A"}})
    response = client.post(
        "/contacts",
        json={"email": "u@example.com", "attributes": {"LNAME": "B"}, "updateEnabled": True},
    )
    assert (response.status_code, response.content) == (204, b"")
    assert twin.contacts()[0]["attributes"] == {"FNAME": "A", "LNAME": "B"}


def test_invalid_emails_unknown_attributes_and_missing_identifiers_are_refused(client):
    bad_email = client.post("/contacts", json={"email": "not-an-email"})
    assert (bad_email.status_code, bad_email.json()["code"]) == (400, "invalid_parameter")
    unknown = client.post("/contacts", json={"email": "a@example.com", "attributes": {"NOPE": 1}})
    assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid_parameter")
    calculated = client.post(
        "/contacts", json={"email": "a@example.com", "attributes": {"NB_BASKET": 1}}
    )
    assert calculated.status_code == 400
    nothing = client.post("/contacts", json={"attributes": {"FNAME": "Nobody"}})
    assert (nothing.status_code, nothing.json()["code"]) == (400, "missing_parameter")


def test_values_that_do_not_fit_their_attribute_are_ignored_as_documented(client, twin):
    response = client.post(
        "/contacts",
        json={
            "email": "t@example.com",
            "attributes": {"DOB": "not a date", "FNAME": "T", "GENDER": "Women", "flagged": "x"},
        },
    )
    assert response.status_code == 201
    assert twin.contacts()[0]["attributes"] == {"FNAME": "T", "GENDER": 2}


def test_an_unknown_contact_is_document_not_found(client):
    response = client.get("/contacts/nobody@example.com", params={"identifierType": "email_id"})
    assert response.status_code == 404
    assert response.json() == {"code": "document_not_found", "message": "Contact does not exist"}


def test_the_changelog_s_batch_update_example_answers_204(client, twin):
    (first,) = twin.add_contacts([{"email": "contact1@gmail.com"}])
    (second,) = twin.add_contacts([{"email": "second@example.com"}])
    # "Bulk update contacts" (changelog 2021-12-28), with the second contact's id.
    response = client.post(
        "/contacts/batch",
        json={
            "contacts": [
                {
                    "attributes": {"flagged": True},
                    "listIds": [12],
                    "email": "contact1@gmail.com",
                    "emailBlacklisted": False,
                },
                {"attributes": {"flagged": False, "FNAME": "John"}, "id": second},
            ]
        },
    )
    assert (response.status_code, response.content) == (204, b"")
    contacts = {c["id"]: c for c in twin.contacts()}
    assert contacts[first]["listIds"] == [12]
    assert contacts[second]["attributes"] == {"flagged": False, "FNAME": "John"}


def test_a_batch_with_unknown_contacts_answers_207_with_success_and_failure_ids(client, twin):
    (known,) = twin.add_contacts([{"email": "k@example.com"}])
    response = client.post(
        "/contacts/batch",
        json={"contacts": [{"id": known, "attributes": {"FNAME": "K"}}, {"id": 670206}]},
    )
    assert response.status_code == 207
    assert response.json() == {"successIds": [known], "failureIds": [670206]}


def test_a_batch_over_100_contacts_is_refused_whole(client, twin):
    response = client.post("/contacts/batch", json={"contacts": [{"id": i} for i in range(101)]})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_parameter")


def test_put_updates_by_contact_id_and_changes_the_email_through_the_email_attribute(client, twin):
    (contact,) = twin.add_contacts([{"email": "old@example.com"}])
    response = client.put(
        f"/contacts/{contact}",
        params={"identifierType": "contact_id"},
        json={"attributes": {"EMAIL": "new@example.com", "FNAME": "N"}},
    )
    assert response.status_code == 204
    assert twin.contacts()[0]["email"] == "new@example.com"
    missing = client.put("/contacts/4242", params={"identifierType": "contact_id"}, json={})
    assert missing.status_code == 404


def test_attributes_are_listed_with_categories_and_options(client):
    attributes = {a["name"]: a for a in client.get("/contacts/attributes").json()["attributes"]}
    assert attributes["GENDER"] == {
        "name": "GENDER",
        "category": "category",
        "type": "text",
        "enumeration": [{"value": 1, "label": "Men"}, {"value": 2, "label": "Women"}],
    }
    assert attributes["NB_BASKET"]["calculatedValue"] == "COUNT"


def test_the_account_names_its_organization(client):
    body = client.get("/account").json()
    assert body["organization_id"] == "62a7f5c1e4b0d3a9c8f1e2d4"
    assert {"email", "companyName", "plan", "relay"} <= set(body)


def test_a_missing_or_wrong_key_is_unauthorized(served, twin):
    _, client = served
    response = client.get("/account", headers={"api-key": "xkeysib-wrong"})
    assert response.status_code == 401
    assert response.json() == {"code": "unauthorized", "message": "Key not found"}
    twin.revoke_token()
    assert client.get("/contacts/attributes").status_code == 401


def test_the_eleventh_contacts_request_of_a_second_is_429_with_brevo_s_headers(client, twin):
    twin.set_rate_limiting(True)
    statuses = [client.get("/contacts/attributes") for _ in range(11)]
    assert [r.status_code for r in statuses[:10]] == [200] * 10
    limited = statuses[10]
    assert limited.status_code == 429
    assert limited.headers["x-sib-ratelimit-limit"] == "10"
    assert limited.headers["x-sib-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-sib-ratelimit-reset"]) >= 1
    assert "retry-after" not in limited.headers


def test_forced_rate_limits_and_faults(client, twin):
    twin.force_rate_limit(1)
    assert client.get("/contacts/attributes").status_code == 429
    twin.fail_next(1, 502, path="POST /v3/contacts", after_apply=True)
    assert client.post("/contacts", json={"email": "lost@example.com"}).status_code == 502
    assert [c["email"] for c in twin.contacts()] == ["lost@example.com"]
    counts = twin.request_counts()
    assert counts["POST /v3/contacts"] == {"502": 1}


def test_main_refuses_a_missing_key(capsys):
    with pytest.raises(SystemExit):
        main(["--listen", "127.0.0.1:0"])
    assert "--api-key" in capsys.readouterr().err
