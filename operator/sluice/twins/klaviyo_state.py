"""The profiles and import jobs of the Klaviyo twin, and what each endpoint does with them.

Every operation answers ``(status, body)`` the way Klaviyo's API answers it (JSON:API documents,
``{"errors": [...]}`` for refusals); the HTTP layer (:mod:`sluice.twins.klaviyo_app`) decodes
requests and encodes answers. Callers hold the twin's lock for the duration of a call.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlencode

Answer = tuple[int, dict[str, Any]]

#: What an import job takes: profiles per job, bytes per job and per profile.
JOB_MAX_PROFILES = 10_000
JOB_MAX_BYTES = 5_000_000
PROFILE_MAX_BYTES = 100_000
#: Page sizes of the collections (Klaviyo: default 20, 1 to 100).
PAGE_DEFAULT = 20
PAGE_MAX = 100
#: Values in one ``any(...)`` filter [not documented: chosen to equal the largest page].
ANY_MAX_VALUES = 100

IDENTIFIERS = ("email", "phone_number", "external_id")
STRING_ATTRIBUTES = (
    *IDENTIFIERS,
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
)
LOCATION_FIELDS = (
    "address1",
    "address2",
    "city",
    "country",
    "latitude",
    "longitude",
    "region",
    "zip",
    "timezone",
    "ip",
)
#: Attributes a profile carries in answers, in Klaviyo's order.
ANSWERED_ATTRIBUTES = (
    *STRING_ATTRIBUTES,
    "created",
    "updated",
    "last_event_date",
    "location",
    "properties",
)
_WRITABLE = frozenset({*STRING_ATTRIBUTES, "location", "properties", "_kx"})
_EMAIL = re.compile(
    r"[^@\s\"<>(),;:\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+\Z"
)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}\Z")
_FILTER = re.compile(r"\s*(equals|any)\(\s*([a-z_]+)\s*,\s*(.*)\)\s*\Z", re.S)
_STRING = re.compile(r"\s*(\"[^\"\\]*\"|'[^'\\]*')\s*")
_FILTER_FIELDS = frozenset({"id", *IDENTIFIERS})


def error(status: int, code: str, title: str, detail: str, **source: str) -> dict[str, Any]:
    """One JSON:API error object, as Klaviyo writes them."""
    item: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
        "source": source or {"pointer": "/data/"},
    }
    return item


def errors(status: int, code: str, title: str, detail: str, **source: str) -> Answer:
    return status, {"errors": [error(status, code, title, detail, **source)]}


def invalid(detail: str, **source: str) -> Answer:
    return errors(400, "invalid", "Invalid input.", detail, **source)


class RefusedError(Exception):
    """A request refused as a whole, with Klaviyo's answer."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer[1]["errors"][0]["detail"])
        self.answer = answer


def refuse(detail: str, **source: str) -> NoReturn:
    raise RefusedError(invalid(detail, **source))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass(slots=True)
class Profile:
    id: str
    attributes: dict[str, Any]
    created: str
    updated: str

    def to_json(self, base_url: str, fields: Iterable[str] | None = None) -> dict[str, Any]:
        every = {
            **{name: self.attributes.get(name) for name in STRING_ATTRIBUTES},
            "created": self.created,
            "updated": self.updated,
            "last_event_date": None,
            "location": {name: None for name in LOCATION_FIELDS}
            | dict(self.attributes.get("location") or {}),
            "properties": dict(self.attributes.get("properties") or {}),
        }
        chosen = every if fields is None else {name: every[name] for name in fields}
        return {
            "type": "profile",
            "id": self.id,
            "attributes": chosen,
            "links": {"self": f"{base_url}/api/profiles/{self.id}/"},
        }


@dataclass(slots=True)
class Job:
    id: str
    profiles: list[dict[str, Any]]
    created_at: str
    polls: int = 0
    status: str = "queued"
    started_at: str | None = None
    completed_at: str | None = None
    completed_count: int = 0
    failed_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    profile_ids: list[str] = field(default_factory=list)

    def to_json(self, base_url: str) -> dict[str, Any]:
        link = f"{base_url}/api/profile-bulk-import-jobs/{self.id}"
        return {
            "type": "profile-bulk-import-job",
            "id": self.id,
            "attributes": {
                "status": self.status,
                "created_at": self.created_at,
                "total_count": len(self.profiles),
                "completed_count": self.completed_count,
                "failed_count": self.failed_count,
                "completed_at": self.completed_at,
                "expires_at": None,
                "started_at": self.started_at,
            },
            "relationships": {
                "lists": {"data": [], "links": {"self": f"{link}/relationships/lists/"}},
                "profiles": {"links": {"self": f"{link}/relationships/profiles/"}},
                "import-errors": {"links": {"related": f"{link}/import-errors/"}},
            },
            "links": {"self": f"{link}/"},
        }


class ProfileStore:
    """The account's profiles, unique by email, phone number and external id, and its import
    jobs. ``job_polls`` is the poll of a job that finds it complete (1: the first); jobs are
    carried out in submission order, so completing one completes every earlier one."""

    def __init__(self, job_polls: int = 1) -> None:
        self.job_polls = max(1, job_polls)
        self.clear()

    def clear(self) -> None:
        self.profiles: dict[str, Profile] = {}
        self.by_identifier: dict[tuple[str, str], str] = {}
        self.jobs: dict[str, Job] = {}
        self.pending: list[str] = []
        self.creates = 0
        self.updates = 0
        self._next = 1

    # -- profiles ------------------------------------------------------------------------------

    def _new_id(self) -> str:
        # Klaviyo's ids are 26-character ULIDs; these sort in creation order.
        number, self._next = self._next, self._next + 1
        return f"01J{number:023d}"

    @staticmethod
    def _key(name: str, value: str) -> tuple[str, str]:
        return name, value.lower() if name == "email" else value

    def holder(self, name: str, value: str) -> Profile | None:
        found = self.by_identifier.get(self._key(name, value))
        return self.profiles.get(found) if found else None

    def check(self, attributes: Mapping[str, Any]) -> str | None:
        """Why a profile's attributes are refused, or None."""
        for name, value in attributes.items():
            if name not in _WRITABLE:
                return f"'{name}' is not a valid field for the resource 'profile'."
            textual = name in STRING_ATTRIBUTES or name == "_kx"
            if textual and value is not None and not isinstance(value, str):
                return f"'{name}' must be a string or null."
        email = attributes.get("email")
        if isinstance(email, str) and not _EMAIL.match(email):
            return f"Invalid email address: {email!r}."
        phone = attributes.get("phone_number")
        if isinstance(phone, str) and not _E164.match(phone):
            return (
                f"Invalid phone number format (Example of a valid format: +12345678901): {phone!r}."
            )
        location = attributes.get("location")
        if location is not None:
            if not isinstance(location, Mapping):
                return "'location' must be an object or null."
            for name, value in location.items():
                if name not in LOCATION_FIELDS:
                    return f"'{name}' is not a valid field of 'location'."
                numeric = name in ("latitude", "longitude")
                allowed: tuple[type, ...] = (str, int, float) if numeric else (str,)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, allowed)
                ):
                    return f"'location.{name}' has an invalid type."
        properties = attributes.get("properties")
        if properties is not None and not isinstance(properties, Mapping):
            return "'properties' must be an object or null."
        return None

    def write(
        self, profile_id: str | None, attributes: Mapping[str, Any]
    ) -> tuple[Profile | None, dict[str, Any] | None]:
        """Create or update one profile as an import does: by ``id``, else by its
        identifiers. Answers the profile, or the error refusing it."""
        problem = self.check(attributes)
        if problem is not None:
            return None, error(
                400, "invalid", "Invalid input.", problem, pointer="/data/attributes"
            )
        named = {
            name: attributes[name]
            for name in IDENTIFIERS
            if isinstance(attributes.get(name), str) and attributes[name]
        }
        holders = {p.id for name, value in named.items() if (p := self.holder(name, value))}
        if profile_id is not None:
            target = self.profiles.get(profile_id)
            if target is None:
                return None, error(
                    404,
                    "not_found",
                    "Not found.",
                    f"A profile with id {profile_id} does not exist.",
                    pointer="/data/id",
                )
            others = holders - {target.id}
        else:
            if not named:
                return None, error(
                    400,
                    "invalid",
                    "Invalid input.",
                    "One of email, phone_number, or external_id is required to identify a profile.",
                    pointer="/data/attributes",
                )
            target = self.profiles.get(next(iter(holders))) if len(holders) == 1 else None
            others = holders if len(holders) > 1 else set()
        if others:
            # [not documented] identifiers held by two profiles: refused, as create and
            # update refuse them (409 duplicate_profile).
            item = error(
                409,
                "duplicate_profile",
                "Conflict.",
                "A profile already exists with one of these identifiers.",
                pointer="/data/attributes",
            )
            item["meta"] = {"duplicate_profile_id": sorted(others)[0]}
            return None, item
        if target is None:
            target = Profile(self._new_id(), {}, _now(), _now())
            self.profiles[target.id] = target
            self.creates += 1
        else:
            target.updated = _now()
            self.updates += 1
        self._apply(target, attributes)
        return target, None

    def _apply(self, target: Profile, attributes: Mapping[str, Any]) -> None:
        for name in IDENTIFIERS:
            if name in attributes:
                old = target.attributes.get(name)
                if old:
                    self.by_identifier.pop(self._key(name, old), None)
        for name, value in attributes.items():
            if name == "_kx":
                continue
            stored = value
            if name == "email" and isinstance(value, str):
                stored = value.lower()  # [not documented] Klaviyo shows addresses lower-cased
            if name in ("location", "properties") and value is not None:
                # Keys absent from the request are left as they were.
                stored = {**(target.attributes.get(name) or {}), **value}
            target.attributes[name] = stored
        for name in IDENTIFIERS:
            value = target.attributes.get(name)
            if isinstance(value, str) and value:
                self.by_identifier[self._key(name, value)] = target.id

    # -- reading ---------------------------------------------------------------------------------

    def list_profiles(self, query: Mapping[str, str], base_url: str) -> Answer:
        size = _page_size(query.get("page[size]"))
        fields = _sparse_fields(query.get("fields[profile]"))
        selected: list[Profile] = list(self.profiles.values())
        text = query.get("filter")
        if text is not None:
            name, values = parse_filter(text)
            # Compared exactly with what is stored [not documented: emails are stored
            # lower-cased, and a filter naming another case finds nothing].
            wanted = set(values)
            if name == "id":
                selected = [p for p in selected if p.id in wanted]
            else:
                selected = [p for p in selected if p.attributes.get(name) in wanted]
        return _page(
            [p.to_json(base_url, fields) for p in selected],
            query,
            size,
            f"{base_url}/api/profiles/",
        )

    # -- import jobs -----------------------------------------------------------------------------

    def submit(self, body: Any, size: int) -> Answer:
        if size > JOB_MAX_BYTES:
            return errors(
                413,
                "payload_too_large",
                "Payload too large.",
                f"The maximum allowed payload size is 5MB; this one is {size} bytes.",
            )
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, Mapping) or data.get("type") != "profile-bulk-import-job":
            return invalid("'data.type' must be 'profile-bulk-import-job'.", pointer="/data/type")
        attributes = data.get("attributes")
        profiles = attributes.get("profiles") if isinstance(attributes, Mapping) else None
        items = profiles.get("data") if isinstance(profiles, Mapping) else None
        if not isinstance(items, list):
            return invalid("'profiles' is a required field.", pointer="/data/attributes/profiles")
        if not items:
            return invalid(
                "At least one profile is required.", pointer="/data/attributes/profiles/data"
            )
        if len(items) > JOB_MAX_PROFILES:
            return invalid(
                f"A job accepts at most {JOB_MAX_PROFILES} profiles; {len(items)} were sent.",
                pointer="/data/attributes/profiles/data",
            )
        for index, item in enumerate(items):
            pointer = f"/data/attributes/profiles/data/{index}"
            if not isinstance(item, Mapping) or item.get("type") != "profile":
                return invalid("Each profile must be of type 'profile'.", pointer=pointer)
            if not isinstance(item.get("attributes"), Mapping):
                return invalid("'attributes' is a required field.", pointer=f"{pointer}/attributes")
            if item.get("id") is not None and not isinstance(item["id"], str):
                return invalid("'id' must be a string.", pointer=f"{pointer}/id")
            if len(_encoded_size(item)) > PROFILE_MAX_BYTES:
                return invalid(
                    "The maximum allowed payload size per profile is 100KB.", pointer=pointer
                )
        job = Job(f"{uuid.uuid4().hex[:26].upper()}", [dict(i) for i in items], _now())
        self.jobs[job.id] = job
        self.pending.append(job.id)
        return 202, {"data": job}  # encoded by the caller, which knows the base URL

    def poll(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        if job.status in ("queued", "processing"):
            job.polls += 1
            if job.polls >= self.job_polls:
                self.run_jobs(until=job.id)
            else:
                job.status = "processing"
                job.started_at = job.started_at or _now()
        return job

    def run_jobs(self, until: str | None = None) -> None:
        """Carry out pending jobs in submission order, up to ``until`` (all when None)."""
        while self.pending:
            job = self.jobs[self.pending.pop(0)]
            job.started_at = job.started_at or _now()
            for index, item in enumerate(job.profiles):
                profile, refused = self.write(item.get("id"), item["attributes"])
                if profile is None:
                    assert refused is not None
                    job.failed_count += 1
                    job.errors.append(
                        {
                            "type": "import-error",
                            "id": str(uuid.uuid4()),
                            "attributes": {
                                "code": refused["code"],
                                "title": refused["title"],
                                "detail": refused["detail"],
                                "source": {"pointer": f"/data/attributes/profiles/data/{index}"},
                                "original_payload": item,
                            },
                        }
                    )
                else:
                    job.completed_count += 1
                    job.profile_ids.append(profile.id)
            job.status = "complete"
            job.completed_at = _now()
            if job.id == until:
                return

    def import_errors(self, job_id: str, query: Mapping[str, str], base_url: str) -> Answer:
        job = self.jobs.get(job_id)
        if job is None:
            return errors(404, "not_found", "Not found.", f"Job {job_id} does not exist.")
        size = _page_size(query.get("page[size]"))
        link = f"{base_url}/api/profile-bulk-import-jobs/{job_id}/import-errors/"
        return _page(list(job.errors), query, size, link)


def _encoded_size(item: Any) -> bytes:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()


def _page_size(text: str | None) -> int:
    if text is None:
        return PAGE_DEFAULT
    if not text.isdigit() or not 1 <= int(text) <= PAGE_MAX:
        refuse(
            f"Invalid page size '{text}': it must be an integer from 1 to {PAGE_MAX}.",
            parameter="page[size]",
        )
    return int(text)


def _sparse_fields(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n for n in text.split(",") if n]
    for name in names:
        if name not in ANSWERED_ATTRIBUTES:
            refuse(
                f"'{name}' is not a valid field for the resource 'profile'.",
                parameter="fields[profile]",
            )
    return names


def parse_filter(text: str) -> tuple[str, list[str]]:
    """``equals(field,"v")`` or ``any(field,["a","b"])`` on id, email, phone_number or
    external_id, as the profiles endpoint allows; anything else is refused (400)."""
    found = _FILTER.match(text)
    if found is None:
        refuse(f"Invalid filter provided: {text!r}.", parameter="filter")
    operator, name, argument = found.groups()
    if name not in _FILTER_FIELDS:
        refuse(f"'{name}' is not a valid field for the filter.", parameter="filter")
    if operator == "equals":
        single = _STRING.fullmatch(argument)
        if single is None:
            refuse(f"Invalid filter provided: {text!r}.", parameter="filter")
        return name, [single.group(1)[1:-1]]
    argument = argument.strip()
    if not (argument.startswith("[") and argument.endswith("]")):
        refuse(f"'any' takes a list of values: {text!r}.", parameter="filter")
    inner = argument[1:-1]
    values: list[str] = []
    for part in _split_list(inner):
        single = _STRING.fullmatch(part)
        if single is None:
            refuse(f"Invalid filter provided: {text!r}.", parameter="filter")
        values.append(single.group(1)[1:-1])
    if not values or len(values) > ANY_MAX_VALUES:
        refuse(
            f"'any' takes 1 to {ANY_MAX_VALUES} values; {len(values)} were given.",
            parameter="filter",
        )
    return name, values


def _split_list(inner: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for char in inner:
        if quote is None and char == ",":
            parts.append("".join(current))
            current = []
            continue
        if char in "\"'":
            quote = None if quote == char else (char if quote is None else quote)
        current.append(char)
    parts.append("".join(current))
    return parts if inner.strip() else []


def _page(items: list[Any], query: Mapping[str, str], size: int, link: str) -> Answer:
    offset = 0
    cursor = query.get("page[cursor]")
    if cursor:
        try:
            offset = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except ValueError:
            refuse("Invalid page cursor.", parameter="page[cursor]")
    page = items[offset : offset + size]
    others = urlencode(sorted((k, v) for k, v in query.items() if k != "page[cursor]"))
    links: dict[str, Any] = {
        "self": link + (f"?{others}" if others else ""),
        "next": None,
        "prev": None,
    }
    if offset + size < len(items):
        token = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
        links["next"] = f"{link}?{others + '&' if others else ''}page[cursor]={token}"
    if offset > 0:
        token = base64.urlsafe_b64encode(str(max(0, offset - size)).encode()).decode()
        links["prev"] = f"{link}?{others + '&' if others else ''}page[cursor]={token}"
    return 200, {"data": page, "links": links}
