"""What every twin shares: injected faults, request statistics, token revocation and the
twin's lock (:class:`TwinControls`), and JSON answers.

A twin is one application account. Its HTTP face checks, for every API request, in this order:
an injected fault or latency (:meth:`TwinControls.take_fault`), the credential, the application's
rate limit, then the operation, under :attr:`TwinControls.lock`; and counts it
(:meth:`TwinControls.counted`) in ``stats()["requests"]``.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response


@dataclass(slots=True)
class Fault:
    """The next ``count`` requests whose path contains ``path`` (all when None) answer
    ``status``; with ``after_apply`` the request is carried out first and its answer lost."""

    status: int
    count: int
    path: str | None = None
    after_apply: bool = False

    def matches(self, path: str) -> bool:
        return self.path is None or self.path in path

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "count": self.count,
            "path": self.path,
            "afterApply": self.after_apply,
        }


class Faults:
    """Queued faults and the added latency. Not thread-safe: used under the twin's lock."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.queue: list[Fault] = []
        self.latency = 0.0

    def take(self, path: str) -> Fault | None:
        """The first queued fault that matches ``path``, one use of it spent."""
        for fault in self.queue:
            if fault.count > 0 and fault.matches(path):
                fault.count -= 1
                if fault.count == 0:
                    self.queue.remove(fault)
                return fault
        return None


class Stats:
    """Requests per endpoint and status."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()

    def count(self, endpoint: str, status: int) -> None:
        self.requests[endpoint, status] += 1

    def to_json(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (endpoint, status), n in sorted(self.requests.items()):
            out.setdefault(endpoint, {})[str(status)] = n
        return out


class TwinControls:
    """The test-facing controls of a twin: faults, latency, a revocable credential, statistics.
    ``lock`` guards the twin's whole state; the Python API may be used from any thread while
    the server runs."""

    def __init__(self, credential: str, lock: threading.RLock | threading.Lock | None = None):
        self._credential = credential
        #: The credential the twin accepts now; None once revoked.
        self.credential: str | None = credential
        self.lock = lock if lock is not None else threading.RLock()
        self.faults = Faults()
        self._stats = Stats()

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        *,
        path: str | None = None,
        after_apply: bool = False,
    ) -> None:
        """The next ``count`` requests whose path contains ``path`` answer ``status``. With
        ``after_apply`` they are carried out first and only the answer is replaced: a response
        lost on the way back."""
        with self.lock:
            self.faults.queue.append(Fault(status, count, path, after_apply))

    def pending_faults(self) -> list[Fault]:
        with self.lock:
            return [Fault(f.status, f.count, f.path, f.after_apply) for f in self.faults.queue]

    def set_latency(self, seconds: float) -> None:
        """Delay every API request by ``seconds`` before it is handled."""
        with self.lock:
            self.faults.latency = max(0.0, seconds)

    def take_fault(self, path: str) -> tuple[float, Fault | None]:
        """The latency to add to a request for ``path`` and the fault it meets, if any."""
        with self.lock:
            return self.faults.latency, self.faults.take(path) if self.faults.queue else None

    def revoke_token(self) -> None:
        """Every request from now on is refused, as after the credential was revoked."""
        with self.lock:
            self.credential = None

    def restore_token(self) -> None:
        with self.lock:
            self.credential = self._credential

    def counted(self, endpoint: str, response: Response) -> Response:
        with self.lock:
            self._stats.count(endpoint, response.status_code)
        return response

    def request_counts(self) -> dict[str, dict[str, int]]:
        """``{"POST /3.0/batches": {"200": 3}}``: requests per endpoint and status."""
        with self.lock:
            return self._stats.to_json()

    def reset_controls(self) -> None:
        """Forget faults, latency and statistics; restore the credential."""
        with self.lock:
            self.faults.reset()
            self._stats.reset()
            self.credential = self._credential


def encode_json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    media_type: str = "application/json; charset=utf-8",
) -> Response:
    """A JSON answer; 204 and ``body`` None answer without a body."""
    if body is None:
        return Response(status_code=status, headers=headers)
    return Response(encode_json(body), status_code=status, headers=headers, media_type=media_type)
