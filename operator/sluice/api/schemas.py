"""Response shapes, for the OpenAPI document only.

Handlers return the stored JSON as it is; these models describe it to clients (and to
schemathesis), and are never used to serialise, so they cannot reorder or drop members.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Described(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(BaseModel):
    code: str = Field(examples=["NotFound"])
    message: str = Field(examples=["pipeline does not exist"])
    cause: str | None = None


class ErrorBody(BaseModel):
    error: Error


class Matching(BaseModel):
    in_: str = Field(alias="in")
    out: str


class PipelineBody(Described):
    id: int
    name: str
    connector: str
    connectorType: str  # noqa: N815 - the API's member names
    connection: int
    connectionRole: str  # noqa: N815
    target: str
    enabled: bool
    filter: dict[str, Any] | None
    matching: Matching
    exportMode: str  # noqa: N815
    updateOnDuplicates: bool  # noqa: N815
    transformation: dict[str, Any]
    inSchema: dict[str, Any]  # noqa: N815
    outSchema: dict[str, Any]  # noqa: N815
    running: bool
    scheduleStart: int | None  # noqa: N815
    schedulePeriod: str | None  # noqa: N815


class PipelinePage(BaseModel):
    pipelines: list[PipelineBody]
    total: int = Field(ge=0)


class Run(Described):
    id: int
    pipeline: int
    jobName: str | None  # noqa: N815
    startTime: str  # noqa: N815
    endTime: str | None  # noqa: N815
    outcome: str | None
    counts: dict[str, int]
    error: str | None
    errorSamples: list[dict[str, Any]]  # noqa: N815


class RunPage(BaseModel):
    runs: list[Run]
    total: int = Field(ge=0)


class Condition(BaseModel):
    type: str = Field(examples=["Ready"])
    status: str = Field(examples=["False"], description='"True", "False" or "Unknown".')
    reason: str = Field(examples=["ValidationFailed"])
    message: str


class RefusedError(Error):
    status: int = Field(examples=[400])


class PipelineStatus(BaseModel):
    id: int
    valid: bool = Field(description="Whether the newest version of the pipeline was accepted.")
    inForce: bool = Field(  # noqa: N815 - the API's member names
        description="Whether a valid version is stored: it runs, and GET /v1/pipelines/{id} "
        "returns it."
    )
    error: RefusedError | None = Field(description="Why the newest version was refused.")
    conditions: list[Condition]
    generation: int = Field(
        ge=0, description="The version in force: one more for each valid change; 0 before any."
    )
    updatedAt: str  # noqa: N815
    running: bool
    lastRun: Run | None  # noqa: N815


class Health(BaseModel):
    status: str


#: The header of a 429.
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until requests from this client address are served again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry documenting the given error statuses."""
    return {
        status: {"model": ErrorBody, **({"headers": RETRY_AFTER} if status == 429 else {})}
        for status in statuses
    }
