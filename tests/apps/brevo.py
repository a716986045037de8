"""Brevo under test: its twin, and a pipeline writing contacts' email and their FIRSTNAME and
LASTNAME attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sluice.twins.brevo import BrevoTwin
from tests.apps import AppUser, TwinCase

API_KEY = "xkeysib-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab-ConnTests0001"


def _nullable_strings(*names: str) -> list[dict[str, Any]]:
    return [{"name": name, "type": {"kind": "string"}, "nullable": True} for name in names]


class BrevoCase(TwinCase):
    code = "brevo"
    credentials: Mapping[str, str] = MappingProxyType({"apiKey": API_KEY})
    out_schema: Mapping[str, Any] = MappingProxyType(
        {
            "kind": "object",
            "properties": [
                *_nullable_strings("email"),
                {
                    "name": "attributes",
                    "type": {
                        "kind": "object",
                        "properties": _nullable_strings("FIRSTNAME", "LASTNAME"),
                    },
                },
            ],
        }
    )
    email_path = "email"
    mapping: Mapping[str, str] = MappingProxyType(
        {"attributes.FIRSTNAME": "first_name", "attributes.LASTNAME": "last_name"}
    )
    first_name_path = "attributes.FIRSTNAME"
    # The twin matches faults against "METHOD /v3/path?query".
    write_path = "POST /v3/contacts"
    create_path = write_path
    lookup_path = "identifierType=email_id"
    write_endpoints = (
        "POST /v3/contacts",
        "POST /v3/contacts/batch",
        "PUT /v3/contacts/{identifier}",
    )
    lookup_endpoints = ("GET /v3/contacts/{identifier}",)
    invalid_email = "not-an-email"
    invalid_email_error = "Invalid email address"
    #: The contacts endpoints allow 10 requests per second, and a first run into an empty
    #: account creates one contact per request.
    allowed_profiles_per_second = 10.0

    def __init__(self) -> None:
        self.twin = BrevoTwin(API_KEY, rate_limit=False)

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"baseUrl": f"{base_url}/v3"}

    def users(self) -> dict[str, AppUser]:
        users = {}
        for contact in self.twin.contacts():
            email = contact.get("email") or ""
            first_name = contact["attributes"].get("FIRSTNAME")
            users[email.lower()] = AppUser(str(contact["id"]), email, first_name)
        return users

    def add_users(self, people: Sequence[tuple[str, str]]) -> None:
        self.twin.add_contacts(
            {"email": email, "attributes": {"FIRSTNAME": first}} for email, first in people
        )


CASE = BrevoCase()
