"""HubSpot under test: its twin, and a pipeline writing contacts' email, first and last name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sluice.twins.hubspot import HubSpotTwin
from tests.apps import AppUser, TwinCase

TOKEN = "pat-na1-connector-tests"


def _nullable_strings(*names: str) -> list[dict[str, Any]]:
    return [{"name": name, "type": {"kind": "string"}, "nullable": True} for name in names]


class HubSpotCase(TwinCase):
    code = "hubspot"
    credentials: Mapping[str, str] = MappingProxyType({"accessToken": TOKEN})
    out_schema: Mapping[str, Any] = MappingProxyType(
        {
            "kind": "object",
            "properties": [
                {
                    "name": "contact",
                    "type": {
                        "kind": "object",
                        "properties": _nullable_strings("email", "firstname", "lastname"),
                    },
                }
            ],
        }
    )
    email_path = "contact.email"
    mapping: Mapping[str, str] = MappingProxyType(
        {"contact.firstname": "first_name", "contact.lastname": "last_name"}
    )
    first_name_path = "contact.firstname"
    write_path = "/batch/"
    create_path = "/batch/create"  # write_path matches batch reads too
    lookup_path = "/batch/read"
    write_endpoints = tuple(
        f"POST /crm/v3/objects/contacts/batch/{kind}" for kind in ("create", "update", "upsert")
    )
    lookup_endpoints = ("POST /crm/v3/objects/contacts/batch/read",)
    invalid_email = "not-an-email"
    invalid_email_error = "INVALID_EMAIL"
    #: 100 requests per 10 s (the twin's default, a Starter portal), 100 contacts per upsert.
    allowed_profiles_per_second = 100 / 10 * 100

    def __init__(self) -> None:
        self.twin = HubSpotTwin(TOKEN, rate_limit=False)

    def users(self) -> dict[str, AppUser]:
        users = {}
        for contact in self.twin.contacts():
            properties = contact["properties"]
            email = properties.get("email") or ""
            users[email.lower()] = AppUser(contact["id"], email, properties.get("firstname"))
        return users

    def add_users(self, people: Sequence[tuple[str, str]]) -> None:
        self.twin.add_contacts({"email": email, "firstname": first} for email, first in people)


CASE = HubSpotCase()
