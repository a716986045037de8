"""The Brevo connector: contacts through Brevo's API v3, with an API key.

Endpoints (Brevo's public API reference, ``https://api.brevo.com/v3``):

* ``GET /account`` — the account's ``organization_id``, the destination's identity;
* ``GET /contacts/attributes`` — the contact attributes, for the destination schema;
* ``GET /contacts/{identifier}?identifierType=email_id`` (or ``ext_id``) — one contact by its
  email address or external id: Brevo has no call that finds many contacts by email at once
  (``GET /contacts`` filters ``equals`` one attribute value), so a lookup sends one request per
  value, concurrently within the rate limit;
* ``POST /contacts`` — one contact created (201 with its ``id``); with ``updateEnabled`` the
  contact holding the email is updated instead (204, no body), which makes it an upsert;
* ``POST /contacts/batch`` — up to 100 contacts updated by id in one request: 204 when all
  were, 207 with ``successIds`` and ``failureIds`` when some were not (Brevo does not say why:
  each failed contact is then sent alone with ``PUT /contacts/{id}?identifierType=contact_id``,
  whose answer carries the reason);
* ``PUT /contacts/{identifier}?identifierType=contact_id`` — that one contact's update.

Brevo answers errors as ``{"code": "...", "message": "..."}`` (``invalid_parameter``,
``duplicate_parameter``, ``document_not_found``…). Every ``/contacts`` endpoint shares one
limit: 10 requests per second and 36,000 per hour on every plan (more on Professional and
Enterprise); the other endpoints, ``/account`` among them, 100 per hour. Responses carry
``x-sib-ratelimit-limit``, ``-remaining`` and ``-reset`` (seconds), and a 429 carries no
``Retry-After``.

``POST /contacts/import`` is not used: it answers a process id, not which contact each record
became, and its process is polled through ``/processes``, limited to 100 requests per hour.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Unpack
from urllib.parse import quote

import httpx

from sluice.apps.connector import (
    AppUser,
    ConnectorError,
    RateLimit,
    WriteRecord,
    WriteResult,
)
from sluice.apps.http import (
    AppHttpClient,
    ClientHooks,
    OutcomeUnknownError,
    RateLimitHint,
    RetryPolicy,
    json_object,
)
from sluice.apps.settings import credential, only_base_url
from sluice.mapping import TimeLayouts
from sluice.model.types import Kind, Property, Type, is_valid_property_name, object_type
from sluice.model.values import value_at

APP = "Brevo"
DEFAULT_BASE_URL = "https://api.brevo.com/v3"

#: Every ``/contacts`` endpoint: 10 requests per second (and 36,000 per hour, the same pace).
#: A bucket sends at most ``burst + rate·1`` in any second: 1 + 9 = 10.
RATE_LIMIT = RateLimit(requests_per_second=9, burst=1, max_concurrent=10)
#: ``/account``, like every endpoint without a limit of its own: 100 requests per hour.
#: 2 + 0.025·3600 = 92 in any hour.
ACCOUNT_RATE_LIMIT = RateLimit(requests_per_second=0.025, burst=2, max_concurrent=1)
RETRY_POLICY = RetryPolicy(
    retry_statuses=frozenset({500, 502, 503, 504}),
    not_processed_statuses=frozenset({429}),
)

#: Contacts per ``POST /contacts/batch``, and records per create or upsert call (sent one by
#: one, concurrently).
BATCH_SIZE = 100
#: How many times a create whose outcome stayed unknown is checked and re-sent.
MAX_CREATE_ROUNDS = 3
#: The longest wait for Brevo's rate-limit window the connector accepts; beyond it (the hourly
#: window used up) the run stops with a message saying when the window resets.
MAX_RATE_LIMIT_WAIT = RETRY_POLICY.max_retry_time

#: The writable contact fields, outside ``attributes``.
EMAIL, EXT_ID = "email", "ext_id"
#: Attributes Brevo lists that are the contact fields above: written through those.
_FIELD_ATTRIBUTES = frozenset({"EMAIL", "EXT_ID"})
#: Attribute categories whose values Brevo computes: never written.
_READ_ONLY_CATEGORIES = frozenset({"calculated", "global"})

_API_KEY = re.compile(r"xkeysib-[A-Za-z0-9-]{1,247}\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


# ---------------------------------------------------------------------------------------------
# The destination schema
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrevoField:
    """What stands behind an output path: a contact field (``email``, ``listIds``…) or an
    attribute (``attributes.FIRSTNAME``) of a Brevo type."""

    name: str
    brevo_type: str
    attribute: bool
    #: A category attribute's option values, by their text (``"1"`` → 1).
    options: Mapping[str, int] | None = None
    #: A multiple-choice attribute's options.
    choices: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class BrevoSchema:
    type: Type
    #: Output path (``email``, ``attributes.FIRSTNAME``) → what it writes.
    fields: Mapping[str, BrevoField]


_CONTACT_FIELDS: tuple[tuple[Property, BrevoField], ...] = (
    (
        Property(EMAIL, Type(Kind.STRING), nullable=True, description="Email address"),
        BrevoField(EMAIL, "text", attribute=False),
    ),
    (
        Property(
            EXT_ID,
            Type(Kind.STRING),
            nullable=True,
            description="External id\n\nYour own unique id of the contact",
        ),
        BrevoField(EXT_ID, "text", attribute=False),
    ),
    (
        Property(
            "emailBlacklisted",
            Type(Kind.BOOLEAN),
            nullable=True,
            description="Blocklisted for email campaigns",
        ),
        BrevoField("emailBlacklisted", "boolean", attribute=False),
    ),
    (
        Property(
            "smsBlacklisted",
            Type(Kind.BOOLEAN),
            nullable=True,
            description="Blocklisted for SMS campaigns",
        ),
        BrevoField("smsBlacklisted", "boolean", attribute=False),
    ),
    (
        Property(
            "listIds",
            Type(Kind.ARRAY, element_type=Type(Kind.INT, bit_size=64)),
            nullable=True,
            description="Ids of the lists to add the contact to",
        ),
        BrevoField("listIds", "list-ids", attribute=False),
    ),
)


def build_schema(attributes: Iterable[Mapping[str, Any]]) -> BrevoSchema:
    """The destination schema from the ``attributes`` of ``GET /contacts/attributes``.

    The contact fields come first (``email``, ``ext_id``, ``emailBlacklisted``,
    ``smsBlacklisted``, ``listIds``), then an ``attributes`` object with the writable
    attributes sorted by name: calculated and global attributes (computed by Brevo) and types
    Sluice cannot write are left out. Everything is nullable.
    """
    properties = [prop for prop, _ in _CONTACT_FIELDS]
    fields: dict[str, BrevoField] = {field.name: field for _, field in _CONTACT_FIELDS}
    built: dict[str, tuple[Property, BrevoField]] = {}
    for item in attributes:
        attribute = _attribute(item)
        if attribute is not None and attribute[0].name not in built:
            built[attribute[0].name] = attribute
    if built:
        ordered = [built[name] for name in sorted(built)]
        properties.append(
            Property(
                "attributes",
                object_type(*(prop for prop, _ in ordered)),
                description="Contact attributes",
            )
        )
        for prop, field in ordered:
            fields[f"attributes.{prop.name}"] = field
    return BrevoSchema(object_type(*properties), fields)


def _attribute(item: Mapping[str, Any]) -> tuple[Property, BrevoField] | None:
    name = item.get("name")
    if not isinstance(name, str) or not is_valid_property_name(name):
        return None
    if name in _FIELD_ATTRIBUTES or item.get("category") in _READ_ONLY_CATEGORIES:
        return None
    if item.get("calculatedValue"):
        return None
    # Category attributes (``category`` "category") carry their options; their type is text.
    brevo_type = "category" if item.get("category") == "category" else item.get("type")
    description = name
    options: dict[str, int] | None = None
    choices: frozenset[str] | None = None
    t: Type
    match brevo_type:
        case "text" | "id" | "user":
            t = Type(Kind.STRING)
        case "date":
            t = Type(Kind.DATE)
        case "float":
            t = Type(Kind.FLOAT, bit_size=64)
        case "boolean":
            t = Type(Kind.BOOLEAN)
        case "category":
            options, labels = {}, []
            for option in item.get("enumeration") or []:
                if isinstance(option, Mapping) and type(option.get("value")) is int:
                    options[str(option["value"])] = option["value"]
                    labels.append(f"{option['value']}: {option.get('label', '')}")
            if not options:
                return None
            t = Type(Kind.STRING, values=tuple(options))
            description = f"{name}\n\n" + ", ".join(labels)
        case "multiple-choice":
            values = [v for v in item.get("multiCategoryOptions") or [] if isinstance(v, str) and v]
            if not values:
                return None
            choices = frozenset(values)
            t = Type(
                Kind.ARRAY, element_type=Type(Kind.STRING, values=tuple(dict.fromkeys(values)))
            )
        case _:
            return None
    brevo_type = str(brevo_type)
    return (
        Property(name, t, nullable=True, description=unicodedata.normalize("NFC", description)),
        BrevoField(name, brevo_type, attribute=True, options=options, choices=choices),
    )


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


class _RecordError(Exception):
    """A record that cannot be sent as it is."""


def encode_value(field: BrevoField, value: Any, path: str) -> Any:
    """A value as Brevo's JSON takes it, checked against the field's type: Brevo ignores a
    value that does not fit its attribute instead of refusing it, so a mistake would pass
    unnoticed."""
    match field.brevo_type:
        case "text" | "id" | "user":
            if isinstance(value, str):
                return value
        case "date":
            if isinstance(value, date | datetime):
                return value.strftime("%Y-%m-%d")
            if isinstance(value, str) and _DATE.match(value):
                return value
        case "float":
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                number = float(value)
                return int(number) if number.is_integer() and abs(number) < 2**53 else number
        case "boolean":
            if isinstance(value, bool):
                return value
        case "category":
            assert field.options is not None
            text = str(value) if isinstance(value, int | str) else ""
            if text in field.options:
                return field.options[text]
            raise _RecordError(
                f'"{path}" must be one of the options of the {APP} category attribute: '
                + ", ".join(field.options)
            )
        case "multiple-choice":
            assert field.choices is not None
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                unknown = [v for v in value if v not in field.choices]
                if unknown:
                    raise _RecordError(
                        f'"{path}" has "{unknown[0]}", which is not an option of the {APP} '
                        "multiple-choice attribute"
                    )
                return list(value)
        case "list-ids":
            if isinstance(value, list | tuple) and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
            ):
                return list(value)
    raise _RecordError(f'"{path}" cannot hold {_describe(value)} for {APP} ({field.brevo_type})')


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def contact_body(
    properties: Mapping[str, Any], schema: BrevoSchema, *, update: bool
) -> dict[str, Any]:
    """The JSON of a contact from a record's properties. A null attribute is left out of a
    create and cleared (``""``) by an update; null contact fields are left out. An update
    changes the email through the ``EMAIL`` attribute, as Brevo's update endpoints ask."""
    body: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for name, value in properties.items():
        if name == "attributes":
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise _RecordError(f'"attributes" must be an object of {APP} attributes')
            for attribute, attribute_value in value.items():
                path = f"attributes.{attribute}"
                field = schema.fields.get(path)
                if field is None:
                    raise _RecordError(f'"{path}" is not a writable {APP} contact attribute')
                if attribute_value is None:
                    if update:
                        attributes[field.name] = ""
                    continue
                attributes[field.name] = encode_value(field, attribute_value, path)
            continue
        field = schema.fields.get(name)
        if field is None or field.attribute:
            raise _RecordError(f'"{name}" is not a writable {APP} contact field')
        if value is None:
            continue
        encoded = encode_value(field, value, name)
        if name == EMAIL and update:
            attributes["EMAIL"] = encoded
        else:
            body[name] = encoded
    if attributes:
        body["attributes"] = attributes
    return body


# ---------------------------------------------------------------------------------------------
# Rate-limit headers and error bodies
# ---------------------------------------------------------------------------------------------


def read_rate_limit(response: httpx.Response) -> RateLimitHint | None:
    """Brevo's ``x-sib-ratelimit-*`` headers as a hint for the bucket.

    A 429 waits ``x-sib-ratelimit-reset`` seconds (Brevo sends no ``Retry-After``); a window
    used up (``remaining`` 0) pauses the bucket until it resets. A reset further away than the
    retries may wait (the hourly window) stops the run with a message saying so.
    """
    headers = response.headers
    reset = _number(headers.get("x-sib-ratelimit-reset"))
    remaining = _number(headers.get("x-sib-ratelimit-remaining"))
    if response.status_code == 429:
        if reset is None:
            return None
        if reset > MAX_RATE_LIMIT_WAIT:
            limit = headers.get("x-sib-ratelimit-limit", "?")
            raise ConnectorError(
                f"{APP}'s rate limit of {limit} requests is used up for {reset:g} more seconds "
                f"(429: {error_message(response)})"
            )
        return RateLimitHint(pause=max(reset, 1.0))
    if remaining == 0 and reset is not None and 0 < reset <= MAX_RATE_LIMIT_WAIT:
        return RateLimitHint(pause=reset)
    return None


def error_message(response: httpx.Response) -> str:
    """Brevo's error ``message``, after its ``code``."""
    body = json_object(response)
    code, message = body.get("code"), body.get("message")
    if isinstance(message, str) and message:
        return f"{code}: {message}" if isinstance(code, str) and code else message
    text = response.text.strip()
    return text[:300] if text else "(empty body)"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def _contact_id(body: Mapping[str, Any]) -> str | None:
    contact_id = body.get("id")
    return str(contact_id) if type(contact_id) is int else None


# ---------------------------------------------------------------------------------------------
# The connector
# ---------------------------------------------------------------------------------------------


class BrevoConnector:
    """One Brevo account (an API key), ready for one run."""

    batch_size = BATCH_SIZE
    lookup_batch_size = BATCH_SIZE
    rate_limit = RATE_LIMIT
    #: Brevo's date attributes take ``YYYY-MM-DD``; it has no datetime or time type.
    time_layouts = TimeLayouts(date="2006-01-02")

    def __init__(
        self,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        **hooks: Unpack[ClientHooks],
    ) -> None:
        base_url = only_base_url(APP, settings, DEFAULT_BASE_URL)
        key = _api_key(credentials)
        hooks.setdefault("retry", RETRY_POLICY)
        self.http = AppHttpClient(
            APP,
            base_url,
            RATE_LIMIT,
            headers={"api-key": key, "Accept": "application/json"},
            groups={"account": ACCOUNT_RATE_LIMIT},
            rate_limit_reader=read_rate_limit,
            error_message=error_message,
            credential_name="API key",
            **hooks,
        )
        self._schema: BrevoSchema | None = None
        self._schema_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- schema and identity -------------------------------------------------------------------

    async def destination_schema(self) -> Type:
        return (await self.schema()).type

    async def schema(self) -> BrevoSchema:
        """The destination schema and its path → field map, read once per connector."""
        async with self._schema_lock:
            if self._schema is None:
                response = await self.http.request("GET", "/contacts/attributes")
                if response.status_code != 200:
                    raise self._unexpected("listing the contact attributes", response)
                attributes = json_object(response).get("attributes")
                if not isinstance(attributes, list):
                    raise ConnectorError(f"{APP} listed the contact attributes without a list")
                self._schema = build_schema(a for a in attributes if isinstance(a, Mapping))
            return self._schema

    async def destination_identity(self) -> str:
        response = await self.http.request("GET", "/account", group="account")
        if response.status_code != 200:
            raise self._unexpected("reading the account", response)
        organization = json_object(response).get("organization_id")
        if not isinstance(organization, str) or not organization:
            raise ConnectorError(f"{APP} answered the account without an organization_id")
        return f"brevo:account/{organization}"

    async def upserts(self, matching_path: str) -> bool:
        """``POST /contacts`` with ``updateEnabled`` updates the contact holding the email."""
        return (await self._field(matching_path)).name == EMAIL

    async def _field(self, path: str) -> BrevoField:
        field = (await self.schema()).fields.get(path)
        if field is None:
            raise ConnectorError(f'"{path}" is not a writable {APP} contact field or attribute')
        return field

    async def _identifier_type(self, path: str) -> str:
        field = await self._field(path)
        if field.name == EMAIL:
            return "email_id"
        if field.name == EXT_ID:
            return "ext_id"
        raise ConnectorError(
            f'{APP} finds contacts by email or ext_id only, not by "{path}": choose one of '
            "them as the matching property"
        )

    # -- lookup --------------------------------------------------------------------------------

    async def lookup(self, matching_path: str, values: Sequence[str]) -> list[AppUser]:
        identifier_type = await self._identifier_type(matching_path)
        unique = list(dict.fromkeys(v for v in values if v != ""))
        found = await asyncio.gather(*(self._find(identifier_type, v) for v in unique))
        return [
            AppUser(contact_id, v)
            for v, contact_id in zip(unique, found, strict=True)
            if contact_id
        ]

    async def _find(self, identifier_type: str, value: str) -> str | None:
        """The id of the contact whose email (or ext_id) is ``value``, or None."""
        response = await self.http.request(
            "GET",
            f"/contacts/{quote(value, safe='')}",
            params={"identifierType": identifier_type},
        )
        if response.status_code == 200:
            contact_id = _contact_id(json_object(response))
            if contact_id is None:
                raise ConnectorError(f"{APP} answered a contact without its id")
            return contact_id
        if response.status_code in (400, 404):
            # 404 document_not_found: nobody has it; 400: a value Brevo refuses (not an email).
            return None
        raise self._unexpected("reading a contact", response)

    # -- writes --------------------------------------------------------------------------------

    async def create(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        schema = await self.schema()
        identifier_type = await self._identifier_type(matching_path)
        return list(
            await asyncio.gather(
                *(self._create(schema, matching_path, identifier_type, r) for r in records)
            )
        )

    async def _create(
        self, schema: BrevoSchema, path: str, identifier_type: str, record: WriteRecord
    ) -> WriteResult:
        try:
            body = contact_body(record.properties, schema, update=False)
        except _RecordError as err:
            return WriteResult(record.key, error=str(err))
        value = value_at(record.properties, path)
        for _ in range(MAX_CREATE_ROUNDS):
            try:
                response = await self.http.request("POST", "/contacts", json_body=body)
            except OutcomeUnknownError:
                # Brevo may have created it: only a contact still missing is created again.
                if not isinstance(value, str) or value == "":
                    return WriteResult(
                        record.key,
                        error=f"{APP} may or may not have created this contact, and it has no "
                        "matching value to check",
                    )
                found = await self._find(identifier_type, value)
                if found is not None:
                    return WriteResult(record.key, external_id=found)
                continue
            if response.status_code == 201:
                return self._created(record, response, created=True)
            if response.status_code in (400, 404, 425):
                body_json = json_object(response)
                if body_json.get("code") == "duplicate_parameter" and isinstance(value, str):
                    holder = await self._find(identifier_type, value)
                    if holder is not None:
                        return WriteResult(record.key, existing_id=holder)
                return WriteResult(record.key, error=error_message(response))
            raise self._unexpected("creating a contact", response)
        raise ConnectorError(
            f"{APP} failed {MAX_CREATE_ROUNDS} times to answer the create of a contact, which "
            "was not found afterwards"
        )

    def _created(
        self, record: WriteRecord, response: httpx.Response, *, created: bool
    ) -> WriteResult:
        contact_id = _contact_id(json_object(response))
        if contact_id is None:
            raise ConnectorError(f"{APP} answered a contact's creation without its id")
        return WriteResult(record.key, external_id=contact_id, created=created)

    async def upsert(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        schema = await self.schema()
        if await self._identifier_type(matching_path) != "email_id":
            raise ConnectorError(f"{APP} upserts contacts by email only")
        return list(
            await asyncio.gather(*(self._upsert(schema, matching_path, r) for r in records))
        )

    async def _upsert(self, schema: BrevoSchema, path: str, record: WriteRecord) -> WriteResult:
        try:
            body = contact_body(record.properties, schema, update=False)
        except _RecordError as err:
            return WriteResult(record.key, error=str(err))
        email = value_at(record.properties, path)
        if not isinstance(email, str) or email == "":
            return WriteResult(record.key, error="no email to find the contact by")
        # Safe to repeat: a second upsert of the same email updates the contact the first made.
        response = await self.http.request(
            "POST", "/contacts", json_body={**body, "updateEnabled": True}, idempotent=True
        )
        if response.status_code == 201:
            return self._created(record, response, created=True)
        if response.status_code == 204:
            # Updated: Brevo answers without the contact's id, read by its email.
            contact_id = await self._find("email_id", email)
            if contact_id is None:
                return WriteResult(
                    record.key, error=f"{APP} updated this contact but cannot find it by email"
                )
            return WriteResult(record.key, external_id=contact_id)
        if response.status_code in (400, 404, 425):
            return WriteResult(record.key, error=error_message(response))
        raise self._unexpected("upserting a contact", response)

    async def update(self, records: Sequence[WriteRecord]) -> list[WriteResult]:
        schema = await self.schema()
        results: dict[int, WriteResult] = {}
        ready: list[tuple[WriteRecord, dict[str, Any]]] = []
        for record in records:
            if not record.external_id or not record.external_id.isdigit():
                results[record.key] = WriteResult(record.key, error=f"no {APP} id to update")
                continue
            try:
                body = contact_body(record.properties, schema, update=True)
            except _RecordError as err:
                results[record.key] = WriteResult(record.key, error=str(err))
                continue
            ready.append((record, {"id": int(record.external_id), **body}))
        batches = [ready[i : i + BATCH_SIZE] for i in range(0, len(ready), BATCH_SIZE)]
        await asyncio.gather(*(self._update_batch(batch, results) for batch in batches))
        return [results[r.key] for r in records]

    async def _update_batch(
        self, batch: list[tuple[WriteRecord, dict[str, Any]]], results: dict[int, WriteResult]
    ) -> None:
        if not batch:
            return
        # An update by id is safe to repeat after a lost answer.
        response = await self.http.request(
            "POST",
            "/contacts/batch",
            json_body={"contacts": [item for _, item in batch]},
            idempotent=True,
        )
        status = response.status_code
        if status == 204:
            for record, _ in batch:
                results[record.key] = WriteResult(record.key, external_id=record.external_id)
            return
        if status == 207:
            body = json_object(response)
            succeeded = {str(i) for i in body.get("successIds") or []}
            failed = []
            for record, item in batch:
                if record.external_id in succeeded:
                    results[record.key] = WriteResult(record.key, external_id=record.external_id)
                else:
                    failed.append((record, item))
            # Brevo names the failed contacts without a reason: each alone says why.
            await asyncio.gather(*(self._update_one(r, item, results) for r, item in failed))
            return
        if status == 400:
            # The whole batch was refused: each contact alone finds which and why.
            await asyncio.gather(*(self._update_one(r, item, results) for r, item in batch))
            return
        raise self._unexpected("the batch update of contacts", response)

    async def _update_one(
        self, record: WriteRecord, item: dict[str, Any], results: dict[int, WriteResult]
    ) -> None:
        body = {k: v for k, v in item.items() if k != "id"}
        response = await self.http.request(
            "PUT",
            f"/contacts/{item['id']}",
            json_body=body,
            params={"identifierType": "contact_id"},
        )
        if response.status_code == 204:
            results[record.key] = WriteResult(record.key, external_id=record.external_id)
        elif response.status_code in (400, 404, 425):
            results[record.key] = WriteResult(record.key, error=error_message(response))
        else:
            raise self._unexpected("updating a contact", response)

    def _unexpected(self, action: str, response: httpx.Response) -> ConnectorError:
        return ConnectorError(
            f"{APP} answered {action} with {response.status_code}: {error_message(response)}"
        )


# ---------------------------------------------------------------------------------------------
# Settings and credentials
# ---------------------------------------------------------------------------------------------


def _api_key(credentials: Mapping[str, str]) -> str:
    key = credential(APP, credentials, "apiKey")
    if isinstance(key, str) and key.startswith("xsmtpsib-"):
        raise ConnectorError(
            f'the {APP} "apiKey" is an SMTP key (xsmtpsib-…): the API needs an API v3 key '
            "(xkeysib-…)"
        )
    if not isinstance(key, str) or not _API_KEY.match(key):
        raise ConnectorError(
            f'the {APP} "apiKey" must be an API v3 key: "xkeysib-" followed by letters, digits '
            "and dashes"
        )
    return key


def connect(
    settings: Mapping[str, Any], credentials: Mapping[str, str], **hooks: Unpack[ClientHooks]
) -> BrevoConnector:
    """The :class:`~sluice.apps.connector.ConnectorFactory` of Brevo."""
    return BrevoConnector(settings, credentials, **hooks)
