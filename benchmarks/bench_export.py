"""How fast ``sluice export`` moves profiles from PostgreSQL to HubSpot, as ratios to a raw COPY.

A throw-away PostgreSQL server gets a ``profiles`` table of N profiles (default 1,000,000,
``--profiles N``), generated in SQL: every profile has a unique email ``user<i>@example.com``,
first and last names, a city, and half of them have ``address_country = 'US'``, which is what
the seed pipeline (``examples/seed-pipeline.yaml``, here with ``exportMode: CreateOrUpdate``)
selects. The HubSpot twin runs in a process of its own without rate limits; every export is
``sluice export -f MANIFESTS --pipeline export-customers`` in a fresh child process, timed from
its start to its exit (interpreter start-up included: that is what a CronJob pod pays), its peak
resident memory read from ``wait4``.

The HubSpot connector paces itself to HubSpot's documented private-app limit (18 requests/s,
burst 10: 190 per rolling 10 s), which caps a first export at about 1,900 profiles/s (one upsert
per 100 profiles) whatever the engine does. To measure the engine rather than that
sleep, the child lifts the connector's client-side limit (``sluice.apps.hubspot.RATE_LIMIT``,
same concurrency) before running the ``sluice`` command; ``--hubspot-rate-limit`` keeps it
(then a million profiles take about ten minutes for the first export alone).

Measured in one run:

1. the floor: ``COPY (SELECT <the pipeline's input columns and the id> FROM profiles WHERE
   address_country = 'US') TO STDOUT`` read to the end by psycopg, median of 3;
2. the first full export: every selected profile created (the twin must hold them all);
3. a rerun with nothing changed: the twin must receive no lookup and no write;
4. a rerun after 1 % of the selected profiles changed (a first name): exactly those updated,
   nothing created (before each rerun the tables are analyzed, as autovacuum would have done by
   the next scheduled run: the plan of the engine's read depends on it);
5. the same first export on a table ten times smaller (100,000 profiles by default, on a
   database of its own, run first), for its peak memory.

Reported per case: seconds of the whole child and of the run itself (the summary's startedAt to
finishedAt: connecting, checking the schemas, the counts, the read, the writes), both as ratios to
the floor, selected profiles per second, peak RSS. The rerun targets compare the run itself with
the floor, as the floor has no interpreter to start either; the child's start-up (about 0.4 s,
the same at any size) is printed beside it.

Targets: the no-change rerun ≤ 1.5× the floor with zero application requests besides the schema
and account reads every run makes; the 1 % rerun ≤ 2× the floor; peak RSS < 300 MB at both
sizes and within 10 % of each other; the full export ≥ 30,000 profiles/s. Everything is
printed first; exits 1 when a target is missed (or a check fails).

    .venv/bin/python benchmarks/bench_export.py [--profiles 1000000] [--hubspot-rate-limit]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sluice.model.types import parse_type
from sluice.warehouses import open_warehouse
from sluice.warehouses.loading import create_profiles_table
from tests.postgres import running_postgres

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SLUICE = Path(sys.executable).with_name("sluice")
#: The child's program: ``sluice`` with HubSpot's client-side rate limit lifted (argv follows).
UNLIMITED_SLUICE = """
import sys
from sluice.apps import hubspot
from sluice.apps.connector import RateLimit
from sluice.cli import main
concurrent = hubspot.RATE_LIMIT.max_concurrent
hubspot.RATE_LIMIT = RateLimit(requests_per_second=1e9, burst=10**9, max_concurrent=concurrent)
sys.exit(main(sys.argv[1:]))
"""
PIPELINE = "export-customers"
TOKEN = "pat-bench-export"
FLOOR_SQL = (
    "COPY (SELECT first_name, last_name, email, address_country, _kpid FROM profiles "
    "WHERE address_country = 'US') TO STDOUT"
)
FLOOR_REPEATS = 3
CHANGED_SHARE = 100  # 1 % of the selected profiles change before the third run
#: Seconds after which an export is killed (and reported): without HubSpot's rate limit, and with.
EXPORT_TIMEOUT = 300.0
RATE_LIMITED_EXPORT_TIMEOUT = 1200.0
TWIN_START_TIMEOUT = 30.0
TARGET_NO_CHANGE = 1.5
TARGET_ONE_PERCENT = 2.0
TARGET_RSS = 300 * 10**6
TARGET_RSS_SPREAD = 0.10
TARGET_RATE = 30_000
#: Application requests every run sends before reading or writing users: the destination
#: schema, and the account whose bookkeeping the run uses.
RUN_READS = frozenset({"GET /crm/v3/properties/contacts", "GET /account-info/v3/details"})


@dataclass
class Export:
    """One ``sluice export`` child: how long it took, its peak RSS, and its summary."""

    seconds: float
    cpu_seconds: float
    """User and system CPU time of the child."""
    peak_rss: int
    exit_code: int
    summary: dict[str, Any]
    requests: dict[str, int]
    """Application requests the twin received during the run, by endpoint (all statuses)."""

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.summary.get("counts", {})
        return counts

    @property
    def engine_seconds(self) -> float:
        """The run's own duration, from its summary (no interpreter start-up, no imports)."""
        started = self.summary.get("startedAt")
        finished = self.summary.get("finishedAt")
        if not started or not finished:
            return float("nan")
        return _instant(finished) - _instant(started)


def _instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- the warehouse -------------------------------------------------------------------------------


def libpq_dsn(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(False)


def create_database(server_url: str, name: str) -> str:
    """A new database on the server; answers its libpq DSN."""
    with psycopg.connect(libpq_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return libpq_dsn(sa.make_url(server_url).set(database=name).render_as_string(False))


def profile_schema() -> Any:
    documents = list(yaml.safe_load_all((EXAMPLES / "workspace.yaml").read_text()))
    workspace = next(d for d in documents if d and d.get("kind") == "Workspace")
    return parse_type(workspace["spec"]["profileSchema"])


def fill_profiles(dsn: str, count: int) -> None:
    """``count`` profiles in ``profiles``, half of them in the US, generated by the server."""
    warehouse = open_warehouse("PostgreSQL", dsn=dsn)
    try:
        create_profiles_table(warehouse, "profiles", "_kpid", profile_schema())
    finally:
        warehouse.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO profiles (_kpid, first_name, last_name, email, phone, loyalty_points,
                                  address_city, address_country)
            SELECT i::text,
                   (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Ken','Margaret'])
                       [1 + i %% 8] || ' ' || (i %% 9973),
                   (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Thompson',
                          'Hamilton'])[1 + (i / 8) %% 8] || '-' || (i %% 7919),
                   'user' || i || '@example.com',
                   '+1555' || lpad((i %% 10000000)::text, 7, '0'),
                   (i * 37) %% 10000,
                   (ARRAY['Springfield','Portland','Austin','Boston','Denver','Madison'])
                       [1 + i %% 6],
                   CASE WHEN i %% 2 = 0 THEN 'US'
                        ELSE (ARRAY['DE','FR','IT','CA','GB'])[1 + (i / 2) %% 5] END
            FROM generate_series(1, %s) AS i
            """,
            [count],
        )
        conn.execute("VACUUM ANALYZE profiles")


def floor_seconds(dsn: str) -> tuple[float, int]:
    """Median seconds of the raw COPY of the selected profiles' columns, and its row count."""
    timings = []
    rows = 0
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for _ in range(FLOOR_REPEATS):
            started = time.perf_counter()
            with cur.copy(FLOOR_SQL) as copy:
                for block in copy:
                    rows += bytes(block).count(b"\n")
            timings.append(time.perf_counter() - started)
            conn.rollback()
    return statistics.median(timings), rows // FLOOR_REPEATS


def settle(dsn: str) -> None:
    """Statistics as autovacuum would have them by the next scheduled run: the reruns are
    planned on analyzed tables (the planner's choice for the read depends on them)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE profiles, sluice_exported_profiles")


def change_profiles(dsn: str, every: int) -> int:
    """Change the first name of one in ``every`` US profiles; answers how many changed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(
            "UPDATE profiles SET first_name = first_name || 'x' "
            "WHERE address_country = 'US' AND CAST(_kpid AS BIGINT) %% %s = 0",
            [2 * every],
        )
        return cursor.rowcount


# -- the twin and the manifests ------------------------------------------------------------------


@contextlib.contextmanager
def running_twin() -> Iterator[str]:
    """The HubSpot twin in a child process; yields its base URL."""
    twin = subprocess.Popen(
        [
            *(sys.executable, "-m", "sluice.twins.hubspot", "--listen", "127.0.0.1:0"),
            *("--token", TOKEN, "--no-rate-limit"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert twin.stdout is not None
        line = _read_line(twin.stdout, TWIN_START_TIMEOUT)
        match = re.fullmatch(r"listening on (http://\S+)\n?", line)
        if match is None:
            raise RuntimeError(f"the twin did not start: {line!r}")
        yield match.group(1)
    finally:
        twin.terminate()
        try:
            twin.wait(timeout=10)
        except subprocess.TimeoutExpired:
            twin.kill()
            twin.wait(timeout=10)


def _read_line(stream: Any, timeout: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""


def twin_requests(base_url: str) -> dict[str, int]:
    """Requests the twin answered so far, by endpoint (all statuses together)."""
    stats = httpx.get(f"{base_url}/_twin/stats", timeout=30).json()
    return {endpoint: sum(by_status.values()) for endpoint, by_status in stats["requests"].items()}


def twin_contacts(base_url: str) -> int:
    count: int = httpx.get(f"{base_url}/_twin/contacts?count=1", timeout=30).json()["count"]
    return count


def write_manifests(folder: Path, dsn: str, base_url: str) -> None:
    workspace = (EXAMPLES / "workspace.yaml").read_text()
    workspace, n = re.subn(r"(?m)^  dsn: .*$", f"  dsn: {json.dumps(dsn)}", workspace)
    assert n == 1, "examples/workspace.yaml: no dsn to replace"
    connection = (EXAMPLES / "hubspot-connection.yaml").read_text()
    connection, n = re.subn(r"(?m)^  accessToken: .*$", f"  accessToken: {TOKEN}", connection)
    assert n == 1, "examples/hubspot-connection.yaml: no accessToken to replace"
    connection, n = re.subn(
        r"(?m)^  settings: \{\}$", f"  settings: {{baseUrl: {json.dumps(base_url)}}}", connection
    )
    assert n == 1, "examples/hubspot-connection.yaml: no settings to replace"
    pipeline = (EXAMPLES / "seed-pipeline.yaml").read_text()
    pipeline, n = re.subn(r"(?m)^  exportMode: .*$", "  exportMode: CreateOrUpdate", pipeline)
    assert n == 1, "examples/seed-pipeline.yaml: no exportMode to replace"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "workspace.yaml").write_text(workspace)
    (folder / "hubspot-connection.yaml").write_text(connection)
    (folder / "seed-pipeline.yaml").write_text(pipeline)


# -- one export ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the exports of one warehouse go, and how the child is started."""

    base_url: str
    manifests: Path
    rate_limited: bool


def run_export(target: Target) -> Export:
    """``sluice export`` in a fresh child: wall time, peak RSS (wait4), summary, requests."""
    arguments = ["export", "-f", str(target.manifests), "--pipeline", PIPELINE]
    if target.rate_limited:
        argv = [str(SLUICE), *arguments]
    else:
        argv = [sys.executable, "-c", UNLIMITED_SLUICE, *arguments]
    base_url = target.base_url
    before = twin_requests(base_url)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        timeout = RATE_LIMITED_EXPORT_TIMEOUT if target.rate_limited else EXPORT_TIMEOUT
        killer = threading.Timer(timeout, child.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace").strip()
        stderr = err.read().decode(errors="replace").strip()
    after = twin_requests(base_url)
    try:
        summary: dict[str, Any] = json.loads(stdout.splitlines()[-1]) if stdout else {}
    except json.JSONDecodeError:
        summary = {}
    if not summary:
        tail = "\n".join(stderr.splitlines()[-10:])
        raise RuntimeError(f"sluice export exited {child.returncode} without a summary:\n{tail}")
    requests = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return Export(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss=usage.ru_maxrss * 1024,
        exit_code=child.returncode,
        summary=summary,
        requests={k: v for k, v in requests.items() if v},
    )


# -- the benchmark -------------------------------------------------------------------------------


class Checks:
    """Failed checks and missed targets, printed as they are found."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def expect(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
            print(f"CHECK FAILED: {what}", flush=True)
        return ok


def first_export(checks: Checks, target: Target, selected: int, label: str) -> Export:
    run = run_export(target)
    counts = run.counts
    checks.expect(run.exit_code == 0, f"{label}: exit {run.exit_code}: {run.summary.get('error')}")
    checks.expect(
        counts.get("selected") == selected,
        f"{label}: selected {counts.get('selected')}, expected {selected}",
    )
    checks.expect(
        counts.get("created") == selected,
        f"{label}: created {counts.get('created')}, expected {selected}",
    )
    held = twin_contacts(target.base_url)
    checks.expect(held == selected, f"{label}: the twin holds {held} contacts, expected {selected}")
    return run


def measure(profiles: int, rate_limited: bool) -> int:
    checks = Checks()
    small = max(1, profiles // 10)
    selected = profiles // 2
    rows: list[tuple[str, Export]] = []
    with running_postgres() as url, tempfile.TemporaryDirectory() as folder:
        # 5 (first): the same first export, ten times smaller, for its memory.
        started = time.perf_counter()
        small_dsn = create_database(url, "bench_small")
        fill_profiles(small_dsn, small)
        print(f"generated {small:,} profiles in {time.perf_counter() - started:.1f}s", flush=True)
        with running_twin() as base_url:
            target = Target(base_url, Path(folder) / "small", rate_limited)
            write_manifests(target.manifests, small_dsn, base_url)
            small_run = first_export(checks, target, small // 2, "small")
            rows.append((f"full export ({small:,})", small_run))
        if checks.failures:
            print("the first export failed: nothing else is measured")
            return 1

        started = time.perf_counter()
        dsn = create_database(url, "bench")
        fill_profiles(dsn, profiles)
        print(
            f"generated {profiles:,} profiles in {time.perf_counter() - started:.1f}s", flush=True
        )

        # 1. The floor.
        floor, floor_rows = floor_seconds(dsn)
        checks.expect(floor_rows == selected, f"floor: {floor_rows} rows, expected {selected}")

        with running_twin() as base_url:
            target = Target(base_url, Path(folder) / "big", rate_limited)
            write_manifests(target.manifests, dsn, base_url)

            # 2. The first full export.
            full = first_export(checks, target, selected, "full export")
            rows.append((f"full export ({profiles:,})", full))
            if checks.failures:
                print("the first export failed: nothing else is measured")
                return 1

            # 3. Nothing changed.
            settle(dsn)
            same = run_export(target)
            rows.append(("rerun, nothing changed", same))
            checks.expect(same.exit_code == 0, f"no-change rerun: exit {same.exit_code}")
            checks.expect(
                same.counts.get("unchanged") == selected and same.counts.get("read") == 0,
                f"no-change rerun: counts {same.counts}",
            )
            application = {k: v for k, v in same.requests.items() if k not in RUN_READS}
            checks.expect(
                not application,
                f"no-change rerun: the application received requests {application}",
            )

            # 4. 1 % changed.
            changed = change_profiles(dsn, CHANGED_SHARE)
            checks.expect(
                changed == selected // CHANGED_SHARE,
                f"changed {changed} profiles, expected {selected // CHANGED_SHARE}",
            )
            settle(dsn)
            some = run_export(target)
            rows.append(("rerun, 1 % changed", some))
            checks.expect(some.exit_code == 0, f"1 % rerun: exit {some.exit_code}")
            checks.expect(
                some.counts.get("updated") == changed and some.counts.get("created") == 0,
                f"1 % rerun: updated {some.counts.get('updated')} (expected {changed}), "
                f"created {some.counts.get('created')} (expected 0)",
            )
            creates = {k: v for k, v in some.requests.items() if "create" in k}
            checks.expect(not creates, f"1 % rerun: the application received {creates}")

    print()
    print(
        f"{'':28} {'seconds':>8} {'run s':>8} {'CPU s':>7} {'× floor':>8} {'run×floor':>9} "
        f"{'profiles/s':>11} {'peak RSS MB':>11}  requests"
    )
    floor_name = "floor: COPY of the selected"
    print(
        f"{floor_name:28} {floor:8.2f} {'':>8} {'':>7} {1:8.2f} {1:9.2f} {selected / floor:11,.0f}"
    )
    for name, run in rows:
        count = small // 2 if run is small_run else selected
        sent = sum(v for k, v in run.requests.items() if k not in RUN_READS)
        print(
            f"{name:28} {run.seconds:8.2f} {run.engine_seconds:8.2f} {run.cpu_seconds:7.2f} "
            f"{run.seconds / floor:8.2f} {run.engine_seconds / floor:9.2f} "
            f"{count / run.seconds:11,.0f} {run.peak_rss / 1e6:11.0f}"
            f"  {sent:,}"
        )
    print(
        "(seconds: the child from start to exit, interpreter start-up included; run s: the run "
        "itself, from the summary's startedAt to finishedAt; CPU s: the child's; profiles/s: "
        "selected profiles per second of the whole child; requests: to the twin, schema and "
        "account reads aside)"
    )
    print()
    results = [
        (
            f"no-change rerun ≤ {TARGET_NO_CHANGE}× floor with zero application requests",
            same.engine_seconds / floor <= TARGET_NO_CHANGE and not application,
            f"run {same.engine_seconds / floor:.2f}× (process {same.seconds / floor:.2f}×), "
            f"{sum(application.values())} requests",
        ),
        (
            f"1 % rerun ≤ {TARGET_ONE_PERCENT}× floor",
            some.engine_seconds / floor <= TARGET_ONE_PERCENT,
            f"run {some.engine_seconds / floor:.2f}× (process {some.seconds / floor:.2f}×)",
        ),
        (
            f"peak RSS < {TARGET_RSS / 1e6:.0f} MB",
            max(small_run.peak_rss, full.peak_rss) < TARGET_RSS,
            f"{small_run.peak_rss / 1e6:.0f} MB at {small:,}, {full.peak_rss / 1e6:.0f} MB at "
            f"{profiles:,}",
        ),
        (
            f"peak RSS within {TARGET_RSS_SPREAD:.0%} between {small:,} and {profiles:,}",
            abs(full.peak_rss / small_run.peak_rss - 1) <= TARGET_RSS_SPREAD,
            f"{full.peak_rss / small_run.peak_rss - 1:+.1%}",
        ),
        (
            f"full export ≥ {TARGET_RATE:,} profiles/s",
            selected / full.seconds >= TARGET_RATE,
            f"{selected / full.seconds:,.0f}/s",
        ),
    ]
    for what, ok, figure in results:
        print(f"target: {what}: {figure} {'ok' if ok else 'MISSED'}")
    for failure in checks.failures:
        print(f"check failed: {failure}")
    return 0 if all(ok for _, ok, _ in results) and not checks.failures else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--profiles", type=int, default=1_000_000, help="profiles in the warehouse (1,000,000)"
    )
    parser.add_argument(
        "--hubspot-rate-limit",
        action="store_true",
        help="keep the HubSpot connector's client-side rate limit (HubSpot's own)",
    )
    args = parser.parse_args()
    if args.profiles < 2 * CHANGED_SHARE * 10:
        parser.error(f"--profiles must be at least {2 * CHANGED_SHARE * 10}")
    return measure(args.profiles, args.hubspot_rate_limit)


if __name__ == "__main__":
    sys.exit(main())
