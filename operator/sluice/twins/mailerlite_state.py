"""The account of the MailerLite twin: its fields, groups and subscribers, the rules MailerLite's
documentation gives for writing them, the batch endpoint, and the rate limits
(docs/mailerlite-twin.md cites each). Not thread-safe: the twin calls it under its lock."""

from __future__ import annotations

import ipaddress
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

Answer = tuple[int, Any]

STATUSES = ("active", "unsubscribed", "unconfirmed", "bounced", "junk")
#: Statuses the API cannot turn back into active or unconfirmed ("abuse prevention").
LOCKED_STATUSES = frozenset({"unsubscribed", "bounced", "junk"})
FIELD_TYPES = ("text", "number", "date")
#: The fields every account has (the keys of the documented subscriber examples), all text.
DEFAULT_FIELDS = ("name", "last_name", "company", "country", "city", "phone", "state", "z_i_p")
MAX_BATCH_REQUESTS = 50
BATCH_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
MAX_FIELDS_PAGE = 100
DEFAULT_FIELDS_PAGE = 25
TEXT_MAX_LENGTH = 255
#: MailerLite's global limit, and the bulk-import one of batches made only of upserts.
REQUESTS_PER_MINUTE = 120
IMPORTS_PER_MINUTE = 5
WINDOW_SECONDS = 60

INVALID = "The given data was invalid."
TOO_MANY = "Too Many Attempts."
IMPORT_LIMITED = "You're being rate limited on import creation."
NOT_FOUND = "Resource not found."

_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+\Z"
)
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_CREATE_KEYS = frozenset(
    {
        "email",
        "fields",
        "groups",
        "status",
        "subscribed_at",
        "ip_address",
        "opted_in_at",
        "optin_ip",
        "unsubscribed_at",
        "resubscribe",
    }
)
_DATETIME_KEYS = ("subscribed_at", "opted_in_at", "unsubscribed_at")
_IP_KEYS = ("ip_address", "optin_ip")


def invalid(errors: Mapping[str, list[str]]) -> Answer:
    """MailerLite's validation error: 422 with the message and the errors by field."""
    return 422, {"message": INVALID, "errors": dict(errors)}


def not_found() -> Answer:
    return 404, {"message": NOT_FOUND}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _label(key: str) -> str:
    return key.replace("_", " ")


@dataclass
class Subscriber:
    id: str
    email: str
    status: str
    created_at: str
    updated_at: str
    fields: dict[str, Any]
    groups: list[str]
    subscribed_at: str | None = None
    unsubscribed_at: str | None = None
    ip_address: str | None = None
    opted_in_at: str | None = None
    optin_ip: str | None = None


@dataclass
class Window:
    """A fixed window of ``limit`` requests per :data:`WINDOW_SECONDS`."""

    limit: int
    started: float = 0.0
    used: int = 0

    def admit(self, now: float) -> bool:
        if now >= self.started + WINDOW_SECONDS:
            self.started, self.used = now, 0
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def retry_after(self, now: float) -> int:
        return max(1, int(self.started + WINDOW_SECONDS - now + 0.999))


@dataclass
class RateLimiter:
    """The account's 120 requests per minute and 5 bulk imports per minute."""

    enabled: bool
    forced: int = 0
    #: What a forced 429 announces in ``Retry-After``.
    forced_retry_after: int = 1
    clock: Callable[[], float] = time.monotonic
    requests: Window = field(default_factory=lambda: Window(REQUESTS_PER_MINUTE))
    imports: Window = field(default_factory=lambda: Window(IMPORTS_PER_MINUTE))

    def reset(self) -> None:
        self.forced = 0
        self.requests = Window(REQUESTS_PER_MINUTE)
        self.imports = Window(IMPORTS_PER_MINUTE)

    def admit(self) -> tuple[Answer | None, dict[str, str]]:
        """``(the 429 to answer or None, the rate-limit headers of the answer)``."""
        if self.forced > 0:
            self.forced -= 1
            return self._too_many(self.forced_retry_after)
        if not self.enabled:
            return None, {}
        now = self.clock()
        if not self.requests.admit(now):
            return self._too_many(self.requests.retry_after(now))
        return None, self.headers()

    def admit_import(self) -> Answer | None:
        """The import limit of a batch made only of ``POST api/subscribers``: MailerLite's
        documented 429 body, without rate-limit headers."""
        if self.enabled and not self.imports.admit(self.clock()):
            return 429, {"message": IMPORT_LIMITED}
        return None

    def headers(self) -> dict[str, str]:
        remaining = max(0, self.requests.limit - self.requests.used)
        return {
            "X-RateLimit-Limit": str(self.requests.limit),
            "X-RateLimit-Remaining": str(remaining),
        }

    def _too_many(self, retry_after: int) -> tuple[Answer, dict[str, str]]:
        headers = {
            "X-RateLimit-Limit": str(self.requests.limit),
            "X-RateLimit-Remaining": "0",
            "Retry-After": str(retry_after),
        }
        return (429, {"message": TOO_MANY}), headers


class Account:
    """One MailerLite account. ``fields`` are ``{"name", "type", "key"?}`` dicts added to the
    default fields; ``groups`` are group names, given ids here."""

    def __init__(
        self, seed: int, fields: Iterable[Mapping[str, Any]] = (), groups: Iterable[str] = ()
    ) -> None:
        # Ids look like MailerLite's (17-digit numbers) and differ between accounts.
        self._ids = itertools.count(seed * 1_000_000_000 + 1)
        self.fields: dict[str, dict[str, str]] = {}
        for key in DEFAULT_FIELDS:
            self.add_field({"name": key.replace("_", " ").title(), "key": key, "type": "text"})
        for extra in fields:
            self.add_field(extra)
        self.groups: dict[str, str] = {self._next_id(): name for name in groups}
        self.subscribers: dict[str, Subscriber] = {}
        self.by_email: dict[str, str] = {}
        self.creates = 0
        self.updates = 0

    def _next_id(self) -> str:
        return str(next(self._ids))

    def add_field(self, definition: Mapping[str, Any]) -> dict[str, str]:
        name = str(definition["name"])
        kind = str(definition.get("type", "text"))
        if kind not in FIELD_TYPES:
            raise ValueError(f"a field's type is text, number or date, not {kind!r}")
        key = str(definition.get("key") or re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_"))
        made = {"id": self._next_id(), "name": name, "key": key, "type": kind}
        self.fields[key] = made
        return made

    # -- fields ----------------------------------------------------------------------------

    def fields_page(self, limit: str | None, page: str | None) -> Answer:
        errors: dict[str, list[str]] = {}
        size = _positive(limit, DEFAULT_FIELDS_PAGE)
        number = _positive(page, 1)
        if size is None or size > MAX_FIELDS_PAGE:
            errors["limit"] = [f"The limit must be between 1 and {MAX_FIELDS_PAGE}."]
        if number is None:
            errors["page"] = ["The page must be at least 1."]
        if errors or size is None or number is None:
            return invalid(errors)
        listed = list(self.fields.values())
        last = max(1, -(-len(listed) // size))
        chunk = listed[(number - 1) * size : number * size]
        path = "https://connect.mailerlite.com/api/fields"
        return 200, {
            "data": [dict(f) for f in chunk],
            "links": {
                "first": f"{path}?page=1",
                "last": f"{path}?page={last}",
                "prev": f"{path}?page={number - 1}" if number > 1 else None,
                "next": f"{path}?page={number + 1}" if number < last else None,
            },
            "meta": {
                "current_page": number,
                "from": (number - 1) * size + 1 if chunk else None,
                "last_page": last,
                "path": path,
                "per_page": size,
                "to": (number - 1) * size + len(chunk) if chunk else None,
                "total": len(listed),
            },
        }

    # -- subscribers -----------------------------------------------------------------------

    def find(self, id_or_email: str) -> Subscriber | None:
        found = self.subscribers.get(id_or_email)
        if found is None:
            subscriber_id = self.by_email.get(id_or_email.lower())
            found = None if subscriber_id is None else self.subscribers[subscriber_id]
        return found

    def subscriber_json(self, subscriber: Subscriber) -> dict[str, Any]:
        return {
            "id": subscriber.id,
            "email": subscriber.email,
            "status": subscriber.status,
            "source": "api",
            "sent": 0,
            "opens_count": 0,
            "clicks_count": 0,
            "open_rate": 0,
            "click_rate": 0,
            "ip_address": subscriber.ip_address,
            "subscribed_at": subscriber.subscribed_at,
            "unsubscribed_at": subscriber.unsubscribed_at,
            "created_at": subscriber.created_at,
            "updated_at": subscriber.updated_at,
            "fields": {key: subscriber.fields.get(key) for key in self.fields},
            "groups": [
                {"id": group_id, "name": self.groups[group_id]}
                for group_id in subscriber.groups
                if group_id in self.groups
            ],
            "opted_in_at": subscriber.opted_in_at,
            "optin_ip": subscriber.optin_ip,
        }

    def get(self, id_or_email: str) -> Answer:
        found = self.find(id_or_email)
        return not_found() if found is None else (200, {"data": self.subscriber_json(found)})

    def upsert(self, body: Any) -> Answer:
        """``POST api/subscribers``: 201 with the new subscriber, or 200 with the one that
        already had the email, updated (non-destructively: what is omitted is kept)."""
        if not isinstance(body, Mapping):
            return invalid({"email": ["The email field is required."]})
        errors = self._validate(body, create=True)
        if errors:
            return invalid(errors)
        email = str(body["email"])
        existing = self.find(email)
        now = _now()
        if existing is None:
            status = str(body.get("status") or "active")
            subscriber = Subscriber(self._next_id(), email.lower(), status, now, now, {}, [])
            if status == "active":
                subscriber.subscribed_at = now
            self._apply(subscriber, body, replace_groups=False, new=True)
            self.subscribers[subscriber.id] = subscriber
            self.by_email[subscriber.email] = subscriber.id
            self.creates += 1
            return 201, {"data": self.subscriber_json(subscriber)}
        self._apply(existing, body, replace_groups=False, new=False)
        self.updates += 1
        return 200, {"data": self.subscriber_json(existing)}

    def update(self, subscriber_id: str, body: Any) -> Answer:
        """``PUT api/subscribers/{id}``: the keys given are applied; ``groups`` replaces the
        subscriber's groups."""
        found = self.subscribers.get(subscriber_id)
        if found is None:
            return not_found()
        if not isinstance(body, Mapping):
            body = {}
        errors = self._validate(body, create=False)
        if errors:
            return invalid(errors)
        self._apply(found, body, replace_groups=True, new=False)
        self.updates += 1
        return 200, {"data": self.subscriber_json(found)}

    def _validate(self, body: Mapping[str, Any], *, create: bool) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        if create:
            email = body.get("email")
            if email is None or email == "":
                errors["email"] = ["The email field is required."]
            elif not isinstance(email, str) or len(email) > 255 or not _EMAIL.match(email):
                errors["email"] = ["The email must be a valid email address."]
        status = body.get("status")
        if status is not None and status not in STATUSES:
            errors["status"] = ["The selected status is invalid."]
        for key in _DATETIME_KEYS:
            value = body.get(key)
            if value is not None and not _valid_datetime(value):
                errors[key] = [f"The {_label(key)} does not match the format Y-m-d H:i:s."]
        for key in _IP_KEYS:
            value = body.get(key)
            if value is not None and not _valid_ip(value):
                errors[key] = [f"The {_label(key)} must be a valid IP address."]
        if "resubscribe" in body and create and not isinstance(body["resubscribe"], bool):
            errors["resubscribe"] = ["The resubscribe field must be true or false."]
        groups = body.get("groups")
        if groups is not None:
            if not isinstance(groups, list):
                errors["groups"] = ["The groups must be an array."]
            else:
                for i, group in enumerate(groups):
                    if not isinstance(group, str | int) or str(group) not in self.groups:
                        errors[f"groups.{i}"] = [f"The selected groups.{i} is invalid."]
        fields = body.get("fields")
        if fields is not None:
            if not isinstance(fields, Mapping):
                errors["fields"] = ["The fields must be an array."]
            else:
                for key, value in fields.items():
                    problem = self._field_problem(str(key), value)
                    if problem is not None:
                        errors[f"fields.{key}"] = [problem]
        return errors

    def _field_problem(self, key: str, value: Any) -> str | None:
        definition = self.fields.get(key)
        name = f"fields.{key}"
        if definition is None:
            return f"The {name} field does not exist."
        if value is None:
            return None
        match definition["type"]:
            case "number":
                if isinstance(value, bool) or not isinstance(value, int | float | str):
                    return f"The {name} must be a number."
                try:
                    Decimal(str(value))
                except InvalidOperation:
                    return f"The {name} must be a number."
            case "date":
                if not isinstance(value, str) or not _valid_date(value):
                    return f"The {name} does not match the format Y-m-d."
            case _:
                if not isinstance(value, str | int | float) or isinstance(value, bool):
                    return f"The {name} must be a string."
                if len(str(value)) > TEXT_MAX_LENGTH:
                    return f"The {name} may not be greater than {TEXT_MAX_LENGTH} characters."
        return None

    def _apply(
        self, subscriber: Subscriber, body: Mapping[str, Any], *, replace_groups: bool, new: bool
    ) -> None:
        status = body.get("status")
        if status is not None and not new:
            reactivating = status in ("active", "unconfirmed")
            if subscriber.status in LOCKED_STATUSES and reactivating:
                # Abuse prevention: only the app, a form or a landing page reactivate them,
                # except an upsert with resubscribe for an unsubscribed subscriber.
                if body.get("resubscribe") is True and subscriber.status == "unsubscribed":
                    subscriber.status = "active"
            else:
                subscriber.status = str(status)
        elif not new and body.get("resubscribe") is True and subscriber.status == "unsubscribed":
            subscriber.status = "active"
        for key in (*_DATETIME_KEYS, *_IP_KEYS):
            if body.get(key) is not None:
                setattr(subscriber, key, str(body[key]))
        fields = body.get("fields")
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                subscriber.fields[str(key)] = value
        groups = body.get("groups")
        if isinstance(groups, list):
            listed = [str(g) for g in groups]
            if replace_groups:
                subscriber.groups = listed
            else:
                subscriber.groups += [g for g in listed if g not in subscriber.groups]
        subscriber.updated_at = _now()

    def seed(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Subscribers stored as ``POST api/subscribers`` would create them; ValueError names
        a row MailerLite would refuse."""
        ids = []
        for row in rows:
            status, answer = self.upsert(dict(row))
            if status not in (200, 201):
                raise ValueError(f"MailerLite would refuse {dict(row)!r}: {answer}")
            ids.append(str(answer["data"]["id"]))
        return ids

    # -- batch -----------------------------------------------------------------------------

    def validate_batch(self, body: Any) -> Answer | None:
        """The batch request's own validation: at most 50 requests, each with a method and a
        path starting with ``api/``."""
        requests = body.get("requests") if isinstance(body, Mapping) else None
        if not isinstance(requests, list) or not requests:
            return invalid({"requests": ["The requests field is required."]})
        if len(requests) > MAX_BATCH_REQUESTS:
            return invalid(
                {"requests": [f"The requests may not have more than {MAX_BATCH_REQUESTS} items."]}
            )
        errors: dict[str, list[str]] = {}
        for i, item in enumerate(requests):
            if not isinstance(item, Mapping):
                errors[f"requests.{i}"] = [f"The requests.{i} must be an array."]
                continue
            if item.get("method") not in BATCH_METHODS:
                errors[f"requests.{i}.method"] = [f"The selected requests.{i}.method is invalid."]
            path = item.get("path")
            if not isinstance(path, str) or not path.startswith("api/"):
                errors[f"requests.{i}.path"] = [f"The requests.{i}.path must start with api/."]
            if "body" in item and not isinstance(item["body"], Mapping | None):
                errors[f"requests.{i}.body"] = [f"The requests.{i}.body must be an array."]
        return invalid(errors) if errors else None

    def run_batch(self, requests: list[Mapping[str, Any]]) -> Answer:
        """Every sub-request in order; 200 with ``total``, ``successful``, ``failed`` and one
        ``{code, body}`` per sub-request."""
        responses = []
        for item in requests:
            code, answer = self.dispatch(str(item["method"]), str(item["path"]), item.get("body"))
            responses.append({"code": code, "body": answer})
        successful = sum(1 for r in responses if r["code"] < 400)
        return 200, {
            "total": len(responses),
            "successful": successful,
            "failed": len(responses) - successful,
            "responses": responses,
        }

    def dispatch(self, method: str, path: str, body: Any) -> Answer:
        """A sub-request of a batch, by its path relative to the host (``api/...``)."""
        # A sub-request's path arrives as sent: its segments are still percent-encoded.
        parts = [unquote(p) for p in path.split("?", 1)[0].strip("/").split("/")]
        if parts[:2] == ["api", "subscribers"]:
            if len(parts) == 2 and method == "POST":
                return self.upsert(body)
            if len(parts) == 3 and method == "GET":
                return self.get(parts[2])
            if len(parts) == 3 and method == "PUT":
                return self.update(parts[2], body)
        if parts == ["api", "fields"] and method == "GET":
            return self.fields_page(None, None)
        return not_found()


def is_import(requests: list[Mapping[str, Any]]) -> bool:
    """Whether a batch consists entirely of ``POST api/subscribers`` (a bulk import)."""
    return all(r.get("method") == "POST" and r.get("path") == "api/subscribers" for r in requests)


def _positive(text: str | None, default: int) -> int | None:
    if text is None or text == "":
        return default
    return int(text) if text.isdigit() and int(text) >= 1 else None


def _valid_datetime(value: Any) -> bool:
    if not isinstance(value, str) or not _DATETIME.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return True


def _valid_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _valid_ip(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
