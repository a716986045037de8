"""The status of an ExportPipeline, kstatus style: what Flux, Argo CD and ``kubectl wait`` read.

``Ready`` says the pipeline is in force (valid, stored, CronJob in place) and its last run did
not fail; ``Stalled`` says a human must act (the spec is refused); ``Reconciling`` says the
operator is working on a generation it has not finished. Conditions keep their
``lastTransitionTime`` while their status stays the same, so rewriting a status that did not
change is a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sluice.controller.summary import timestamp_text
from sluice.model.errors import ApiError

#: Why a refused spec stalls, by the API error's code.
STALLED_REASONS = {
    "BadRequest": "ValidationFailed",
    "NotFound": "WorkspaceNotFound",
    "ConnectionNotExist": "ConnectionNotFound",
    "ConnectorNotExist": "ConnectorNotFound",
    "SchemaNotAligned": "SchemaNotAligned",
    "UnsupportedLanguage": "LanguageNotSupported",
}

CONDITION_TYPES = ("Ready", "Reconciling", "Stalled")


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def stalled_reason(error: ApiError) -> str:
    return STALLED_REASONS.get(error.code, "ValidationFailed")


def first_sight() -> list[Condition]:
    """Written before any work, so kstatus never mistakes a new object for a reconciled one."""
    return [
        Condition("Ready", "Unknown", "Progressing", "reconciliation in progress"),
        Condition("Reconciling", "True", "Progressing", "reconciliation in progress"),
    ]


def refused(error: ApiError, in_force: bool) -> list[Condition]:
    """The newest spec is refused; an earlier valid version may still be the one in force."""
    reason = stalled_reason(error)
    kept = " (the last valid version keeps running)" if in_force else ""
    return [
        Condition("Ready", "False", reason, f"{error.message}{kept}"),
        Condition("Stalled", "True", reason, error.message),
    ]


def in_force(
    *, enabled: bool, next_run: datetime | None, last_outcome: str | None, last_error: str | None
) -> list[Condition]:
    """The pipeline is stored and its CronJob is in place."""
    if last_outcome == "Failed":
        return [Condition("Ready", "False", "LastRunFailed", last_error or "the last run failed")]
    if not enabled:
        message = "pipeline is disabled"
    elif next_run is None:
        message = "pipeline is not scheduled"
    else:
        message = f"next run at {timestamp_text(next_run)}"
    return [Condition("Ready", "True", "ReconciliationSucceeded", message)]


def merged_conditions(
    previous: Sequence[Mapping[str, Any]],
    wanted: Sequence[Condition],
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """The condition list to write: the wanted conditions, in a fixed order, each keeping the
    previous ``lastTransitionTime`` if its status did not change. Conditions of our types that
    are not wanted are dropped (kstatus reads their absence as normal); others are kept."""
    before = {c.get("type"): c for c in previous}
    wanted_by_type = {c.type: c for c in wanted}
    merged: list[dict[str, Any]] = []
    for kind in CONDITION_TYPES:
        condition = wanted_by_type.get(kind)
        if condition is None:
            continue
        old = before.get(kind)
        kept_time = (
            old.get("lastTransitionTime") if old and old.get("status") == condition.status else None
        )
        merged.append(
            {
                "type": condition.type,
                "status": condition.status,
                "reason": condition.reason,
                "message": condition.message,
                "observedGeneration": generation,
                "lastTransitionTime": kept_time or timestamp_text(now),
            }
        )
    merged.extend(
        dict(c) for c in previous if c.get("type") not in CONDITION_TYPES and c.get("type")
    )
    return merged


def transitions(
    previous: Sequence[Mapping[str, Any]], merged: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The conditions whose status or reason changed: each is worth an Event."""
    before = {c.get("type"): (c.get("status"), c.get("reason")) for c in previous}
    return [
        c
        for c in merged
        if c["type"] in ("Ready", "Stalled") and before.get(c["type"]) != (c["status"], c["reason"])
    ]
