"""Every connector's first export against its twin: how fast, how many requests, and how close
to the application's own rate limit.

For each application of tests/apps/ (one DuckDB warehouse per run, the twin in this process):

1. **Unpaced**: N profiles (default 100,000, ``--profiles N``), all selected, a first
   ``CreateOrUpdate`` run with the twin's rate limit off and the connector's client-side pacing
   lifted, so that the figures measure Sluice, the connector and the twin, not the pacing.
   Printed: profiles/s and application requests per 1,000 profiles.
2. **Paced**: the twin enforcing the application's documented limit and the connector pacing
   itself as it ships; as many profiles as the limit lets through in about ``--paced-seconds``
   (default 20). Printed: the run's time as a ratio to the limit's floor — the profiles divided
   by the most profiles per second the application allows (its request budget times the
   profiles one request writes). 1.0 is the best any client could do.

Targets: every run Succeeds with every profile in the application, and every paced run within
1.5× its floor. Exits 1 when one is missed.

    .venv/bin/python benchmarks/bench_connectors.py [--profiles 100000] [--only mailchimp]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from targets import verdict
from tests.apps import AppCase, case, cases, unpaced
from tests.integration.conftest import Target
from tests.integration.test_connectors import Export
from tests.integration.test_export import people

TARGET_FLOOR_RATIO = 1.5


@dataclass
class Measured:
    profiles: int
    seconds: float
    requests: int

    @property
    def per_second(self) -> float:
        return self.profiles / self.seconds

    @property
    def per_thousand(self) -> float:
        return self.requests * 1000 / self.profiles


def first_run(app: AppCase, base_url: str, folder: Path, profiles: int, label: str) -> Measured:
    path = folder / f"{app.code}-{label}.duckdb"
    duckdb.connect(str(path)).close()
    export = Export(Target("DuckDB", str(path), None, base_url), app, base_url)  # type: ignore[arg-type]
    export.warehouse.load(people(profiles))
    app.twin.reset()
    before = sum(sum(s.values()) for s in app.twin.request_counts().values())
    started = time.perf_counter()
    summary = export.run(filter=None)
    seconds = time.perf_counter() - started
    if summary.outcome != "Succeeded" or summary.counts["created"] != profiles:
        raise SystemExit(f"{app.code}: the run ended {summary.outcome}: {dict(summary.counts)}")
    if len(app.users()) != profiles:
        raise SystemExit(f"{app.code}: the application holds {len(app.users())} users")
    requests = sum(sum(s.values()) for s in app.twin.request_counts().values()) - before
    return Measured(profiles, seconds, requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    parser.add_argument("--only", action="append", help="this connector only (repeatable)")
    args = parser.parse_args()
    missed: list[str] = []
    print(
        f"{'connector':<11} {'profiles/s':>10} {'requests/1,000':>14} "
        f"{'paced profiles':>14} {'floor s':>8} {'×floor':>7}"
    )
    with tempfile.TemporaryDirectory(prefix="sluice-bench-connectors-") as folder:
        for code in args.only or cases():
            app = case(code)
            with app.serve() as base_url:
                with unpaced():
                    free = first_run(app, base_url, Path(folder), args.profiles, "unpaced")
                allowed = app.allowed_profiles_per_second
                if allowed is None:
                    print(
                        f"{code:<11} {free.per_second:>10,.0f} {free.per_thousand:>14.1f} "
                        "   (no request-rate limit)"
                    )
                    continue
                paced_profiles = max(100, round(allowed * args.paced_seconds, -2))
                app.twin.reset()
                app.twin.set_rate_limiting(True)
                try:
                    paced = first_run(app, base_url, Path(folder), int(paced_profiles), "paced")
                finally:
                    app.twin.set_rate_limiting(False)
            floor = paced.profiles / allowed
            ratio = paced.seconds / floor
            print(
                f"{code:<11} {free.per_second:>10,.0f} {free.per_thousand:>14.1f} "
                f"{paced.profiles:>14,} {floor:>8.1f} {ratio:>6.2f}×"
            )
            if ratio > TARGET_FLOOR_RATIO:
                missed.append(f"{code}: {ratio:.2f}× the floor of its rate limit")
    return verdict(missed, f"every run complete, every paced run within {TARGET_FLOOR_RATIO}×")


if __name__ == "__main__":
    sys.exit(main())
