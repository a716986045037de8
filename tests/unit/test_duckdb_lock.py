"""A DuckDB file another process holds: DuckDB lets one process at a time open a file for
writing, so opening it waits, for a bounded time."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from sluice.warehouses import WarehouseError, open_warehouse

# A process holding the file open for writing until a line comes on its standard input.
HOLD = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
connection.close()
"""


@pytest.fixture
def warehouse_file(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    return path


@contextmanager
def held(path: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()


def test_opening_a_file_another_process_holds_waits_until_it_is_released(
    warehouse_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with held(warehouse_file) as holder:
        threading.Timer(0.5, release, [holder]).start()
        started = time.monotonic()
        warehouse = open_warehouse("DuckDB", path=str(warehouse_file))
        waited = time.monotonic() - started
    try:
        assert warehouse.execute("SELECT 42") == [(42,)]
    finally:
        warehouse.close()
    assert waited >= 0.5
    assert caplog.messages == [
        f'the DuckDB warehouse "{warehouse_file}" is held by another process (PID {holder.pid}): '
        "waiting for it, up to 60 s"
    ]


def test_opening_gives_up_after_the_wait_with_one_line(
    warehouse_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_DUCKDB_LOCK_WAIT", "0.3")
    with held(warehouse_file) as holder, pytest.raises(WarehouseError) as refused:
        open_warehouse("DuckDB", path=str(warehouse_file))
    assert str(refused.value) == (
        f'the DuckDB warehouse "{warehouse_file}" is held by another process (PID {holder.pid}): '
        "gave up after waiting 0.3 s (SLUICE_DUCKDB_LOCK_WAIT sets how long)"
    )


@pytest.mark.parametrize("wait", ["soon", "-1", "nan", "inf"])
def test_a_wait_that_is_not_a_number_of_seconds_is_refused(
    warehouse_file: Path, monkeypatch: pytest.MonkeyPatch, wait: str
) -> None:
    monkeypatch.setenv("SLUICE_DUCKDB_LOCK_WAIT", wait)
    with pytest.raises(WarehouseError) as refused:
        open_warehouse("DuckDB", path=str(warehouse_file))
    assert (
        str(refused.value) == f"SLUICE_DUCKDB_LOCK_WAIT must be a number of seconds, not '{wait}'"
    )
