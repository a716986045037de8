"""The Klaviyo connector: profiles through Klaviyo's REST API (JSON:API), revision 2026-07-15,
with a private API key.

Endpoints (Klaviyo's API reference, revision 2026-07-15; every request carries the
``revision`` header):

* ``GET /api/accounts`` — the account the key belongs to, the destination's identity
  (rate tier XS: 1/s burst, 15/min steady);
* ``GET /api/profiles`` with ``filter=any(<field>,[...])`` on ``email``, ``phone_number`` or
  ``external_id`` and ``page[size]=100`` — up to 100 profiles by identifier per request, paged
  with ``page[cursor]`` from ``links.next`` (75/s, 750/min);
* ``POST /api/profile-bulk-import-jobs`` — an asynchronous import job creating or updating up
  to 10,000 profiles (5 MB per job, 100 KB per profile); profiles are matched by ``id`` or by
  their identifiers, so the job is an upsert (10/s, 150/min);
* ``GET /api/profile-bulk-import-jobs/{id}`` — the job's status (``queued``, ``processing``,
  ``complete``, ``cancelled``) and counts, polled until it ends, for a bounded time;
* ``GET /api/profile-bulk-import-jobs/{id}/import-errors`` — one error per refused profile,
  with the profile as sent (``original_payload``), paged like the profiles.

A job answers no profile ids: profiles written by email, phone number or external id are looked
up afterwards (one request per 100). Klaviyo documents no endpoint listing custom profile
properties, so the destination schema is Klaviyo's profile attributes plus ``properties``, a
map of JSON values.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Unpack
from urllib.parse import parse_qs, urlsplit

import httpx

from sluice.apps.connector import AppUser, ConnectorError, RateLimit, WriteRecord, WriteResult
from sluice.apps.http import (
    AppHttpClient,
    ClientHooks,
    Clock,
    OutcomeUnknownError,
    RateLimitHint,
    RetryPolicy,
    Sleep,
    documented_json,
    json_object,
)
from sluice.apps.settings import credential, only_base_url
from sluice.fastjson import encode_json
from sluice.mapping import TimeLayouts
from sluice.model.types import Kind, Property, Type, object_type
from sluice.model.values import value_at

APP = "Klaviyo"
DEFAULT_BASE_URL = "https://a.klaviyo.com"
#: The API revision every request names (``revision`` header).
REVISION = "2026-07-15"

#: Profiles endpoints (tier L: 75/s burst, 750/min steady). A bucket sends at most
#: ``burst + rate·60`` in any minute: 60 + 11.5·60 = 750, and at most 60 in a second.
RATE_LIMIT = RateLimit(requests_per_second=11.5, burst=60, max_concurrent=8)
#: Bulk import job endpoints (tier M: 10/s, 150/min): 6 + 2.4·60 = 150.
JOBS_RATE_LIMIT = RateLimit(requests_per_second=2.4, burst=6, max_concurrent=4)
#: ``GET /api/accounts`` (tier XS: 1/s, 15/min): 1 + 0.2·60 = 13.
ACCOUNTS_RATE_LIMIT = RateLimit(requests_per_second=0.2, burst=1, max_concurrent=1)
#: 429 is not processed (retried after Retry-After); Klaviyo is fronted by Cloudflare, whose
#: 52x statuses, like 5xx, leave a request's outcome unknown.
RETRY_POLICY = RetryPolicy(retry_statuses=frozenset({500, 502, 503, 504, 520, 522, 524}))

#: Profiles per import job, and per lookup request (the largest ``page[size]``).
JOB_MAX_PROFILES = 10_000
LOOKUP_PAGE_SIZE = 100
#: Klaviyo's payload limits of an import job; the envelope's few bytes are kept aside.
JOB_MAX_BYTES = 5_000_000 - 1_000
PROFILE_MAX_BYTES = 100_000
#: Seconds between the polls of a job: immediately, then backing off to every 10 s.
POLL_DELAYS = (0.0, 1.0, 2.0, 4.0, 8.0)
POLL_EVERY = 10.0
#: How long a job may run before the export gives up on it.
JOB_TIMEOUT = 1800.0
#: How many times records whose import outcome stayed unknown are checked and sent again.
MAX_UNKNOWN_ROUNDS = 3

#: The identifiers Klaviyo imports and looks profiles up by.
IDENTIFIERS = ("email", "phone_number", "external_id")
_STRING_ATTRIBUTES = (
    ("email", "Individual's email address"),
    ("phone_number", "Individual's phone number in E.164 format"),
    ("external_id", "A unique identifier of the profile in an external system"),
    ("first_name", "Individual's first name"),
    ("last_name", "Individual's last name"),
    ("organization", "Name of the company or organization the individual works for"),
    ("locale", "The profile's locale, an IETF BCP 47 language tag such as en-US"),
    ("title", "Individual's job title"),
    ("image", "URL pointing to the location of a profile image"),
)
_LOCATION_STRINGS = ("address1", "address2", "city", "country", "region", "zip", "timezone", "ip")
_LOCATION_NUMBERS = ("latitude", "longitude")
_PRIVATE_KEY = re.compile(r"pk_[A-Za-z0-9]{34,}\Z")
_AVAILABLE_IN = re.compile(r"available in ([0-9.]+) second")
_PROFILE_INDEX = re.compile(r"/profiles/data/([0-9]+)")


# ---------------------------------------------------------------------------------------------
# The destination schema
# ---------------------------------------------------------------------------------------------


def _string(name: str, description: str) -> Property:
    return Property(name, Type(Kind.STRING), nullable=True, description=description)


def destination_schema() -> Type:
    """Klaviyo's writable profile attributes, as the import and create bodies list them.

    Read-only attributes (``id``, ``created``, ``updated``, ``last_event_date``,
    ``predictive_analytics``, ``subscriptions``) are left out, and so is ``_kx``, Klaviyo's
    encrypted web-tracking id. Every attribute is nullable: null clears it.
    """
    location = object_type(
        *(_string(name, f"Location: {name}") for name in _LOCATION_STRINGS),
        *(
            Property(name, Type(Kind.FLOAT, bit_size=64), nullable=True, description=name.title())
            for name in _LOCATION_NUMBERS
        ),
    )
    return object_type(
        *(_string(name, text) for name, text in _STRING_ATTRIBUTES),
        Property("location", location, nullable=True, description="The profile's location"),
        Property(
            "properties",
            Type(Kind.MAP, element_type=Type(Kind.JSON)),
            nullable=True,
            description="Custom properties: key/value pairs of any JSON value",
        ),
    )


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


class _RecordError(Exception):
    """A record that cannot be sent as it is."""


def _json_value(value: Any) -> Any:
    """A value as JSON: decimals as numbers, dates as ISO 8601 text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def profile_attributes(properties: Mapping[str, Any]) -> dict[str, Any]:
    """A record's properties as the ``attributes`` of a Klaviyo profile; None clears."""
    known = {name for name, _ in _STRING_ATTRIBUTES} | {"location", "properties"}
    for name in properties:
        if name not in known:
            raise _RecordError(f'"{name}" is not a writable {APP} profile attribute')
    return {name: _json_value(value) for name, value in properties.items()}


def _match_key(field: str, value: str) -> str:
    # Klaviyo compares email addresses without case; other identifiers as they are.
    return value.lower() if field == "email" else value


# ---------------------------------------------------------------------------------------------
# Rate-limit headers and error bodies
# ---------------------------------------------------------------------------------------------


def read_rate_limit(response: httpx.Response) -> RateLimitHint | None:
    """Klaviyo's ``RateLimit-Limit/-Remaining/-Reset`` (the steady, one-minute window, on
    answers that are not 429) and, on a 429 without ``Retry-After``, the wait its body names
    ("Expected available in N seconds")."""
    if response.status_code == 429:
        found = _AVAILABLE_IN.search(error_message(response))
        return RateLimitHint(pause=max(1.0, float(found.group(1)))) if found else None
    limit = _leading_int(response.headers.get("RateLimit-Limit"))
    remaining = _leading_int(response.headers.get("RateLimit-Remaining"))
    reset = _leading_int(response.headers.get("RateLimit-Reset"))
    if limit is None:
        return None
    pause = float(reset) if remaining == 0 and reset is not None and reset > 0 else None
    return RateLimitHint(pause=pause, window=(limit, 60.0))


def _leading_int(text: str | None) -> int | None:
    # Tolerates a structured value ("750;w=60") as well as a bare number.
    if text is None:
        return None
    found = re.match(r"\s*([0-9]+)", text)
    return int(found.group(1)) if found else None


def error_message(response: httpx.Response) -> str:
    """The JSON:API ``errors`` of an answer: ``code: detail`` of each, at most three."""
    errors = json_object(response).get("errors")
    if isinstance(errors, list) and errors:
        texts = [_error_text(e) for e in errors[:3] if isinstance(e, Mapping)]
        if texts:
            more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
            return "; ".join(texts) + more
    text = response.text.strip()
    return text[:300] if text else "(empty body)"


def _error_text(error: Mapping[str, Any]) -> str:
    code = str(error.get("code") or "error")
    detail = str(error.get("detail") or error.get("title") or "no detail")
    return f"{code}: {detail}"


# ---------------------------------------------------------------------------------------------
# The connector
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Job:
    """Records of one import job and the profiles sent for them, in the same order."""

    records: list[WriteRecord]
    profiles: list[dict[str, Any]]


class KlaviyoConnector:
    """One Klaviyo account (a private API key), ready for one run."""

    batch_size = JOB_MAX_PROFILES
    lookup_batch_size = LOOKUP_PAGE_SIZE
    rate_limit = RATE_LIMIT
    #: Klaviyo has no date or datetime attribute; custom properties take ISO 8601 text.
    time_layouts = TimeLayouts(datetime="2006-01-02T15:04:05.999Z", date="2006-01-02")

    def __init__(
        self,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        *,
        job_timeout: float = JOB_TIMEOUT,
        **hooks: Unpack[ClientHooks],
    ) -> None:
        base_url = only_base_url(APP, settings, DEFAULT_BASE_URL)
        key = _private_key(credentials)
        # Polling waits on the client's clock, so that tests run both on one fake clock.
        self._clock: Clock = hooks.setdefault("clock", time.monotonic)
        self._sleep: Sleep = hooks.setdefault("sleep", asyncio.sleep)
        self.job_timeout = job_timeout
        hooks.setdefault("retry", RETRY_POLICY)
        self.http = AppHttpClient(
            APP,
            base_url,
            RATE_LIMIT,
            headers={
                "Authorization": f"Klaviyo-API-Key {key}",
                "revision": REVISION,
                "Accept": "application/vnd.api+json",
            },
            groups={"jobs": JOBS_RATE_LIMIT, "accounts": ACCOUNTS_RATE_LIMIT},
            rate_limit_reader=read_rate_limit,
            error_message=error_message,
            credential_name="private API key",
            **hooks,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def destination_schema(self) -> Type:
        return destination_schema()

    async def destination_identity(self) -> str:
        response = await self.http.request("GET", "/api/accounts", group="accounts")
        if response.status_code != 200:
            raise self._unexpected("reading the account", response)
        data = json_object(response).get("data")
        account = data[0] if isinstance(data, list) and data else None
        if not isinstance(account, Mapping) or not account.get("id"):
            raise ConnectorError(f"{APP} answered the account request without an account id")
        return f"klaviyo:account/{account['id']}"

    async def upserts(self, matching_path: str) -> bool:
        """An import job matches profiles by email, phone number and external id."""
        return matching_path in IDENTIFIERS

    # -- lookup --------------------------------------------------------------------------------

    async def lookup(self, matching_path: str, values: Sequence[str]) -> list[AppUser]:
        field = _identifier(matching_path)
        asked: dict[str, str] = {}
        for value in values:
            # A value with a quote or backslash cannot be written in a filter (Klaviyo
            # documents no escape) and is no valid identifier: it matches nobody.
            if value and '"' not in value and "\\" not in value:
                asked.setdefault(_match_key(field, value), value)
        keys = list(asked)
        users: list[AppUser] = []
        for start in range(0, len(keys), LOOKUP_PAGE_SIZE):
            chunk = keys[start : start + LOOKUP_PAGE_SIZE]
            for profile_id, stored in await self._profiles_by(field, chunk):
                wanted = asked.get(_match_key(field, stored))
                if wanted is not None:
                    users.append(AppUser(profile_id, wanted))
        return users

    async def _profiles_by(self, field: str, values: list[str]) -> list[tuple[str, str]]:
        """``(id, value)`` of the profiles whose ``field`` is one of ``values``."""
        quoted = ",".join(f'"{v}"' for v in values)
        params = {
            "filter": f"any({field},[{quoted}])",
            "page[size]": str(LOOKUP_PAGE_SIZE),
            "fields[profile]": field,
        }
        found: list[tuple[str, str]] = []
        async for item in self._pages("/api/profiles", params, None, "looking profiles up"):
            stored = (item.get("attributes") or {}).get(field)
            if item.get("id") and isinstance(stored, str) and stored:
                found.append((str(item["id"]), stored))
        return found

    async def _pages(
        self, path: str, params: dict[str, str], group: str | None, action: str
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Every item of a paged collection, following ``links.next``'s cursor."""
        while True:
            response = await self.http.request("GET", path, params=params, group=group)
            if response.status_code != 200:
                raise self._unexpected(action, response)
            body = documented_json(APP, response, "data")
            for item in body["data"]:
                if isinstance(item, Mapping):
                    yield item
            cursor = _next_cursor(body)
            if cursor is None:
                return
            params = {**params, "page[cursor]": cursor}

    # -- writes --------------------------------------------------------------------------------

    async def create(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        """Profiles already holding a record's identifier are answered ``existing_id`` (an
        import would update them); the others are imported, then looked up for their ids."""
        field = _identifier(matching_path)
        results: dict[int, WriteResult] = {}
        holders = await self._holders(field, records, results)
        pending = [r for r in records if r.key not in results]
        for record in pending:
            value = _value(record, field)
            if value is not None and (ids := holders.get(_match_key(field, value))):
                results[record.key] = WriteResult(record.key, existing_id=ids[0])
        pending = [r for r in pending if r.key not in results]
        await self._import_new(field, pending, results, idempotent=False)
        return [results[r.key] for r in records]

    async def upsert(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        """One import job; the profiles that existed before it are known from one lookup per
        100 records, so each result says whether it ``created`` the profile."""
        field = _identifier(matching_path)
        results: dict[int, WriteResult] = {}
        holders = await self._holders(field, records, results)
        pending = [r for r in records if r.key not in results]
        existing: dict[int, str] = {}
        for record in pending:
            ids = holders.get(_match_key(field, _value(record, field) or ""))
            if ids:
                existing[record.key] = ids[0]
        # Repeating an import is safe: it carries every value of the profile, matched by its
        # identifier, so a second job leaves the profile as the first did.
        job = self._job(pending, lambda r: None, results)
        ok = await self._run_job(job, results, idempotent=True)
        for record in ok:
            if record.key in existing:
                results[record.key] = WriteResult(record.key, external_id=existing[record.key])
        await self._find_created(field, [r for r in ok if r.key not in existing], results)
        return [results[r.key] for r in records]

    async def update(self, records: Sequence[WriteRecord]) -> list[WriteResult]:
        """One import job naming each profile by its id: nothing to look up afterwards."""
        results: dict[int, WriteResult] = {}
        with_id = []
        for record in records:
            if record.external_id:
                with_id.append(record)
            else:
                results[record.key] = WriteResult(record.key, error=f"no {APP} id to update")
        job = self._job(with_id, lambda r: r.external_id, results)
        for record in await self._run_job(job, results, idempotent=True):
            results[record.key] = WriteResult(record.key, external_id=record.external_id)
        return [results[r.key] for r in records]

    async def _holders(
        self, field: str, records: Sequence[WriteRecord], results: dict[int, WriteResult]
    ) -> dict[str, list[str]]:
        """The ids holding each record's identifier; records without one are answered."""
        values = []
        for record in records:
            value = _value(record, field)
            if value is None:
                results[record.key] = WriteResult(
                    record.key, error=f'no value of "{field}" to find the profile by'
                )
            else:
                values.append(value)
        return await self._ids_by_value(field, values)

    async def _ids_by_value(self, field: str, values: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for user in await self.lookup(field, values):
            found.setdefault(_match_key(field, user.matching_value), []).append(user.external_id)
        return found

    async def _import_new(
        self,
        field: str,
        records: list[WriteRecord],
        results: dict[int, WriteResult],
        *,
        idempotent: bool,
    ) -> None:
        """Import new profiles and find their ids. A job whose submission's outcome is unknown
        is never sent again as it was: the profiles found afterwards are done, and only the
        missing ones go into a new job."""
        pending = records
        for _ in range(MAX_UNKNOWN_ROUNDS):
            job = self._job(pending, lambda r: None, results)
            try:
                ok = await self._run_job(job, results, idempotent=idempotent)
            except OutcomeUnknownError:
                found = await self._ids_by_value(
                    field, [v for r in job.records if (v := _value(r, field)) is not None]
                )
                pending = []
                for record in job.records:
                    ids = found.get(_match_key(field, _value(record, field) or ""))
                    if ids:
                        results[record.key] = WriteResult(record.key, external_id=ids[0])
                    else:
                        pending.append(record)
                if not pending:
                    return
                continue
            await self._find_created(field, ok, results)
            return
        raise ConnectorError(
            f"{APP} failed {MAX_UNKNOWN_ROUNDS} times to answer an import of {len(pending)} "
            "profiles; those found afterwards were kept, the others were not sent again"
        )

    async def _find_created(
        self, field: str, records: list[WriteRecord], results: dict[int, WriteResult]
    ) -> None:
        found = await self._ids_by_value(
            field, [v for r in records if (v := _value(r, field)) is not None]
        )
        for record in records:
            ids = found.get(_match_key(field, _value(record, field) or ""), [])
            if len(ids) == 1:
                results[record.key] = WriteResult(record.key, external_id=ids[0], created=True)
            else:
                results[record.key] = WriteResult(
                    record.key,
                    error=f"{APP} imported this profile without error, but "
                    + (
                        f'no profile has its "{field}" afterwards'
                        if not ids
                        else f'{len(ids)} profiles have its "{field}": {", ".join(ids)}'
                    ),
                )

    def _job(
        self,
        records: Iterable[WriteRecord],
        profile_id: Callable[[WriteRecord], str | None],
        results: dict[int, WriteResult],
    ) -> _Job:
        job = _Job([], [])
        for record in records:
            try:
                profile: dict[str, Any] = {
                    "type": "profile",
                    "attributes": profile_attributes(record.properties),
                }
            except _RecordError as err:
                results[record.key] = WriteResult(record.key, error=str(err))
                continue
            if (known := profile_id(record)) is not None:
                profile["id"] = known
            if len(encode_json(profile)) > PROFILE_MAX_BYTES:
                results[record.key] = WriteResult(
                    record.key,
                    error=f"the profile is larger than the {PROFILE_MAX_BYTES // 1000} KB "
                    f"{APP} imports per profile",
                )
                continue
            job.records.append(record)
            job.profiles.append(profile)
        return job

    async def _run_job(
        self, job: _Job, results: dict[int, WriteResult], *, idempotent: bool
    ) -> list[WriteRecord]:
        """Import the job's profiles in as few jobs as the limits allow; answers the records
        imported without error (the refused ones are answered in ``results``)."""
        ok: list[WriteRecord] = []
        start = 0
        while start < len(job.profiles):
            size = 0
            end = start
            while end < len(job.profiles) and end - start < JOB_MAX_PROFILES:
                size += len(encode_json(job.profiles[end])) + 1
                if size > JOB_MAX_BYTES and end > start:
                    break
                end += 1
            part = _Job(job.records[start:end], job.profiles[start:end])
            ok += await self._import(part, results, idempotent)
            start = end
        return ok

    async def _import(
        self, job: _Job, results: dict[int, WriteResult], idempotent: bool
    ) -> list[WriteRecord]:
        body = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": job.profiles}},
            }
        }
        response = await self.http.request(
            "POST",
            "/api/profile-bulk-import-jobs",
            json_body=body,
            idempotent=idempotent,
            group="jobs",
        )
        if response.status_code in (400, 413, 422) and len(job.records) > 1:
            # A refusal of the whole job (one profile Klaviyo's schema refuses): halves find it.
            half = len(job.records) // 2
            first = _Job(job.records[:half], job.profiles[:half])
            second = _Job(job.records[half:], job.profiles[half:])
            return await self._import(first, results, idempotent) + await self._import(
                second, results, idempotent
            )
        if response.status_code in (400, 413, 422):
            results[job.records[0].key] = WriteResult(
                job.records[0].key, error=error_message(response)
            )
            return []
        if response.status_code != 202:
            raise self._unexpected("the profile import job", response)
        job_id = (json_object(response).get("data") or {}).get("id")
        if not isinstance(job_id, str) or not job_id:
            raise ConnectorError(f"{APP} accepted an import job without naming it")
        attributes = await self._wait(job_id)
        if attributes.get("status") == "cancelled":
            for record in job.records:
                results[record.key] = WriteResult(
                    record.key, error=f"{APP} cancelled the import job {job_id}"
                )
            return []
        failed = attributes.get("failed_count") or 0
        refused = await self._import_errors(job_id, job, results) if failed else set()
        return [r for r in job.records if r.key not in refused]

    async def _wait(self, job_id: str) -> Mapping[str, Any]:
        """Poll the job until it is complete or cancelled, for at most :attr:`job_timeout`."""
        started = self._clock()
        for poll in range(1_000_000):
            delay = POLL_DELAYS[poll] if poll < len(POLL_DELAYS) else POLL_EVERY
            if self._clock() - started + delay > self.job_timeout:
                break
            if delay:
                await self._sleep(delay)
            response = await self.http.request(
                "GET", f"/api/profile-bulk-import-jobs/{job_id}", group="jobs"
            )
            if response.status_code != 200:
                raise self._unexpected(f"reading the import job {job_id}", response)
            attributes = (json_object(response).get("data") or {}).get("attributes") or {}
            if attributes.get("status") in ("complete", "cancelled"):
                return dict(attributes)
        raise ConnectorError(
            f"{APP}'s import job {job_id} did not finish within {self.job_timeout:g} s; its "
            "profiles were not recorded as sent"
        )

    async def _import_errors(
        self, job_id: str, job: _Job, results: dict[int, WriteResult]
    ) -> set[int]:
        """Answer each refused record with its error; returns the keys refused. An error is
        matched to its record by the profile it carries (id or identifier) or by the index in
        its ``source.pointer``."""
        by_value: dict[tuple[str, str], WriteRecord] = {}
        for record, profile in zip(job.records, job.profiles, strict=True):
            if "id" in profile:
                by_value["id", profile["id"]] = record
            for field in IDENTIFIERS:
                value = profile["attributes"].get(field)
                if isinstance(value, str) and value:
                    by_value.setdefault((field, _match_key(field, value)), record)
        refused: set[int] = set()
        unassigned: list[str] = []
        params = {"page[size]": "100"}
        path = f"/api/profile-bulk-import-jobs/{job_id}/import-errors"
        async for item in self._pages(path, params, "jobs", "reading the import errors"):
            attributes = item.get("attributes") or {}
            errored = _errored_record(attributes, by_value, job.records)
            text = _error_text(attributes)
            if errored is None:
                unassigned.append(text)
            elif errored.key not in refused:
                refused.add(errored.key)
                results[errored.key] = WriteResult(errored.key, error=text)
        if unassigned:
            # Errors naming no profile: every record not refused by name is in doubt.
            message = f"{APP} reported errors without naming the profile: " + "; ".join(
                unassigned[:3]
            )
            for record in job.records:
                if record.key not in refused:
                    refused.add(record.key)
                    results[record.key] = WriteResult(record.key, error=message)
        return refused

    def _unexpected(self, action: str, response: httpx.Response) -> ConnectorError:
        return ConnectorError(
            f"{APP} answered {action} with {response.status_code}: {error_message(response)}"
        )


def _errored_record(
    attributes: Mapping[str, Any],
    by_value: Mapping[tuple[str, str], WriteRecord],
    records: list[WriteRecord],
) -> WriteRecord | None:
    payload = attributes.get("original_payload")
    if isinstance(payload, Mapping):
        inner = payload.get("attributes")
        sent = inner if isinstance(inner, Mapping) else payload
        if isinstance(payload.get("id"), str) and ("id", payload["id"]) in by_value:
            return by_value["id", payload["id"]]
        for field in IDENTIFIERS:
            value = sent.get(field)
            if isinstance(value, str) and (field, _match_key(field, value)) in by_value:
                return by_value[field, _match_key(field, value)]
    source = attributes.get("source")
    pointer = source.get("pointer") if isinstance(source, Mapping) else None
    found = _PROFILE_INDEX.search(pointer) if isinstance(pointer, str) else None
    if found is not None and int(found.group(1)) < len(records):
        return records[int(found.group(1))]
    return None


def _next_cursor(body: Mapping[str, Any]) -> str | None:
    links = body.get("links")
    following = links.get("next") if isinstance(links, Mapping) else None
    if not isinstance(following, str) or not following:
        return None
    cursors = parse_qs(urlsplit(following).query).get("page[cursor]")
    return cursors[0] if cursors else None


def _value(record: WriteRecord, field: str) -> str | None:
    value = value_at(record.properties, field)
    return value if isinstance(value, str) and value else None


def _identifier(path: str) -> str:
    if path not in IDENTIFIERS:
        raise ConnectorError(
            f'{APP} finds profiles by "email", "phone_number" or "external_id", not by "{path}"'
        )
    return path


# ---------------------------------------------------------------------------------------------
# Settings and credentials
# ---------------------------------------------------------------------------------------------


def _private_key(credentials: Mapping[str, str]) -> str:
    key = credential(APP, credentials, "privateApiKey")
    if not isinstance(key, str) or not _PRIVATE_KEY.match(key):
        raise ConnectorError(
            f'the {APP} private API key must be "pk_" followed by at least 34 letters and '
            "digits (a public key or site id cannot write profiles)"
        )
    return key


def connect(
    settings: Mapping[str, Any], credentials: Mapping[str, str], **hooks: Unpack[ClientHooks]
) -> KlaviyoConnector:
    """The :class:`~sluice.apps.connector.ConnectorFactory` of Klaviyo."""
    return KlaviyoConnector(settings, credentials, **hooks)
