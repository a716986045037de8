"""Pipeline filters: validation against the input schema (and, later, compilation to SQL)."""

from sluice.filters.model import (
    OPERATORS,
    Condition,
    Filter,
    FilterError,
    filter_to_json,
    parse_filter,
    used_paths,
)

__all__ = [
    "OPERATORS",
    "Condition",
    "Filter",
    "FilterError",
    "filter_to_json",
    "parse_filter",
    "used_paths",
]
