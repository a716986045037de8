"""One warehouse connection for one export, whatever the database behind it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sluice.filters.sql import Dialect
from sluice.warehouses.queries import (
    BOOKKEEPING_VERSION,
    VERSION_TABLE,
    bookkeeping_ddl,
    forget_acknowledgements,
    record_destination,
    recorded_destination,
)

Row = tuple[Any, ...]


class WarehouseError(Exception):
    """The warehouse cannot serve the export: unreachable, a table or column missing, a query
    refused. The message says which, with the database's own words."""


class Warehouse(ABC):
    """Reads profiles while bookkeeping is written beside it.

    The profile reads (:meth:`prepare`, :meth:`stream`) and the bookkeeping statements
    (:meth:`execute`) use two connections, so acknowledgements commit while the read is still
    going; each :meth:`execute` commits on its own.
    """

    dialect: Dialect
    #: How the driver marks a bound parameter.
    placeholder: str

    @abstractmethod
    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement on the bookkeeping connection and commit; rows if it returns any."""

    @abstractmethod
    def prepare(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement on the reading connection (its temporary tables are the ones
        :meth:`stream` sees); rows if it returns any."""

    @abstractmethod
    def stream(
        self, sql: str, params: Sequence[object], rows_per_fetch: int
    ) -> Iterator[list[Row]]:
        """The rows of a query, fetched a bounded number at a time."""

    def table_columns(self, table: str) -> dict[str, str] | None:
        """Column name → SQL type of a table or view; None when there is no such table."""
        schema, _, name = table.rpartition(".")
        rows = self.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = COALESCE(NULLIF({self.placeholder}, ''), current_schema()) "
            f"AND table_name = {self.placeholder}",
            [schema, name],
        )
        return {column: data_type for column, data_type in rows} or None

    def table_column_details(self, table: str) -> list[Row]:
        """``(name, data type, maximum length, numeric precision, numeric scale, element
        type)`` of each column of a table or view, in table order; empty when there is no such
        table. The element type is PostgreSQL's for an ``ARRAY`` (``_text``), else None."""
        schema, _, name = table.rpartition(".")
        return self.execute(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
            "numeric_scale, CASE WHEN data_type = 'ARRAY' THEN udt_name END "
            "FROM information_schema.columns "
            f"WHERE table_schema = COALESCE(NULLIF({self.placeholder}, ''), current_schema()) "
            f"AND table_name = {self.placeholder} ORDER BY ordinal_position",
            [schema, name],
        )

    @abstractmethod
    def load_rows(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Row]
    ) -> None:
        """Bulk-insert rows (values in column order; ``types`` are the columns' SQL types)."""

    @abstractmethod
    def close(self) -> None: ...

    def ensure_bookkeeping(self) -> None:
        """Create Sluice's tables if they are missing; refuse a layout newer than this version
        knows."""
        for statement in bookkeeping_ddl(self.dialect):
            self.execute(statement)
        rows = self.execute(f"SELECT MAX(version) FROM {VERSION_TABLE}")
        version = rows[0][0] if rows else None
        if version is None:
            self.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES ({BOOKKEEPING_VERSION})")
        elif version > BOOKKEEPING_VERSION:
            raise WarehouseError(
                f"the warehouse's Sluice tables are at version {version}, newer than this "
                f"Sluice knows ({BOOKKEEPING_VERSION}): upgrade Sluice"
            )
        elif version < BOOKKEEPING_VERSION:  # the DDL above brought the layout forward
            self.execute(f"UPDATE {VERSION_TABLE} SET version = {BOOKKEEPING_VERSION}")

    def claim_destination(self, pipeline_id: int, destination: str) -> str | None:
        """Make ``destination`` the account the pipeline's acknowledgements belong to; return
        the one recorded before (None on a first run, or bookkeeping older than destinations,
        which is taken to be this one's). When it was another, its acknowledgements are
        deleted first: a crash in between leaves the old destination recorded, never old
        acknowledgements believed for the new one."""
        rows = self.execute(recorded_destination(self.dialect), [pipeline_id])
        previous: str | None = rows[0][0] if rows else None
        if previous == destination:
            return previous
        if previous is not None:
            self.execute(forget_acknowledgements(self.dialect), [pipeline_id])
        now = datetime.now(UTC).replace(tzinfo=None)
        self.execute(record_destination(self.dialect), [pipeline_id, destination, now])
        return previous


def open_warehouse(kind: str, *, dsn: str | None = None, path: str | None = None) -> Warehouse:
    """Connect to a Workspace's warehouse: ``PostgreSQL`` by DSN, ``DuckDB`` by file path (or
    DSN, taken as the path)."""
    if kind == "PostgreSQL":
        from sluice.warehouses.postgresql import PostgresWarehouse  # noqa: PLC0415 - psycopg only when used

        if not dsn:
            raise WarehouseError("a PostgreSQL warehouse needs a DSN")
        return PostgresWarehouse(dsn)
    if kind == "DuckDB":
        try:
            from sluice.warehouses.duckdb import DuckDBWarehouse  # noqa: PLC0415 - when used
        except ModuleNotFoundError as missing:
            if missing.name != "duckdb":
                raise
            raise WarehouseError(
                "DuckDB warehouses need the duckdb package, which this installation does not "
                "have (Sluice's container image reads PostgreSQL warehouses; for DuckDB, install "
                "sluice[duckdb])"
            ) from None
        location = path or dsn
        if not location:
            raise WarehouseError("a DuckDB warehouse needs a path")
        return DuckDBWarehouse(location)
    raise WarehouseError(f'unknown warehouse type "{kind}"')
