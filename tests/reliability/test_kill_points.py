"""Exports killed with SIGKILL at precise points of their writes, then run again: the
application must end holding each selected profile's contact exactly once, none lost and none
duplicated.

The HubSpot twin serves its API behind a :class:`KillSwitch`, which kills the exporting process
on its Nth write request (a batch create or upsert) at one of three moments (:class:`Phase`).
The second one is the window where a blind retry would duplicate: the batch is applied and the
exporter never hears of it. The next run must find those contacts (upserting them by email,
or searching them by customer code before creating) instead of creating them again.

Each test runs kill-and-rerun cycles on one warehouse. A cycle replaces the profiles with new
ones, kills a run, checks that the application holds no contact twice and none it should not,
reruns, and checks that it holds exactly the expected contacts, each once, all recorded in the
warehouse. The runs are forked from a server that imported Sluice once
(``sluice_processes.py``): a fresh interpreter per run would cost more than the runs.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import random
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.apps.hubspot import BATCH_SIZE
from sluice.twins.hubspot import HubSpotTwin, serve
from tests.integration.conftest import CUSTOMER_CODE, TOKEN, Target
from tests.integration.test_export import WRITES, conflicts, exported_rows, people, person
from tests.integration.test_export_faults import BY_CUSTOMER_CODE, BY_EMAIL, write_manifests
from tests.operator_process import eventually
from tests.reliability.sluice_processes import exit_code, sluice_process
from tests.reliability.soak import FACTOR

#: Profiles per cycle: the seed pipeline selects the US half, sent in batches of 100.
PROFILES = 600
SELECTED = PROFILES // 2
WRITES_PER_RUN = SELECTED // BATCH_SIZE
#: Per warehouse and export mode; the two modes make 20 kill points per warehouse.
KILLS_PER_TEST = 10 * FACTOR
RUN_TIMEOUT = 60.0
#: The longest wait from an answer to the kill: a run records its last answers and ends within
#: about that, so kills land on both sides of the warehouse recording the answer.
MAX_DELAY_AFTER_ANSWER = 0.02
#: Set it to replay the kill points of a failed run: its seed is in the failure's message.
SEED_VARIABLE = "SLUICE_KILL_POINTS_SEED"
SEED = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(2**32))
WRITE_PATHS = frozenset(endpoint.partition(" ")[2] for endpoint in WRITES)


class Phase(enum.StrEnum):
    """When, in the handling of the chosen write request, the exporting process is killed."""

    BEFORE_APPLY = "before the batch is applied"
    BEFORE_ANSWER = "after the batch is applied, before its answer"
    AFTER_ANSWER = "0-20 ms after the answer"


@dataclass(frozen=True)
class KillPoint:
    nth_write: int
    phase: Phase
    #: Seconds from the answer to the kill, in the phase after the answer.
    delay: float


class KillSwitch:
    """Wraps the twin's app (:meth:`wrap`) to kill the armed process on its ``nth_write``
    write request, at the point's phase. Killed before the answer, the process never reads
    it: the twin sends it only once the process is dead."""

    def __init__(self) -> None:
        self._armed: tuple[BaseProcess, KillPoint] | None = None
        self._writes = 0
        self._in_flight = 0
        self.fired = False

    def arm(self, process: BaseProcess, point: KillPoint) -> None:
        self._writes, self.fired = 0, False
        self._armed = process, point

    def disarm(self) -> None:
        self._armed = None

    def quiet(self) -> bool:
        """Whether the twin handles no request: a killed process's last ones are done."""
        return self._in_flight == 0

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def switched(scope: Scope, receive: Receive, send: Send) -> None:
            self._in_flight += 1
            try:
                await self._handle(app, scope, receive, send)
            finally:
                self._in_flight -= 1

        return switched

    async def _handle(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        armed = self._armed
        if armed is None or scope["type"] != "http" or scope["path"] not in WRITE_PATHS:
            await app(scope, receive, send)
            return
        process, point = armed
        self._writes += 1
        if self._writes != point.nth_write:
            await app(scope, receive, send)
            return
        self._armed, self.fired = None, True
        if point.phase is Phase.BEFORE_APPLY:
            await _kill(process)
            # Answered all the same, to no one: an ASGI app answers every request.
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif point.phase is Phase.BEFORE_ANSWER:

            async def answer_once_dead(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await _kill(process)
                await send(message)

            await app(scope, receive, answer_once_dead)
        else:
            await app(scope, receive, send)
            asyncio.get_running_loop().call_later(point.delay, process.kill)


async def _kill(process: BaseProcess) -> None:
    """SIGKILL the process and wait until it is dead, without blocking the twin."""
    process.kill()
    await asyncio.to_thread(wait, [process.sentinel], RUN_TIMEOUT)


class SwitchedHubSpotTwin(HubSpotTwin):
    """The integration tests' HubSpot twin, its API behind a kill switch."""

    def __init__(self, kill_switch: KillSwitch) -> None:
        super().__init__(TOKEN, custom_properties=[CUSTOMER_CODE], rate_limit=False)
        self.kill_switch = kill_switch

    def app(self) -> Starlette:
        app = super().app()
        app.add_middleware(self.kill_switch.wrap)
        return app


@pytest.fixture(scope="session")
def kill_switch() -> KillSwitch:
    return KillSwitch()


@pytest.fixture(scope="session")
def hubspot(kill_switch: KillSwitch) -> Iterator[tuple[HubSpotTwin, str]]:
    """The twin ``target`` exports to (and resets for each test)."""
    twin = SwitchedHubSpotTwin(kill_switch)
    with serve(twin) as base_url:
        yield twin, base_url


@dataclass(frozen=True)
class Writes:
    """How a pipeline writes: its matching, mapping and export mode, and the count of its
    summary for a profile whose contact the application already holds."""

    matching: dict[str, str]
    mapping: dict[str, str]
    export_mode: str
    found: str

    def expected(self, profile: int) -> str:
        """The matching value the application holds for the numbered profile."""
        return str(person(profile)[self.matching["in"]])

    def held(self, target: Target) -> list[str]:
        """The matching values of the application's contacts, one per contact, sorted."""
        name = self.matching["out"].removeprefix("contact.")
        return sorted(str(c["properties"].get(name)) for c in target.twin.contacts())


UPSERT = Writes(BY_EMAIL, {"contact.firstname": "first_name"}, "CreateOrUpdate", "updated")
#: No email: a contact created twice is a second contact with the same customer code, which
#: HubSpot accepts, where a second one with the same email would be refused.
CREATE = Writes(
    BY_CUSTOMER_CODE, {"contact.firstname": "first_name"}, "CreateOnly", "alreadyInApplication"
)


@pytest.mark.parametrize("writes", [UPSERT, CREATE], ids=["upsert", "search-then-create"])
def test_runs_killed_at_any_write_are_completed_by_the_next_without_loss_or_duplicates(
    target: Target, kill_switch: KillSwitch, tmp_path: Path, writes: Writes
) -> None:
    rng = random.Random(f"{SEED}/{target.kind}/{writes.export_mode}")
    phases = [list(Phase)[i % len(Phase)] for i in range(KILLS_PER_TEST)]
    rng.shuffle(phases)
    cycles = KillAndRerun(target, kill_switch, writes, tmp_path)
    landings: Counter[str] = Counter()
    for cycle, phase in enumerate(phases):
        point = KillPoint(
            rng.randint(1, WRITES_PER_RUN), phase, rng.uniform(0, MAX_DELAY_AFTER_ANSWER)
        )
        try:
            landings[cycles.run(point)] += 1
        except AssertionError as failure:
            raise AssertionError(
                f"cycle {cycle}, {point}; replay with {SEED_VARIABLE}={SEED}"
            ) from failure
    print(f"\n{target.kind} {writes.export_mode}, seed {SEED}: {dict(landings)}")


class KillAndRerun:
    """Cycles of one pipeline's export on one warehouse: each loads new profiles, kills a run
    and runs it again. Between cycles the application holds :attr:`held`, each once."""

    def __init__(
        self, target: Target, kill_switch: KillSwitch, writes: Writes, folder: Path
    ) -> None:
        self.target = target
        self.kill_switch = kill_switch
        self.writes = writes
        self.folder = folder
        manifests = write_manifests(
            target,
            folder,
            matching=writes.matching,
            transformation={"mapping": writes.mapping},
            exportMode=writes.export_mode,
        )
        self.command = ["export", "-f", str(manifests), "--pipeline", "export-customers"]
        self.held: list[str] = []
        self.cycles = 0
        # Created as a first run does, so that what each killed run records can be counted.
        warehouse = target.open()
        try:
            warehouse.ensure_bookkeeping()
        finally:
            warehouse.close()

    def run(self, point: KillPoint) -> str:
        """One cycle, killed at ``point``; answers where the kill landed."""
        first = self.cycles * PROFILES
        self.cycles += 1
        self.target.load(people(PROFILES, start=first))
        expected = sorted(
            [*self.held, *(self.writes.expected(i) for i in range(first, first + PROFILES, 2))]
        )
        recorded_before = exported_rows(self.target)

        killed_code = self._killed(point)
        after_kill = self.writes.held(self.target)
        assert len(set(after_kill)) == len(after_kill), "a contact was created twice"
        assert set(after_kill) <= set(expected)
        written = len(after_kill) - len(self.held)
        recorded = exported_rows(self.target) - recorded_before

        counts = self._rerun()
        assert counts["unchanged"] == recorded
        assert counts[self.writes.found] == written - recorded
        assert counts["created"] == SELECTED - written
        assert self.writes.held(self.target) == expected
        assert exported_rows(self.target) == len(expected)
        # Settled by lookups or upserts, never by a create HubSpot refuses as a duplicate.
        assert conflicts(self.target) == 0
        self.held = expected
        return _landing(point.phase, killed_code, recorded, written)

    def _killed(self, point: KillPoint) -> int:
        """The exit code of a run killed at ``point``, once the twin handled its requests."""
        process = sluice_process(self.command, self.folder / f"killed-{self.cycles}")
        self.kill_switch.arm(process, point)
        process.start()
        try:
            code = exit_code(process, RUN_TIMEOUT)
        finally:
            self.kill_switch.disarm()
        assert self.kill_switch.fired, "the run made fewer writes than that"
        assert code == -signal.SIGKILL or (point.phase is Phase.AFTER_ANSWER and code == 0)
        eventually(self.kill_switch.quiet, "the twin to finish the killed run's requests", 10)
        return code

    def _rerun(self) -> dict[str, int]:
        """The counts of a run to the end."""
        output = self.folder / f"rerun-{self.cycles}"
        process = sluice_process(self.command, output)
        process.start()
        code = exit_code(process, RUN_TIMEOUT)
        summary = output.with_suffix(".out").read_text()
        assert code == 0, summary + output.with_suffix(".err").read_text()
        counts: dict[str, int] = json.loads(summary)["counts"]
        return counts


def _landing(phase: Phase, code: int, recorded: int, written: int) -> str:
    """Where a kill landed, from the killed run's exit code and how many of the contacts it
    wrote the warehouse recorded."""
    if phase is not Phase.AFTER_ANSWER:
        return str(phase)
    if code == 0:
        return f"{phase}, after the run ended"
    if recorded == written:
        return f"{phase}, after the warehouse recorded it"
    return f"{phase}, before the warehouse recorded it"
