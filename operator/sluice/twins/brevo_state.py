"""The contacts of the Brevo twin and what each contacts endpoint does with them.

Every operation answers ``(status, body)`` as Brevo's API v3 answers that request (``body``
None for a 204). Callers hold the twin's lock. Which documented behaviour each rule follows is
in ``docs/brevo-twin.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

Answer = tuple[int, Any]

#: Contacts per ``POST /contacts/batch`` [not documented: the twin's choice].
BATCH_LIMIT = 100

# An address with one @, a dotted domain and no spaces: what Brevo's "Invalid email address"
# refuses at least.
_EMAIL = re.compile(
    r"[^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+\Z"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_FIELDS = frozenset(
    {
        "email",
        "ext_id",
        "attributes",
        "emailBlacklisted",
        "smsBlacklisted",
        "listIds",
        "unlinkListIds",
        "smtpBlacklistSender",
        "updateEnabled",
        "id",
        "sms",
    }
)


def error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Brevo's error body."""
    return {"code": code, "message": message, **extra}


NOT_FOUND = error("document_not_found", "Contact does not exist")


@dataclass(frozen=True, slots=True)
class Attribute:
    """A contact attribute as ``GET /contacts/attributes`` lists it."""

    name: str
    category: str = "normal"
    type: str = "text"
    #: Category attributes: option value → label.
    enumeration: Mapping[int, str] = field(default_factory=dict)
    #: Multiple-choice attributes.
    options: tuple[str, ...] = ()
    calculated_value: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "category": self.category, "type": self.type}
        if self.enumeration:
            body["enumeration"] = [{"value": v, "label": lb} for v, lb in self.enumeration.items()]
        if self.options:
            body["multiCategoryOptions"] = list(self.options)
        if self.calculated_value is not None:
            body["calculatedValue"] = self.calculated_value
        return body

    def accepts(self, value: Any) -> bool:
        if self.category == "category":
            return (type(value) is int and value in self.enumeration) or (
                isinstance(value, str) and value in self.enumeration.values()
            )
        match self.type:
            case "text" | "id" | "user":
                return isinstance(value, str)
            case "date":
                if not isinstance(value, str) or not _DATE.match(value):
                    return False
                try:
                    date.fromisoformat(value)
                except ValueError:
                    return False
                return True
            case "float":
                return isinstance(value, int | float) and not isinstance(value, bool)
            case "boolean":
                return isinstance(value, bool)
            case "multiple-choice":
                return isinstance(value, list) and all(v in self.options for v in value)
        return False


#: A new account's attributes: Brevo's defaults.
DEFAULT_ATTRIBUTES = (
    Attribute("EMAIL"),
    Attribute("FIRSTNAME"),
    Attribute("LASTNAME"),
    Attribute("SMS"),
    Attribute("EXT_ID", type="id"),
)


@dataclass(slots=True)
class Contact:
    id: int
    email: str | None
    ext_id: str | None
    attributes: dict[str, Any]
    email_blacklisted: bool = False
    sms_blacklisted: bool = False
    list_ids: list[int] = field(default_factory=list)
    created_at: str = ""
    modified_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """As ``GET /contacts/{identifier}`` answers it (statistics left empty)."""
        attributes = dict(self.attributes)
        if self.ext_id is not None:
            attributes["EXT_ID"] = self.ext_id
        body: dict[str, Any] = {
            "id": self.id,
            "emailBlacklisted": self.email_blacklisted,
            "smsBlacklisted": self.sms_blacklisted,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "listIds": list(self.list_ids),
            "attributes": attributes,
            "statistics": {},
        }
        if self.email is not None:
            body = {"email": self.email, **body}
        return body


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RefusedError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["message"])
        self.status = status
        self.body = body


class ContactStore:
    """The account's contacts and attributes. Not thread-safe: used under the twin's lock."""

    def __init__(self, attributes: Iterable[Attribute]) -> None:
        self.attributes = {a.name.upper(): a for a in (*DEFAULT_ATTRIBUTES, *attributes)}
        self.clear()

    def clear(self) -> None:
        self.contacts: dict[int, Contact] = {}
        self.by_email: dict[str, int] = {}
        self.by_ext_id: dict[str, int] = {}
        self.next_id = 1
        self.creates = 0
        self.updates = 0

    # -- reads ---------------------------------------------------------------------------------

    def attributes_json(self) -> Answer:
        return 200, {"attributes": [a.to_json() for a in self.attributes.values()]}

    def find(self, identifier: str, identifier_type: str | None) -> Contact | None:
        if identifier_type in (None, "email_id") and "@" in identifier:
            found = self.by_email.get(identifier.lower())
        elif identifier_type in (None, "contact_id") and identifier.isdigit():
            found = int(identifier)
        elif identifier_type == "ext_id":
            found = self.by_ext_id.get(identifier)
        else:
            found = None
        return self.contacts.get(found) if found is not None else None

    def get(self, identifier: str, identifier_type: str | None) -> Answer:
        if identifier_type not in (None, "email_id", "contact_id", "ext_id", "phone_id"):
            return 400, error("invalid_parameter", "identifierType is not valid")
        if identifier_type == "email_id" and not _EMAIL.match(identifier):
            return 400, error("invalid_parameter", "Invalid email address")
        contact = self.find(identifier, identifier_type)
        return (200, contact.to_json()) if contact is not None else (404, NOT_FOUND)

    # -- writes --------------------------------------------------------------------------------

    def create(self, body: Any) -> Answer:
        """``POST /contacts``: 201 ``{"id"}``; with ``updateEnabled`` an existing email's contact
        is updated instead (204)."""
        try:
            self._check_shape(body)
            email = self._email(body.get("email"))
            ext_id = self._ext_id(body.get("ext_id"))
            attributes = self._attributes(body.get("attributes"), create=True)
            if email is None and ext_id is None and "SMS" not in attributes:
                raise RefusedError(
                    400, error("missing_parameter", "email, ext_id or SMS attribute is required")
                )
            existing = self.by_email.get(email) if email is not None else None
            if existing is not None and body.get("updateEnabled") is True:
                self._apply(self.contacts[existing], body, ext_id, attributes)
                return 204, None
            if existing is not None:
                raise RefusedError(400, _duplicate("create", "email"))
            if ext_id is not None and ext_id in self.by_ext_id:
                raise RefusedError(400, _duplicate("create", "ext_id"))
        except RefusedError as refused:
            return refused.status, refused.body
        contact = self.add(email, ext_id, attributes)
        self._flags(contact, body)
        self.creates += 1
        return 201, {"id": contact.id}

    def add(self, email: str | None, ext_id: str | None, attributes: dict[str, Any]) -> Contact:
        now = _now()
        contact = Contact(self.next_id, email, ext_id, attributes, created_at=now, modified_at=now)
        self.next_id += 1
        self.contacts[contact.id] = contact
        if email is not None:
            self.by_email[email] = contact.id
        if ext_id is not None:
            self.by_ext_id[ext_id] = contact.id
        return contact

    def update(self, identifier: str, identifier_type: str | None, body: Any) -> Answer:
        """``PUT /contacts/{identifier}``: 204, 404 for an unknown contact."""
        contact = self.find(identifier, identifier_type)
        if contact is None:
            return 404, NOT_FOUND
        try:
            self._check_shape(body)
            self._update(contact, body)
        except RefusedError as refused:
            return refused.status, refused.body
        return 204, None

    def batch_update(self, body: Any) -> Answer:
        """``POST /contacts/batch``: 204 when every contact was updated, 207 with
        ``successIds`` and ``failureIds`` otherwise; 400 for a malformed request."""
        contacts = body.get("contacts") if isinstance(body, dict) else None
        if not isinstance(contacts, list) or not contacts:
            return 400, error("missing_parameter", "contacts is required")
        if len(contacts) > BATCH_LIMIT:
            return 400, error(
                "invalid_parameter", f"contacts cannot hold more than {BATCH_LIMIT} items"
            )
        for item in contacts:
            if not isinstance(item, dict):
                return 400, error("invalid_parameter", "contacts must be objects")
            if sum(k in item for k in ("email", "id", "sms")) != 1:
                return 400, error(
                    "invalid_parameter", "each contact needs exactly one of email, id or sms"
                )
        succeeded: list[int] = []
        failed: list[int] = []
        for item in contacts:
            identifier = item.get("id", item.get("email", item.get("sms")))
            contact = self.find(str(identifier), None)
            if contact is None:
                failed.append(identifier if type(identifier) is int else -1)
                continue
            try:
                self._check_shape(item)
                self._update(contact, item)
            except RefusedError:
                failed.append(contact.id)
                continue
            succeeded.append(contact.id)
        if not failed:
            return 204, None
        return 207, {"successIds": succeeded, "failureIds": failed}

    def _update(self, contact: Contact, body: dict[str, Any]) -> None:
        ext_id = self._ext_id(body.get("ext_id"))
        attributes = self._attributes(body.get("attributes"), create=False)
        new_email = attributes.pop("EMAIL", None)
        if new_email is not None:
            email = self._email(new_email)
            holder = self.by_email.get(email) if email is not None else None
            if holder is not None and holder != contact.id:
                raise RefusedError(400, _duplicate("update", "email"))
            if contact.email is not None:
                del self.by_email[contact.email]
            contact.email = email
            if email is not None:
                self.by_email[email] = contact.id
        self._apply(contact, body, ext_id, attributes)

    def _apply(
        self, contact: Contact, body: dict[str, Any], ext_id: str | None, attributes: dict[str, Any]
    ) -> None:
        if ext_id is not None and ext_id != contact.ext_id:
            if ext_id in self.by_ext_id:
                raise RefusedError(400, _duplicate("update", "ext_id"))
            if contact.ext_id is not None:
                del self.by_ext_id[contact.ext_id]
            contact.ext_id = ext_id
            self.by_ext_id[ext_id] = contact.id
        for name, value in attributes.items():
            if value == "":
                contact.attributes.pop(name, None)
            else:
                contact.attributes[name] = value
        self._flags(contact, body)
        contact.modified_at = _now()
        self.updates += 1

    # -- checks --------------------------------------------------------------------------------

    def _check_shape(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise RefusedError(400, error("bad_request", "The request body must be a JSON object"))
        for key in body:
            if key not in _FIELDS:
                raise RefusedError(
                    400, error("invalid_parameter", f"{key} is not a valid parameter")
                )
        for flag in ("emailBlacklisted", "smsBlacklisted", "updateEnabled"):
            if flag in body and not isinstance(body[flag], bool):
                raise RefusedError(400, error("invalid_parameter", f"{flag} should be boolean"))
        for name in ("listIds", "unlinkListIds"):
            ids = body.get(name)
            if ids is not None and not (
                isinstance(ids, list) and all(type(i) is int and i > 0 for i in ids)
            ):
                raise RefusedError(
                    400, error("invalid_parameter", f"{name} should be an array of ids")
                )

    def _email(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not _EMAIL.match(value):
            raise RefusedError(400, error("invalid_parameter", "Invalid email address"))
        return value.lower()

    def _ext_id(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value == "":
            raise RefusedError(
                400, error("invalid_parameter", "ext_id should be a non-empty string")
            )
        return value

    def _attributes(self, value: Any, *, create: bool) -> dict[str, Any]:
        """The attributes to store. An unknown one is refused; a value that does not fit its
        attribute's type is ignored, as Brevo documents; ``""`` clears (updates only)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise RefusedError(400, error("invalid_parameter", "attributes should be an object"))
        kept: dict[str, Any] = {}
        for name, attribute_value in value.items():
            attribute = self.attributes.get(name.upper()) if isinstance(name, str) else None
            if attribute is None or attribute.category in ("calculated", "global"):
                raise RefusedError(
                    400, error("invalid_parameter", f"Attribute {name} does not exist")
                )
            if name.upper() == "EMAIL" and not create:
                kept["EMAIL"] = attribute_value
            elif attribute_value == "" and not create:
                kept[attribute.name] = ""
            elif attribute.accepts(attribute_value):
                kept[attribute.name] = _stored(attribute, attribute_value)
        return kept

    def _flags(self, contact: Contact, body: dict[str, Any]) -> None:
        if "emailBlacklisted" in body:
            contact.email_blacklisted = body["emailBlacklisted"]
        if "smsBlacklisted" in body:
            contact.sms_blacklisted = body["smsBlacklisted"]
        for list_id in body.get("listIds") or []:
            if list_id not in contact.list_ids:
                contact.list_ids.append(list_id)
        for list_id in body.get("unlinkListIds") or []:
            if list_id in contact.list_ids:
                contact.list_ids.remove(list_id)


def _stored(attribute: Attribute, value: Any) -> Any:
    if attribute.category == "category" and isinstance(value, str):
        return next(v for v, label in attribute.enumeration.items() if label == value)
    return value


def _duplicate(action: str, identifier: str) -> dict[str, Any]:
    return error(
        "duplicate_parameter",
        f"Unable to {action} contact, {identifier} is already associated with another Contact",
        metadata={"duplicate_identifiers": [identifier]},
    )
