"""MailerLite under test: its twin, and a pipeline writing subscribers' email, and first and last
name in the default fields ``name`` and ``last_name``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sluice.twins.mailerlite import MailerLiteTwin
from tests.apps import AppUser, TwinCase

TOKEN = "mlite-connector-tests"


class MailerLiteCase(TwinCase):
    code = "mailerlite"
    credentials: Mapping[str, str] = MappingProxyType({"apiToken": TOKEN})
    out_schema: Mapping[str, Any] = MappingProxyType(
        {
            "kind": "object",
            "properties": [
                {"name": "email", "type": {"kind": "string"}, "createRequired": True},
                {
                    "name": "fields",
                    "type": {
                        "kind": "object",
                        "properties": [
                            {"name": "name", "type": {"kind": "string"}, "nullable": True},
                            {"name": "last_name", "type": {"kind": "string"}, "nullable": True},
                        ],
                    },
                },
            ],
        }
    )
    email_path = "email"
    mapping: Mapping[str, str] = MappingProxyType(
        {"fields.name": "first_name", "fields.last_name": "last_name"}
    )
    first_name_path = "fields.name"
    # Lookups and writes are sub-requests of MailerLite's batch endpoint: the twin matches
    # faults on a batch's first sub-request too (creates are POSTs, updates PUTs).
    write_path = "/api/batch POST api/subscribers"
    create_path = write_path
    lookup_path = "/api/batch GET api/subscribers/"
    write_endpoints = ("POST /api/batch",)
    lookup_endpoints = ("POST /api/batch",)
    invalid_email = "not-an-email"
    invalid_email_error = "The email must be a valid email address."
    #: A first CreateOrUpdate run looks subscribers up (120 requests per minute) and creates
    #: the new ones in batches of 50 that MailerLite takes as bulk imports: 5 per minute.
    allowed_profiles_per_second = 5 / 60 * 50

    def __init__(self) -> None:
        self.twin = MailerLiteTwin(TOKEN, rate_limit=False)

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"baseUrl": f"{base_url}/api"}

    def users(self) -> dict[str, AppUser]:
        users = {}
        for subscriber in self.twin.subscribers():
            email = subscriber["email"]
            users[email.lower()] = AppUser(subscriber["id"], email, subscriber["fields"]["name"])
        return users

    def add_users(self, people: Sequence[tuple[str, str]]) -> None:
        self.twin.add_subscribers(
            {"email": email, "fields": {"name": first}} for email, first in people
        )


CASE = MailerLiteCase()
