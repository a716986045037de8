"""The run summary a runner pod leaves as its termination message, and the run a finished Job
reports."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sluice.controller.summary import (
    ErrorSample,
    JobRun,
    RunSummary,
    encode_summary,
    job_run,
    parse_summary,
)
from tests.support import Edit, drop, put

LIMIT = 4096
STARTED = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
FINISHED = datetime(2025, 6, 1, 12, 3, 27, 250000, tzinfo=UTC)
COUNTS = {"read": 10000, "filtered": 120, "created": 40, "updated": 0, "rejected": 2}
REJECTED = ErrorSample(
    profile="c5d2a1f0", external_id=None, step="write", message="INVALID_EMAIL: not an email"
)
SUMMARY = RunSummary(
    outcome="PartiallyFailed",
    started_at=STARTED,
    finished_at=FINISHED,
    counts=COUNTS,
    error="2 records were rejected",
    error_samples=(REJECTED, ErrorSample(None, "901", "match", "two contacts have this email")),
)
SUMMARY_JSON: dict[str, Any] = {
    "version": 1,
    "outcome": "PartiallyFailed",
    "startedAt": "2025-06-01T12:00:00Z",
    "finishedAt": "2025-06-01T12:03:27.250000Z",
    "counts": COUNTS,
    "error": "2 records were rejected",
    "errorSamples": [
        {
            "profile": "c5d2a1f0",
            "externalId": None,
            "step": "write",
            "message": "INVALID_EMAIL: not an email",
        },
        {
            "profile": None,
            "externalId": "901",
            "step": "match",
            "message": "two contacts have this email",
        },
    ],
}


def size(text: str) -> int:
    return len(text.encode())


# ---------------------------------------------------------------------------------------------
# Encoding and parsing
# ---------------------------------------------------------------------------------------------


def test_a_summary_is_compact_json_in_the_documented_schema() -> None:
    text = encode_summary(SUMMARY)
    assert json.loads(text) == SUMMARY_JSON
    assert text.startswith('{"version":1,"outcome":"PartiallyFailed","startedAt":')


def test_a_summary_parses_back() -> None:
    assert parse_summary(encode_summary(SUMMARY)) == SUMMARY


def test_notes_are_written_only_when_there_are_some_and_parse_back() -> None:
    noted = dataclasses.replace(SUMMARY, notes=("the connection now reaches another account",))
    assert json.loads(encode_summary(noted)) == {
        **SUMMARY_JSON,
        "notes": ["the connection now reaches another account"],
    }
    assert parse_summary(encode_summary(noted)) == noted
    assert "notes" not in json.loads(encode_summary(SUMMARY))


def test_times_are_written_in_utc() -> None:
    paris = datetime.fromisoformat("2025-06-01T14:00:00+02:00")
    text = encode_summary(RunSummary("Succeeded", paris, paris, counts={}))
    assert json.loads(text)["startedAt"] == "2025-06-01T12:00:00Z"


def test_naive_times_are_refused() -> None:
    naive = datetime(2025, 6, 1)
    with pytest.raises(ValueError, match="aware"):
        encode_summary(RunSummary("Succeeded", naive, naive, counts={}))


def test_samples_are_dropped_from_the_end_until_the_summary_fits() -> None:
    samples = tuple(
        ErrorSample(f"profile-{i}", f"contact-{i}", "write", f"rejected: reason number {i}")
        for i in range(1000)
    )
    summary = RunSummary("PartiallyFailed", STARTED, FINISHED, COUNTS, "1000 rejected", samples)
    text = encode_summary(summary)
    parsed = parse_summary(text)
    assert parsed is not None
    kept = len(parsed.error_samples)
    assert 0 < kept < 1000
    assert parsed.error_samples == samples[:kept]
    assert parsed.error == "1000 rejected"
    assert size(text) <= LIMIT
    # As many as fit: one more sample would not.
    one_more = json.loads(text)
    one_more["errorSamples"].append(
        {
            "profile": f"profile-{kept}",
            "externalId": f"contact-{kept}",
            "step": "write",
            "message": f"rejected: reason number {kept}",
        }
    )
    assert size(json.dumps(one_more, ensure_ascii=False, separators=(",", ":"))) > LIMIT


def test_a_long_error_is_cut_once_no_sample_is_left() -> None:
    samples = tuple(ErrorSample(str(i), None, "write", "rejected " * 20) for i in range(1000))
    error = "the destination refused the batch: " + "x" * 10_000
    text = encode_summary(RunSummary("Failed", STARTED, FINISHED, COUNTS, error, samples))
    parsed = parse_summary(text)
    assert parsed is not None
    assert parsed.error_samples == ()
    assert parsed.error is not None and parsed.error.endswith("…")
    assert error.startswith(parsed.error[:-1])
    assert parsed.counts == COUNTS
    # The cut keeps as much as fits: with one-byte characters, exactly the limit.
    assert size(text) == LIMIT


@pytest.mark.parametrize(
    "error",
    [
        "é" * 5000,  # two bytes each in UTF-8
        "🚫" * 3000,  # four bytes each
        '"\\\n\t\x00' * 2000,  # escaped to two to six bytes each
    ],
)
def test_the_limit_is_in_utf8_bytes_after_escaping(error: str) -> None:
    text = encode_summary(RunSummary("Failed", STARTED, FINISHED, COUNTS, error))
    assert size(text) <= LIMIT
    parsed = parse_summary(text)
    assert parsed is not None and parsed.error is not None
    assert error.startswith(parsed.error[:-1]) and parsed.error.endswith("…")


def test_a_summary_that_fits_is_kept_whole() -> None:
    summary = RunSummary("Failed", STARTED, FINISHED, COUNTS, "e" * 3000, (REJECTED,) * 3)
    assert parse_summary(encode_summary(summary)) == summary


def test_counts_too_many_to_fit_are_an_error() -> None:
    counts = {f"step{i}": i for i in range(1000)}
    with pytest.raises(ValueError, match="counts"):
        encode_summary(RunSummary("Succeeded", STARTED, FINISHED, counts))


def test_unknown_members_are_ignored() -> None:
    document = {**SUMMARY_JSON, "durationSeconds": 207}
    assert parse_summary(json.dumps(document)) == SUMMARY


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Traceback (most recent call last):\n  File ...\nConnectionRefusedError: [Errno 111]",
        "null",
        "[]",
        '"Succeeded"',
        "[" * 100_000,
    ],
)
def test_what_is_not_json_of_an_object_is_no_summary(text: str) -> None:
    assert parse_summary(text) is None


@pytest.mark.parametrize(
    "edit",
    [
        put(("version",), 2),
        put(("version",), True),
        put(("version",), "1"),
        drop(("version",)),
        put(("outcome",), "PartiallySucceeded"),
        put(("outcome",), None),
        put(("startedAt",), "2025-06-01T12:00:00"),  # no zone
        put(("startedAt",), "yesterday"),
        put(("finishedAt",), 1748779407),
        drop(("finishedAt",)),
        put(("counts",), [1, 2]),
        put(("counts", "read"), True),
        put(("counts", "read"), -1),
        put(("counts", "read"), 1.5),
        put(("error",), 42),
        drop(("error",)),
        put(("errorSamples",), None),
        put(("errorSamples", 0), "INVALID_EMAIL"),
        put(("errorSamples", 0, "profile"), 7),
        put(("errorSamples", 0, "externalId"), ["901"]),
        drop(("errorSamples", 0, "step")),
        put(("errorSamples", 1, "message"), None),
    ],
)
def test_a_member_of_the_wrong_type_makes_no_summary(edit: Edit) -> None:
    document = copy.deepcopy(SUMMARY_JSON)
    edit(document)
    assert parse_summary(json.dumps(document)) is None


# ---------------------------------------------------------------------------------------------
# A Job's run
# ---------------------------------------------------------------------------------------------

JOB_NAME = "sluice-export-customers-527b5f-29145435"


def job(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": JOB_NAME, "creationTimestamp": "2025-06-01T11:59:58Z"},
        "status": status,
    }


def condition(kind: str, time: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": time,
        "lastTransitionTime": time,
        "reason": reason,
        "message": message,
    }


COMPLETE = {
    "startTime": "2025-06-01T12:00:00Z",
    "completionTime": "2025-06-01T12:03:30Z",
    "succeeded": 1,
    "conditions": [
        condition("SuccessCriteriaMet", "2025-06-01T12:03:29Z", "CompletionsReached"),
        condition("Complete", "2025-06-01T12:03:30Z", "CompletionsReached"),
    ],
}
BACKOFF_LIMIT = "Job has reached the specified backoff limit"
FAILED = {
    "startTime": "2025-06-01T12:00:00Z",
    "failed": 2,
    "conditions": [
        condition("FailureTarget", "2025-06-01T12:01:10Z", "BackoffLimitExceeded", BACKOFF_LIMIT),
        condition("Failed", "2025-06-01T12:01:12Z", "BackoffLimitExceeded", BACKOFF_LIMIT),
    ],
}


def pod(message: str | None, container: str = "export") -> dict[str, Any]:
    terminated = {"exitCode": 0, "reason": "Completed"}
    if message is not None:
        terminated["message"] = message
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{JOB_NAME}-x7k2p"},
        "status": {"containerStatuses": [{"name": container, "state": {"terminated": terminated}}]},
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"startTime": "2025-06-01T12:00:00Z", "active": 1},
        # Kubernetes 1.31+: the outcome is decided, but the pods are still terminating.
        {
            "startTime": "2025-06-01T12:00:00Z",
            "conditions": [condition("FailureTarget", "2025-06-01T12:01:10Z")],
        },
        {
            "startTime": "2025-06-01T12:00:00Z",
            "conditions": [{**condition("Failed", "2025-06-01T12:01:10Z"), "status": "False"}],
        },
    ],
)
def test_a_job_that_has_not_finished_has_no_run(status: dict[str, Any]) -> None:
    assert job_run(job(status), None) is None


def test_a_completed_job_reports_its_pods_summary_timed_by_the_job() -> None:
    run = job_run(job(COMPLETE), pod(encode_summary(SUMMARY)))
    expected = RunSummary(
        outcome="PartiallyFailed",
        started_at=at("2025-06-01T12:00:00Z"),
        finished_at=at("2025-06-01T12:03:30Z"),
        counts=COUNTS,
        error=SUMMARY.error,
        error_samples=SUMMARY.error_samples,
    )
    assert run == JobRun(job_name=JOB_NAME, summary=expected)


def test_a_completed_job_without_summary_succeeded_without_counts() -> None:
    for no_summary in (None, pod(None), pod("export done"), pod(encode_summary(SUMMARY), "other")):
        assert job_run(job(COMPLETE), no_summary) == JobRun(
            JOB_NAME,
            RunSummary(
                "Succeeded", at("2025-06-01T12:00:00Z"), at("2025-06-01T12:03:30Z"), counts={}
            ),
        )


def test_a_failed_job_without_summary_reports_its_failed_condition() -> None:
    log_tail = "psycopg.OperationalError: connection refused"
    run = job_run(job(FAILED), pod(log_tail))
    assert run == JobRun(
        JOB_NAME,
        RunSummary(
            "Failed",
            at("2025-06-01T12:00:00Z"),
            # When the Job decided it failed, before its last pod was gone.
            at("2025-06-01T12:01:10Z"),
            counts={},
            error=f"BackoffLimitExceeded: {BACKOFF_LIMIT}",
        ),
    )


def test_a_failed_job_of_an_older_cluster_ends_when_it_failed() -> None:
    older = {**FAILED, "conditions": FAILED["conditions"][1:]}
    run = job_run(job(older), None)
    assert run is not None
    assert run.summary.finished_at == at("2025-06-01T12:01:12Z")


def test_a_failed_job_whose_pod_wrote_a_summary_reports_the_summary() -> None:
    failure = RunSummary("Failed", STARTED, FINISHED, {"read": 0}, "warehouse: permission denied")
    run = job_run(job(FAILED), pod(encode_summary(failure)))
    assert run is not None
    assert run.summary.outcome == "Failed"
    assert run.summary.error == "warehouse: permission denied"
    assert run.summary.counts == {"read": 0}


def test_a_failed_condition_without_reason_still_says_why() -> None:
    deadline = {
        "startTime": "2025-06-01T12:00:00Z",
        "conditions": [
            condition("Failed", "2025-06-01T13:00:00Z", message="Job was active too long")
        ],
    }
    run = job_run(job(deadline), None)
    assert run is not None and run.summary.error == "Job was active too long"
    bare = {"conditions": [condition("Failed", "2025-06-01T13:00:00Z")]}
    run = job_run(job(bare), None)
    assert run is not None and run.summary.error == "the Job failed"


def test_a_job_not_yet_started_is_timed_from_its_creation() -> None:
    never_started = {"conditions": [condition("Failed", "2025-06-01T12:00:05Z", "Suspended")]}
    run = job_run(job(never_started), None)
    assert run is not None
    assert run.summary.started_at == at("2025-06-01T11:59:58Z")
    assert run.summary.finished_at == at("2025-06-01T12:00:05Z")


def test_a_finished_job_without_an_end_time_is_an_error() -> None:
    untimed = {"conditions": [{"type": "Complete", "status": "True"}]}
    with pytest.raises(ValueError, match=JOB_NAME):
        job_run(job(untimed), None)
