"""Mailchimp under test: its twin, and a pipeline writing members' email address, first and
last name (merge fields FNAME and LNAME), subscribing new members."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sluice.apps.mailchimp import STATUSES
from sluice.twins.mailchimp import DEFAULT_LIST_ID, MailchimpTwin
from tests.apps import AppUser, TwinCase

API_KEY = "0123456789abcdef0123456789abcdef-us21"
_AUDIENCE = f"/3.0/lists/{DEFAULT_LIST_ID}"


class MailchimpCase(TwinCase):
    code = "mailchimp"
    credentials: Mapping[str, str] = MappingProxyType({"apiKey": API_KEY})
    out_schema: Mapping[str, Any] = MappingProxyType(
        {
            "kind": "object",
            "properties": [
                {
                    "name": "email_address",
                    "type": {"kind": "string"},
                    "createRequired": True,
                    "updateRequired": True,
                },
                {
                    "name": "status_if_new",
                    "type": {"kind": "string", "values": list(STATUSES)},
                    "nullable": True,
                },
                {
                    "name": "merge_fields",
                    "type": {
                        "kind": "object",
                        "properties": [
                            {"name": "FNAME", "type": {"kind": "string"}, "nullable": True},
                            {"name": "LNAME", "type": {"kind": "string"}, "nullable": True},
                        ],
                    },
                },
            ],
        }
    )
    email_path = "email_address"
    # A new member needs a status: new members are subscribed, existing ones keep theirs.
    mapping: Mapping[str, str] = MappingProxyType(
        {
            "merge_fields.FNAME": "first_name",
            "merge_fields.LNAME": "last_name",
            "status_if_new": '"subscribed"',
        }
    )
    first_name_path = "merge_fields.FNAME"
    # The twin matches fault paths against "METHOD /path".
    write_path = f"POST {_AUDIENCE}"
    create_path = write_path
    lookup_path = f"GET {_AUDIENCE}/members/"
    write_endpoints = (
        "POST /3.0/lists/{list_id}",
        "PATCH /3.0/lists/{list_id}/members/{subscriber_hash}",
    )
    lookup_endpoints = ("GET /3.0/lists/{list_id}/members/{subscriber_hash}",)
    invalid_email = "not-an-email"
    invalid_email_error = "looks fake or invalid"
    #: Mailchimp limits connections (10 at a time), not requests per second: no floor.
    allowed_profiles_per_second = None

    def __init__(self) -> None:
        self.twin = MailchimpTwin(API_KEY, rate_limit=False)

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"baseUrl": f"{base_url}/3.0", "audienceId": DEFAULT_LIST_ID}

    def users(self) -> dict[str, AppUser]:
        users = {}
        for member in self.twin.members():
            email = member["email_address"]
            first = member["merge_fields"].get("FNAME") or None
            users[email.lower()] = AppUser(member["id"], email, first)
        return users

    def add_users(self, people: Sequence[tuple[str, str]]) -> None:
        self.twin.add_members(
            {"email_address": email, "merge_fields": {"FNAME": first}} for email, first in people
        )


CASE = MailchimpCase()
