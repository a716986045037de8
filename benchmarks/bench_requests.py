"""How many HubSpot requests an export spends per 1,000 profiles where the application already
holds users Sluice has no record of, and how many of them HubSpot would refuse (409).

HubSpot's budget is 190 requests per 10 s for the whole account, so every request counts. A
DuckDB warehouse gets N profiles (default 10,000, ``--profiles N``); the seed pipeline selects
the US half. The HubSpot twin (in this process, its limits off; the connector's client-side
limit lifted too, so that seconds measure Sluice and not the pacing) already holds 10 % of the
selected profiles' emails when the first run starts, with no bookkeeping in the warehouse.

Cases, each on a fresh warehouse and twin:

1. a first run in each export mode; ``CreateOrUpdate`` twice: by batch upsert (what Sluice
   chooses), and by a lookup then a create or update (what it does where the application has
   no upsert, or the record sent differs between creation and update; here the connector's
   ``upserts`` answers no);
2. a recovery: the first run's every write landed, but none was acknowledged (what SIGKILL
   between the answers and the bookkeeping leaves, at its worst); the rerun must send no
   create HubSpot refuses, in about the time of the first run.

Printed per case: application requests per 1,000 selected profiles (writes and lookups), the
409 answers, seconds, and for recoveries the ratio to the first run's seconds. Targets: zero
409s everywhere; the upsert path spends fewer requests than lookup-then-write; a recovery
takes at most 1.5× its first run. Exits 1 when one is missed.

    .venv/bin/python benchmarks/bench_requests.py [--profiles 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sluice.apps import hubspot
from sluice.apps.connector import RateLimit
from sluice.twins.hubspot import HubSpotTwin, serve
from targets import verdict
from tests.integration.conftest import CUSTOMER_CODE, TOKEN, Target
from tests.integration.test_export import READ, WRITES, people

SEARCH = "POST /crm/v3/objects/contacts/search"
TARGET_RECOVERY_RATIO = 1.5
#: Every tenth selected profile (the selected ones are the even ids) is already in the app.
PRESENT_EVERY = 20


@dataclass
class Measured:
    label: str
    selected: int
    requests: int
    conflicts: int
    seconds: float
    counts: dict[str, int]

    @property
    def per_thousand(self) -> float:
        return self.requests * 1000 / self.selected


def lift_client_rate_limit() -> None:
    concurrent = hubspot.RATE_LIMIT.max_concurrent
    hubspot.RATE_LIMIT = RateLimit(requests_per_second=1e9, burst=10**9, max_concurrent=concurrent)


@contextlib.contextmanager
def without_upserts() -> Iterator[None]:
    async def never(self: hubspot.HubSpotConnector, matching_path: str) -> bool:
        return False

    upserts = hubspot.HubSpotConnector.upserts
    hubspot.HubSpotConnector.upserts = never  # type: ignore[method-assign]
    try:
        yield
    finally:
        hubspot.HubSpotConnector.upserts = upserts  # type: ignore[method-assign]


def run(target: Target, label: str, selected: int, **pipeline: Any) -> Measured:
    before = target.twin.stats()["requests"]
    started = time.perf_counter()
    summary = target.export(target.config(**pipeline))
    seconds = time.perf_counter() - started
    after = target.twin.stats()["requests"]
    if summary.outcome != "Succeeded":
        raise SystemExit(f"{label}: the run ended {summary.outcome}: {summary.error}")

    def sent(stats: dict[str, dict[str, int]], endpoints: tuple[str, ...]) -> int:
        return sum(sum(stats.get(endpoint, {}).values()) for endpoint in endpoints)

    def refused(stats: dict[str, dict[str, int]]) -> int:
        return sum(statuses.get("409", 0) for statuses in stats.values())

    endpoints = (*WRITES, READ, SEARCH)
    return Measured(
        label,
        selected,
        sent(after, endpoints) - sent(before, endpoints),
        refused(after) - refused(before),
        seconds,
        dict(summary.counts),
    )


def measure_case(
    folder: Path, profiles: int, label: str, *, recover: bool, **pipeline: Any
) -> list[Measured]:
    twin = HubSpotTwin(TOKEN, custom_properties=[CUSTOMER_CODE], rate_limit=False)
    with serve(twin) as base_url:
        path = folder / f"{len(list(folder.iterdir()))}.duckdb"
        duckdb.connect(str(path)).close()
        target = Target("DuckDB", str(path), twin, base_url)
        target.load(people(profiles))
        twin.add_contacts(
            [{"email": f"user{i}@example.com"} for i in range(0, profiles, PRESENT_EVERY)]
        )
        selected = profiles // 2
        first = run(target, f"first run, {label}", selected, **pipeline)
        if not recover:
            return [first]
        target.sql("DELETE FROM sluice_exported_profiles")  # written, never acknowledged
        return [first, run(target, f"recovery, {label}", selected, **pipeline)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=10_000)
    args = parser.parse_args()
    lift_client_rate_limit()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-requests-") as folder:
        where = Path(folder)
        upsert = measure_case(
            where, args.profiles, "CreateOrUpdate (upsert)", recover=True,
            exportMode="CreateOrUpdate",
        )  # fmt: skip
        with without_upserts():
            looked_up = measure_case(
                where, args.profiles, "CreateOrUpdate (lookup, then write)", recover=True,
                exportMode="CreateOrUpdate",
            )  # fmt: skip
        create_only = measure_case(
            where, args.profiles, "CreateOnly", recover=True, exportMode="CreateOnly"
        )
        update_only = measure_case(
            where, args.profiles, "UpdateOnly", recover=False, exportMode="UpdateOnly"
        )
    print(f"{args.profiles:,} profiles, {args.profiles // 2:,} selected, 10 % of them in the app")
    print(f"{'case':<48} {'requests/1,000':>14} {'409s':>5} {'seconds':>8} {'×first':>7}")
    missed: list[str] = []
    for case in (upsert, looked_up, create_only, update_only):
        first = case[0]
        for measured in case:
            ratio = measured.seconds / first.seconds
            shown = f"{ratio:>6.2f}×" if measured is not first else ""
            print(
                f"{measured.label:<48} {measured.per_thousand:>14.1f} {measured.conflicts:>5} "
                f"{measured.seconds:>8.2f} {shown:>7}"
            )
            if measured.conflicts:
                missed.append(f"{measured.label}: {measured.conflicts} answers 409")
            if measured is not first and ratio > TARGET_RECOVERY_RATIO:
                missed.append(f"{measured.label}: {ratio:.2f}× its first run")
    if upsert[0].requests >= looked_up[0].requests:
        missed.append("upserting spent no fewer requests than looking up, then writing")
    return verdict(missed, "no 409, upsert cheapest, recoveries within 1.5× their first run")


if __name__ == "__main__":
    sys.exit(main())
