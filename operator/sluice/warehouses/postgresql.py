"""PostgreSQL warehouses, through psycopg 3: profiles are streamed with a server-side cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import abc
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format

from sluice.filters.sql import Dialect, quote
from sluice.warehouses.base import Row, Warehouse, WarehouseError

_CONNECT_TIMEOUT_SECONDS = 10
#: The advisory lock Sluice's runs take to create their tables ("sluice" in ASCII).
_BOOKKEEPING_LOCK = 0x736C75696365
#: Types holding values Python's cannot: years past 9999, BC dates, infinity, 24:00:00.
_BEYOND_PYTHON = ("date", "timestamp", "timestamptz", "time")


class PostgresWarehouse(Warehouse):
    dialect: Dialect = "postgresql"
    placeholder = "%s"

    def __init__(self, dsn: str) -> None:
        try:
            self._bookkeeping = psycopg.connect(
                dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_SECONDS
            )
            self._reading = psycopg.connect(
                dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_SECONDS
            )
            # The planner costs every selected row as crossing a parallel Gather, not knowing
            # the change check after the join drops nearly all of them: it then stages the
            # candidates serially, twice as slow (0.63 s against 0.35 s for 500,000 profiles).
            self._reading.execute("SET parallel_tuple_cost = 0.001")
            _as_text_beyond_python(self._reading)
        except psycopg.Error as err:
            raise WarehouseError(
                f"cannot connect to the PostgreSQL warehouse: {_reason(err)}"
            ) from None

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        try:
            cursor = self._bookkeeping.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error as err:
            raise WarehouseError(f"the warehouse refused a statement: {_reason(err)}") from err

    def ensure_bookkeeping(self) -> None:
        # Concurrent CREATE TABLE IF NOT EXISTS of one table race in PostgreSQL's catalog (a
        # unique violation on pg_type): the first runs of pipelines starting together on a
        # new warehouse take turns.
        try:
            with self._bookkeeping.transaction():
                self._bookkeeping.execute("SELECT pg_advisory_xact_lock(%s)", [_BOOKKEEPING_LOCK])
                super().ensure_bookkeeping()
        except psycopg.Error as err:
            raise WarehouseError(f"the warehouse refused a statement: {_reason(err)}") from err

    def prepare(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        # Bound on the client: CREATE TABLE AS, a utility statement, takes no server-side
        # parameters.
        try:
            with psycopg.ClientCursor(self._reading) as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as err:
            raise WarehouseError(f"reading profiles failed: {_reason(err)}") from err

    def stream(
        self, sql: str, params: Sequence[object], rows_per_fetch: int
    ) -> Iterator[list[Row]]:
        # A named cursor streams within one transaction, a bounded number of rows at a time.
        try:
            with self._reading.transaction(), self._reading.cursor(name="sluice_profiles") as cur:
                cur.itersize = rows_per_fetch
                cur.execute(sql, params)
                while rows := cur.fetchmany(rows_per_fetch):
                    yield rows
        except psycopg.Error as err:
            raise WarehouseError(f"reading profiles failed: {_reason(err)}") from err

    def load_rows(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Row]
    ) -> None:
        names = ", ".join(quote(column) for column in columns)
        try:
            with (
                self._bookkeeping.cursor() as cur,
                cur.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as err:
            raise WarehouseError(f"loading rows failed: {_reason(err)}") from err

    def close(self) -> None:
        self._bookkeeping.close()
        self._reading.close()


def _as_text_beyond_python(connection: psycopg.Connection[Any]) -> None:
    """Have the connection load a date or time Python cannot hold as its text, instead of
    failing the whole fetch (psycopg's ``date too large (after year 10K)``): the profile
    holding it fails alone, with the API's message for that text."""
    for name in _BEYOND_PYTHON:
        info = connection.adapters.types[name]
        loader = connection.adapters.get_loader(info.oid, Format.TEXT)
        assert loader is not None  # psycopg loads every one of them
        connection.adapters.register_loader(info.oid, _text_beyond_python(loader))


def _text_beyond_python(base: type[abc.Loader]) -> type[Loader]:
    """``base``, a loader psycopg may implement in C (which cannot be subclassed), giving the
    value's text where it raises DataError."""

    class TextBeyondPython(Loader):
        def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
            super().__init__(oid, context)
            self._load = base(oid, context).load

        def load(self, data: Buffer) -> Any:
            try:
                return self._load(data)
            except psycopg.DataError:
                return bytes(data).decode()

    return TextBeyondPython


def _reason(err: psycopg.Error) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
