"""``POST /crm/v3/objects/contacts/search`` of the HubSpot twin: filter groups (OR of ANDs),
one sort, ``limit`` up to 200 and an ``after`` offset that may not reach 10,000."""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sluice.twins.hubspot_properties import DEFAULT_RETURNED, PropertyDefinition

if TYPE_CHECKING:
    from sluice.twins.hubspot_state import Contact

SEARCH_DEFAULT_LIMIT = 10
SEARCH_MAX_LIMIT = 200
#: A search query never pages past this many results.
SEARCH_RESULT_CAP = 10_000
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKEN = re.compile(r"[^\w@.]+")

Predicate = Callable[["Contact"], bool]


class SearchError(Exception):
    pass


def _error(message: str) -> tuple[int, dict[str, Any]]:
    return 400, {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": "VALIDATION_ERROR",
    }


def _comparable(prop: PropertyDefinition | None, text: str) -> Any:
    """A stored or filter value in the form that orders like HubSpot orders it."""
    kind = prop.type if prop is not None else "string"
    try:
        if kind == "number":
            return float(text)
        if kind == "datetime":
            if text.lstrip("-").isdigit():
                return int(text)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int((parsed - _EPOCH).total_seconds() * 1000)
        if kind == "date":
            if text.lstrip("-").isdigit():
                return date.fromordinal(date(1970, 1, 1).toordinal() + int(text) // 86_400_000)
            return date.fromisoformat(text[:10])
    except ValueError:
        return None
    return text.lower()


def _filter(definitions: Mapping[str, PropertyDefinition], spec: Any) -> Predicate:
    if not isinstance(spec, dict) or not isinstance(spec.get("propertyName"), str):
        raise SearchError("Each filter needs a propertyName and an operator")
    name = spec["propertyName"]
    operator = spec.get("operator", "EQ")
    prop = definitions.get(name)

    def stored(contact: Contact) -> Any:
        value = contact.properties.get(name)
        return None if value is None or value == "" else _comparable(prop, value)

    if operator == "HAS_PROPERTY":
        return lambda c: bool(c.properties.get(name))
    if operator == "NOT_HAS_PROPERTY":
        return lambda c: not c.properties.get(name)
    if operator in ("IN", "NOT_IN"):
        raw = spec.get("values")
        if not isinstance(raw, list):
            raise SearchError(f"operator {operator} requires values")
        wanted = {_comparable(prop, str(v)) for v in raw}
        if operator == "IN":
            return lambda c: stored(c) in wanted
        return lambda c: stored(c) not in wanted
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(spec.get("value", "")).lower()

        def contains(contact: Contact) -> bool:
            value = (contact.properties.get(name) or "").lower()
            if "*" in token:
                return fnmatch.fnmatchcase(value, token)
            return token in _TOKEN.split(value)

        if operator == "CONTAINS_TOKEN":
            return contains
        return lambda c: not contains(c)
    if "value" not in spec:
        raise SearchError(f"operator {operator} requires a value")
    value = _comparable(prop, str(spec["value"]))
    if operator == "EQ":
        return lambda c: stored(c) == value
    if operator == "NEQ":
        return lambda c: stored(c) != value
    if operator == "BETWEEN":
        high = _comparable(prop, str(spec.get("highValue", "")))

        def between(contact: Contact) -> bool:
            current = stored(contact)
            return current is not None and value <= current <= high

        return between
    ordering: dict[str, Callable[[Any, Any], bool]] = {
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }
    compare = ordering.get(operator)
    if compare is None:
        raise SearchError(f"Unknown operator {operator}")

    def ordered(contact: Contact) -> bool:
        current = stored(contact)
        try:
            return current is not None and compare(current, value)
        except TypeError:
            return False

    return ordered


def _group_predicates(
    definitions: Mapping[str, PropertyDefinition], groups: Any
) -> list[list[Predicate]]:
    if groups is None:
        return []
    if not isinstance(groups, list):
        raise SearchError("filterGroups must be a list")
    if len(groups) > MAX_FILTER_GROUPS:
        raise SearchError(
            f"Too many filter groups: {len(groups)}. The maximum is {MAX_FILTER_GROUPS}."
        )
    total = 0
    compiled = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise SearchError("Each filter group needs a list of filters")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                f"Too many filters in a filter group: {len(filters)}. "
                f"The maximum is {MAX_FILTERS_PER_GROUP}."
            )
        total += len(filters)
        compiled.append([_filter(definitions, f) for f in filters])
    if total > MAX_FILTERS:
        raise SearchError(f"Too many filters: {total}. The maximum is {MAX_FILTERS}.")
    return compiled


def search_contacts(
    contacts: Mapping[int, Contact],
    ids: Sequence[int],
    definitions: Mapping[str, PropertyDefinition],
    body: Any,
) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict):
        return _error("Invalid input JSON: the body must be an object")
    try:
        limit = int(body.get("limit", SEARCH_DEFAULT_LIMIT))
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        return _error("limit and after must be integers")
    if not 0 <= limit <= SEARCH_MAX_LIMIT:
        return _error(f"limit must be between 0 and {SEARCH_MAX_LIMIT}, got {limit}")
    if after >= SEARCH_RESULT_CAP:
        return _error(
            f"after must be less than {SEARCH_RESULT_CAP}: the search endpoints return at most "
            f"{SEARCH_RESULT_CAP} results for any query"
        )
    try:
        groups = _group_predicates(definitions, body.get("filterGroups"))
    except SearchError as refused:
        return _error(str(refused))
    everyone = (contacts[i] for i in ids)
    if groups:
        matched = [c for c in everyone if any(all(p(c) for p in group) for group in groups)]
    else:
        matched = list(everyone)
    sorts = body.get("sorts") or []
    if sorts:
        first = sorts[0]
        if isinstance(first, str):
            name, descending = first.lstrip("-"), first.startswith("-")
        else:
            name = str(first.get("propertyName", "hs_object_id"))
            descending = str(first.get("direction", "ASCENDING")).upper() == "DESCENDING"
        prop = definitions.get(name)
        keyed = []
        unset = []
        for contact in matched:
            value = contact.properties.get(name)
            comparable = None if value is None else _comparable(prop, value)
            if comparable is None:
                unset.append(contact)
            else:
                keyed.append((comparable, contact.id, contact))
        keyed.sort(key=lambda entry: entry[:2], reverse=descending)
        matched = [entry[2] for entry in keyed] + unset
    names = body.get("properties")
    wanted = (
        [str(n) for n in names] if isinstance(names, list) and names else list(DEFAULT_RETURNED)
    )
    end = min(after + limit, SEARCH_RESULT_CAP)
    page = matched[after:end]
    answer: dict[str, Any] = {
        "total": len(matched),
        "results": [c.to_json(wanted) for c in page],
    }
    if after + limit < len(matched):
        answer["paging"] = {"next": {"after": str(after + limit)}}
    return 200, answer
