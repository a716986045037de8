"""Pipeline filters: validation against the input schema, in-memory evaluation (and, later, SQL)."""

from sluice.filters.evaluate import Predicate, compile_predicate
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
    "Predicate",
    "compile_predicate",
    "filter_to_json",
    "parse_filter",
    "used_paths",
]
