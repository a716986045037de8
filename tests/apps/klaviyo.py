"""Klaviyo under test: its twin, and a pipeline writing profiles' email, first and last name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sluice.twins.klaviyo import KlaviyoTwin
from tests.apps import AppUser, TwinCase

API_KEY = "pk_connectortests0000000000000000000000"


def _nullable_strings(*names: str) -> list[dict[str, Any]]:
    return [{"name": name, "type": {"kind": "string"}, "nullable": True} for name in names]


class KlaviyoCase(TwinCase):
    code = "klaviyo"
    credentials: Mapping[str, str] = MappingProxyType({"privateApiKey": API_KEY})
    out_schema: Mapping[str, Any] = MappingProxyType(
        {"kind": "object", "properties": _nullable_strings("email", "first_name", "last_name")}
    )
    email_path = "email"
    mapping: Mapping[str, str] = MappingProxyType(
        {"first_name": "first_name", "last_name": "last_name"}
    )
    first_name_path = "first_name"
    write_path = "/api/profile-bulk-import-jobs"
    create_path = write_path
    lookup_path = "/api/profiles"
    write_endpoints = ("POST /api/profile-bulk-import-jobs",)
    lookup_endpoints = ("GET /api/profiles",)
    invalid_email = "not-an-email"
    invalid_email_error = "Invalid email address"
    #: Profile reads allow 750 per minute, and a first run reads each 100 profiles twice (who
    #: exists, then the new ids); a job of 10,000 takes 150 of the jobs' own budget.
    allowed_profiles_per_second = 750 / 60 * 100 / 2

    def __init__(self) -> None:
        self.twin = KlaviyoTwin(API_KEY, rate_limit=False)

    def users(self) -> dict[str, AppUser]:
        users = {}
        for profile in self.twin.profiles():
            attributes = profile["attributes"]
            email = attributes.get("email") or ""
            users[email.lower()] = AppUser(profile["id"], email, attributes.get("first_name"))
        return users

    def add_users(self, people: Sequence[tuple[str, str]]) -> None:
        self.twin.add_profiles({"email": email, "first_name": first} for email, first in people)


CASE = KlaviyoCase()
