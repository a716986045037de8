"""The Mailchimp connector: the members of one audience (list) through the Marketing API 3.0,
with an API key.

Endpoints (Mailchimp's public documentation), under ``https://<dc>.api.mailchimp.com/3.0``:

* ``GET /`` — the API root: the account's ``account_id``, the destination's identity;
* ``GET /lists/{list_id}`` — the audience, to say clearly when it does not exist;
* ``GET /lists/{list_id}/merge-fields?count=1000`` — the audience's merge fields, for the
  destination schema (with the writable member properties);
* ``GET /lists/{list_id}/members/{subscriber_hash}`` — one member by the MD5 hash of its
  lower-cased email address: the lookup, one request per email, up to the connection cap at once;
* ``POST /lists/{list_id}`` — batch subscribe: up to 500 members, answered synchronously with
  ``new_members``, ``updated_members`` and per-email ``errors``. ``update_existing: false``
  creates (an existing email is ``ERROR_CONTACT_EXISTS``), ``true`` creates or updates and is
  safe to repeat;
* ``PATCH /lists/{list_id}/members/{subscriber_hash}`` — an update by id (the subscriber hash)
  whose record changes the member's email address (or has none); other updates go by batch
  subscribe with ``update_existing``.

Values are JSON: merge fields by tag (``merge_fields.FNAME``), None clearing a merge field and
leaving a member property as it is.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Unpack

import httpx

from sluice.apps.connector import AppUser, ConnectorError, RateLimit, WriteRecord, WriteResult
from sluice.apps.http import (
    AppHttpClient,
    ClientHooks,
    OutcomeUnknownError,
    RetryPolicy,
    documented_json,
    json_object,
)
from sluice.apps.settings import base_url, check_setting_names, credential
from sluice.mapping import TimeLayouts
from sluice.model.types import Kind, Property, Type, is_valid_property_name, object_type
from sluice.model.values import value_at

APP = "Mailchimp"
#: The matching property: Mailchimp finds a member by the hash of its email address only.
EMAIL = "email_address"

#: Mailchimp limits an account to 10 simultaneous connections and has no per-second quota;
#: 8 in flight leaves room for the account's other integrations. The rate only smooths bursts.
RATE_LIMIT = RateLimit(requests_per_second=50, burst=10, max_concurrent=8)
#: 429 (too many connections) is retried for every request; 5xx only for idempotent ones.
RETRY_POLICY = RetryPolicy(retry_statuses=frozenset({500, 502, 503, 504}))

#: Members per batch subscribe, Mailchimp's maximum.
BATCH_SIZE = 500
#: Emails per lookup call; each is one GET, sent concurrently up to the connection cap.
LOOKUP_BATCH_SIZE = 100
#: How many times a create whose outcome stayed unknown is checked and re-sent.
MAX_CREATE_ROUNDS = 3
MERGE_FIELDS_PAGE = 1000

STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
ADDRESS_PARTS = ("addr1", "addr2", "city", "state", "zip", "country")

_API_KEY = re.compile(r"[0-9A-Za-z]{1,100}-([a-z]{2,}[0-9]+)\Z")
_AUDIENCE_ID = re.compile(r"[0-9A-Za-z_-]{1,100}\Z")


# ---------------------------------------------------------------------------------------------
# The destination schema
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MergeField:
    """A merge field of the audience, as the connector needs it to encode values."""

    tag: str
    type: str
    #: The most characters a text merge field holds (its ``options.size``), if Mailchimp says.
    size: int | None = None


@dataclass(frozen=True, slots=True)
class MailchimpSchema:
    type: Type
    #: Merge tag → merge field.
    merge_fields: Mapping[str, MergeField]


def _member_properties() -> list[Property]:
    """The member properties a batch subscribe or a PATCH writes (Mailchimp's "Add or update
    list member" request body), merge fields aside. Read-only ones (id, unique_email_id,
    web_id, contact_id, full_name, stats, member_rating, last_changed, email_client, last_note,
    source, tags_count...) are not offered."""
    text = Type(Kind.STRING)
    status = Type(Kind.STRING, values=STATUSES)
    number = Type(Kind.FLOAT, bit_size=64)
    return [
        # Required in both directions: batch subscribe names every member by it.
        Property(
            EMAIL,
            text,
            create_required=True,
            update_required=True,
            description="Email address",
        ),
        Property("status", status, nullable=True, description="Subscription status"),
        Property(
            "status_if_new",
            status,
            nullable=True,
            description="Subscription status of a member being created (ignored on update)",
        ),
        Property(
            "email_type",
            Type(Kind.STRING, values=("html", "text")),
            nullable=True,
            description="Type of email the member asked for",
        ),
        Property("language", text, nullable=True, description="Language"),
        Property("vip", Type(Kind.BOOLEAN), nullable=True, description="VIP"),
        Property(
            "location",
            object_type(
                Property("latitude", number, nullable=True, description="Latitude"),
                Property("longitude", number, nullable=True, description="Longitude"),
            ),
            nullable=True,
            description="Location",
        ),
        Property("ip_signup", text, nullable=True, description="IP address of the signup"),
        Property("timestamp_signup", Type(Kind.DATETIME), nullable=True, description="Signup time"),
        Property("ip_opt", text, nullable=True, description="IP address of the opt-in"),
        Property("timestamp_opt", Type(Kind.DATETIME), nullable=True, description="Opt-in time"),
    ]


def build_schema(merge_fields: Iterable[Mapping[str, Any]]) -> MailchimpSchema:
    """The destination schema: the writable member properties, then ``merge_fields`` built from
    the ``merge_fields`` of ``GET /lists/{list_id}/merge-fields``, in display order.

    Every merge field is nullable (an empty value clears it); a required one is required for
    creation (Mailchimp refuses a new member without it, not an update).
    """
    ordered = sorted(
        (f for f in merge_fields if isinstance(f, Mapping)),
        key=_display_order,
    )
    props: list[Property] = []
    fields: dict[str, MergeField] = {}
    for item in ordered:
        built = _merge_field(item)
        if built is not None and built[1].tag not in fields:
            props.append(built[0])
            fields[built[1].tag] = built[1]
    return MailchimpSchema(
        object_type(
            *_member_properties(),
            Property("merge_fields", object_type(*props), description="Merge fields"),
        ),
        fields,
    )


def _display_order(field: Mapping[str, Any]) -> int:
    order = field.get("display_order")
    return order if type(order) is int else 0


def _merge_field(item: Mapping[str, Any]) -> tuple[Property, MergeField] | None:
    tag = item.get("tag")
    if not isinstance(tag, str) or not is_valid_property_name(tag):
        return None
    options = item.get("options") if isinstance(item.get("options"), Mapping) else {}
    kind = str(item.get("type") or "")
    t: Type
    match kind:
        case "text" | "phone" | "url" | "imageurl" | "zip" | "birthday":
            t = Type(Kind.STRING)
        case "number":
            t = Type(Kind.FLOAT, bit_size=64)
        case "date":
            t = Type(Kind.DATE)
        case "address":
            t = object_type(*(Property(p, Type(Kind.STRING), nullable=True) for p in ADDRESS_PARTS))
        case "radio" | "dropdown":
            choices = options.get("choices") if isinstance(options, Mapping) else None
            values = tuple(dict.fromkeys(c for c in choices or () if isinstance(c, str) and c))
            if not values:
                return None  # nothing can be chosen
            t = Type(Kind.STRING, values=values)
        case _:
            return None
    size = options.get("size") if kind == "text" and isinstance(options, Mapping) else None
    required = item.get("required") is True
    name = str(item.get("name") or tag)
    prop = Property(tag, t, create_required=required, nullable=True, description=name)
    return prop, MergeField(tag, kind, size if type(size) is int and size > 0 else None)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


class _RecordError(Exception):
    """A record that cannot be sent as it is."""


def subscriber_hash(email: str) -> str:
    """Mailchimp's id of a member: the MD5 hash of its lower-cased email address."""
    return hashlib.md5(email.lower().encode()).hexdigest()  # Mailchimp's member id, not a secret


def member_body(properties: Mapping[str, Any], schema: MailchimpSchema) -> dict[str, Any]:
    """A record as a Mailchimp member: member properties with a value (None leaves them as
    they are) and merge fields by tag (None clears them)."""
    body: dict[str, Any] = {}
    for name, value in properties.items():
        if name == "merge_fields":
            if value is not None:
                body["merge_fields"] = _merge_values(value, schema)
        elif name == "location":
            if value is not None:
                location = {k: _number(v) for k, v in _object(value, name).items() if v is not None}
                if set(location) - {"latitude", "longitude"}:
                    raise _RecordError('"location" holds latitude and longitude only')
                if location:
                    body["location"] = location
        elif name in _WRITABLE:
            if value is not None:
                body[name] = value if isinstance(value, bool) else _text(value)
        else:
            raise _RecordError(f'"{name}" is not a writable {APP} member property')
    return body


_WRITABLE = frozenset(p.name for p in _member_properties()) - {"location"}


def _merge_values(value: Any, schema: MailchimpSchema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag, item in _object(value, "merge_fields").items():
        field = schema.merge_fields.get(tag)
        if field is None:
            raise _RecordError(f'"merge_fields.{tag}" is not a merge field of the audience')
        if item is None:
            out[tag] = ""
        elif field.type == "number":
            out[tag] = _number(item)
        elif field.type == "address":
            parts = _object(item, f"merge_fields.{tag}")
            out[tag] = {k: _text(v) for k, v in parts.items() if v is not None}
        else:
            text = _text(item)
            if field.size is not None and len(text) > field.size:
                raise _RecordError(
                    f'"merge_fields.{tag}" is longer than {field.size:,} characters, the size '
                    f"{APP} gives this merge field"
                )
            out[tag] = text
    return out


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _RecordError(f'"{name}" must be an object')
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _RecordError(f"{value!r} is not a number")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


# ---------------------------------------------------------------------------------------------
# Error bodies
# ---------------------------------------------------------------------------------------------


def error_message(response: httpx.Response) -> str:
    """Mailchimp's problem detail: ``title: detail``, then the ``errors`` it lists by field."""
    body = json_object(response)
    title, detail = body.get("title"), body.get("detail")
    parts = [str(p) for p in (title, detail) if isinstance(p, str) and p]
    message = ": ".join(parts)
    fields = [
        f"{e.get('field') or '?'}: {e.get('message') or ''}".rstrip(": ")
        for e in body.get("errors") or []
        if isinstance(e, Mapping)
    ]
    if fields:
        message = f"{message} ({'; '.join(fields)})" if message else "; ".join(fields)
    if message:
        return message
    text = response.text.strip()
    return text[:300] if text else "(empty body)"


def _member_error(error: Mapping[str, Any]) -> str:
    """A batch subscribe error item as one line: its ``error``, then the field it names."""
    text = str(error.get("error") or "no message")
    field, field_message = error.get("field"), error.get("field_message")
    if field and field_message and str(field_message) not in text:
        text = f"{text} ({field}: {field_message})"
    return text


# ---------------------------------------------------------------------------------------------
# The connector
# ---------------------------------------------------------------------------------------------


class MailchimpConnector:
    """One Mailchimp audience, reached with an API key, ready for one run."""

    batch_size = BATCH_SIZE
    lookup_batch_size = LOOKUP_BATCH_SIZE
    rate_limit = RATE_LIMIT
    #: Mailchimp takes ISO 8601 timestamps and ``YYYY-MM-DD`` dates.
    time_layouts = TimeLayouts(datetime="2006-01-02T15:04:05Z", date="2006-01-02")

    def __init__(
        self,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        **hooks: Unpack[ClientHooks],
    ) -> None:
        key, data_centre = _api_key(credentials)
        self.audience_id, base_url = _settings(settings, data_centre)
        hooks.setdefault("retry", RETRY_POLICY)
        basic = base64.b64encode(f"sluice:{key}".encode()).decode()
        self.http = AppHttpClient(
            APP,
            base_url,
            RATE_LIMIT,
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
            error_message=error_message,
            credential_name="API key",
            **hooks,
        )
        self._list = f"/lists/{self.audience_id}"
        self._schema: MailchimpSchema | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- schema and identity -------------------------------------------------------------------

    async def destination_schema(self) -> Type:
        return (await self.schema()).type

    async def schema(self) -> MailchimpSchema:
        """The destination schema and the merge fields, read once per connector."""
        if self._schema is None:
            response = await self.http.request(
                "GET", f"{self._list}/merge-fields", params={"count": str(MERGE_FIELDS_PAGE)}
            )
            if response.status_code == 404:
                raise self._missing_audience(response)
            if response.status_code != 200:
                raise self._unexpected("listing the merge fields", response)
            fields = json_object(response).get("merge_fields")
            if not isinstance(fields, list):
                raise ConnectorError(f"{APP} listed the merge fields without merge_fields")
            self._schema = build_schema(fields)
        return self._schema

    async def destination_identity(self) -> str:
        response = await self.http.request("GET", "/", params={"fields": "account_id"})
        if response.status_code != 200:
            raise self._unexpected("reading the account", response)
        account = json_object(response).get("account_id")
        if not isinstance(account, str) or not account:
            raise ConnectorError(f"{APP} answered the API root without an account_id")
        audience = await self.http.request("GET", self._list, params={"fields": "id,name"})
        if audience.status_code == 404:
            raise self._missing_audience(audience)
        if audience.status_code != 200:
            raise self._unexpected("reading the audience", audience)
        return f"mailchimp:account/{account}/audience/{self.audience_id}"

    async def upserts(self, matching_path: str) -> bool:
        """Batch subscribe with ``update_existing`` names members by email address only."""
        return matching_path == EMAIL

    def _check_matching(self, matching_path: str) -> None:
        if matching_path != EMAIL:
            raise ConnectorError(
                f"{APP} finds members by email address only: the matching property must be "
                f'"{EMAIL}", not "{matching_path}"'
            )

    # -- lookup --------------------------------------------------------------------------------

    async def lookup(self, matching_path: str, values: Sequence[str]) -> list[AppUser]:
        """One GET per distinct subscriber hash, concurrently (the client caps how many are in
        flight); emails differing only by case are one member, answered for each."""
        self._check_matching(matching_path)
        asked: dict[str, list[str]] = {}
        for value in dict.fromkeys(v for v in values if v):
            asked.setdefault(subscriber_hash(value), []).append(value)
        hashes = list(asked)
        found = await asyncio.gather(*(self._member_id(h) for h in hashes))
        return [
            AppUser(member_id, value)
            for h, member_id in zip(hashes, found, strict=True)
            if member_id is not None
            for value in asked[h]
        ]

    async def _member_id(self, member_hash: str) -> str | None:
        response = await self.http.request(
            "GET", f"{self._list}/members/{member_hash}", params={"fields": "id,email_address"}
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unexpected("reading a member", response)
        member_id = json_object(response).get("id")
        return member_id if isinstance(member_id, str) and member_id else member_hash

    # -- writes --------------------------------------------------------------------------------

    async def create(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        self._check_matching(matching_path)
        schema = await self.schema()
        results: dict[int, WriteResult] = {}
        pending = list(records)
        for _ in range(MAX_CREATE_ROUNDS):
            try:
                await self._subscribe(pending, schema, results, update_existing=False)
                return [results[r.key] for r in records]
            except OutcomeUnknownError:
                pending = [r for r in pending if r.key not in results]
                await self._settle_unknown(pending, results)
                pending = [r for r in pending if r.key not in results]
                if not pending:
                    return [results[r.key] for r in records]
        raise ConnectorError(
            f"{APP} failed {MAX_CREATE_ROUNDS} times to answer a batch subscribe of "
            f"{len(pending)} members; those found afterwards were kept, the others were not "
            "created again"
        )

    async def upsert(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        self._check_matching(matching_path)
        schema = await self.schema()
        results: dict[int, WriteResult] = {}
        await self._subscribe(list(records), schema, results, update_existing=True)
        return [results[r.key] for r in records]

    async def update(self, records: Sequence[WriteRecord]) -> list[WriteResult]:
        """Records whose email address hashes to their id (the usual case: ``email_address``
        is required for updates) go by batch subscribe with ``update_existing``, 500 a
        request; the others (an email address that changed, or none) by one PATCH each,
        concurrently, since batch subscribe names members by email only."""
        schema = await self.schema()
        by_batch: list[WriteRecord] = []
        by_patch: list[WriteRecord] = []
        for record in records:
            email = value_at(record.properties, EMAIL)
            if (
                isinstance(email, str)
                and email
                and record.external_id
                and subscriber_hash(email) == record.external_id.lower()
            ):
                by_batch.append(record)
            else:
                by_patch.append(record)
        results: dict[int, WriteResult] = {}
        await self._subscribe(by_batch, schema, results, update_existing=True)
        for result in await asyncio.gather(*(self._patch(r, schema) for r in by_patch)):
            results[result.key] = result
        return [results[r.key] for r in records]

    async def _patch(self, record: WriteRecord, schema: MailchimpSchema) -> WriteResult:
        if not record.external_id:
            return WriteResult(record.key, error=f"no {APP} subscriber hash to update")
        try:
            body = member_body(record.properties, schema)
        except _RecordError as err:
            return WriteResult(record.key, error=str(err))
        body.pop("status_if_new", None)  # only for members being created
        response = await self.http.request(
            "PATCH", f"{self._list}/members/{record.external_id}", json_body=body
        )
        if response.status_code == 200:
            member_id = json_object(response).get("id")
            return WriteResult(
                record.key,
                external_id=member_id if isinstance(member_id, str) else record.external_id,
            )
        if response.status_code in (400, 404):
            return WriteResult(record.key, error=error_message(response))
        raise self._unexpected("updating a member", response)

    async def _settle_unknown(
        self, records: list[WriteRecord], results: dict[int, WriteResult]
    ) -> None:
        """After a create with an unknown outcome: the members Mailchimp holds are done."""
        emails = {r.key: value_at(r.properties, EMAIL) for r in records}
        values = [e for e in emails.values() if isinstance(e, str) and e]
        found = {
            subscriber_hash(u.matching_value): u.external_id
            for u in await self.lookup(EMAIL, values)
        }
        for record in records:
            email = emails[record.key]
            if not isinstance(email, str) or not email:
                results[record.key] = WriteResult(
                    record.key,
                    error=f"{APP} may or may not have created this member, and it has no email "
                    "address to check",
                )
            elif (member_id := found.get(subscriber_hash(email))) is not None:
                results[record.key] = WriteResult(record.key, external_id=member_id)

    async def _subscribe(
        self,
        records: list[WriteRecord],
        schema: MailchimpSchema,
        results: dict[int, WriteResult],
        *,
        update_existing: bool,
    ) -> None:
        ready: list[tuple[WriteRecord, dict[str, Any]]] = []
        seen: set[str] = set()
        for record in records:
            try:
                body = member_body(record.properties, schema)
            except _RecordError as err:
                results[record.key] = WriteResult(record.key, error=str(err))
                continue
            email = body.get(EMAIL)
            if not email:
                results[record.key] = WriteResult(
                    record.key, error=f'no value of "{EMAIL}" to name the member by'
                )
                continue
            member_hash = subscriber_hash(email)
            if member_hash in seen:
                # Mailchimp compares emails without case: one member, written once.
                results[record.key] = WriteResult(
                    record.key,
                    error=f"another record of this batch has the email address {email} "
                    f"({APP} ignores case)",
                )
                continue
            seen.add(member_hash)
            ready.append((record, body))
        for start in range(0, len(ready), BATCH_SIZE):
            await self._send(ready[start : start + BATCH_SIZE], results, update_existing)

    async def _send(
        self,
        batch: list[tuple[WriteRecord, dict[str, Any]]],
        results: dict[int, WriteResult],
        update_existing: bool,
    ) -> None:
        if not batch:
            return
        response = await self.http.request(
            "POST",
            self._list,
            json_body={"members": [body for _, body in batch], "update_existing": update_existing},
            idempotent=update_existing,
        )
        if response.status_code == 200:
            body = documented_json(APP, response, "new_members", "updated_members", "errors")
            _map_batch(batch, body, results, update_existing)
            return
        if response.status_code == 404:
            raise self._missing_audience(response)
        if response.status_code in (400, 413):
            if len(batch) == 1:
                results[batch[0][0].key] = WriteResult(
                    batch[0][0].key, error=error_message(response)
                )
                return
            # Refused as a whole (nothing was written): halves find the record at fault.
            half = len(batch) // 2
            await self._send(batch[:half], results, update_existing)
            await self._send(batch[half:], results, update_existing)
            return
        raise self._unexpected("a batch subscribe", response)

    def _missing_audience(self, response: httpx.Response) -> ConnectorError:
        return ConnectorError(
            f'the {APP} audience "{self.audience_id}" does not exist in this account '
            f"({response.status_code}: {error_message(response)})"
        )

    def _unexpected(self, action: str, response: httpx.Response) -> ConnectorError:
        return ConnectorError(
            f"{APP} answered {action} with {response.status_code}: {error_message(response)}"
        )


def _map_batch(
    batch: list[tuple[WriteRecord, dict[str, Any]]],
    body: Mapping[str, Any],
    results: dict[int, WriteResult],
    update_existing: bool,
) -> None:
    """Per-record results of a batch subscribe answer, by subscriber hash of the email address
    Mailchimp echoes in ``new_members``, ``updated_members`` and ``errors``."""
    by_hash = {subscriber_hash(member[EMAIL]): record for record, member in batch}

    def record_of(item: Any) -> WriteRecord | None:
        if not isinstance(item, Mapping) or not isinstance(item.get(EMAIL), str):
            return None
        return by_hash.get(subscriber_hash(item[EMAIL]))

    for created, key in ((True, "new_members"), (False, "updated_members")):
        for member in body.get(key) or []:
            record = record_of(member)
            if record is not None:
                member_id = member.get("id")
                results[record.key] = WriteResult(
                    record.key,
                    external_id=member_id
                    if isinstance(member_id, str) and member_id
                    else subscriber_hash(member[EMAIL]),
                    created=created,
                )
    for error in body.get("errors") or []:
        record = record_of(error)
        if record is None:
            continue
        if error.get("error_code") == "ERROR_CONTACT_EXISTS" and not update_existing:
            results[record.key] = WriteResult(record.key, existing_id=subscriber_hash(error[EMAIL]))
        else:
            results[record.key] = WriteResult(record.key, error=_member_error(error))
    for record, _ in batch:
        if record.key not in results:
            results[record.key] = WriteResult(
                record.key, error=f"{APP}'s answer did not mention this member"
            )


# ---------------------------------------------------------------------------------------------
# Settings and credentials
# ---------------------------------------------------------------------------------------------


def _api_key(credentials: Mapping[str, str]) -> tuple[str, str]:
    """The API key and the data centre it names (``…-us21`` → ``us21``)."""
    key = credential(APP, credentials, "apiKey")
    match = _API_KEY.match(key) if isinstance(key, str) else None
    if match is None:
        raise ConnectorError(
            f'the {APP} API key must be letters and digits ending in "-<data centre>", such as '
            '"…-us21": Mailchimp keys say which server to call'
        )
    return key, match.group(1)


def _settings(settings: Mapping[str, Any], data_centre: str) -> tuple[str, str]:
    """The audience id and the base URL (the key's data centre unless ``baseUrl`` says)."""
    check_setting_names(APP, settings, ("audienceId", "baseUrl"))
    audience = settings.get("audienceId")
    if audience is None:
        raise ConnectorError(
            f'{APP} connection settings need "audienceId", the id of the audience to export to'
        )
    if not isinstance(audience, str) or not _AUDIENCE_ID.match(audience):
        raise ConnectorError(
            f'{APP} setting "audienceId" must be an audience id, such as "a1b2c3d4e5"'
        )
    return audience, base_url(APP, settings, f"https://{data_centre}.api.mailchimp.com/3.0")


def connect(
    settings: Mapping[str, Any], credentials: Mapping[str, str], **hooks: Unpack[ClientHooks]
) -> MailchimpConnector:
    """The :class:`~sluice.apps.connector.ConnectorFactory` of Mailchimp."""
    return MailchimpConnector(settings, credentials, **hooks)
