"""The contacts of the HubSpot twin and what each CRM endpoint does with them.

Every method answers ``(status, body)`` the way HubSpot's CRM v3 API answers that request; the
HTTP layer (:mod:`sluice.twins.hubspot_app`) only decodes the request and encodes the answer.
Callers hold :attr:`ContactStore.lock` for the duration of a call.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sluice.fastjson import decode_json, encode_json
from sluice.twins.hubspot_properties import (
    DEFAULT_PROPERTIES,
    DEFAULT_RETURNED,
    InvalidValue,
    Normalizer,
    PropertyDefinition,
    _string,
    format_datetime_ms,
    index,
    invalid_record,
    normalizer_for,
)
from sluice.twins.hubspot_search import search_contacts

Answer = tuple[int, dict[str, Any]]

#: Inputs per batch call, as HubSpot's batch endpoints allow.
BATCH_LIMIT = 100
#: Page size bounds of ``GET /crm/v3/objects/contacts``.
LIST_DEFAULT_LIMIT = 10
LIST_MAX_LIMIT = 100
#: Written into every state file: a file of another format is refused rather than misread.
STATE_FORMAT = 1

_NOT_FOUND = (
    "Could not get some CONTACT objects, they may be deleted or not exist. "
    "Check that ids are valid."
)


def error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error body: ``status``, ``message``, ``correlationId``, ``category``."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    body.update(extra)
    return body


def _invalid_message(records: Sequence[Mapping[str, Any]]) -> str:
    return "Property values were not valid: " + json.dumps(list(records), separators=(",", ":"))


class Contact:
    """One contact: its numeric id and its properties, every value a string."""

    __slots__ = ("created_at", "id", "properties", "updated_at")

    def __init__(
        self, id_: int, properties: dict[str, str], created_at: str, updated_at: str | None = None
    ) -> None:
        self.id = id_
        self.properties = properties
        self.created_at = created_at
        self.updated_at = created_at if updated_at is None else updated_at

    def to_json(self, names: Sequence[str] | None = None, *, copy: bool = True) -> dict[str, Any]:
        """The contact as HubSpot returns it; ``names`` None returns every set property, a
        list returns exactly those (null for the ones without a value). ``copy`` False shares
        the property dict: only for a body encoded before the lock is released."""
        props: Mapping[str, str | None]
        if names is None:
            props = dict(self.properties) if copy else self.properties
        else:
            get = self.properties.get
            props = {name: get(name) for name in names}
        return {
            "id": str(self.id),
            "properties": props,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": False,
        }


class _Failure:
    __slots__ = ("category", "context", "message", "records", "status")

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        records: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
    ) -> None:
        self.status = status
        self.category = category
        self.message = message
        self.records = records
        self.context = context or {}

    def whole_batch(self) -> Answer:
        extra: dict[str, Any] = {}
        if self.context:
            extra["context"] = self.context
        if self.records:
            extra["errors"] = [
                {
                    "message": r["message"],
                    "code": r["error"],
                    "context": {"propertyName": [r["name"]]},
                }
                for r in self.records
            ]
        return self.status, error_body(self.category, self.message, **extra)

    def for_input(self, trace_id: str) -> dict[str, Any]:
        context = dict(self.context)
        context["objectWriteTraceId"] = [trace_id]
        return {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": context,
        }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SavedState(NamedTuple):
    """A state file's content, checked as far as :meth:`ContactStore.load_state` needs."""

    next_id: int
    custom_properties: list[PropertyDefinition]
    contacts: list[Any]


def decode_state(raw: bytes) -> SavedState:
    """The state :meth:`ContactStore.encode_state` wrote; raises ``ValueError`` saying what is
    wrong when ``raw`` is not one."""
    state = decode_json(raw)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"not a twin state of format {STATE_FORMAT}")
    next_id, properties, contacts = (state.get(k) for k in ("nextId", "properties", "contacts"))
    if type(next_id) is not int or not isinstance(properties, list):
        raise ValueError("nextId or properties is missing")
    if not isinstance(contacts, list):
        raise ValueError("contacts is not a list")
    try:
        custom = [PropertyDefinition.from_json(p) for p in properties]
    except (KeyError, TypeError, AttributeError, ValueError) as bad:
        raise ValueError(f"a custom property is malformed ({bad!r})") from None
    return SavedState(next_id, custom, contacts)


class ContactStore:
    """The portal's contacts, their unique-value indexes and the property definitions."""

    def __init__(self, custom_properties: Iterable[PropertyDefinition] = ()) -> None:
        self.lock = threading.Lock()
        self.custom_properties = index(custom_properties)
        self.definitions = index([*DEFAULT_PROPERTIES, *self.custom_properties.values()])
        self._writable: dict[str, tuple[PropertyDefinition, Normalizer]] = {}
        self.unique_names: tuple[str, ...] = tuple(
            p.name for p in self.definitions.values() if p.unique
        )
        for prop in self.definitions.values():
            if not prop.read_only:
                self._writable[prop.name] = (prop, normalizer_for(prop))
        #: Goes up with every change to the contacts: what tells a save is due.
        self.revision = 0
        self.clear()

    def clear(self) -> None:
        self.revision += 1
        self.contacts: dict[int, Contact] = {}
        self.ids: list[int] = []
        self.unique: dict[str, dict[str, int]] = {name: {} for name in self.unique_names}
        self.next_id = 1001
        self.creates = 0
        self.updates = 0

    # -- persistence --------------------------------------------------------------------------

    def encode_state(self) -> bytes:
        """The custom properties, the contacts and the id counter as JSON (the caller holds the
        lock: the property dicts are the live ones)."""
        contacts = (self.contacts[i] for i in self.ids)
        rows = [(c.id, c.properties, c.created_at, c.updated_at) for c in contacts]
        return encode_json(
            {
                "format": STATE_FORMAT,
                "nextId": self.next_id,
                "properties": [p.to_json() for p in self.custom_properties.values()],
                "contacts": rows,
            }
        )

    def load_state(self, saved: SavedState) -> None:
        """Replace the contacts with the saved ones; raises ``ValueError`` on a malformed one
        (the store is then to be discarded). The definitions are the caller's to merge."""
        self.clear()
        contacts = self.contacts
        ids = self.ids
        unique = [(name, self.unique[name]) for name in self.unique_names]
        for row in saved.contacts:
            try:
                contact_id, properties, created_at, updated_at = row
            except (TypeError, ValueError):
                message = f"contact {row!r:.80} is not [id, properties, created, updated]"
                raise ValueError(message) from None
            if type(contact_id) is not int or not isinstance(properties, dict):
                raise ValueError(f"contact {contact_id!r:.40} has no numeric id or no properties")
            if contact_id in contacts:
                raise ValueError(f"contact {contact_id} is saved twice")
            contacts[contact_id] = Contact(contact_id, properties, str(created_at), str(updated_at))
            ids.append(contact_id)
            for name, table in unique:
                value = properties.get(name)
                if value is not None:
                    table[value] = contact_id
        ids.sort()
        # Never below a saved id, whatever nextId says: new ids must not collide.
        self.next_id = max(saved.next_id, ids[-1] + 1 if ids else 0)

    # -- values -----------------------------------------------------------------------------

    def _normalize(self, properties: Any) -> tuple[dict[str, str], list[str], list[dict[str, Any]]]:
        """Written values → ``(stored text by name, names cleared, HubSpot error records)``; an
        empty string (or null) clears a property, as in HubSpot."""
        out: dict[str, str] = {}
        cleared: list[str] = []
        errors: list[dict[str, Any]] = []
        if not isinstance(properties, dict):
            message = "properties is not an object"
            return out, cleared, [invalid_record("properties", "INVALID_INPUT", message)]
        writable = self._writable
        for name, value in properties.items():
            entry = writable.get(name)
            if entry is None:
                if name in self.definitions:
                    message = f'"{name}" is a read only property; its value cannot be set.'
                    errors.append(invalid_record(name, "READ_ONLY_VALUE", message))
                else:
                    message = f'Property "{name}" does not exist'
                    errors.append(invalid_record(name, "PROPERTY_DOESNT_EXIST", message))
                continue
            if value is None or value == "":
                cleared.append(name)
                continue
            prop, normalize = entry
            if normalize is _string and type(value) is str:
                out[name] = value
                continue
            try:
                out[name] = normalize(prop, value)
            except InvalidValue as refused:
                errors.append(invalid_record(name, refused.code, refused.message))
        return out, cleared, errors

    def _lookup(self, id_property: str | None, value: Any) -> Contact | None:
        if id_property in (None, "", "hs_object_id"):
            text = str(value)
            return self.contacts.get(int(text)) if text.isdigit() else None
        assert id_property is not None
        table = self.unique.get(id_property)
        if table is None:
            return None
        key = str(value).strip().lower() if id_property == "email" else str(value)
        found = table.get(key)
        return None if found is None else self.contacts.get(found)

    def _unknown_id_property(self, id_property: Any) -> Answer | None:
        if id_property in (None, "", "hs_object_id") or id_property in self.unique:
            return None
        return 400, error_body(
            "VALIDATION_ERROR", f"{id_property} is not a unique property of CONTACT objects"
        )

    # -- batch plumbing ---------------------------------------------------------------------

    @staticmethod
    def _inputs(body: Any) -> list[dict[str, Any]] | Answer:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            return 400, error_body("VALIDATION_ERROR", "Invalid input JSON: inputs must be a list")
        if len(inputs) > BATCH_LIMIT:
            return 400, error_body(
                "VALIDATION_ERROR",
                f"Batch input size {len(inputs)} exceeds the limit of {BATCH_LIMIT} inputs",
            )
        return inputs

    @staticmethod
    def _batch(
        results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        body["startedAt"] = started
        body["completedAt"] = format_datetime_ms(_now_ms())
        return body

    def _conflict(
        self, values: Mapping[str, str], pending: dict[str, dict[str, int]], own: int | None
    ) -> _Failure | None:
        for name in self.unique_names:
            value = values.get(name)
            if value is None:
                continue
            holder = self.unique[name].get(value)
            if holder is None:
                holder = pending[name].get(value)
            if holder is not None and holder != own:
                return _Failure(409, "CONFLICT", f"Contact already exists. Existing ID: {holder}")
        return None

    def _insert(self, contact_id: int, values: dict[str, str], stamp: str) -> Contact:
        """A new contact holding ``values`` (the dict becomes its properties)."""
        values["hs_object_id"] = str(contact_id)
        values["createdate"] = stamp
        values["lastmodifieddate"] = stamp
        contact = Contact(contact_id, values, stamp)
        self.contacts[contact_id] = contact
        self.ids.append(contact_id)
        for name in self.unique_names:
            value = values.get(name)
            if value is not None:
                self.unique[name][value] = contact_id
        return contact

    def _modify(
        self, contact: Contact, values: dict[str, str], cleared: list[str], stamp: str
    ) -> None:
        props = contact.properties
        for name in cleared:
            old = props.pop(name, None)
            if old is not None and name in self.unique:
                self.unique[name].pop(old, None)
        for name, value in values.items():
            if name in self.unique:
                old = props.get(name)
                if old is not None and old != value:
                    self.unique[name].pop(old, None)
                self.unique[name][value] = contact.id
            props[name] = value
        props["lastmodifieddate"] = stamp
        contact.updated_at = stamp

    def _admit(
        self,
        values: Mapping[str, str],
        records: list[dict[str, Any]],
        own: int,
        pending: dict[str, dict[str, int]],
        traced: bool,
    ) -> Answer | _Failure | None:
        """One input of a create or upsert, to be written as contact ``own``: a value another
        contact holds refuses the whole batch (an answer; HubSpot never answers a 207 for a
        conflict); invalid values fail the input (its failure; the whole batch's answer when
        the inputs carry no trace ids); else its unique values are reserved for ``own``
        (None)."""
        conflict = self._conflict(values, pending, own)
        if conflict is not None:
            return conflict.whole_batch()
        if records:
            failure = _Failure(400, "VALIDATION_ERROR", _invalid_message(records), records)
            return failure if traced else failure.whole_batch()
        for name in self.unique_names:
            value = values.get(name)
            if value is not None:
                pending[name][value] = own
        return None

    # -- endpoints --------------------------------------------------------------------------

    def properties_json(self) -> Answer:
        return 200, {"results": [p.to_json() for p in self.definitions.values()]}

    def batch_create(self, body: Any) -> Answer:
        inputs = self._inputs(body)
        if isinstance(inputs, tuple):
            return inputs
        now = _now_ms()
        stamp = format_datetime_ms(now)
        traced = any("objectWriteTraceId" in i for i in inputs)
        pending: dict[str, dict[str, int]] = {name: {} for name in self.unique_names}
        accepted: list[tuple[int, int, dict[str, str]]] = []
        failures: list[tuple[int, _Failure]] = []
        next_id = self.next_id
        for position, item in enumerate(inputs):
            values, _, records = self._normalize(item.get("properties"))
            refused = self._admit(values, records, next_id, pending, traced)
            if isinstance(refused, tuple):
                return refused
            if refused is not None:
                failures.append((position, refused))
                continue
            accepted.append((position, next_id, values))
            next_id += 1
        results = []
        for position, contact_id, values in accepted:
            contact = self._insert(contact_id, values, stamp)
            results.append(_result(contact, inputs[position]))
        self.next_id = next_id
        self.creates += len(accepted)
        self.revision += 1
        errors = [f.for_input(str(inputs[p].get("objectWriteTraceId", ""))) for p, f in failures]
        return (207 if errors else 201), self._batch(results, errors, stamp)

    def batch_update(self, body: Any) -> Answer:
        inputs = self._inputs(body)
        if isinstance(inputs, tuple):
            return inputs
        now = _now_ms()
        stamp = format_datetime_ms(now)
        traced = any("objectWriteTraceId" in i for i in inputs)
        pending: dict[str, dict[str, int]] = {name: {} for name in self.unique_names}
        seen: set[int] = set()
        accepted: list[tuple[int, Contact, dict[str, str], list[str]]] = []
        failures: list[tuple[int, _Failure]] = []
        for position, item in enumerate(inputs):
            id_property = item.get("idProperty") or body.get("idProperty")
            refused = self._unknown_id_property(id_property)
            if refused is not None:
                return refused
            raw_id = item.get("id")
            contact = None if raw_id is None else self._lookup(id_property, raw_id)
            failure: _Failure | None = None
            values: dict[str, str] = {}
            cleared: list[str] = []
            if contact is None:
                failure = _Failure(
                    404, "OBJECT_NOT_FOUND", _NOT_FOUND, context={"ids": [str(raw_id)]}
                )
            elif contact.id in seen:
                return 400, error_body(
                    "VALIDATION_ERROR",
                    f"Duplicate IDs found in batch input: [{contact.id}]. IDs must be unique",
                )
            else:
                seen.add(contact.id)
                values, cleared, records = self._normalize(item.get("properties"))
                if records:
                    failure = _Failure(400, "VALIDATION_ERROR", _invalid_message(records), records)
                else:
                    failure = self._conflict(values, pending, contact.id)
            if failure is not None:
                if not traced:
                    return failure.whole_batch()
                failures.append((position, failure))
                continue
            assert contact is not None
            for name in self.unique_names:
                value = values.get(name)
                if value is not None:
                    pending[name][value] = contact.id
            accepted.append((position, contact, values, cleared))
        results = []
        for position, contact, values, cleared in accepted:
            self._modify(contact, values, cleared, stamp)
            results.append(_result(contact, inputs[position]))
        self.updates += len(accepted)
        self.revision += 1
        errors = [f.for_input(str(inputs[p].get("objectWriteTraceId", ""))) for p, f in failures]
        return (207 if errors else 200), self._batch(results, errors, stamp)

    def batch_upsert(self, body: Any) -> Answer:
        """Each input names a contact by the value (``id``) of a unique property
        (``idProperty``): the contact holding it is updated, or one is created with it. Every
        result says which with ``new``. Conflicts and duplicate ids refuse the whole batch."""
        inputs = self._inputs(body)
        if isinstance(inputs, tuple):
            return inputs
        stamp = format_datetime_ms(_now_ms())
        traced = any("objectWriteTraceId" in i for i in inputs)
        pending: dict[str, dict[str, int]] = {name: {} for name in self.unique_names}
        planned: list[tuple[int, Contact | None, dict[str, str], list[str]]] = []
        failures: list[tuple[int, _Failure]] = []
        named: set[tuple[str, str]] = set()
        next_id = self.next_id
        for position, item in enumerate(inputs):
            id_property, raw_id = item.get("idProperty"), item.get("id")
            if id_property not in self.unique:
                return 400, error_body(
                    "VALIDATION_ERROR",
                    f"{id_property} is not a unique property of CONTACT objects: an upsert "
                    "needs idProperty",
                )
            if not isinstance(raw_id, str) or raw_id.strip() == "":
                return 400, error_body("VALIDATION_ERROR", "every input of an upsert needs an id")
            values, cleared, records = self._normalize(item.get("properties"))
            prop, normalize = self._writable[id_property]
            try:
                id_value = normalize(prop, raw_id)
            except InvalidValue as invalid:
                records.append(invalid_record(id_property, invalid.code, invalid.message))
                id_value = raw_id
            if (id_property, id_value) in named:
                return 400, error_body(
                    "VALIDATION_ERROR",
                    f"Duplicate IDs found in batch input: [{raw_id}]. IDs must be unique",
                )
            named.add((id_property, id_value))
            contact = self._lookup(id_property, id_value)
            values.setdefault(id_property, id_value)
            own = next_id if contact is None else contact.id
            refused = self._admit(values, records, own, pending, traced)
            if isinstance(refused, tuple):
                return refused
            if refused is not None:
                failures.append((position, refused))
                continue
            if contact is None:
                next_id += 1
            planned.append((position, contact, values, cleared))
        results = []
        for position, existing, values, cleared in planned:
            if existing is None:
                written = self._insert(self.next_id, values, stamp)
                self.next_id += 1
                self.creates += 1
            else:
                written = existing
                self._modify(existing, values, cleared, stamp)
                self.updates += 1
            results.append({**_result(written, inputs[position]), "new": existing is None})
        self.revision += 1
        errors = [f.for_input(str(inputs[p].get("objectWriteTraceId", ""))) for p, f in failures]
        return (207 if errors else 200), self._batch(results, errors, stamp)

    def batch_read(self, body: Any) -> Answer:
        inputs = self._inputs(body)
        if isinstance(inputs, tuple):
            return inputs
        assert isinstance(body, dict)
        started = format_datetime_ms(_now_ms())
        id_property = body.get("idProperty")
        refused = self._unknown_id_property(id_property)
        if refused is not None:
            return refused
        names = _names(body.get("properties"))
        results = []
        missing: list[str] = []
        seen: set[int] = set()
        for item in inputs:
            raw = item.get("id")
            contact = None if raw is None else self._lookup(id_property, raw)
            if contact is None:
                missing.append(str(raw))
            elif contact.id not in seen:
                seen.add(contact.id)
                results.append(contact.to_json(names))
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": _NOT_FOUND,
                    "context": {"ids": missing},
                }
            )
        return (207 if errors else 200), self._batch(results, errors, started)

    def list_page(self, limit_text: str | None, after: str | None, names: list[str]) -> Answer:
        try:
            limit = LIST_DEFAULT_LIMIT if limit_text is None else int(limit_text)
            start = 0 if after in (None, "") else int(after or 0)
        except ValueError:
            return 400, error_body("VALIDATION_ERROR", "limit and after must be integers")
        if not 1 <= limit <= LIST_MAX_LIMIT:
            return 400, error_body(
                "VALIDATION_ERROR", f"limit must be between 1 and {LIST_MAX_LIMIT}, got {limit}"
            )
        first = bisect.bisect_left(self.ids, start)
        page_ids = self.ids[first : first + limit]
        wanted = names or list(DEFAULT_RETURNED)
        body: dict[str, Any] = {"results": [self.contacts[i].to_json(wanted) for i in page_ids]}
        if first + limit < len(self.ids):
            following = str(self.ids[first + limit])
            body["paging"] = {
                "next": {
                    "after": following,
                    "link": f"?after={following}",
                }
            }
        return 200, body

    def search(self, body: Any) -> Answer:
        return search_contacts(self.contacts, self.ids, self.definitions, body)

    # -- seeding and inspection ---------------------------------------------------------------

    def seed(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Create contacts directly (no rate limit, no stats): values are checked as a create
        would check them, read-only ones excepted; a refused row raises ``ValueError``."""
        created: list[str] = []
        for start in _chunks(list(rows), BATCH_LIMIT):
            status, answer = self.batch_create({"inputs": [{"properties": dict(r)} for r in start]})
            if status != 201:
                raise ValueError(answer.get("message", answer))
            created.extend(r["id"] for r in answer["results"])
            self.creates -= len(start)
        return created


def _result(contact: Contact, given: Mapping[str, Any]) -> dict[str, Any]:
    """A written contact as a batch answer lists it, with the input's ``objectWriteTraceId``."""
    result = contact.to_json(copy=False)
    trace = given.get("objectWriteTraceId")
    if trace is not None:
        result["objectWriteTraceId"] = str(trace)
    return result


def _chunks(rows: list[Mapping[str, Any]], size: int) -> Iterable[list[Mapping[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _names(value: Any) -> list[str] | None:
    if isinstance(value, list) and value:
        return [str(v) for v in value]
    return list(DEFAULT_RETURNED)
