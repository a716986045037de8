"""What every twin shares: injected faults, request statistics, token revocation and the
twin's lock (:class:`TwinControls`), and JSON answers.

A twin is one application account. Its HTTP face answers every API request through
:meth:`TwinControls.answer`: the injected latency and fault first, then (unless the fault stands
in for it) the credential, the application's rate limit and the operation, under
:attr:`TwinControls.lock`; and counts the answer (:meth:`TwinControls.counted`) in
``stats()["requests"]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar, get_args

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

FaultKind = Literal["status", "reset", "slow", "truncated", "wrong-shape"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
#: Kinds that spoil the answer of a request carried out: they need ``after_apply``.
_SPOILING: frozenset[FaultKind] = frozenset({"truncated", "wrong-shape"})


@dataclass(slots=True)
class Fault:
    """What the next ``count`` requests whose path contains ``path`` (all when None) meet, by
    ``kind``:

    - ``status``: the twin's error answer with ``status``, and ``Retry-After: retry_after``
      when that is given;
    - ``reset``: no answer, the connection dropped;
    - ``slow``: the answer ``seconds`` late;
    - ``truncated``: the answer's body cut in half, its status and content type kept;
    - ``wrong-shape``: the answer's JSON body replaced by ``{}``, its status kept.

    Without ``after_apply`` the request is not carried out (a ``slow`` one is, once the
    ``seconds`` have passed); with it the request is carried out first and only its answer
    meets the fault. ``truncated`` and ``wrong-shape`` spoil an answer, so they need it.
    """

    status: int
    count: int
    path: str | None = None
    after_apply: bool = False
    kind: FaultKind = "status"
    retry_after: float | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f'unknown fault kind "{self.kind}" (kinds: {", ".join(FAULT_KINDS)})')
        if self.kind in _SPOILING and not self.after_apply:
            raise ValueError(
                f"a {self.kind} fault spoils the answer of a request carried out, "
                "so it needs after_apply"
            )
        if self.kind == "slow" and self.seconds <= 0:
            raise ValueError("a slow answer needs seconds > 0")
        if self.retry_after is not None and self.kind != "status":
            raise ValueError("retry_after goes with a status fault only")

    def matches(self, path: str) -> bool:
        return self.path is None or self.path in path

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "count": self.count,
            "path": self.path,
            "afterApply": self.after_apply,
            "retryAfter": self.retry_after,
            "seconds": self.seconds,
        }


class DroppedConnection(Response):
    """No answer: the status line and headers announce a body that never comes, and the app
    returns, so uvicorn closes the connection, logging that the answer was left unfinished (an
    ASGI app cannot reach the socket to close it sooner, and one that raises before answering
    gets a 500 sent for it). Clients read no answer: aiohttp raises ``ClientPayloadError``,
    httpx ``RemoteProtocolError``."""

    def __init__(self) -> None:
        super().__init__(status_code=200, headers={"content-length": "2"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )


def _spoiled(response: Response, kind: FaultKind) -> Response:
    """``response`` with its body truncated or replaced by ``{}``; a bodiless one as it is."""
    body = bytes(response.body)
    if not body:
        return response
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    spoiled = body[: len(body) // 2] if kind == "truncated" else b"{}"
    return Response(spoiled, status_code=response.status_code, headers=headers)


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


class RateLimiter(Protocol):
    """A twin's rate limiter, as the controls drive it."""

    #: Requests still to answer 429 whatever the budget.
    forced: int
    enabled: bool


Limiter = TypeVar("Limiter", bound=RateLimiter)


class TwinControls(Generic[Limiter]):
    """The test-facing controls of a twin: faults, latency, a revocable credential, statistics,
    the rate limit. ``lock`` guards the twin's whole state; the Python API may be used from any
    thread while the server runs. A twin keeps no state file unless it says otherwise."""

    limiter: Limiter
    state_path: Path | None = None

    def save_state_if_changed(self) -> bool:
        return False

    def force_rate_limit(self, count: int) -> None:
        """The next ``count`` API requests answer 429, as the application does when over its
        budget."""
        with self.lock:
            self.limiter.forced = count

    def set_rate_limiting(self, enabled: bool) -> None:
        """Enforce the application's documented rate limit, or not."""
        with self.lock:
            self.limiter.enabled = enabled

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
        kind: FaultKind = "status",
        retry_after: float | None = None,
        seconds: float = 0.0,
    ) -> None:
        """The next ``count`` requests whose path contains ``path`` answer ``status``. With
        ``after_apply`` they are carried out first and only the answer is replaced: a response
        lost on the way back. Another ``kind`` drops the connection, answers ``seconds`` late,
        or spoils the answer's body (:class:`Fault`)."""
        fault = Fault(status, count, path, after_apply, kind, retry_after, seconds)
        with self.lock:
            self.faults.queue.append(fault)

    def pending_faults(self) -> list[Fault]:
        with self.lock:
            return [dataclasses.replace(f) for f in self.faults.queue]

    def set_latency(self, seconds: float) -> None:
        """Delay every API request by ``seconds`` before it is handled."""
        with self.lock:
            self.faults.latency = max(0.0, seconds)

    def take_fault(self, path: str) -> tuple[float, Fault | None]:
        """The latency to add to a request for ``path`` and the fault it meets, if any."""
        with self.lock:
            return self.faults.latency, self.faults.take(path) if self.faults.queue else None

    async def answer(
        self,
        request: Request,
        path: str,
        perform: Callable[[], Awaitable[Response]],
        error: Callable[[int], Response],
    ) -> Response:
        """The answer to ``request``, whose faults match ``path``: ``perform()``'s (credential,
        rate limit, operation), after the added latency and as the fault the request meets
        makes it; ``error(status)`` is the twin's answer to a status fault."""
        # Received whole first, as a server does: a slow request is carried out even when its
        # client has stopped waiting (Starlette would read the body from a closed connection).
        await request.body()
        latency, fault = self.take_fault(path)
        if latency:
            await asyncio.sleep(latency)
        if fault is None:
            return await perform()
        performed = await perform() if fault.after_apply else None
        if fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            return performed if performed is not None else await perform()
        if fault.kind == "reset":
            return DroppedConnection()
        if fault.kind == "status":
            refusal = error(fault.status)
            if fault.retry_after is not None:
                refusal.headers["Retry-After"] = f"{fault.retry_after:g}"
            return refusal
        assert performed is not None  # a spoiling kind comes with after_apply
        return _spoiled(performed, fault.kind)

    def revoke_token(self) -> None:
        """Every request from now on is refused, as after the credential was revoked."""
        with self.lock:
            self.credential = None

    def restore_token(self) -> None:
        with self.lock:
            self.credential = self._credential

    def counted(self, endpoint: str, response: Response) -> Response:
        """``response``, counted as an answer of ``endpoint`` (a dropped connection has none)."""
        if not isinstance(response, DroppedConnection):
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


# -- the twins' own routes, under /_twin/ ------------------------------------------------------

#: ``action(twin, body, request)``: the answer's JSON (None answers ``{"ok": true}``).
AdminAction = Callable[[Any, dict[str, Any], Request], Any]


def admin_endpoint(action: AdminAction) -> Callable[[Request], Any]:
    """An admin route: the JSON body (POST) given to ``action``; a bad one answers 400."""

    async def handle(request: Request) -> Response:
        try:
            raw = await request.body() if request.method == "POST" else b""
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            result = action(request.app.state.twin, body, request)
        except (ValueError, TypeError, KeyError) as bad:
            return json_response(400, {"error": str(bad)})
        return json_response(200, result if result is not None else {"ok": True})

    return handle


def _add_fault(twin: Any, body: dict[str, Any], request: Request) -> Any:
    retry_after = body.get("retryAfter")
    twin.fail_next(
        int(body.get("count", 1)),
        int(body.get("status", 503)),
        path=body.get("path"),
        after_apply=bool(body.get("afterApply", False)),
        kind=body.get("kind", "status"),
        retry_after=None if retry_after is None else float(retry_after),
        seconds=float(body.get("seconds", 0)),
    )
    return {"faults": [f.to_json() for f in twin.pending_faults()]}


def _rate_limit(twin: Any, body: dict[str, Any], request: Request) -> Any:
    if "count" in body:
        twin.force_rate_limit(int(body["count"]))
    if "enabled" in body:
        twin.set_rate_limiting(bool(body["enabled"]))
    return None


def admin_routes(*own: Route) -> list[Route]:
    """Every twin's admin routes — ``faults``, ``latency``, ``rate-limit`` (``count`` forced
    429s, ``enabled``), ``revoke``, ``restore``, ``reset`` (POST) and ``stats`` (GET) — then
    the twin's ``own`` (seeding and reading its users)."""

    def post(path: str, action: AdminAction) -> Route:
        return Route("/_twin/" + path, admin_endpoint(action), methods=["POST"])

    return [
        post("faults", _add_fault),
        post("latency", lambda t, b, r: t.set_latency(float(b.get("seconds", 0)))),
        post("rate-limit", _rate_limit),
        post("revoke", lambda t, b, r: t.revoke_token()),
        post("restore", lambda t, b, r: t.restore_token()),
        post("reset", lambda t, b, r: t.reset()),
        Route("/_twin/stats", admin_endpoint(lambda t, b, r: t.stats()), methods=["GET"]),
        *own,
    ]
