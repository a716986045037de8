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
import json
import math
import mmap
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

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


def available_cpus() -> int:
    """The CPUs this process may use: its affinity, bounded by a cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as limit:
            quota, period = limit.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


@dataclass(frozen=True)
class Outcome:
    """One record's result: the JSON text the function returned, or why it failed.
    ``limit``: it failed on a limit (time, memory, a dead worker), not by its own exception."""

    text: str | None = None
    error: str | None = None
    limit: bool = False


class _Worker:
    """One worker process and its channel."""

    def __init__(self, setup: dict[str, Any]) -> None:
        request_read, self._requests = os.pipe()
        self._results, result_write = os.pipe()
        progress = os.memfd_create("sluice-progress", os.MFD_CLOEXEC)
        os.ftruncate(progress, 4)
        self.progress = mmap.mmap(progress, 4)
        fds = (request_read, result_write, progress)
        #: Whether the last answer did not come in time (rather than the worker ending).
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
        self._send(setup)
        reply = self._receive(time.monotonic() + START_TIMEOUT, 1 << 16)
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

    def _send(self, message: object) -> None:
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(_LENGTH.pack(len(body)) + body)
        try:
            while view:
                view = view[os.write(self._requests, view) :]
        except BrokenPipeError:
            pass  # the worker died; the reply's absence says so

    def _receive(self, deadline: float, limit: int) -> dict[str, Any] | None:
        """The next answer, or None if the worker dies, passes ``deadline``, or sends more
        than ``limit`` bytes or something that is not an answer."""
        header = self._read(4, deadline)
        if header is None:
            return None
        size = _LENGTH.unpack(header)[0]
        body = self._read(size, deadline) if size <= limit else None
        if body is None:
            return None
        try:
            reply = json.loads(body, parse_constant=str)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        return reply if isinstance(reply, dict) else None

    def _read(self, size: int, deadline: float) -> bytes | None:
        chunks, left = [], size
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([self._results], [], [], wait)[0]:
                self.timed_out = True
                return None
            chunk = os.read(self._results, min(left, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def run(
        self, batch: list[tuple[str, dict[str, Any]]], deadline: float
    ) -> dict[str, Any] | None:
        _LENGTH.pack_into(self.progress, 0, 0)
        self._send(batch)
        return self._receive(deadline, len(batch) * (RECORD_LIMIT + 4096) + 4096)

    @property
    def at(self) -> int:
        """The index of the record the worker was transforming."""
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
        for fd in (self._requests, self._results):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.progress.close()


class FunctionPool:
    """The workers of one run for one source."""

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
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        for _ in range(settings.workers):
            self._idle.put(None)  # started when first needed
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="function")
        self._lock = threading.Lock()
        self.transformed = 0
        self.limited = 0
        self.last_limit: str | None = None

    def start(self) -> bool:
        """Start one worker now, so that a source that cannot run fails the run before any
        profile is read; whether ``transform`` takes the purpose as its second argument."""
        worker = self._idle.get()
        try:
            worker = worker or _Worker(self._setup)
            return worker.uses_purpose
        finally:
            self._idle.put(worker)

    def transform(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[Outcome]:
        """One outcome per (purpose, input) item, in order; batches run in parallel."""
        batches = [list(items[i : i + BATCH_SIZE]) for i in range(0, len(items), BATCH_SIZE)]
        outcomes: list[Outcome] = []
        for result in self._executor.map(self._run_batch, batches):
            outcomes.extend(result)
        return outcomes

    def _run_batch(self, batch: list[tuple[str, dict[str, Any]]]) -> list[Outcome]:
        worker = self._idle.get()
        outcomes: list[Outcome | None] = [None] * len(batch)
        todo = list(range(len(batch)))
        try:
            while todo:
                worker = worker or _Worker(self._setup)
                reply = worker.run([batch[i] for i in todo], time.monotonic() + self._timeout())
                results = reply.get("results") if reply is not None else None
                if reply is None or not isinstance(results, list) or len(results) > len(todo):
                    # Timed out, died, or answered nonsense: blame the record it was on.
                    at = min(worker.at, len(todo) - 1)
                    message = self._limit_message(worker)
                    worker.kill()
                    worker = None
                    outcomes[todo[at]] = Outcome(error=f"{self.language}: {message}", limit=True)
                    todo = todo[:at] + todo[at + 1 :]
                    continue
                for index, result in zip(todo, results, strict=False):
                    outcomes[index] = _outcome(result)
                if reply.get("exit"):
                    worker.kill()
                    worker = None
                todo = todo[len(results) :]
        finally:
            self._idle.put(worker)
        done = [outcome or Outcome(error="no result") for outcome in outcomes]
        with self._lock:
            self.transformed += len(done)
            for outcome in done:
                if outcome.limit:
                    self.limited += 1
                    self.last_limit = outcome.error
        return done

    def _timeout(self) -> float:
        # A JavaScript worker interrupts itself at the limit; the margin lets it say so.
        return self.settings.timeout + (1.0 if self.language == "JavaScript" else 0.0)

    def _limit_message(self, worker: _Worker) -> str:
        if worker.timed_out:
            return f"timed out after {self.settings.timeout:g} s"
        try:
            worker.process.wait(timeout=START_TIMEOUT)  # its output ended: it is ending too
        except subprocess.TimeoutExpired:
            return "its worker answered something that is not a result"
        death = worker.death()
        if "memory" in death or worker.process.returncode == -signal.SIGKILL:
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
        self._executor.shutdown(wait=True)
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.kill()


def _outcome(result: object) -> Outcome:
    if (
        isinstance(result, list)
        and len(result) == 2
        and result[0] in (0, 1, 2)
        and isinstance(result[1], str)
    ):
        if result[0] == 0:
            return Outcome(text=result[1])
        return Outcome(error=result[1], limit=result[0] == 2)
    return Outcome(error="the function's worker answered something that is not a result")
