"""The audience of the Mailchimp twin: its merge fields and members, and the rules Mailchimp's
documentation gives for writing them (docs/mailchimp-twin.md cites each). Not thread-safe: the
twin calls it under its lock."""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ERRORS_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
#: Mailchimp's detail when a body fails validation; the ``errors`` array says why.
UNVALIDATED = (
    "The resource submitted could not be validated. For field-specific details, see the "
    "'errors' array."
)
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
#: What a batch subscribe takes per member ("Batch subscribe or unsubscribe" request body).
BATCH_MEMBER_KEYS = frozenset(
    {
        "email_address",
        "email_type",
        "status",
        "status_if_new",
        "merge_fields",
        "interests",
        "language",
        "vip",
        "location",
        "ip_signup",
        "timestamp_signup",
        "ip_opt",
        "timestamp_opt",
    }
)
#: What "Add or update list member" (PUT) takes.
PUT_KEYS = BATCH_MEMBER_KEYS | {"marketing_permissions"}
#: What "Update list member" (PATCH) takes.
PATCH_KEYS = PUT_KEYS - {"status_if_new"}
MAX_BATCH_MEMBERS = 500
MAX_PAGE = 1000

#: A new audience's merge fields in Mailchimp: FNAME, LNAME, ADDRESS, PHONE, BIRTHDAY.
DEFAULT_MERGE_FIELDS: tuple[dict[str, Any], ...] = (
    {"tag": "FNAME", "name": "First Name", "type": "text", "options": {"size": 25}},
    {"tag": "LNAME", "name": "Last Name", "type": "text", "options": {"size": 25}},
    {"tag": "ADDRESS", "name": "Address", "type": "address", "options": {"default_country": 164}},
    {"tag": "PHONE", "name": "Phone Number", "type": "phone", "options": {"phone_format": "none"}},
    {
        "tag": "BIRTHDAY",
        "name": "Birthday",
        "type": "birthday",
        "options": {"date_format": "MM/DD"},
    },
)

_EMAIL = re.compile(
    r"[^\s@\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\Z"
)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_SLASH_DATE = re.compile(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}\Z")
_BIRTHDAY = re.compile(r"[0-9]{1,2}/[0-9]{1,2}\Z")

Answer = tuple[int, Any]


def problem(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """Mailchimp's problem detail body (application/problem+json)."""
    body: dict[str, Any] = {
        "type": ERRORS_TYPE,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors is not None:
        body["errors"] = errors
    return body


def not_found() -> Answer:
    return 404, problem(404, "Resource Not Found", "The requested resource could not be found.")


def invalid(detail: str, errors: list[dict[str, str]] | None = None) -> Answer:
    return 400, problem(400, "Invalid Resource", detail, errors)


def listing(
    name: str, items: list[Any], count: str | None, offset: str | None, **extra: Any
) -> Answer:
    """A collection's page: the ``items`` its ``count`` (default 10, at most 1000) and
    ``offset`` select, under ``name``, with ``extra`` and ``total_items``; or Mailchimp's 400."""
    size, start = _int(count, 10), _int(offset, 0)
    if size is None or start is None or size < 0 or start < 0:
        return invalid("The count and offset must be integers.")
    if size > MAX_PAGE:
        return invalid(
            UNVALIDATED,
            [{"field": "count", "message": f"The maximum count is {MAX_PAGE}."}],
        )
    return 200, {name: items[start : start + size], **extra, "total_items": len(items)}


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()  # Mailchimp's member id, not a secret


def member_key(hash_or_email: str) -> str:
    """The subscriber hash a member endpoint's path names, by hash or by email address."""
    return subscriber_hash(hash_or_email) if "@" in hash_or_email else hash_or_email.lower()


def looks_fake(email: Any) -> bool:
    return not isinstance(email, str) or len(email) > 254 or not _EMAIL.match(email)


def _fake_email(email: Any) -> Refusal:
    """Mailchimp's refusal of an address that looks fake: its detail, no ``errors`` array."""
    message = f"{email} looks fake or invalid, please enter a real email address."
    return Refusal(message, "email_address", message, ())


def not_provided(name: str) -> dict[str, str]:
    return {"field": name, "message": f"Required fields were not provided: {name}"}


def timestamp() -> str:
    """Now, as Mailchimp writes dates (ISO 8601, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why Mailchimp refuses a member's data: its ``detail`` and the ``field`` at fault with its
    ``message``; ``errors`` the ``(field, message)`` pairs of the answer's ``errors`` array,
    that one pair when None."""

    detail: str
    field: str
    message: str
    errors: tuple[tuple[str, str], ...] | None = None

    def answer(self) -> Answer:
        """As the member endpoints (PUT, PATCH) answer it: 400 ``Invalid Resource``."""
        pairs = ((self.field, self.message),) if self.errors is None else self.errors
        return invalid(self.detail, [{"field": f, "message": m} for f, m in pairs] or None)

    def error_item(self, email: Any) -> dict[str, Any]:
        """As batch subscribe lists it in its ``errors``."""
        return _error(email, self.detail, self.field, self.message)


class Audience:
    """One audience (list) with its merge fields and members keyed by subscriber hash."""

    def __init__(self, list_id: str, name: str, merge_fields: Iterable[Mapping[str, Any]]):
        self.list_id = list_id
        self.name = name
        self.merge_fields: dict[str, dict[str, Any]] = {}
        for order, field in enumerate(merge_fields, start=1):
            self.merge_fields[field["tag"]] = {
                "merge_id": order,
                "tag": field["tag"],
                "name": field.get("name", field["tag"]),
                "type": field.get("type", "text"),
                "required": bool(field.get("required", False)),
                "default_value": "",
                "public": True,
                "display_order": order + 1,
                "options": dict(field.get("options", {})),
                "help_text": "",
                "list_id": list_id,
            }
        self.members: dict[str, dict[str, Any]] = {}
        self._web_id = 1000

    # -- reads ----------------------------------------------------------------------------

    def list_json(self) -> dict[str, Any]:
        return {
            "id": self.list_id,
            "web_id": 101,
            "name": self.name,
            "email_type_option": False,
            "stats": {"member_count": self.count("subscribed")},
        }

    def count(self, status: str | None = None) -> int:
        return sum(1 for m in self.members.values() if status is None or m["status"] == status)

    def merge_fields_page(self, count: str | None, offset: str | None) -> Answer:
        fields = copy.deepcopy(list(self.merge_fields.values()))
        return listing("merge_fields", fields, count, offset, list_id=self.list_id)

    def find(self, hash_or_email: str) -> dict[str, Any] | None:
        """By subscriber hash, or by email address, which the member endpoints also accept."""
        return self.members.get(member_key(hash_or_email))

    # -- writes ---------------------------------------------------------------------------

    def add(self, email: str, **fields: Any) -> str:
        """Store a member directly (seeding): status ``subscribed`` unless given."""
        member = self._new_member(email, fields.pop("status", "subscribed"))
        member["merge_fields"].update(fields.pop("merge_fields", {}))
        member.update(fields)
        self.members[member["id"]] = member
        return str(member["id"])

    def batch_subscribe(self, body: Any, skip_merge: bool, skip_duplicates: bool) -> Answer:
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            return invalid(UNVALIDATED, [not_provided("members")])
        members: list[Any] = body["members"]
        if len(members) > MAX_BATCH_MEMBERS:
            return invalid(
                f"You can only add or update up to {MAX_BATCH_MEMBERS} members per batch "
                "subscribe request.",
                [{"field": "members", "message": f"At most {MAX_BATCH_MEMBERS} members."}],
            )
        update_existing = body.get("update_existing", False)
        if not isinstance(update_existing, bool):
            return invalid(
                UNVALIDATED, [{"field": "update_existing", "message": "Must be a boolean."}]
            )
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in members:
            outcome = self._subscribe_one(item, update_existing, skip_merge, skip_duplicates, seen)
            if isinstance(outcome, dict):
                errors.append(outcome)
            elif outcome is not None:
                (created if outcome[0] else updated).append(self.member_json(outcome[1]))
        return 200, {
            "new_members": created,
            "updated_members": updated,
            "errors": errors,
            "total_created": len(created),
            "total_updated": len(updated),
            "error_count": len(errors),
            "_links": [],
        }

    def _subscribe_one(
        self,
        item: Any,
        update_existing: bool,
        skip_merge: bool,
        skip_duplicates: bool,
        seen: set[str],
    ) -> dict[str, Any] | tuple[bool, dict[str, Any]] | None:
        """``(created, member)``, an error item, or None for a duplicate that is skipped."""
        email = item.get("email_address") if isinstance(item, dict) else None
        if looks_fake(email):
            return _fake_email(email).error_item(email)
        assert isinstance(item, dict) and isinstance(email, str)
        key = subscriber_hash(email)
        if key in seen:
            if skip_duplicates:
                return None
            return _error(email, f"{email} appears more than once in this request.")
        seen.add(key)
        if key in self.members and not update_existing:
            return _error(
                email,
                f"{email} is already a list member, do you want to update? please provide "
                "update_existing:true in the request body",
                code="ERROR_CONTACT_EXISTS",
            )
        outcome = self._write(
            email, item, BATCH_MEMBER_KEYS, ("status", "status_if_new"), skip_merge
        )
        if isinstance(outcome, Refusal):
            return outcome.error_item(email)
        return outcome

    def put(self, hash_or_email: str, body: Any, skip_merge: bool) -> Answer:
        """Mailchimp's "Add or update list member": the member the path names is created (with
        ``status_if_new``) or updated; the body's ``email_address`` must hash to it."""
        email = body.get("email_address") if isinstance(body, dict) else None
        if not isinstance(email, str):
            return invalid(UNVALIDATED, [not_provided("email_address")])
        assert isinstance(body, dict)
        if subscriber_hash(email) != member_key(hash_or_email):
            mismatch = "The email address does not match the subscriber hash in the path."
            return invalid(UNVALIDATED, [{"field": "email_address", "message": mismatch}])
        outcome = self._write(email, body, PUT_KEYS, ("status_if_new",), skip_merge)
        if isinstance(outcome, Refusal):
            return outcome.answer()
        return 200, self.member_json(outcome[1])

    def _write(
        self,
        email: str,
        item: Mapping[str, Any],
        keys: frozenset[str],
        needs: tuple[str, ...],
        skip_merge: bool,
    ) -> Refusal | tuple[bool, dict[str, Any]]:
        """Create or update the member ``email`` names with ``item`` (batch subscribe, PUT):
        ``(created, member)``, or why Mailchimp refuses it. A new member needs one of ``needs``
        (its status) and the required merge fields, unless ``skip_merge``."""
        key = subscriber_hash(email)
        existing = self.members.get(key)
        creating = existing is None or existing["status"] == "archived"
        refusal = self.refusal(
            item, keys, needs if creating else (), require_merge=creating and not skip_merge
        )
        if refusal is not None:
            return refusal
        status = item.get("status") or (item.get("status_if_new") if creating else None)
        member = existing if existing is not None else self._new_member(email, status or "")
        self._apply(member, item, status)
        self.members[key] = member
        return existing is None, member

    def patch(self, hash_or_email: str, body: Any) -> Answer:
        member = self.find(hash_or_email)
        if member is None:
            return not_found()
        if not isinstance(body, dict):
            return invalid(UNVALIDATED)
        refusal = self.refusal(body, PATCH_KEYS)
        if refusal is not None:
            return refusal.answer()
        email = body.get("email_address", member["email_address"])
        new_key = subscriber_hash(email)
        if new_key != member["id"] and new_key in self.members:
            return 400, problem(400, "Member Exists", f"{email} is already a list member.", None)
        del self.members[member["id"]]
        member["email_address"] = email
        member["id"] = new_key
        self._apply(member, body, body.get("status"))
        self.members[new_key] = member
        return 200, self.member_json(member)

    def refusal(
        self,
        item: Mapping[str, Any],
        keys: frozenset[str],
        needs: tuple[str, ...] = (),
        *,
        require_merge: bool = False,
    ) -> Refusal | None:
        """Why Mailchimp refuses a member's data ``item``, if it does: a property outside
        ``keys``, a fake ``email_address``, a status outside the enum, none of ``needs`` given
        (a new member's status), merge field values it refuses or, with ``require_merge``,
        required merge fields missing."""
        unknown = sorted(set(item) - keys)
        if unknown:
            return Refusal(UNVALIDATED, unknown[0], "Unknown member property.")
        if "email_address" in item and looks_fake(item["email_address"]):
            return _fake_email(item["email_address"])
        for name in ("status", "status_if_new"):
            if name in item and item[name] not in STATUSES:
                return Refusal(UNVALIDATED, name, f"Invalid {name}: {item[name]!r}")
        if needs and not any(item.get(name) for name in needs):
            return Refusal(UNVALIDATED, needs[0], f"A new member needs {' or '.join(needs)}.")
        problems = self.merge_problems(item.get("merge_fields", {}), require=require_merge)
        if problems:
            return Refusal("Your merge fields were invalid.", *problems[0], tuple(problems))
        return None

    def merge_problems(self, values: Any, *, require: bool) -> list[tuple[str, str]]:
        """``(tag, message)`` for each merge field value Mailchimp would refuse."""
        if not isinstance(values, dict):
            return [("merge_fields", "Merge fields must be an object keyed by merge tag.")]
        problems: list[tuple[str, str]] = []
        for tag, value in values.items():
            field = self.merge_fields.get(tag)
            if field is None:
                problems.append((tag, "This merge field does not exist in the audience."))
            elif (message := _merge_value_problem(field, value)) is not None:
                problems.append((tag, message))
        if require:
            for tag, field in self.merge_fields.items():
                if field["required"] and values.get(tag) in (None, ""):
                    problems.append((tag, "Please enter a value"))
        return problems

    def _new_member(self, email: str, status: str) -> dict[str, Any]:
        self._web_id += 1
        now = timestamp()
        return {
            "id": subscriber_hash(email),
            "email_address": email,
            "unique_email_id": uuid.uuid4().hex[:10],
            "contact_id": uuid.uuid4().hex,
            "web_id": self._web_id,
            "email_type": "html",
            "status": status,
            "merge_fields": {tag: "" for tag in self.merge_fields},
            "interests": {},
            "language": "",
            "vip": False,
            "location": {"latitude": 0, "longitude": 0},
            "ip_signup": "",
            "timestamp_signup": "",
            "ip_opt": "",
            "timestamp_opt": now,
            "member_rating": 2,
            "last_changed": now,
            "source": "API - Generic",
            "tags_count": 0,
            "tags": [],
            "list_id": self.list_id,
        }

    def _apply(self, member: dict[str, Any], item: Mapping[str, Any], status: Any) -> None:
        for name in (
            "email_type",
            "language",
            "vip",
            "ip_signup",
            "timestamp_signup",
            "ip_opt",
            "timestamp_opt",
        ):
            if name in item:
                member[name] = item[name]
        if status:
            member["status"] = status
        if isinstance(item.get("location"), dict):
            member["location"].update(item["location"])
        member["merge_fields"].update(item.get("merge_fields", {}))
        member["last_changed"] = timestamp()

    def member_json(self, member: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(member))
        names = (out["merge_fields"].get("FNAME", ""), out["merge_fields"].get("LNAME", ""))
        out["full_name"] = " ".join(n for n in names if isinstance(n, str) and n)
        out["stats"] = {"avg_open_rate": 0, "avg_click_rate": 0}
        out["_links"] = []
        return out


def _merge_value_problem(field: Mapping[str, Any], value: Any) -> str | None:
    if value == "":
        return None  # clears the merge field
    kind = field["type"]
    options = field["options"]
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return "Please enter a number"
        try:
            float(value)
        except ValueError:
            return "Please enter a number"
        return None
    if kind == "address":
        if not isinstance(value, dict) or not all(
            isinstance(value.get(p), str) and value[p] for p in ("addr1", "city", "state", "zip")
        ):
            return "Please enter a complete address"
        return None
    if not isinstance(value, str):
        return "Please enter a value"
    if kind == "date" and not (_ISO_DATE.match(value) or _SLASH_DATE.match(value)):
        return "Please enter the date"
    if kind == "birthday" and not _BIRTHDAY.match(value):
        return f"Please enter a month and day ({options.get('date_format', 'MM/DD')})"
    if kind in ("radio", "dropdown") and value not in options.get("choices", []):
        return "Please choose one of the options"
    return None


def _error(
    email: Any,
    error: str,
    field: str = "",
    field_message: str = "",
    code: str = "ERROR_GENERIC",
) -> dict[str, Any]:
    return {
        "email_address": email if isinstance(email, str) else "",
        "error": error,
        "error_code": code,
        "field": field,
        "field_message": field_message,
    }


def _int(text: str | None, default: int) -> int | None:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        return None
