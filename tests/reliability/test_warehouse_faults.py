"""The warehouse misbehaving under an export: PostgreSQL restarted while the run reads profiles
and while it records what the application acknowledged, a DuckDB file another process holds,
and a profiles table altered between two runs.

Each run either ends with a one-line error saying what happened, or is not started at all; and
once the warehouse is back, the next run leaves the application holding every selected
profile's contact exactly once. A run refused because the table changed sends nothing and leaves
Sluice's bookkeeping as it was, row for row.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.warehouses.queries import (
    DESTINATIONS_TABLE,
    ERRORS_TABLE,
    EXPORTED_TABLE,
    VERSION_TABLE,
)
from tests.apps import unpaced
from tests.integration.conftest import (
    Target,
    hubspot,  # noqa: F401 - the twin ``target`` exports to
)
from tests.integration.test_export import exported_rows, people, person, requests_to
from tests.integration.test_export_faults import BY_CUSTOMER_CODE, WRITES_AND_LOOKUPS
from tests.operator_process import eventually
from tests.postgres import PostgresServer, postgres_server
from tests.unit.test_duckdb_lock import held

RUN_TIMEOUT = 60.0
#: Seconds the twin waits before handling each request, to keep a run going.
LATENCY = 0.5
#: What a client of a server stopped by ``pg_ctl stop -m fast`` hears: PostgreSQL's notice, or,
#: when the socket closes before the client reads it, libpq's own words.
SERVER_STOPPED = (
    "terminating connection due to administrator command",
    "consuming input failed: server closed the connection unexpectedly",
)


def emails(selected: range) -> list[str]:
    return sorted(f"user{i}@example.com" for i in selected)


# -------------------------------------------------------------------------------------------
# PostgreSQL restarted during a run
# -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server these tests restart: the session's one serves other tests meanwhile."""
    with postgres_server() as server:
        yield server


@pytest.mark.parametrize("target", ["PostgreSQL"], indirect=True)
class TestAPostgreSQLRestart:
    @pytest.fixture
    def postgres_url(self, own_postgres: PostgresServer) -> str:
        """``target``'s database is made on the server these tests restart."""
        return own_postgres.url

    def test_mid_read_fails_the_run_and_the_next_run_completes_it(
        self, target: Target, own_postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        target.load(people(12_000))  # 6,000 selected
        # Fetches of 100 rows and a slow application: the read goes on for the whole run, so
        # the restart lands between two fetches of the open cursor.
        monkeypatch.setattr("sluice.engine.run.ROWS_PER_FETCH", 100)
        target.twin.set_latency(LATENCY)
        config = target.config(exportMode="CreateOrUpdate")  # upserts by email

        with unpaced(), ThreadPoolExecutor(1) as runs:
            run = runs.submit(target.export, config)
            eventually(lambda: target.twin.contact_count() >= 100, "100 contacts", timeout=30)
            own_postgres.restart()
            summary = run.result(timeout=RUN_TIMEOUT)

        assert summary.outcome == "Failed"
        assert summary.error in {f"reading profiles failed: {said}" for said in SERVER_STOPPED}
        written, recorded = settled_contact_count(target), exported_rows(target)
        assert recorded <= summary.counts["created"] <= written < 6_000
        target.twin.set_latency(0)

        with unpaced():
            rerun = target.export(config)

        assert rerun.outcome == "Succeeded"
        assert rerun.counts["unchanged"] == recorded
        # Written but not recorded: found by the upserts, not created again.
        assert rerun.counts["updated"] == written - recorded
        assert rerun.counts["created"] == 6_000 - written
        assert sorted(target.contacts()) == emails(range(0, 12_000, 2))
        assert exported_rows(target) == 6_000

    def test_while_acknowledging_fails_the_run_and_the_next_run_creates_nothing_twice(
        self, target: Target, own_postgres: PostgresServer
    ) -> None:
        """Matched on a property HubSpot lets two contacts share: a run that believed nothing
        was created would create every contact again."""
        target.load(people(600))  # 300 selected: acknowledged by the run's last statement
        config = target.config(matching=BY_CUSTOMER_CODE)  # searched, then created
        warehouse = target.open()
        try:
            warehouse.ensure_bookkeeping()
        finally:
            warehouse.close()

        # Closed, not committed, once the restart cut it.
        with (
            unpaced(),
            ThreadPoolExecutor(1) as runs,
            contextlib.closing(psycopg.connect(target.location, autocommit=True)) as locker,
        ):
            # Held until the restart: the run's acknowledgement waits for it, in flight.
            locker.execute("BEGIN")
            locker.execute(f"LOCK TABLE {EXPORTED_TABLE} IN EXCLUSIVE MODE")
            run = runs.submit(target.export, config)
            eventually(lambda: acknowledgement_waiting(target), "the acknowledgement", 30)
            own_postgres.restart()
            summary = run.result(timeout=RUN_TIMEOUT)

        assert summary.outcome == "Failed"
        assert summary.error in {
            f"the warehouse refused a statement: {said}" for said in SERVER_STOPPED
        }
        assert summary.counts["created"] == target.twin.contact_count() == 300
        assert exported_rows(target) == 0

        with unpaced():
            rerun = target.export(config)

        assert rerun.outcome == "Succeeded"
        assert (rerun.counts["alreadyInApplication"], rerun.counts["created"]) == (300, 0)
        codes = sorted(c["properties"]["customer_code"] for c in target.twin.contacts())
        assert codes == sorted(str(person(i)["customer_id"]) for i in range(0, 600, 2))
        assert exported_rows(target) == 300


def settled_contact_count(target: Target) -> int:
    """The twin's contacts once the writes a failed run left in flight are applied: the twin
    handles each after :data:`LATENCY`, so none is left once the count holds that long."""
    count = target.twin.contact_count()
    while True:
        time.sleep(2 * LATENCY)
        previous, count = count, target.twin.contact_count()
        if count == previous:
            return count


def acknowledgement_waiting(target: Target) -> bool:
    """Whether a statement recording acknowledgements waits on a lock."""
    rows = target.sql(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND starts_with(query, %s)",
        [f"INSERT INTO {EXPORTED_TABLE}"],
    )
    return bool(rows[0][0])


# -------------------------------------------------------------------------------------------
# A DuckDB file another process holds
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["DuckDB"], indirect=True)
def test_a_duckdb_file_held_by_another_process_fails_the_run_and_sends_nothing(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    target.load(people(20))
    monkeypatch.setenv("SLUICE_DUCKDB_LOCK_WAIT", "0")  # give up at once, not in 60 s
    with held(Path(target.location)) as holder:
        started = time.monotonic()

        summary = target.export()

        assert time.monotonic() - started < 5
    assert summary.outcome == "Failed"
    assert summary.error == (
        f'the DuckDB warehouse "{target.location}" is held by another process '
        f"(PID {holder.pid}): gave up after waiting 0 s (SLUICE_DUCKDB_LOCK_WAIT sets how long)"
    )
    assert target.twin.stats()["requests"] == {}

    rerun = target.export()  # the holder has exited

    assert rerun.outcome == "Succeeded"
    assert sorted(target.contacts()) == emails(range(0, 20, 2))


# -------------------------------------------------------------------------------------------
# The profiles table altered between two runs
# -------------------------------------------------------------------------------------------

BOOKKEEPING = (VERSION_TABLE, DESTINATIONS_TABLE, EXPORTED_TABLE, ERRORS_TABLE)


def bookkeeping(target: Target) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of Sluice's tables, in a stable order."""
    return {
        table: sorted((tuple(row) for row in target.sql(f"SELECT * FROM {table}")), key=repr)
        for table in BOOKKEEPING
    }


@pytest.mark.parametrize(
    ("alteration", "error"),
    [
        (
            'ALTER TABLE profiles DROP COLUMN "address_city"',
            'has no column "address_city" for the property "address.city"',
        ),
        (
            'ALTER TABLE profiles ALTER COLUMN "first_name" TYPE INTEGER USING length(first_name)',
            'has the column "first_name" of type {integer}, which cannot hold the property '
            '"first_name" of type string',
        ),
        (
            'ALTER TABLE profiles ALTER COLUMN "customer_id" TYPE TEXT',
            'has the column "customer_id" of type {text}, which cannot hold the property '
            '"customer_id" of type int(32)',
        ),
    ],
    ids=["column dropped", "text to integer", "integer to text"],
)
def test_a_table_altered_since_the_last_run_fails_it_before_anything_is_sent(
    target: Target, alteration: str, error: str
) -> None:
    profiles = people(40)
    profiles["p00002"]["email"] = "not an email"  # refused: the last run recorded an error too
    target.load(profiles)
    first = target.export()
    assert (first.counts["created"], first.counts["failed"]) == (19, 1)
    before, sent = bookkeeping(target), requests_to(target, WRITES_AND_LOOKUPS)
    target.sql(alteration)

    summary = target.export()

    assert summary.outcome == "Failed"
    # Each warehouse names its types in its catalog's words.
    type_names = (
        {"integer": "INTEGER", "text": "VARCHAR"}
        if target.kind == "DuckDB"
        else {"integer": "integer", "text": "text"}
    )
    assert summary.error == 'the profiles table "profiles" ' + error.format_map(type_names)
    assert requests_to(target, WRITES_AND_LOOKUPS) == sent
    assert bookkeeping(target) == before
