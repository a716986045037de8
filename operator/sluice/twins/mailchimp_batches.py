"""The batch operations of the Mailchimp twin (``/3.0/batches``): the queue of batches, their
progress and their results archive. Running an operation is the HTTP face's job (it dispatches
the operation to its own routes); docs/mailchimp-twin.md says which behaviour is documented.
Not thread-safe: the twin calls it under its lock."""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sluice.twins.common import encode_json
from sluice.twins.mailchimp_state import (
    UNVALIDATED,
    Answer,
    invalid,
    listing,
    not_found,
    not_provided,
    problem,
    timestamp,
)

#: "We now allow a user to submit up to 500 pending API batches" (release notes, 2021-11-16).
MAX_PENDING = 500
#: Results per JSON file of the archive (Mailchimp does not say how it splits them).
RESULTS_PER_FILE = 500
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: a bool is an int in Python
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a batch as submitted; ``path`` is relative to ``/3.0``."""

    method: str
    path: str
    params: dict[str, Any]
    body: str | None
    operation_id: str | None

    def query_string(self) -> str:
        """``params`` as a query string, JSON scalars written as JSON (``true``, ``10``); for a
        GET only, as the guide says ("Any URL params, only used for GET")."""
        if self.method != "GET":
            return ""
        return urlencode(
            [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in self.params.items()]
        )


@dataclass(slots=True, eq=False)
class Batch:
    """A submitted batch: ``base_url`` is the twin as its submitter reached it, the root of
    ``response_body_url``."""

    id: str
    operations: list[Operation]
    base_url: str
    submitted_at: str
    status: str = "pending"
    completed_at: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    errored: int = 0
    archived: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        finished = self.status == "finished"
        return {
            "id": self.id,
            "status": self.status,
            "total_operations": len(self.operations),
            "finished_operations": len(self.results),
            "errored_operations": self.errored,
            "submitted_at": self.submitted_at,
            "completed_at": self.completed_at,
            "response_body_url": f"{self.base_url}/batch-results/{self.id}.tar.gz"
            if finished
            else "",
            "_links": [],
        }

    def record(self, operation: Operation, answer: Answer) -> None:
        """``operation``'s answer: its result, and the batch finished after its last one."""
        status, body = answer
        response = "" if body is None else encode_json(body).decode()
        self.results.append(
            {"status_code": status, "operation_id": operation.operation_id, "response": response}
        )
        self.errored += status >= 400
        if len(self.results) == len(self.operations):
            self.status = "finished"
            self.completed_at = timestamp()

    def archive(self) -> bytes:
        """The results as Mailchimp serves them: a gzipped tar of JSON files, each an array of at
        most :data:`RESULTS_PER_FILE` results, named at random so that their order says nothing.
        A finished batch's results no longer change, so this may run outside the twin's lock."""
        if self.archived is None:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for start in range(0, len(self.results), RESULTS_PER_FILE):
                    data = encode_json(self.results[start : start + RESULTS_PER_FILE])
                    info = tarfile.TarInfo(f"{uuid.uuid4().hex}.json")
                    info.size = len(data)
                    info.mtime = int(time.time())
                    tar.addfile(info, io.BytesIO(data))
            self.archived = buffer.getvalue()
        return self.archived


class BatchQueue:
    """The account's batches, by id in submission order, and those not finished yet in the
    order they run: one at a time, as Mailchimp runs them."""

    def __init__(self) -> None:
        self.batches: dict[str, Batch] = {}
        self._waiting: deque[Batch] = deque()

    def submit(self, body: Any, base_url: str) -> Answer:
        """Mailchimp's "Start a batch operation": 200 and the pending batch, or a refusal."""
        errors = _shape_errors(body)
        if errors:
            return invalid(UNVALIDATED, errors)
        if sum(b.status != "finished" for b in self._waiting) >= MAX_PENDING:
            return 429, problem(
                429,
                "Too Many Requests",
                f"You have reached the limit of {MAX_PENDING} pending batch requests.",
            )
        operations = [
            Operation(
                op["method"],
                op["path"] if op["path"].startswith("/") else "/" + op["path"],
                op.get("params", {}),
                op.get("body"),
                op.get("operation_id"),
            )
            for op in body["operations"]
        ]
        batch = Batch(uuid.uuid4().hex[:10], operations, base_url, timestamp())
        self.batches[batch.id] = batch
        self._waiting.append(batch)
        return 200, batch.to_json()

    def next_operation(self) -> tuple[Batch, Operation] | None:
        """The operation to run next, of the oldest batch not finished (marked ``started``)."""
        while self._waiting:
            batch = self._waiting[0]
            if len(batch.results) < len(batch.operations):
                batch.status = "started"
                return batch, batch.operations[len(batch.results)]
            self._waiting.popleft()
            if batch.status != "finished":  # no operations at all
                batch.status, batch.completed_at = "finished", timestamp()
        return None

    def get(self, batch_id: str) -> Answer:
        batch = self.batches.get(batch_id)
        return not_found() if batch is None else (200, batch.to_json())

    def page(self, count: str | None, offset: str | None) -> Answer:
        batches = [b.to_json() for b in self.batches.values()]
        return listing("batches", batches, count, offset, _links=[])

    def delete(self, batch_id: str) -> Answer:
        """Stops the batch and forgets it, its results with it, as Mailchimp documents; the
        operations already run stay done."""
        batch = self.batches.pop(batch_id, None)
        if batch is None:
            return not_found()
        if batch in self._waiting:
            self._waiting.remove(batch)
        return 204, None

    def finished(self, batch_id: str) -> Batch | None:
        batch = self.batches.get(batch_id)
        return batch if batch is not None and batch.status == "finished" else None


def _shape_errors(body: Any) -> list[dict[str, str]]:
    """What the request body of "Start a batch operation" breaks of its schema."""
    if not isinstance(body, dict) or "operations" not in body:
        return [not_provided("operations")]
    operations = body["operations"]
    if not isinstance(operations, list):
        return [_type_error("operations", "array", operations)]
    errors: list[dict[str, str]] = []
    for number, op in enumerate(operations):
        at = f"operations.{number}"
        if not isinstance(op, dict):
            errors.append(_type_error(at, "object", op))
            continue
        errors.extend(not_provided(f"{at}.{name}") for name in ("method", "path") if name not in op)
        if "method" in op and op["method"] not in METHODS:
            message = f"Value must be one of: {', '.join(METHODS)}"
            errors.append({"field": f"{at}.method", "message": message})
        for name, expected in (
            ("path", "string"),
            ("body", "string"),
            ("operation_id", "string"),
            ("params", "object"),
        ):
            if name in op and _json_type(op[name]) != expected:
                errors.append(_type_error(f"{at}.{name}", expected, op[name]))
    return errors


def _json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "NULL")


def _type_error(name: str, expected: str, value: Any) -> dict[str, str]:
    """Mailchimp's wording for a value of the wrong JSON type."""
    message = f"Schema describes {expected}, {_json_type(value)} found instead"
    return {"field": name, "message": message}
