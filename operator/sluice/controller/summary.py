"""What a run reports: the summary a runner pod writes as its termination message, and the
outcome of a finished Job read from the Job and its pod.

Kubernetes keeps at most 4096 bytes of a termination message, so :func:`encode_summary` drops
error samples, then shortens the error, until the summary fits. A pod that dies before writing
its summary leaves its last log lines there instead (``FallbackToLogsOnError``), which
:func:`parse_summary` tells apart by refusing anything that is not a valid summary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, get_args

from sluice.controller.runner import EXPORT_CONTAINER

SUMMARY_VERSION = 1
TERMINATION_MESSAGE_LIMIT = 4096
TRUNCATION_MARK = "…"

RunOutcome = Literal["Succeeded", "PartiallyFailed", "Failed"]
RUN_OUTCOMES: tuple[RunOutcome, ...] = get_args(RunOutcome)

_T = TypeVar("_T")


@dataclass(frozen=True)
class ErrorSample:
    """One record the run could not export, and why."""

    profile: str | None
    external_id: str | None
    step: str
    message: str


@dataclass(frozen=True)
class RunSummary:
    outcome: RunOutcome
    started_at: datetime
    finished_at: datetime
    #: Records per step of the run ("read", "filtered", "created", …).
    counts: Mapping[str, int]
    error: str | None = None
    error_samples: tuple[ErrorSample, ...] = ()
    #: What the run did differently from usual, and why (a new destination account).
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def encode_summary(summary: RunSummary) -> str:
    """The summary as compact JSON of at most 4096 UTF-8 bytes: the samples at the end go
    first, then the error is cut (ending with "…"). Counts are never cut; a summary whose
    counts alone do not fit is a ValueError."""
    samples, error = summary.error_samples, summary.error
    fitting = _longest_fitting(len(samples), lambda n: replace(summary, error_samples=samples[:n]))
    if fitting is None and error is not None:
        fitting = _longest_fitting(
            len(error),
            lambda n: replace(summary, error_samples=(), error=error[:n] + TRUNCATION_MARK),
        )
    if fitting is None:
        raise ValueError("the counts of a run summary alone exceed the termination message limit")
    return _json(fitting)


def _longest_fitting(longest: int, shortened: Callable[[int], RunSummary]) -> RunSummary | None:
    """``shortened(n)`` for the largest n in 0..longest that fits, if one does; its size grows
    with n, so a binary search finds it."""
    low, high = 0, longest
    if not _fits(shortened(low)):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(shortened(middle)):
            low = middle
        else:
            high = middle - 1
    return shortened(low)


def _fits(summary: RunSummary) -> bool:
    return len(_json(summary).encode()) <= TERMINATION_MESSAGE_LIMIT


def _json(summary: RunSummary) -> str:
    document: dict[str, Any] = {
        "version": SUMMARY_VERSION,
        "outcome": summary.outcome,
        "startedAt": timestamp_text(summary.started_at),
        "finishedAt": timestamp_text(summary.finished_at),
        "counts": dict(summary.counts),
        "error": summary.error,
        "errorSamples": [sample_json(sample) for sample in summary.error_samples],
    }
    if summary.notes:
        document["notes"] = list(summary.notes)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def sample_json(sample: ErrorSample) -> dict[str, str | None]:
    """An error sample as the summary, the store and the API write it."""
    return {
        "profile": sample.profile,
        "externalId": sample.external_id,
        "step": sample.step,
        "message": sample.message,
    }


def timestamp_text(moment: datetime) -> str:
    """RFC 3339 in UTC, as Kubernetes writes timestamps."""
    if moment.tzinfo is None:
        raise ValueError("run summary times must be aware datetimes")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


class _InvalidSummaryError(Exception):
    pass


def parse_summary(text: str) -> RunSummary | None:
    """The summary in a termination message; None when it holds anything else (a log tail, a
    summary of another version, a member of the wrong type). Unknown members are ignored, so
    a version 1 summary can gain optional members."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    try:
        return _summary_from_json(data)
    except _InvalidSummaryError:
        return None


def _summary_from_json(data: Any) -> RunSummary:
    document = _typed(data, dict)
    version = _member(document, "version")
    if type(version) is not int or version != SUMMARY_VERSION:
        raise _InvalidSummaryError
    outcome = _member(document, "outcome")
    if outcome not in RUN_OUTCOMES:
        raise _InvalidSummaryError
    counts = _typed(_member(document, "counts"), dict)
    if not all(type(count) is int and count >= 0 for count in counts.values()):
        raise _InvalidSummaryError
    return RunSummary(
        outcome=outcome,
        started_at=_aware_timestamp(_member(document, "startedAt")),
        finished_at=_aware_timestamp(_member(document, "finishedAt")),
        counts=counts,
        error=_optional_text(_member(document, "error")),
        error_samples=tuple(
            _sample_from_json(sample) for sample in _typed(_member(document, "errorSamples"), list)
        ),
        notes=tuple(_typed(note, str) for note in _typed(document.get("notes", []), list)),
    )


def _sample_from_json(data: Any) -> ErrorSample:
    sample = _typed(data, dict)
    return ErrorSample(
        profile=_optional_text(_member(sample, "profile")),
        external_id=_optional_text(_member(sample, "externalId")),
        step=_typed(_member(sample, "step"), str),
        message=_typed(_member(sample, "message"), str),
    )


def _member(document: Mapping[str, Any], key: str) -> Any:
    if key not in document:
        raise _InvalidSummaryError
    return document[key]


def _typed(value: Any, kind: type[_T]) -> _T:
    if not isinstance(value, kind):
        raise _InvalidSummaryError
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _typed(value, str)


def _aware_timestamp(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(_typed(value, str))
    except ValueError:
        raise _InvalidSummaryError from None
    if moment.tzinfo is None:
        raise _InvalidSummaryError
    return moment


# ---------------------------------------------------------------------------------------------
# A finished Job
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRun:
    """A finished run: its Job's name and summary, timed by the Job."""

    job_name: str
    summary: RunSummary


# The conditions of a finished Job, and those (Kubernetes 1.31+) marking the moment its outcome
# was decided, before its pods were gone.
_FINISHED = ("Complete", "Failed")
_DECIDED = ("SuccessCriteriaMet", "FailureTarget", *_FINISHED)


def job_run(job: Mapping[str, Any], pod: Mapping[str, Any] | None) -> JobRun | None:
    """The run of a batch/v1 Job (JSON as the API serves it) and of its last pod, if any; None
    while the Job has not finished.

    The outcome, counts and errors are the pod's summary when it wrote one; otherwise the Job
    says Succeeded (without counts) or Failed with the reason of its Failed condition. The times
    are the Job's, which exist even when the pod wrote nothing.
    """
    metadata, status = job["metadata"], job.get("status") or {}
    conditions = {
        condition.get("type"): condition
        for condition in status.get("conditions") or ()
        if condition.get("status") == "True"
    }
    if not any(kind in conditions for kind in _FINISHED):
        return None
    started = status.get("startTime") or metadata.get("creationTimestamp")
    completed = status.get("completionTime")
    decided_at = [
        datetime.fromisoformat(conditions[kind]["lastTransitionTime"])
        for kind in _DECIDED
        if conditions.get(kind, {}).get("lastTransitionTime")
    ]
    started_at = datetime.fromisoformat(started) if started else None
    finished_at = datetime.fromisoformat(completed) if completed else min(decided_at, default=None)
    if started_at is None or finished_at is None:
        raise ValueError(f"Job {metadata['name']} lacks the timestamps of a finished Job")
    pod_summary = _pod_summary(pod)
    if pod_summary is None:
        summary = _job_summary(conditions.get("Failed"), started_at, finished_at)
    else:
        summary = replace(pod_summary, started_at=started_at, finished_at=finished_at)
    return JobRun(job_name=metadata["name"], summary=summary)


def _pod_summary(pod: Mapping[str, Any] | None) -> RunSummary | None:
    if pod is None:
        return None
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        if container.get("name") == EXPORT_CONTAINER:
            terminated = (container.get("state") or {}).get("terminated") or {}
            message = terminated.get("message")
            return parse_summary(message) if isinstance(message, str) else None
    return None


def _job_summary(
    failed: Mapping[str, Any] | None, started_at: datetime, finished_at: datetime
) -> RunSummary:
    """What the Job alone tells, when its pod left no summary."""
    if failed is None:
        return RunSummary("Succeeded", started_at, finished_at, counts={})
    reason, message = failed.get("reason"), failed.get("message")
    error = ": ".join(part for part in (reason, message) if part) or "the Job failed"
    return RunSummary("Failed", started_at, finished_at, counts={}, error=error)
