"""``GET /v1/pipelines/{id}/status``: whether the newest version of a pipeline was accepted.

The body (the last valid version) never shows a refused edit; this does, with the conditions
the operator writes into the ExportPipeline's status, so the API and ``kubectl get`` agree.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sluice.controller import status
from sluice.controller.schedule import next_run
from sluice.model.errors import ApiError
from sluice.store.store import PipelineState


def status_body(pipeline_id: int, state: PipelineState, now: datetime) -> dict[str, Any]:
    """The status of the pipeline ``pipeline_id`` as the store holds it, at ``now``."""
    return {
        "id": pipeline_id,
        "valid": state.error is None,
        "inForce": state.in_force,
        "error": state.error,
        "conditions": [asdict(condition) for condition in _conditions(state, now)],
        "generation": state.generation,
        "updatedAt": state.updated_at,
        "running": state.running,
        "lastRun": state.last_run,
    }


def _conditions(state: PipelineState, now: datetime) -> list[status.Condition]:
    if state.error is not None:
        error = state.error
        refused = ApiError(error["status"], error["code"], error["message"], (), error.get("cause"))
        return status.refused(refused, state.in_force)
    start, run = state.schedule_start, state.last_run or {}
    return status.in_force(
        enabled=state.enabled,
        next_run=next_run(state.schedule_period, start, now)
        if state.enabled and start is not None
        else None,
        last_outcome=run.get("outcome"),
        last_error=run.get("error"),
    )
