"""DuckDB warehouses: a database file read in-process, the embedded default.

DuckDB lets one process at a time open a file for writing (Sluice writes its bookkeeping there),
so opening a file another process holds waits for it, up to :data:`LOCK_WAIT_ENV` seconds.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import duckdb

from sluice.filters.sql import Dialect, quote
from sluice.warehouses.base import Row, Warehouse, WarehouseError

#: How long opening a DuckDB file held by another process waits, in seconds.
LOCK_WAIT_ENV = "SLUICE_DUCKDB_LOCK_WAIT"
DEFAULT_LOCK_WAIT_SECONDS = 60.0
_FIRST_RETRY_SECONDS = 0.05
_LONGEST_RETRY_SECONDS = 1.0
#: DuckDB's error when another process holds the file (``… Conflicting lock is held in
#: /usr/bin/python3 (PID 4516) …``), and the holder it names.
_LOCK_CONFLICT = "Could not set lock on file"
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")
_LOAD_CHUNK_ROWS = 50_000

log = logging.getLogger("sluice.warehouses")


class DuckDBWarehouse(Warehouse):
    dialect: Dialect = "duckdb"
    placeholder = "?"

    def __init__(self, path: str) -> None:
        if path != ":memory:" and not Path(path).exists():
            raise WarehouseError(f'the DuckDB warehouse "{path}" does not exist')
        self._database = _connect(path, _lock_wait_seconds(os.environ))
        # DuckDB connections are not shared across threads: each use gets its own cursor.
        self._bookkeeping = self._database.cursor()
        self._reading = self._database.cursor()

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return _run(self._bookkeeping, sql, params, "the warehouse refused a statement")

    def prepare(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return _run(self._reading, sql, params, "reading profiles failed")

    def stream(
        self, sql: str, params: Sequence[object], rows_per_fetch: int
    ) -> Iterator[list[Row]]:
        try:
            self._reading.execute(sql, list(params))
            while rows := self._reading.fetchmany(rows_per_fetch):
                yield rows
        except duckdb.Error as err:
            raise WarehouseError(f"reading profiles failed: {err}") from err

    def load_rows(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Row]
    ) -> None:
        # Column lists unnested side by side: far faster than one INSERT per row.
        names = ", ".join(quote(column) for column in columns)
        lists = ", ".join(f"unnest(CAST(? AS {sql_type}[]))" for sql_type in types)
        statement = f"INSERT INTO {quote(table)} ({names}) SELECT {lists}"
        for start in range(0, len(rows), _LOAD_CHUNK_ROWS):
            chunk = rows[start : start + _LOAD_CHUNK_ROWS]
            self.execute(statement, [list(column) for column in zip(*chunk, strict=True)])

    def close(self) -> None:
        self._bookkeeping.close()
        self._reading.close()
        self._database.close()


def _lock_wait_seconds(environ: Mapping[str, str]) -> float:
    """How long to wait for a DuckDB file another process holds: ``$SLUICE_DUCKDB_LOCK_WAIT``
    seconds, 60 when unset."""
    text = environ.get(LOCK_WAIT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_WAIT_SECONDS
    try:
        seconds = float(text)
        if not 0 <= seconds < math.inf:  # NaN too
            raise ValueError(text)
    except ValueError:
        raise WarehouseError(f"{LOCK_WAIT_ENV} must be a number of seconds, not {text!r}") from None
    return seconds


def _connect(path: str, wait: float) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying with backoff while another process holds it, for at most
    ``wait`` seconds."""
    deadline = time.monotonic() + wait
    delay = _FIRST_RETRY_SECONDS
    waiting = False
    while True:
        try:
            return duckdb.connect(path)
        except duckdb.Error as err:
            if _LOCK_CONFLICT not in str(err):
                raise WarehouseError(f"cannot open the DuckDB warehouse: {err}") from err
            holder = _LOCK_HOLDER.search(str(err))
            by = f" (PID {holder[1]})" if holder else ""
            held = f'the DuckDB warehouse "{path}" is held by another process{by}'
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarehouseError(
                    f"{held}: gave up after waiting {wait:g} s ({LOCK_WAIT_ENV} sets how long)"
                ) from None
            if not waiting:
                log.warning("%s: waiting for it, up to %g s", held, wait)
                waiting = True
            time.sleep(min(delay, left))
            delay = min(delay * 2, _LONGEST_RETRY_SECONDS)


def _run(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object], failure: str
) -> list[Row]:
    try:
        cursor.execute(sql, list(params))
        return cursor.fetchall() if cursor.description else []
    except duckdb.Error as err:
        raise WarehouseError(f"{failure}: {err}") from err
