"""The parent side of transformation functions: a few persistent workers per run.

A run starts as many workers as the pod has CPUs (its affinity, bounded by its cgroup's CPU
quota), lazily, each with the source compiled once. Batches of 100 records go to whichever
worker is free. Each batch has a time limit: a worker that passes it is killed and replaced,
the record it was on fails with ``timed out after N s`` and the batch's other records are sent
again to the new worker; a worker that dies (a memory limit, a crash) is treated the same way.
Most records hitting the limits ends the run (:meth:`FunctionPool.check_health`).

Environment settings (the Helm chart's ``functions`` values set them on the export pods):

* ``SLUICE_FUNCTION_TIMEOUT`` seconds per batch (5), ``SLUICE_FUNCTION_MEMORY`` MiB per worker
  (256: Python's address space, V8's heap), ``SLUICE_FUNCTION_WORKERS`` (the CPUs);
* ``SLUICE_FUNCTION_SANDBOX=off`` runs functions without the sandbox where the kernel cannot
  set it up. Without it such a run fails, saying why.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import mmap
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sluice.fastjson import decode_json
from sluice.functions import sandbox

_LENGTH = struct.Struct("<I")
BATCH_SIZE = 100
#: How long a worker may take to start and run the source's top level.
START_TIMEOUT = 10.0
#: A record's result may be at most this large (JSON text).
RECORD_LIMIT = 1 << 20
#: Before the circuit breaker looks at the ratio of records that hit a limit.
HEALTH_MINIMUM = 10


class FunctionError(Exception):
    """Functions cannot run, or ran into so many limits that the run must stop."""


@dataclass(frozen=True)
class FunctionSettings:
    timeout: float = 5.0
    memory_mib: int = 256
    workers: int = 1
    sandbox: bool = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> FunctionSettings:
        env = os.environ if environ is None else environ
        try:
            return cls(
                timeout=float(env.get("SLUICE_FUNCTION_TIMEOUT", "5")),
                memory_mib=int(env.get("SLUICE_FUNCTION_MEMORY", "256")),
                workers=int(env.get("SLUICE_FUNCTION_WORKERS", "0")) or available_cpus(),
                sandbox=env.get("SLUICE_FUNCTION_SANDBOX", "on") != "off",
            )
        except ValueError as err:
            raise FunctionError(f"a SLUICE_FUNCTION_* setting is not a number: {err}") from None


def available_cpus(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """The CPUs this process may use: its affinity, bounded by a cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        with open(cpu_max, encoding="ascii") as limit:
            quota, period = limit.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


class Outcome(NamedTuple):
    """One record's result: the value the function returned (parsed JSON), or why it failed.
    ``limit``: it failed on a limit (time, memory, a dead worker), not by its own exception.
    A tuple: one is made per record."""

    value: Any = None
    error: str | None = None
    limit: bool = False


@dataclass
class _Batch:
    """Records sent to a worker together: their indices in the items being transformed."""

    indices: list[int]
    #: When the worker started on it (None while another batch is ahead of it).
    started: float | None = None


class _Worker:
    """One worker process, its channel, and the batches sent to it, oldest first."""

    def __init__(self, setup: dict[str, Any]) -> None:
        request_read, self._requests = os.pipe()
        self.results, result_write = os.pipe()
        progress = os.memfd_create("sluice-progress", os.MFD_CLOEXEC)
        os.ftruncate(progress, 4)
        self.progress = mmap.mmap(progress, 4)
        fds = (request_read, result_write, progress)
        # A batch sent ahead waits in the pipe while the worker transforms the one before: it
        # must fit, or the write would block until then (forever, if that one never ends).
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._requests, fcntl.F_SETPIPE_SZ, 1 << 20)
        self.pipe_capacity = fcntl.fcntl(self._requests, fcntl.F_GETPIPE_SZ)
        self.batches: deque[_Batch] = deque()
        self._received = bytearray()
        #: Whether its answer did not come in time (rather than the worker ending).
        self.timed_out = False
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-m", "sluice.functions.worker", *map(str, fds)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=fds,
                env={},
                cwd="/",
                start_new_session=True,
            )
        finally:
            for fd in fds:
                os.close(fd)
        self.send(setup)
        reply = self._handshake(time.monotonic() + START_TIMEOUT)
        if reply is None:
            self.kill()
            raise FunctionError(
                "the function's source did not finish loading within "
                f"{START_TIMEOUT:g} s, or its worker died ({self.death()})"
            )
        if "fatal" in reply:
            self.kill()
            raise FunctionError(str(reply["fatal"]))
        self.uses_purpose = bool(reply.get("purpose"))
        os.set_blocking(self.results, False)

    def send(self, message: object, *, ahead: bool = False) -> bool:
        """Send a message; ``ahead`` (the worker is busy): only if it fits in the pipe."""
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        if ahead and len(body) + 4 > self.pipe_capacity:
            return False
        view = memoryview(_LENGTH.pack(len(body)) + body)
        try:
            while view:
                view = view[os.write(self._requests, view) :]
        except BrokenPipeError:
            pass  # the worker died; the answer's absence says so
        return True

    def _handshake(self, deadline: float) -> dict[str, Any] | None:
        while (wait := deadline - time.monotonic()) > 0:
            if select.select([self.results], [], [], wait)[0]:
                chunk = os.read(self.results, 1 << 16)
                if not chunk:
                    return None
                self._received += chunk
                answers = self.answers(1 << 16)
                if answers:
                    return answers[0]
        return None

    def answers(self, limit: int) -> list[dict[str, Any]] | None:
        """The complete answers received so far; None when the worker sent more than
        ``limit`` bytes at once or something that is not an answer."""
        found = []
        while len(self._received) >= 4:
            size = _LENGTH.unpack_from(self._received)[0]
            if size > limit:
                return None
            if len(self._received) < 4 + size:
                break
            body = bytes(self._received[4 : 4 + size])
            del self._received[: 4 + size]
            try:
                answer = _parsed(body)
            except ValueError:  # UnicodeDecodeError and json.JSONDecodeError are ValueErrors
                return None
            if not isinstance(answer, dict):
                return None
            found.append(answer)
        return found

    def receive(self) -> bool:
        """Read what the worker sent; False once its output has ended."""
        try:
            chunk = os.read(self.results, 1 << 20)
        except BlockingIOError:
            return True
        self._received += chunk
        return bool(chunk)

    @property
    def at(self) -> int:
        """The index, in its oldest batch, of the record the worker was transforming."""
        return int(_LENGTH.unpack_from(self.progress, 0)[0])

    def death(self) -> str:
        code = self.process.poll()
        if code is None:
            return "it did not answer"
        if code < 0:
            name = signal.Signals(-code).name
            return f"killed by {name}" + (" (its memory limit)" if name == "SIGKILL" else "")
        return f"exit code {code}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for fd in (self._requests, self.results):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.progress.close()


_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


class FunctionPool:
    """The workers of one run for one source, driven from one thread: each worker is kept a
    batch ahead, and the parent encodes the next batches and checks the answers while the
    workers transform."""

    def __init__(
        self,
        language: str,
        source: str,
        *,
        marked: bool,
        settings: FunctionSettings,
    ) -> None:
        if settings.sandbox and (reason := sandbox.unavailable()) is not None:
            raise FunctionError(
                f"functions cannot run here: their sandbox cannot be set up: {reason}; "
                "set SLUICE_FUNCTION_SANDBOX=off (the chart's runner.functions.sandbox: false) "
                "to run them unsandboxed"
            )
        self.language = language
        self.settings = settings
        memory = settings.memory_mib << 20
        self._setup = {
            "language": language,
            "source": source,
            "encoded": marked,
            "sandbox": settings.sandbox,
            "record_limit": RECORD_LIMIT,
            "timeout": settings.timeout,
            # Python is bounded by its address space; V8 reserves far more address space than
            # it uses, and bounds its own heap.
            "address_space": memory if language == "Python" else None,
            "heap": memory,
        }
        self._workers: list[_Worker] = []
        self.transformed = 0
        self.limited = 0
        self.last_limit: str | None = None

    def start(self) -> bool:
        """Start one worker now, so that a source that cannot run fails the run before any
        profile is read; whether ``transform`` takes the purpose as its second argument."""
        if not self._workers:
            self._workers.append(_Worker(self._setup))
        return self._workers[0].uses_purpose

    def transform(
        self,
        items: Sequence[_Item],
        encode: Callable[[list[_Item]], object],
        finish: Callable[[list[_Item], list[Outcome]], list[_Result]],
    ) -> list[_Result]:
        """What ``finish(items, outcomes)`` makes of every item, in order. Items go to the
        workers in batches of :data:`BATCH_SIZE`, as ``encode(items)`` makes them (a purpose
        and an input each); both are called a batch at a time."""
        results: dict[int, _Result] = {}
        waiting: deque[list[int]] = deque(
            list(range(i, min(i + BATCH_SIZE, len(items))))
            for i in range(0, len(items), BATCH_SIZE)
        )

        def done(indices: list[int], outcomes: list[Outcome]) -> None:
            finished = finish([items[index] for index in indices], outcomes)
            results.update(zip(indices, finished, strict=True))
            self.transformed += len(indices)
            for outcome in outcomes:
                if outcome.limit:
                    self.limited += 1
                    self.last_limit = outcome.error

        while waiting or any(worker.batches for worker in self._workers):
            self._dispatch(waiting, items, encode)
            for worker in self._ready(self._workers):
                self._collect(worker, waiting, done)
        return [results[index] for index in range(len(items))]

    def _dispatch(
        self,
        waiting: deque[list[int]],
        items: Sequence[_Item],
        encode: Callable[[list[_Item]], object],
    ) -> None:
        """Keep every worker two batches deep, starting workers up to the setting."""
        while waiting and len(self._workers) < self.settings.workers:
            self._workers.append(_Worker(self._setup))
        for worker in self._workers:
            while waiting and len(worker.batches) < 2:
                indices = waiting[0]
                ahead = bool(worker.batches)
                if not worker.send(encode([items[i] for i in indices]), ahead=ahead):
                    break  # too large to wait in the pipe: sent when the worker is free
                waiting.popleft()
                worker.batches.append(_Batch(indices, None if ahead else time.monotonic()))

    def _ready(self, workers: list[_Worker]) -> list[_Worker]:
        """The busy workers with something to read or past their time, waiting for one."""
        busy = [w for w in workers if w.batches]
        now = time.monotonic()
        deadlines = [(w.batches[0].started or now) + self._timeout() for w in busy]
        wait = max(0.0, min(deadlines, default=now) - now)
        readable = set(select.select([w.results for w in busy], [], [], wait)[0])
        now = time.monotonic()
        return [
            w
            for w, deadline in zip(busy, deadlines, strict=True)
            if w.results in readable or now >= deadline
        ]

    def _collect(
        self,
        worker: _Worker,
        waiting: deque[list[int]],
        done: Callable[[list[int], list[Outcome]], None],
    ) -> None:
        """Take the worker's answers; replace it if it timed out, died or answered nonsense."""
        alive = worker.receive()
        limit = BATCH_SIZE * (RECORD_LIMIT + 4096) + 4096
        answers = worker.answers(limit)
        for answer in answers or ():
            results = answer.get("results")
            batch = worker.batches[0]
            if not isinstance(results, list) or len(results) > len(batch.indices):
                answers = None
                break
            worker.batches.popleft()
            done(batch.indices[: len(results)], [_outcome(result) for result in results])
            rest = batch.indices[len(results) :]
            if answer.get("exit") or rest:
                # It stopped short (a JavaScript limit): a fresh worker takes the rest.
                self._replace(worker, waiting, rest)
                return
            if worker.batches:
                worker.batches[0].started = time.monotonic()
        if answers is not None and alive and not self._late(worker):
            return
        if not worker.batches:  # it ended after its last answer
            self._replace(worker, waiting, [])
            return
        batch = worker.batches.popleft()
        at = min(worker.at, len(batch.indices) - 1)
        message = f"{self.language}: {self._limit_message(worker, alive)}"
        done([batch.indices[at]], [Outcome(error=message, limit=True)])
        self._replace(worker, waiting, batch.indices[:at] + batch.indices[at + 1 :])

    def _late(self, worker: _Worker) -> bool:
        started = worker.batches[0].started if worker.batches else None
        worker.timed_out = started is not None and time.monotonic() >= started + self._timeout()
        return worker.timed_out

    def _replace(self, worker: _Worker, waiting: deque[list[int]], rest: list[int]) -> None:
        """Kill the worker; its unfinished records go back first in line."""
        queued = [batch.indices for batch in worker.batches]
        worker.batches.clear()
        worker.kill()
        self._workers.remove(worker)
        for indices in reversed([rest, *queued] if rest else queued):
            waiting.appendleft(indices)

    def _timeout(self) -> float:
        # A JavaScript worker interrupts itself at the limit; the margin lets it say so.
        return self.settings.timeout + (1.0 if self.language == "JavaScript" else 0.0)

    def _limit_message(self, worker: _Worker, alive: bool) -> str:
        if worker.timed_out:
            return f"timed out after {self.settings.timeout:g} s"
        if alive:
            return "its worker answered something that is not a result"
        try:
            worker.process.wait(timeout=START_TIMEOUT)  # its output ended: it is ending too
        except subprocess.TimeoutExpired:
            return "its worker stopped answering"
        death = worker.death()
        if worker.process.returncode == -signal.SIGKILL:
            return f"ran out of memory ({self.settings.memory_mib} MiB) and its worker was {death}"
        return f"its worker died ({death})"

    def check_health(self) -> None:
        """Raise when most records so far hit a limit: the function cannot serve this run."""
        if self.limited >= HEALTH_MINIMUM and self.limited * 2 > self.transformed:
            raise FunctionError(
                f"most records hit the function's limits ({self.limited} of "
                f"{self.transformed}): {self.last_limit}"
            )

    def close(self) -> None:
        for worker in self._workers:
            worker.kill()
        self._workers.clear()


def _parsed(body: bytes) -> Any:
    """An answer's JSON: by orjson, twice as fast; by the standard library where orjson
    refuses what Python's JSON allows (integers beyond 64 bits, lone surrogates)."""
    try:
        return decode_json(body)
    except ValueError:
        return json.loads(body.decode("utf-8", "surrogatepass"))


def _outcome(result: object) -> Outcome:
    if type(result) is list and len(result) == 2:
        kind, payload = result
        if kind == 0:
            return Outcome(payload)
        if kind in (1, 2) and type(payload) is str:
            return Outcome(None, payload, kind == 2)
    return Outcome(error="the function's worker answered something that is not a result")
