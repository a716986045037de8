"""The HubSpot connector: contacts through the CRM v3 API, with a private-app access token.

Endpoints (HubSpot's public documentation):

* ``GET /crm/v3/properties/contacts`` — the contact properties, for the destination schema;
* ``POST /crm/v3/objects/contacts/batch/read`` with ``idProperty`` — contacts by the value of
  a unique property (``email``, or one with ``hasUniqueValue``), up to 100 inputs;
* ``POST /crm/v3/objects/contacts/search`` — contacts whose property is ``IN`` a list of values,
  for other properties; up to 200 per page, paged with ``after``, never past 10,000 results,
  and rate-limited apart from the rest of the API;
* ``POST /crm/v3/objects/contacts/batch/create`` and ``.../batch/update`` — up to 100 inputs,
  each carrying ``objectWriteTraceId`` so that a 207 Multi-Status answer says which record
  failed and why. A create colliding with an existing email refuses the *whole* batch (409
  ``CONFLICT``, naming only the first holder): the batch's values are then read and only the
  missing contacts are created again;
* ``POST /crm/v3/objects/contacts/batch/upsert`` — up to 100 inputs, each naming its contact
  by a unique property (``idProperty``, ``id``): updated when it exists, created otherwise,
  ``new`` saying which. One request where a lookup and a write would take two, and safe to
  repeat after a lost answer;
* ``GET /account-info/v3/details`` — the account's ``portalId``, the destination's identity.

HubSpot keeps every value as text: booleans are ``"true"``/``"false"``, numbers their decimal
text, dates ``YYYY-MM-DD`` and datetimes ISO 8601; an empty string clears a property.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Unpack

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
    documented_json,
    json_object,
)
from sluice.apps.settings import credential, only_base_url
from sluice.mapping import TimeLayouts
from sluice.model.types import Kind, Property, Type, is_valid_property_name, object_type
from sluice.model.values import value_at

APP = "HubSpot"
DEFAULT_BASE_URL = "https://api.hubapi.com"

#: The longest value HubSpot accepts in a text property.
FREE_TEXT_MAX_LENGTH = 65_536

#: HubSpot's burst limit for private apps is 190 requests per rolling 10 s (Professional and
#: Enterprise; 100 on Free and Starter, which the bucket adopts from the response headers).
#: A bucket sends at most ``burst + rate·10`` in any 10 s: 10 + 18·10 = 190.
RATE_LIMIT = RateLimit(requests_per_second=18, burst=10, max_concurrent=8)
#: The search endpoints allow 5 requests per second: 4/s with a burst of 1 stays within it.
SEARCH_RATE_LIMIT = RateLimit(requests_per_second=4, burst=1, max_concurrent=2)
#: 429 (rate limit) and 477 (portal migration, with Retry-After) are not processed: retried for
#: every request. 5xx, including Cloudflare's 521/523/524 in front of HubSpot, leave the
#: outcome unknown.
RETRY_POLICY = RetryPolicy(
    retry_statuses=frozenset({500, 502, 503, 504, 521, 523, 524}),
    not_processed_statuses=frozenset({429, 477}),
)

BATCH_SIZE = 100
SEARCH_PAGE_SIZE = 200
SEARCH_MAX_RESULTS = 10_000
#: How many times a create whose outcome stayed unknown is checked and re-sent.
MAX_CREATE_ROUNDS = 3

#: HubSpot property groups with a fixed object name in the destination schema, in order;
#: any other group becomes an object named after the group, optional for reading.
GROUP_OBJECTS: Mapping[str, str] = {
    "contactinformation": "contact",
    "emailinformation": "emails",
    "analyticsinformation": "analytics",
    "contact_activity": "activity",
    "contactlcs": "contact_lifecycle",
    "facebook_ads_properties": "facebook",
    "conversioninformation": "conversion",
    "deal_information": "deals",
    "sales_properties": "sales",
    "order_information": "orders",
    "contactscripted": "cripted",  # sic: the name Krenalis gives this group
    "socialmediainformation": "social",
    "smsinformation": "sms",
    "multiaccountmanagement": "multi_account",
}

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]{1,255}\Z")
_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]")
# Whole-batch refusals that a smaller batch may not get: split the batch to find the record.
_SPLIT_STATUSES = frozenset({400, 409, 413, 422})


# ---------------------------------------------------------------------------------------------
# The destination schema
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubSpotField:
    """The HubSpot property behind an output schema path."""

    name: str
    kind: Kind
    unique: bool


@dataclass(frozen=True, slots=True)
class _Matching:
    """The matching property of a create: its output path and its HubSpot property."""

    path: str
    field: HubSpotField


@dataclass(frozen=True, slots=True)
class HubSpotSchema:
    type: Type
    #: Output path (``contact.email``) → HubSpot property.
    fields: Mapping[str, HubSpotField]
    #: The same by object, then name (``contact`` → ``email`` → …): what :func:`flatten` walks.
    objects: Mapping[str, Mapping[str, HubSpotField]] = dataclasses.field(default_factory=dict)


def build_schema(properties: Iterable[Mapping[str, Any]]) -> HubSpotSchema:
    """The destination schema from the ``results`` of ``GET /crm/v3/properties/contacts``.

    Read-only properties (``modificationMetadata.readOnlyValue``) and types Sluice cannot write
    are left out; every property is nullable (an empty value clears it); properties are grouped
    in one object per HubSpot group, ``hs_*`` last within a group.
    """
    by_group: dict[str, list[tuple[str, Property, HubSpotField]]] = {}
    for item in properties:
        built = _property(item)
        if built is not None:
            group = str(item.get("groupName") or "")
            by_group.setdefault(group, []).append(built)
    ordered = [g for g in GROUP_OBJECTS if g in by_group]
    ordered += [g for g in by_group if g not in GROUP_OBJECTS]
    used: set[str] = set()
    objects: list[Property] = []
    fields: dict[str, HubSpotField] = {}
    for group in ordered:
        members = sorted(by_group[group], key=lambda m: m[0].startswith("hs_"))
        name = _object_name(group, used)
        used.add(name)
        seen: set[str] = set()
        props: list[Property] = []
        for prop_name, prop, field in members:
            if prop_name in seen:
                continue
            seen.add(prop_name)
            props.append(prop)
            fields[f"{name}.{prop_name}"] = field
        objects.append(
            Property(name, object_type(*props), read_optional=group not in GROUP_OBJECTS)
        )
    if not objects:
        raise ConnectorError(f"{APP} lists no contact property that can be written")
    by_object: dict[str, dict[str, HubSpotField]] = {}
    for path, field in fields.items():
        object_name, _, prop_name = path.partition(".")
        by_object.setdefault(object_name, {})[prop_name] = field
    return HubSpotSchema(object_type(*objects), fields, by_object)


def _property(item: Mapping[str, Any]) -> tuple[str, Property, HubSpotField] | None:
    name = item.get("name")
    if not isinstance(name, str) or not is_valid_property_name(name):
        return None
    metadata = item.get("modificationMetadata")
    if isinstance(metadata, Mapping) and metadata.get("readOnlyValue") is True:
        return None
    t = _type(item)
    if t is None:
        return None
    label = str(item.get("label") or name)
    description = str(item.get("description") or "")
    text = unicodedata.normalize("NFC", f"{label}\n\n{description}" if description else label)
    unique = name == "email" or item.get("hasUniqueValue") is True
    return (
        name,
        Property(name, t, nullable=True, description=text),
        HubSpotField(name, t.kind, unique),
    )


def _type(item: Mapping[str, Any]) -> Type | None:
    match item.get("type"):
        case "bool":
            return Type(Kind.BOOLEAN)
        case "date":
            return Type(Kind.DATE)
        case "datetime":
            return Type(Kind.DATETIME)
        case "number":
            return Type(Kind.DECIMAL, precision=76, scale=37)
        case "enumeration" | "string" | "phone_number":
            options = item.get("options") or []
            if not options:
                # HubSpot's 65,536-character limit is enforced per record (see flatten), not
                # declared here: pipelines written against HubSpot's schema as the API shows it
                # (the seed's `{"kind": "string"}`) must keep aligning.
                return Type(Kind.STRING)
            values: dict[str, None] = {}
            for option in options:
                if isinstance(option, Mapping) and not option.get("hidden"):
                    value = option.get("value")
                    if isinstance(value, str) and "\x00" not in value:
                        values[value] = None
            if not values:
                return None  # every option is hidden: nothing can be written
            return Type(Kind.STRING, values=tuple(values))
        case _:
            return None  # object_coordinates, json...: internal HubSpot types


def _object_name(group: str, used: set[str]) -> str:
    name = GROUP_OBJECTS.get(group)
    if name is None:
        name = _NOT_NAME_CHARS.sub("_", group) or "group"
        if not is_valid_property_name(name):
            name = f"group_{name}"
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def encode_value(value: Any) -> str:
    """A property value as the text HubSpot takes; None clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return _decimal_text(Decimal(repr(value)))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class _RecordError(Exception):
    """A record that cannot be sent as it is."""


def flatten(properties: Mapping[str, Any], schema: HubSpotSchema) -> dict[str, str]:
    """Group objects flattened to HubSpot property names, values as HubSpot text."""
    out: dict[str, str] = {}
    for group, members in properties.items():
        if members is None:
            continue
        if type(members) is not dict and not isinstance(members, Mapping):
            raise _RecordError(f'"{group}" must be an object of HubSpot properties')
        writable = schema.objects.get(group, {})
        for name, value in members.items():
            field = writable.get(name)
            if field is None:
                raise _RecordError(f'"{group}.{name}" is not a writable {APP} contact property')
            text = encode_value(value)
            if len(text) > FREE_TEXT_MAX_LENGTH:
                raise _RecordError(
                    f'"{group}.{name}" is longer than {FREE_TEXT_MAX_LENGTH:,} characters, the '
                    f"most a {APP} property holds"
                )
            out[field.name] = text
    return out


# ---------------------------------------------------------------------------------------------
# Rate-limit headers and error bodies
# ---------------------------------------------------------------------------------------------


def read_rate_limit(response: httpx.Response) -> RateLimitHint | None:
    """HubSpot's ``X-HubSpot-RateLimit-*`` headers and 429 body as a hint for the bucket.

    A 429 names its policy: ``DAILY`` cannot be waited out within a run (a ConnectorError),
    ``SECONDLY`` passes in a second, the rolling 10 s window in its interval.
    """
    headers = response.headers
    interval_ms = _int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
    maximum = _int(headers.get("X-HubSpot-RateLimit-Max"))
    remaining = _int(headers.get("X-HubSpot-RateLimit-Remaining"))
    window = None
    if maximum is not None and interval_ms is not None and maximum > 0 and interval_ms > 0:
        window = (maximum, interval_ms / 1000)
    pause = None
    if response.status_code == 429:
        body = json_object(response)
        policy = str(body.get("policyName") or "")
        if policy == "DAILY":
            raise ConnectorError(
                f"{APP}'s daily API limit is used up (policy DAILY): {error_message(response)}"
            )
        if policy == "SECONDLY":
            pause = 1.0
        elif interval_ms is not None and interval_ms > 0:
            pause = interval_ms / 1000
    elif remaining == 0 and interval_ms is not None and interval_ms > 0:
        # The window is used up; a rolling window frees a slot at an unknown moment within it.
        pause = interval_ms / 10_000
    if window is None and pause is None:
        return None
    return RateLimitHint(pause=pause, window=window)


def error_message(response: httpx.Response) -> str:
    """HubSpot's error ``message`` (its ``category`` first when it has one)."""
    body = json_object(response)
    message = body.get("message")
    if isinstance(message, str) and message:
        return message
    text = response.text.strip()
    return text[:300] if text else "(empty body)"


_EXISTING_ID = re.compile(r"Existing ID: *([0-9]+)")


def _refusal(kind: str, error: Mapping[str, Any], key: int, match: _Matching | None) -> WriteResult:
    """A record's refusal; a create matched by email colliding with the contact that holds
    the email names that contact instead: HubSpot's CONFLICT "Contact already exists.
    Existing ID: <id>" is about emails (a unique custom property's conflict is not read so;
    an upsert or update conflicts with another contact than the one it writes)."""
    if (
        kind == "create"
        and match is not None
        and match.field.name == "email"
        and error.get("category") == "CONFLICT"
    ):
        holder = _EXISTING_ID.search(str(error.get("message") or ""))
        if holder is not None:
            return WriteResult(key, existing_id=holder.group(1))
    return WriteResult(key, error=_error_text(error))


def _error_text(error: Mapping[str, Any]) -> str:
    category = str(error.get("category") or "ERROR")
    message = str(error.get("message") or "no message")
    return f"{category}: {message}"


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# The connector
# ---------------------------------------------------------------------------------------------


class HubSpotConnector:
    """One HubSpot account (a private app's access token), ready for one run."""

    batch_size = BATCH_SIZE
    lookup_batch_size = BATCH_SIZE
    rate_limit = RATE_LIMIT
    #: HubSpot takes dates as ``YYYY-MM-DD`` and datetimes as ISO 8601; it has no time type.
    time_layouts = TimeLayouts(datetime="2006-01-02T15:04:05.999Z", date="2006-01-02")

    def __init__(
        self,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        **hooks: Unpack[ClientHooks],
    ) -> None:
        base_url = only_base_url(APP, settings, DEFAULT_BASE_URL)
        token = _access_token(credentials)
        hooks.setdefault("retry", RETRY_POLICY)
        self.http = AppHttpClient(
            APP,
            base_url,
            RATE_LIMIT,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            groups={"search": SEARCH_RATE_LIMIT},
            rate_limit_reader=read_rate_limit,
            error_message=error_message,
            **hooks,
        )
        self._schema: HubSpotSchema | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- schema --------------------------------------------------------------------------------

    async def destination_schema(self) -> Type:
        return (await self.schema()).type

    async def schema(self) -> HubSpotSchema:
        """The destination schema and its path → property map, read once per connector."""
        if self._schema is None:
            response = await self.http.request(
                "GET", "/crm/v3/properties/contacts", params={"archived": "false"}
            )
            if response.status_code != 200:
                raise self._unexpected("listing the contact properties", response)
            results = json_object(response).get("results")
            if not isinstance(results, list):
                raise ConnectorError(f"{APP} listed the contact properties without results")
            self._schema = build_schema(r for r in results if isinstance(r, Mapping))
        return self._schema

    async def destination_identity(self) -> str:
        response = await self.http.request("GET", "/account-info/v3/details")
        if response.status_code != 200:
            raise self._unexpected("reading the account details", response)
        portal = json_object(response).get("portalId")
        if type(portal) is not int:
            raise ConnectorError(f"{APP} answered the account details without a portalId")
        return f"hubspot:portal/{portal}"

    async def upserts(self, matching_path: str) -> bool:
        """Batch upsert names contacts by a unique property: email or one with
        ``hasUniqueValue``."""
        return (await self._field(matching_path)).unique

    async def _field(self, path: str) -> HubSpotField:
        field = (await self.schema()).fields.get(path)
        if field is None:
            raise ConnectorError(f'"{path}" is not a writable {APP} contact property')
        return field

    # -- lookup --------------------------------------------------------------------------------

    async def lookup(self, matching_path: str, values: Sequence[str]) -> list[AppUser]:
        field = await self._field(matching_path)
        unique_values = list(dict.fromkeys(v for v in values if v != ""))
        users: list[AppUser] = []
        for start in range(0, len(unique_values), BATCH_SIZE):
            chunk = unique_values[start : start + BATCH_SIZE]
            if field.unique:
                users += await self._read_by_unique(field.name, chunk)
            else:
                users += await self._search(field.name, chunk)
        # Answered with the values asked for: HubSpot holds emails lower-cased, and a profile's
        # "Ada@Example.com" is the contact holding "ada@example.com".
        asked = {_match_key(field, value): value for value in unique_values}
        return [
            AppUser(user.external_id, asked[key])
            for user in users
            if (key := _match_key(field, user.matching_value)) in asked
        ]

    async def _read_by_unique(self, name: str, values: list[str]) -> list[AppUser]:
        response = await self.http.request(
            "POST",
            "/crm/v3/objects/contacts/batch/read",
            json_body={
                "idProperty": name,
                "inputs": [{"id": v} for v in values],
                "properties": [name],
            },
            idempotent=True,
        )
        if response.status_code in _SPLIT_STATUSES:
            # A value HubSpot refuses (not an email...) matches nobody; find it by halves.
            if len(values) == 1:
                return []
            half = len(values) // 2
            return await self._read_by_unique(name, values[:half]) + await self._read_by_unique(
                name, values[half:]
            )
        if response.status_code not in (200, 207):
            raise self._unexpected("reading contacts", response)
        # Inputs without a contact come back as OBJECT_NOT_FOUND errors: not an error here.
        return _users(documented_json(APP, response, "results")["results"], name)

    async def _search(self, name: str, values: list[str]) -> list[AppUser]:
        users: list[AppUser] = []
        after: str | None = None
        for _ in range(SEARCH_MAX_RESULTS // SEARCH_PAGE_SIZE):
            body: dict[str, Any] = {
                "filterGroups": [
                    {"filters": [{"propertyName": name, "operator": "IN", "values": values}]}
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": [name],
                "limit": SEARCH_PAGE_SIZE,
            }
            if after is not None:
                body["after"] = after
            response = await self.http.request(
                "POST",
                "/crm/v3/objects/contacts/search",
                json_body=body,
                idempotent=True,
                group="search",
            )
            if response.status_code != 200:
                raise self._unexpected("searching contacts", response)
            page = documented_json(APP, response, "results")
            users += _users(page["results"], name)
            after = _next_after(page)
            if after is None:
                return users
        raise ConnectorError(
            f"more than {SEARCH_MAX_RESULTS:,} {APP} contacts have one of {len(values)} values "
            f'of "{name}", and HubSpot\'s search cannot page past {SEARCH_MAX_RESULTS:,} results'
        )

    # -- writes --------------------------------------------------------------------------------

    async def create(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        schema = await self.schema()
        field = await self._field(matching_path)
        match = _Matching(matching_path, field)
        results: dict[int, WriteResult] = {}
        pending = list(records)
        for _ in range(MAX_CREATE_ROUNDS):
            try:
                await self._write("create", pending, schema, results, match)
                return [results[r.key] for r in records]
            except OutcomeUnknownError:
                pending = [r for r in pending if r.key not in results]
                await self._settle_unknown(matching_path, field, pending, results)
                pending = [r for r in pending if r.key not in results]
                if not pending:
                    return [results[r.key] for r in records]
        raise ConnectorError(
            f"{APP} failed {MAX_CREATE_ROUNDS} times to answer a create of {len(pending)} "
            "contacts; those found afterwards were kept, the others were not created again"
        )

    async def update(self, records: Sequence[WriteRecord]) -> list[WriteResult]:
        schema = await self.schema()
        results: dict[int, WriteResult] = {}
        await self._write("update", list(records), schema, results, None)
        return [results[r.key] for r in records]

    async def upsert(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        schema = await self.schema()
        field = await self._field(matching_path)
        if not field.unique:
            raise ConnectorError(
                f'{APP} upserts contacts by a unique property only, and "{field.name}" is not one'
            )
        results: dict[int, WriteResult] = {}
        await self._write("upsert", list(records), schema, results, _Matching(matching_path, field))
        return [results[r.key] for r in records]

    async def _settle_unknown(
        self,
        matching_path: str,
        field: HubSpotField,
        records: list[WriteRecord],
        results: dict[int, WriteResult],
    ) -> None:
        """After a create with an unknown outcome: the records HubSpot holds are done."""
        wanted: dict[str, list[WriteRecord]] = {}
        for record in records:
            value = value_at(record.properties, matching_path)
            if value is None or value == "":
                results[record.key] = WriteResult(
                    record.key,
                    error=f"{APP} may or may not have created this contact, and it has no "
                    "matching value to check",
                )
                continue
            wanted.setdefault(_match_key(field, encode_value(value)), []).append(record)
        found: dict[str, list[str]] = {}
        values = [encode_value(value_at(rs[0].properties, matching_path)) for rs in wanted.values()]
        for user in await self.lookup(matching_path, values):
            found.setdefault(_match_key(field, user.matching_value), []).append(user.external_id)
        for key, group in wanted.items():
            ids = found.get(key, [])
            for record in group:
                if len(ids) == 1 and len(group) == 1:
                    results[record.key] = WriteResult(record.key, external_id=ids[0])
                elif ids:
                    results[record.key] = WriteResult(
                        record.key,
                        error=f"{APP} may or may not have created this contact, and "
                        f"{len(ids)} contacts now have its matching value: {', '.join(ids)}",
                    )

    async def _write(
        self,
        kind: str,
        records: list[WriteRecord],
        schema: HubSpotSchema,
        results: dict[int, WriteResult],
        match: _Matching | None,
    ) -> None:
        ready: list[tuple[WriteRecord, dict[str, Any]]] = []
        for record in records:
            try:
                properties = flatten(record.properties, schema)
            except _RecordError as err:
                results[record.key] = WriteResult(record.key, error=str(err))
                continue
            item: dict[str, Any] = {
                "properties": properties,
                "objectWriteTraceId": str(record.key),
            }
            if kind == "update":
                if not record.external_id:
                    results[record.key] = WriteResult(record.key, error="no HubSpot id to update")
                    continue
                item = {"id": record.external_id, **item}
            elif kind == "upsert":
                assert match is not None
                name = match.field.name
                if not properties.get(name):
                    results[record.key] = WriteResult(
                        record.key, error=f'no value of "{name}" to find the contact by'
                    )
                    continue
                item = {"idProperty": name, "id": properties[name], **item}
            ready.append((record, item))
        for start in range(0, len(ready), BATCH_SIZE):
            await self._send(kind, ready[start : start + BATCH_SIZE], results, match)

    async def _send(
        self,
        kind: str,
        batch: list[tuple[WriteRecord, dict[str, Any]]],
        results: dict[int, WriteResult],
        match: _Matching | None,
    ) -> None:
        if not batch:
            return
        response = await self.http.request(
            "POST",
            f"/crm/v3/objects/contacts/batch/{kind}",
            json_body={"inputs": [item for _, item in batch]},
            idempotent=kind != "create",
        )
        status = response.status_code
        records = [record for record, _ in batch]
        if status in (200, 201, 207):
            _map_batch(kind, records, documented_json(APP, response, "results"), results, match)
            return
        if status in _SPLIT_STATUSES:
            body = json_object(response)
            if kind == "create" and status == 409 and match is not None and match.field.unique:
                left = await self._settle_existing(batch, results, match)
                if len(left) < len(batch):
                    await self._send(kind, left, results, match)
                    return
            if len(batch) == 1:
                results[records[0].key] = _refusal(kind, body, records[0].key, match)
                return
            # HubSpot refused the whole batch (nothing was written): halves find the culprit.
            half = len(batch) // 2
            await self._send(kind, batch[:half], results, match)
            await self._send(kind, batch[half:], results, match)
            return
        raise self._unexpected(f"the batch {kind} of contacts", response)

    async def _settle_existing(
        self,
        batch: list[tuple[WriteRecord, dict[str, Any]]],
        results: dict[int, WriteResult],
        match: _Matching,
    ) -> list[tuple[WriteRecord, dict[str, Any]]]:
        """After a batch create refused as a whole for an existing value (HubSpot names only
        the first): one read of the batch's values finds every holder; their records are
        answered with ``existing_id``, and the others are returned, to be created."""
        name = match.field.name
        values = [str(item["properties"].get(name, "")) for _, item in batch]
        holders = {
            _match_key(match.field, user.matching_value): user.external_id
            for user in await self._read_by_unique(name, [v for v in values if v])
        }
        left = []
        for (record, item), value in zip(batch, values, strict=True):
            holder = holders.get(_match_key(match.field, value)) if value else None
            if holder is None:
                left.append((record, item))
            else:
                results[record.key] = WriteResult(record.key, existing_id=holder)
        return left

    def _unexpected(self, action: str, response: httpx.Response) -> ConnectorError:
        return ConnectorError(
            f"{APP} answered {action} with {response.status_code}: {error_message(response)}"
        )


def _map_batch(
    kind: str,
    records: list[WriteRecord],
    body: Mapping[str, Any],
    results: dict[int, WriteResult],
    match: _Matching | None,
) -> None:
    """Per-record results of a 200/201/207 batch answer, by ``objectWriteTraceId``; by id (for
    updates) or matching value (for creates) when HubSpot left the trace id out."""
    by_trace = {str(r.key): r for r in records}
    by_id = {r.external_id: r for r in records if r.external_id}
    by_value: dict[str, WriteRecord] = {}

    def by_matching_value(stored: str) -> WriteRecord | None:
        # Built on first need: HubSpot echoes the trace ids, so this is the rare path.
        if not by_value and match is not None:
            for candidate in records:
                value = value_at(candidate.properties, match.path)
                if value is not None:
                    by_value[_match_key(match.field, encode_value(value))] = candidate
        return by_value.get(_match_key(match.field, stored)) if match is not None else None

    answered: set[int] = set()

    def settle(result: WriteResult) -> None:
        if result.key not in answered:
            answered.add(result.key)
            results[result.key] = result

    for item in body.get("results") or []:
        if not isinstance(item, Mapping) or item.get("id") is None:
            continue
        contact_id = str(item["id"])
        record: WriteRecord | None = by_trace.get(str(item.get("objectWriteTraceId")))
        if record is None and kind == "update":
            record = by_id.get(contact_id)
        if record is None and match is not None:
            stored = (item.get("properties") or {}).get(match.field.name)
            if isinstance(stored, str):
                record = by_matching_value(stored)
        if record is not None:
            settle(WriteResult(record.key, external_id=contact_id, created=item.get("new") is True))
    unassigned: list[str] = []
    for error in body.get("errors") or []:
        if not isinstance(error, Mapping):
            continue
        context = error.get("context") or {}
        targets = [by_trace[t] for t in context.get("objectWriteTraceId") or [] if t in by_trace]
        if not targets and kind == "update":
            targets = [
                by_id[i] for i in context.get("ids") or context.get("id") or [] if i in by_id
            ]
        if targets:
            for target in targets:
                settle(_refusal(kind, error, target.key, match))
        else:
            unassigned.append(_error_text(error))
    left = [r for r in records if r.key not in answered]
    for unanswered in left:
        if len(left) == 1 and len(unassigned) == 1:
            message = unassigned[0]
        elif unassigned:
            message = f"{APP} reported errors without saying for which record: " + "; ".join(
                unassigned[:3]
            )
        else:
            message = f"{APP}'s answer did not mention this record"
        results[unanswered.key] = WriteResult(unanswered.key, error=message)


def _users(results: Any, name: str) -> list[AppUser]:
    users: list[AppUser] = []
    for item in results or []:
        if not isinstance(item, Mapping) or item.get("id") is None:
            continue
        value = (item.get("properties") or {}).get(name)
        if isinstance(value, str) and value != "":
            users.append(AppUser(external_id=str(item["id"]), matching_value=value))
    return users


def _next_after(page: Mapping[str, Any]) -> str | None:
    paging = page.get("paging")
    if isinstance(paging, Mapping):
        following = paging.get("next")
        if isinstance(following, Mapping) and following.get("after") not in (None, ""):
            return str(following["after"])
    return None


def _match_key(field: HubSpotField, value: str) -> str:
    # HubSpot stores email addresses lower-cased; other values are compared as they are.
    return value.lower() if field.name == "email" else value


# ---------------------------------------------------------------------------------------------
# Settings and credentials
# ---------------------------------------------------------------------------------------------


def _access_token(credentials: Mapping[str, str]) -> str:
    token = credential(APP, credentials, "accessToken")
    if not isinstance(token, str) or not _PRINTABLE_ASCII.match(token):
        raise ConnectorError(f"the {APP} access token must be 1 to 255 printable ASCII characters")
    return token


def connect(
    settings: Mapping[str, Any], credentials: Mapping[str, str], **hooks: Unpack[ClientHooks]
) -> HubSpotConnector:
    """The :class:`~sluice.apps.connector.ConnectorFactory` of HubSpot."""
    return HubSpotConnector(settings, credentials, **hooks)
