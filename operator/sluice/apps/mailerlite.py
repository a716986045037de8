"""The MailerLite connector: subscribers through the MailerLite API (``connect.mailerlite.com``,
the API of accounts created since March 2022), with an API token.

Every request carries ``X-Version: 2026-12-07``, pinning the API version this connector was
written against (MailerLite applies the latest version to requests without it). Endpoints
(MailerLite's public documentation, developers.mailerlite.com):

* ``GET /api/fields?limit=100&page=N`` — the account's subscriber fields (text, number, date),
  paged by page number, for the destination schema; the smallest field id is the account's
  identity (the API has no account endpoint for API tokens);
* ``POST /api/batch`` — up to 50 sub-requests in one request, answered in the order sent, each
  with its own ``code`` and ``body``; one request against the 120-per-minute rate limit. It
  carries:

  * ``GET api/subscribers/{email}`` — a subscriber by email: 200, or 404 when there is none
    (lookups, 50 emails per request);
  * ``POST api/subscribers`` — MailerLite's create-or-update by email: 201 when it created the
    subscriber, 200 when one already had the email (creates). A batch made only of these is
    processed as a bulk import, which MailerLite limits to 5 requests per minute besides the
    global limit;
  * ``PUT api/subscribers/{id}`` — an update by id (updates).

Values are JSON: text as strings, numbers as numbers, dates ``YYYY-MM-DD`` and datetimes
``YYYY-MM-DD HH:MM:SS`` (UTC); ``null`` clears a field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Unpack
from urllib.parse import quote

import httpx

from sluice.apps.connector import AppUser, ConnectorError, RateLimit, WriteRecord, WriteResult
from sluice.apps.http import (
    AppHttpClient,
    ClientHooks,
    OutcomeUnknownError,
    RateLimitHint,
    RetryPolicy,
    documented_json,
)
from sluice.apps.settings import credential, only_base_url
from sluice.fastjson import decode_json
from sluice.mapping import TimeLayouts
from sluice.model.types import Kind, Property, Type, is_valid_property_name, object_type

APP = "MailerLite"
DEFAULT_BASE_URL = "https://connect.mailerlite.com/api"
#: The API version this connector follows (MailerLite's ``X-Version`` header: a date).
API_VERSION = "2026-12-07"

#: MailerLite's global limit is 120 requests per minute per account; a bucket sends at most
#: ``burst + rate·60`` in any minute: 10 + (110/60)·60 = 120.
RATE_LIMIT = RateLimit(requests_per_second=110 / 60, burst=10, max_concurrent=4)
#: Batches made only of ``POST api/subscribers`` count as bulk imports: 5 per minute, besides
#: the global limit. 1 + (4/60)·60 = 5.
IMPORT_RATE_LIMIT = RateLimit(requests_per_second=4 / 60, burst=1, max_concurrent=1)
RATE_WINDOW_SECONDS = 60.0
#: 408 is documented as "an error on our system", like the 5xx: the outcome is unknown.
RETRY_POLICY = RetryPolicy(retry_statuses=frozenset({408, 500, 502, 503, 504}))

#: Sub-requests per ``POST /api/batch``.
BATCH_SIZE = 50
FIELDS_PAGE_SIZE = 100
#: Fields pages read at most (MailerLite allows far fewer fields per account).
MAX_FIELDS_PAGES = 100
#: How many times records whose outcome stayed unknown are checked and sent again.
MAX_ROUNDS = 3

STATUSES = ("active", "unsubscribed", "unconfirmed", "bounced", "junk")
DATETIME_LAYOUT = "2006-01-02 15:04:05"
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}\Z")
_IMPORT_REFUSAL = "import creation"


# ---------------------------------------------------------------------------------------------
# The destination schema
# ---------------------------------------------------------------------------------------------


def _nullable(name: str, t: Type, description: str) -> Property:
    return Property(name, t, nullable=True, description=description)


_DATETIME = Type(Kind.DATETIME)
#: The subscriber properties a create or update may write, in MailerLite's order; read-only
#: ones (id, source, sent, opens_count, clicks_count, open_rate, click_rate, created_at,
#: updated_at) are left out.
SUBSCRIBER_PROPERTIES: tuple[Property, ...] = (
    Property(
        "email",
        Type(Kind.STRING),
        create_required=True,
        description="Email\n\nThe subscriber's address: MailerLite finds subscribers by it.",
    ),
    _nullable(
        "status",
        Type(Kind.STRING, values=STATUSES),
        "Status\n\nAn unsubscribed, bounced or junk subscriber cannot be made active again "
        "through the API.",
    ),
    _nullable(
        "groups",
        Type(Kind.ARRAY, element_type=Type(Kind.STRING)),
        "Groups\n\nIds of existing groups: a create adds the subscriber to them, an update "
        "removes it from the groups not listed.",
    ),
    _nullable("subscribed_at", _DATETIME, "Subscribed at"),
    _nullable("ip_address", Type(Kind.STRING), "IP address"),
    _nullable("opted_in_at", _DATETIME, "Opted in at"),
    _nullable("optin_ip", Type(Kind.STRING), "Opt-in IP address"),
    _nullable("unsubscribed_at", _DATETIME, "Unsubscribed at"),
    _nullable(
        "resubscribe",
        Type(Kind.BOOLEAN),
        "Resubscribe\n\nTrue makes a create reactivate a previously unsubscribed subscriber; "
        "updates ignore it.",
    ),
)
#: What ``PUT api/subscribers/{id}`` does not take: the email names the subscriber.
_CREATE_ONLY = frozenset({"email", "resubscribe"})
_FIELD_TYPES: Mapping[str, Type] = {
    "text": Type(Kind.STRING),
    "number": Type(Kind.DECIMAL, precision=76, scale=37),
    "date": Type(Kind.DATE),
}


@dataclass(frozen=True, slots=True)
class MailerLiteSchema:
    type: Type
    #: Field key → its kind, for the values written under ``fields``.
    fields: Mapping[str, Kind]
    #: The smallest field id: the account's identity.
    first_field_id: str | None


def build_schema(fields: Iterable[Mapping[str, Any]]) -> MailerLiteSchema:
    """The destination schema from the ``data`` of ``GET /api/fields``: the subscriber
    properties, then the fields under ``fields``, every one nullable (``null`` clears it)."""
    members: list[Property] = []
    kinds: dict[str, Kind] = {}
    ids: list[str] = []
    for field in fields:
        key, kind = field.get("key"), _FIELD_TYPES.get(str(field.get("type")))
        if field.get("id") is not None:
            ids.append(str(field["id"]))
        if not isinstance(key, str) or kind is None or key in kinds:
            continue
        if not is_valid_property_name(key):
            continue
        kinds[key] = kind.kind
        members.append(_nullable(key, kind, str(field.get("name") or key)))
    properties = list(SUBSCRIBER_PROPERTIES)
    if members:
        properties.append(Property("fields", object_type(*members), description="Fields"))
    first = min(ids, key=lambda i: (len(i), i)) if ids else None
    return MailerLiteSchema(object_type(*properties), kinds, first)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


class _RecordError(Exception):
    """A record that cannot be sent as it is."""


def encode_value(value: Any) -> Any:
    """A value as MailerLite's JSON takes it."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.strftime(_DATETIME_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def subscriber_body(
    properties: Mapping[str, Any], schema: MailerLiteSchema, *, update: bool
) -> dict[str, Any]:
    """The JSON body of a create (``POST api/subscribers``) or update (``PUT``). Subscriber
    properties set to None are left out (MailerLite keeps its value); fields set to None are
    sent as ``null``, which clears them."""
    body: dict[str, Any] = {}
    for name, value in properties.items():
        if name == "fields":
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise _RecordError('"fields" must be an object of MailerLite fields')
            fields: dict[str, Any] = {}
            for key, field_value in value.items():
                if key not in schema.fields:
                    raise _RecordError(f'"fields.{key}" is not a field of this {APP} account')
                fields[key] = encode_value(field_value)
            if fields:
                body["fields"] = fields
        elif name in _SUBSCRIBER_NAMES:
            if value is not None and not (update and name in _CREATE_ONLY):
                body[name] = encode_value(value)
        else:
            raise _RecordError(f'"{name}" is not a writable {APP} subscriber property')
    return body


_SUBSCRIBER_NAMES = frozenset(p.name for p in SUBSCRIBER_PROPERTIES)


# ---------------------------------------------------------------------------------------------
# Rate-limit headers and error bodies
# ---------------------------------------------------------------------------------------------


def read_rate_limit(response: httpx.Response) -> RateLimitHint | None:
    """MailerLite's ``X-RateLimit-Limit`` (requests per minute) and ``-Remaining`` headers.

    A 429 without ``Retry-After`` (the client reads that first) waits for a share of the
    window: the import limit's (5 per minute) when its message says so, else the whole
    minute's.
    """
    limit = _int(response.headers.get("X-RateLimit-Limit"))
    remaining = _int(response.headers.get("X-RateLimit-Remaining"))
    window = (limit, RATE_WINDOW_SECONDS) if limit is not None and limit > 0 else None
    pause = None
    if response.status_code == 429:
        imported = _IMPORT_REFUSAL in error_message(response)
        pause = RATE_WINDOW_SECONDS / 5 if imported else RATE_WINDOW_SECONDS / 10
    elif remaining == 0:
        # The minute is used up; MailerLite does not say when it ends on a success.
        pause = RATE_WINDOW_SECONDS / 10
    if window is None and pause is None:
        return None
    return RateLimitHint(pause=pause, window=window)


def error_message(response: httpx.Response) -> str:
    body = _json_body(response)
    text = _error_text(body)
    if text:
        return text
    content = response.text.strip()
    return content[:300] if content else "(empty body)"


def _error_text(body: Any) -> str:
    """``message`` then every field error: ``The given data was invalid. (email: The email
    must be a valid email address.)``."""
    if not isinstance(body, Mapping):
        return ""
    message = str(body.get("message") or "").strip()
    errors = body.get("errors")
    details: list[str] = []
    if isinstance(errors, Mapping):
        for field, texts in errors.items():
            listed = texts if isinstance(texts, list) else [texts]
            details.append(f"{field}: {' '.join(str(t) for t in listed)}")
    if details:
        return f"{message} ({'; '.join(details)})" if message else "; ".join(details)
    return message


def _json_body(response: httpx.Response) -> Any:
    try:
        return decode_json(response.content)
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """One sub-request's answer; ``code`` None when the batch did not answer for it."""

    code: int | None
    body: Any


def _subscriber_path(id_or_email: str) -> str:
    # The email is a path segment: "/" "?" "#" "%" and spaces must not end it.
    return "api/subscribers/" + quote(id_or_email, safe="@")


def _subscriber_of(body: Any) -> Mapping[str, Any] | None:
    data = body.get("data") if isinstance(body, Mapping) else None
    return data if isinstance(data, Mapping) and data.get("id") is not None else None


def _refusal(answer: _Answer) -> str:
    text = _error_text(answer.body) or "no message"
    return f"{APP} refused the subscriber ({answer.code}): {text}"


def _unknown(answer: _Answer) -> bool:
    """Whether the sub-request may or may not have been applied."""
    return answer.code is None or answer.code >= 500 or answer.code in (408, 429)


# ---------------------------------------------------------------------------------------------
# The connector
# ---------------------------------------------------------------------------------------------


class MailerLiteConnector:
    """One MailerLite account (an API token), ready for one run."""

    batch_size = BATCH_SIZE
    lookup_batch_size = BATCH_SIZE
    rate_limit = RATE_LIMIT
    #: MailerLite's ``yyyy-MM-dd HH:mm:ss`` datetimes (UTC); date fields as ``YYYY-MM-DD``.
    time_layouts = TimeLayouts(datetime=DATETIME_LAYOUT, date="2006-01-02")

    def __init__(
        self,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        **hooks: Unpack[ClientHooks],
    ) -> None:
        base_url = only_base_url(APP, settings, DEFAULT_BASE_URL)
        token = _api_token(credentials)
        hooks.setdefault("retry", RETRY_POLICY)
        self.http = AppHttpClient(
            APP,
            base_url,
            RATE_LIMIT,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "X-Version": API_VERSION,
            },
            groups={"import": IMPORT_RATE_LIMIT},
            rate_limit_reader=read_rate_limit,
            error_message=error_message,
            credential_name="API token",
            **hooks,
        )
        self._schema: MailerLiteSchema | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- schema and identity ---------------------------------------------------------------

    async def destination_schema(self) -> Type:
        return (await self.schema()).type

    async def schema(self) -> MailerLiteSchema:
        """The destination schema, from every page of the account's fields, read once."""
        if self._schema is None:
            fields: list[Mapping[str, Any]] = []
            for page in range(1, MAX_FIELDS_PAGES + 1):
                response = await self.http.request(
                    "GET", "/fields", params={"limit": str(FIELDS_PAGE_SIZE), "page": str(page)}
                )
                if response.status_code != 200:
                    raise self._unexpected("listing the subscriber fields", response)
                body = _json_body(response)
                data = body.get("data") if isinstance(body, Mapping) else None
                if not isinstance(data, list):
                    raise ConnectorError(f"{APP} listed the subscriber fields without data")
                fields += [f for f in data if isinstance(f, Mapping)]
                if not _has_next_page(body, page):
                    break
            self._schema = build_schema(fields)
        return self._schema

    async def destination_identity(self) -> str:
        """MailerLite has no account endpoint for API tokens; the account is named by its
        oldest field (every account has the default fields, which cannot be deleted, and
        field ids are unique across accounts)."""
        first = (await self.schema()).first_field_id
        if first is None:
            raise ConnectorError(
                f"{APP} lists no subscriber field, so the account cannot be identified"
            )
        return f"mailerlite:account/{first}"

    async def upserts(self, matching_path: str) -> bool:
        """No: MailerLite's create-or-update is available, but a batch made only of it is a
        bulk import (5 per minute). Looking subscribers up first costs one request per 50 on
        the 120-per-minute budget and sends the existing ones as updates, on that budget too."""
        _check_matching(matching_path)
        return False

    # -- lookup ------------------------------------------------------------------------------

    async def lookup(self, matching_path: str, values: Sequence[str]) -> list[AppUser]:
        _check_matching(matching_path)
        asked = {value.lower(): value for value in values if value != ""}
        pending = list(asked.values())
        users: list[AppUser] = []
        for _ in range(MAX_ROUNDS):
            retry: list[str] = []
            for start in range(0, len(pending), BATCH_SIZE):
                chunk = pending[start : start + BATCH_SIZE]
                answers = await self._batch(
                    [{"method": "GET", "path": _subscriber_path(v)} for v in chunk],
                    idempotent=True,
                )
                for value, answer in zip(chunk, answers, strict=True):
                    subscriber = _subscriber_of(answer.body) if answer.code == 200 else None
                    if subscriber is not None:
                        email = str(subscriber.get("email") or "")
                        if email.lower() in asked:
                            users.append(AppUser(str(subscriber["id"]), asked[email.lower()]))
                    elif _unknown(answer):
                        retry.append(value)
                    # Any other answer (404, or a value MailerLite refuses) matches nobody.
            if not retry:
                return users
            pending = retry
        raise ConnectorError(
            f"{APP} failed {MAX_ROUNDS} times to answer the lookup of {len(pending)} subscribers"
        )

    # -- writes ------------------------------------------------------------------------------

    async def create(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        _check_matching(matching_path)
        return await self._write("create", records)

    async def update(self, records: Sequence[WriteRecord]) -> list[WriteResult]:
        return await self._write("update", records)

    async def upsert(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        _check_matching(matching_path)
        return await self._write("upsert", records)

    async def _write(self, kind: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        schema = await self.schema()
        results: dict[int, WriteResult] = {}
        ready: list[tuple[WriteRecord, dict[str, Any]]] = []
        for record in records:
            try:
                ready.append((record, self._sub_request(kind, record, schema)))
            except _RecordError as err:
                results[record.key] = WriteResult(record.key, error=str(err))
        for _ in range(MAX_ROUNDS):
            unknown: list[tuple[WriteRecord, dict[str, Any]]] = []
            for start in range(0, len(ready), BATCH_SIZE):
                batch = ready[start : start + BATCH_SIZE]
                unknown += await self._send(kind, batch, results)
            if kind == "create" and unknown:
                unknown = await self._settle_unknown(unknown, results)
            if not unknown:
                return [results[r.key] for r in records]
            ready = unknown
        raise ConnectorError(
            f"{APP} failed {MAX_ROUNDS} times to answer the {kind} of {len(ready)} subscribers; "
            "those found afterwards were kept, the others were not sent again"
        )

    @staticmethod
    def _sub_request(kind: str, record: WriteRecord, schema: MailerLiteSchema) -> dict[str, Any]:
        body = subscriber_body(record.properties, schema, update=kind == "update")
        if kind == "update":
            if not record.external_id:
                raise _RecordError(f"no {APP} subscriber id to update")
            return {"method": "PUT", "path": _subscriber_path(record.external_id), "body": body}
        if not isinstance(body.get("email"), str) or not body["email"]:
            raise _RecordError(f"a {APP} subscriber needs an email")
        return {"method": "POST", "path": "api/subscribers", "body": body}

    async def _send(
        self,
        kind: str,
        batch: list[tuple[WriteRecord, dict[str, Any]]],
        results: dict[int, WriteResult],
    ) -> list[tuple[WriteRecord, dict[str, Any]]]:
        """Send one batch; answer each record, and return those whose outcome is unknown."""
        try:
            answers = await self._batch(
                [sub for _, sub in batch],
                idempotent=kind != "create",
                refused_as_whole=True,
            )
        except OutcomeUnknownError:
            return batch
        unknown = []
        for (record, sub), answer in zip(batch, answers, strict=True):
            subscriber = _subscriber_of(answer.body)
            if answer.code in (200, 201) and subscriber is not None:
                subscriber_id = str(subscriber["id"])
                if kind == "create" and answer.code == 200:
                    # MailerLite had the email already (someone created it since the lookup),
                    # and has applied the record to it: there is no create-only request.
                    results[record.key] = WriteResult(record.key, existing_id=subscriber_id)
                else:
                    created = answer.code == 201
                    results[record.key] = WriteResult(
                        record.key, external_id=subscriber_id, created=created
                    )
            elif _unknown(answer):
                unknown.append((record, sub))
            else:
                results[record.key] = WriteResult(record.key, error=_refusal(answer))
        return unknown

    async def _settle_unknown(
        self,
        records: list[tuple[WriteRecord, dict[str, Any]]],
        results: dict[int, WriteResult],
    ) -> list[tuple[WriteRecord, dict[str, Any]]]:
        """After creates with an unknown outcome: the subscribers MailerLite holds are done
        (one lookup per 50); the others are returned, to be created again."""
        emails = [str(sub["body"]["email"]) for _, sub in records]
        found = {
            u.matching_value.lower(): u.external_id for u in await self.lookup("email", emails)
        }
        left = []
        for (record, sub), email in zip(records, emails, strict=True):
            holder = found.get(email.lower())
            if holder is None:
                left.append((record, sub))
            else:
                results[record.key] = WriteResult(record.key, external_id=holder, created=True)
        return left

    async def _batch(
        self, requests: list[dict[str, Any]], *, idempotent: bool, refused_as_whole: bool = False
    ) -> list[_Answer]:
        """One ``POST /api/batch``; its answers in the order of ``requests``. A batch of
        creates only goes through the import bucket. With ``refused_as_whole`` a refused batch
        (4xx) answers every sub-request with its refusal instead of stopping the run."""
        imports = all(r["method"] == "POST" and r["path"] == "api/subscribers" for r in requests)
        response = await self.http.request(
            "POST",
            "/batch",
            json_body={"requests": requests},
            idempotent=idempotent,
            group="import" if imports else None,
        )
        if response.status_code == 200:
            listed = documented_json(APP, response).get("responses")
            answers = [
                _Answer(_int(str(a.get("code"))), a.get("body"))
                for a in (listed if isinstance(listed, list) else [])
                if isinstance(a, Mapping)
            ]
            answers = answers[: len(requests)]
            return answers + [_Answer(None, None)] * (len(requests) - len(answers))
        if refused_as_whole and 400 <= response.status_code < 500:
            return [_Answer(response.status_code, _json_body(response))] * len(requests)
        raise self._unexpected(f"a batch of {len(requests)} requests", response)

    def _unexpected(self, action: str, response: httpx.Response) -> ConnectorError:
        return ConnectorError(
            f"{APP} answered {action} with {response.status_code}: {error_message(response)}"
        )


def _has_next_page(body: Mapping[str, Any], page: int) -> bool:
    meta = body.get("meta")
    if isinstance(meta, Mapping):
        last = meta.get("last_page")
        if isinstance(last, int):
            return page < last
    links = body.get("links")
    return isinstance(links, Mapping) and bool(links.get("next"))


def _check_matching(path: str) -> None:
    if path != "email":
        raise ConnectorError(
            f'{APP} finds subscribers by email only: the matching property must be "email", '
            f'not "{path}"'
        )


# ---------------------------------------------------------------------------------------------
# Settings and credentials
# ---------------------------------------------------------------------------------------------


def _api_token(credentials: Mapping[str, str]) -> str:
    token = credential(APP, credentials, "apiToken")
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise ConnectorError(
            f"the {APP} API token must be 1 to 4,096 printable ASCII characters without spaces"
        )
    return token


def connect(
    settings: Mapping[str, Any], credentials: Mapping[str, str], **hooks: Unpack[ClientHooks]
) -> MailerLiteConnector:
    """The :class:`~sluice.apps.connector.ConnectorFactory` of MailerLite."""
    return MailerLiteConnector(settings, credentials, **hooks)
