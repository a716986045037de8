"""DuckDB warehouses: a database file read in-process, the embedded default."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb

from sluice.filters.sql import Dialect, quote
from sluice.warehouses.base import Row, Warehouse, WarehouseError

_LOAD_CHUNK_ROWS = 50_000


class DuckDBWarehouse(Warehouse):
    dialect: Dialect = "duckdb"
    placeholder = "?"

    def __init__(self, path: str) -> None:
        if path != ":memory:" and not Path(path).exists():
            raise WarehouseError(f'the DuckDB warehouse "{path}" does not exist')
        try:
            self._database = duckdb.connect(path)
        except duckdb.Error as err:
            raise WarehouseError(f"cannot open the DuckDB warehouse: {err}") from err
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


def _run(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object], failure: str
) -> list[Row]:
    try:
        cursor.execute(sql, list(params))
        return cursor.fetchall() if cursor.description else []
    except duckdb.Error as err:
        raise WarehouseError(f"{failure}: {err}") from err
