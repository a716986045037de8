"""The SQL an export runs in the warehouse, for PostgreSQL and DuckDB alike.

Change detection happens here, inside the warehouse: every selected profile gets a 64-bit hash
of its input columns, seeded with the pipeline's configuration fingerprint, and is joined with
what Sluice last acknowledged for it (``sluice_exported_profiles``). The profiles that can need
work (new ones, changed ones: a changed configuration changes every hash, and failed ones, as a
failure acknowledges nothing) are staged in a temporary table by one scan; duplicates are then
looked for among the staged matching values only, and the unchanged holders of a shared value
are staged too, so that duplicates are reported on every run until they are resolved. Only the
staged rows leave the warehouse.

Values are bound, never written into the SQL; identifiers come from validated schemas and
resources and are quoted anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sluice.filters.model import Filter
from sluice.filters.sql import Dialect, filter_sql, quote
from sluice.model.types import Type, column_name, leaf_paths

EXPORTED_TABLE = "sluice_exported_profiles"
ERRORS_TABLE = "sluice_run_errors"
VERSION_TABLE = "sluice_schema_version"
#: The destination account each pipeline's acknowledgements belong to.
DESTINATIONS_TABLE = "sluice_destinations"
#: A run's candidates, in a temporary table of the reading connection's session.
CANDIDATES_TABLE = "sluice_candidates"
#: Version of the bookkeeping tables' layout; a newer one is migrated forward by
#: :func:`bookkeeping_ddl`'s statements, an unknown later one is refused. Version 2 added
#: :data:`DESTINATIONS_TABLE`.
BOOKKEEPING_VERSION = 2

_PLACEHOLDER = {"postgresql": "%s", "duckdb": "?"}
# DuckDB's hash() is unsigned 64-bit, PostgreSQL's hash_record_extended() signed.
_HASH_TYPE = {"postgresql": "BIGINT", "duckdb": "UBIGINT"}
_TIMESTAMP = "TIMESTAMP"


def bookkeeping_ddl(dialect: Dialect) -> list[str]:
    """Statements creating Sluice's tables in the warehouse (idempotent)."""
    hash_type = _HASH_TYPE[dialect]
    return [
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS {EXPORTED_TABLE} (
            pipeline_id BIGINT NOT NULL,
            profile_id TEXT NOT NULL,
            matching_value TEXT NOT NULL,
            external_ids TEXT[] NOT NULL,
            input_hash {hash_type} NOT NULL,
            run_id TEXT NOT NULL,
            acknowledged_at {_TIMESTAMP} NOT NULL,
            PRIMARY KEY (pipeline_id, profile_id))""",
        f"""CREATE TABLE IF NOT EXISTS {ERRORS_TABLE} (
            run_id TEXT NOT NULL,
            pipeline_id BIGINT NOT NULL,
            profile_id TEXT,
            external_id TEXT,
            step TEXT NOT NULL,
            message TEXT NOT NULL,
            occurred_at {_TIMESTAMP} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {DESTINATIONS_TABLE} (
            pipeline_id BIGINT PRIMARY KEY,
            destination TEXT NOT NULL,
            recorded_at {_TIMESTAMP} NOT NULL)""",
    ]


@dataclass(frozen=True)
class Statement:
    sql: str
    params: list[object]


@dataclass(frozen=True)
class ProfileSelection:
    """What one export reads: the profiles table, the columns of the input schema, the filter
    and the matching property. Builds the run's statements."""

    dialect: Dialect
    table: str
    id_column: str
    in_schema: Type
    matching_in: str
    filter: Filter | None

    @property
    def input_paths(self) -> list[str]:
        """The input schema's leaves, in the order of the staged candidates' columns."""
        return leaf_paths(self.in_schema)

    @property
    def _matching(self) -> str:
        return quote(column_name(self.matching_in))

    def _where(self) -> Statement:
        if self.filter is None:
            return Statement("TRUE", [])
        sql, params = filter_sql(self.filter, self.in_schema, self.dialect)
        return Statement(f"({sql})", params)

    def counts(self) -> Statement:
        """One row: the profiles the filter selects, and those of them without a matching
        value."""
        where = self._where()
        sql = (
            f"SELECT COUNT(*), COUNT(*) - COUNT({self._matching}) "
            f"FROM {quote(self.table)} WHERE {where.sql}"
        )
        return Statement(sql, where.params)

    def without_matching_value(self, limit: int) -> Statement:
        """Ids of some selected profiles without a matching value, for the error samples."""
        where = self._where()
        sql = (
            f"SELECT CAST({quote(self.id_column)} AS TEXT) FROM {quote(self.table)} "
            f"WHERE {where.sql} AND {self._matching} IS NULL "
            f"ORDER BY 1 LIMIT {int(limit)}"
        )
        return Statement(sql, where.params)

    def stage_candidates(self, pipeline_id: int, seed: int, *, everything: bool) -> Statement:
        """Create the temporary table :data:`CANDIDATES_TABLE` of the selected profiles with a
        matching value that can need work (new or changed; all of them with ``everything``,
        ``--full``). One scan of the selection and one join with the bookkeeping; every later
        step reads this small table instead of the selection again."""
        base = self._candidates(pipeline_id, seed)
        if not everything:
            base = Statement(
                f"{base.sql} WHERE e.profile_id IS NULL OR e.input_hash <> p.sluice_hash",
                base.params,
            )
        return Statement(f"CREATE TEMPORARY TABLE {CANDIDATES_TABLE} AS {base.sql}", base.params)

    def shared_matching_values(self, *, every_candidate: bool) -> Statement:
        """The matching values of candidates that another selected profile has too (warehouse
        duplicates). Duplicates need a new or changed profile to arise, so only the candidates'
        values are looked at, not every value of the selection; but when ``every_candidate``
        (a first run, ``--full``), the selection's own shared values are the answer, found
        without the staged table, so on another connection while staging runs."""
        where = self._where()
        among = (
            f"{self._matching} IS NOT NULL"
            if every_candidate
            else f"CAST({self._matching} AS TEXT) IN "
            f"(SELECT sluice_matching_value FROM {CANDIDATES_TABLE})"
        )
        sql = (
            f"SELECT CAST({self._matching} AS TEXT) FROM {quote(self.table)} "
            f"WHERE {where.sql} AND {among} GROUP BY {self._matching} HAVING COUNT(*) > 1"
        )
        return Statement(sql, where.params)

    def stage_sharing(self, pipeline_id: int, seed: int, shared: Sequence[str]) -> Statement:
        """Add to the candidates the unchanged profiles holding a shared matching value, so
        that every profile of a duplicate is reported, not only the newcomer."""
        ph = _PLACEHOLDER[self.dialect]
        base = self._candidates(pipeline_id, seed)
        sql = (
            f"INSERT INTO {CANDIDATES_TABLE} {base.sql} "
            f"WHERE p.sluice_matching_value IN ({', '.join([ph] * len(shared))}) "
            f"AND p.sluice_profile_id NOT IN (SELECT sluice_profile_id FROM {CANDIDATES_TABLE})"
        )
        return Statement(sql, [*base.params, *shared])

    def staged_candidates(self) -> str:
        """The staged candidates, each with the input columns, its id as text, its matching
        value as text, its new hash, and what was last acknowledged for it (matching value and
        external ids, NULL when nothing was)."""
        return f"SELECT * FROM {CANDIDATES_TABLE}"

    def _candidates(self, pipeline_id: int, seed: int) -> Statement:
        """The selected profiles with a matching value, hashed, joined with what was last
        acknowledged for them; the staging statements add their conditions."""
        ph = _PLACEHOLDER[self.dialect]
        where = self._where()
        columns = [quote(column_name(path)) for path in self.input_paths]
        inner = (
            f"SELECT {', '.join(columns)}, "
            f"CAST({quote(self.id_column)} AS TEXT) AS sluice_profile_id, "
            f"CAST({self._matching} AS TEXT) AS sluice_matching_value, "
            f"{self._row_hash(columns)} AS sluice_hash "
            f"FROM {quote(self.table)} WHERE {where.sql} AND {self._matching} IS NOT NULL"
        )
        sql = (
            f"SELECT {', '.join(f'p.{c}' for c in columns)}, p.sluice_profile_id, "
            f"p.sluice_matching_value, p.sluice_hash, "
            f"e.matching_value AS sluice_last_matching_value, "
            f"e.external_ids AS sluice_last_external_ids "
            f"FROM ({inner}) AS p LEFT JOIN {EXPORTED_TABLE} AS e "
            f"ON e.pipeline_id = {ph} AND e.profile_id = p.sluice_profile_id"
        )
        return Statement(sql, [seed, *where.params, pipeline_id])

    def _row_hash(self, columns: list[str]) -> str:
        ph = _PLACEHOLDER[self.dialect]
        if self.dialect == "postgresql":
            return f"hash_record_extended(ROW({', '.join(columns)}), CAST({ph} AS BIGINT))"
        return f"hash(CAST({ph} AS BIGINT), {', '.join(columns)})"


def acknowledge(dialect: Dialect) -> str:
    """Upsert of acknowledged profiles. Parameters: the pipeline id, the run id, the time (UTC),
    then the profiles as one JSON array of ``[profile id, matching value, [external ids],
    hash]``: one text parameter costs the client a tenth of the CPU of four bound lists."""
    ph = _PLACEHOLDER[dialect]
    hash_type = _HASH_TYPE[dialect]
    if dialect == "postgresql":
        rows = f"jsonb_array_elements(CAST({ph} AS JSONB)) AS a"
        external_ids = "ARRAY(SELECT jsonb_array_elements_text(a -> 2))"
    else:
        rows = f"(SELECT unnest(from_json({ph}, '[\"JSON\"]')) AS a) AS acknowledged"
        external_ids = "from_json(a -> 2, '[\"VARCHAR\"]')"
    return (
        f"INSERT INTO {EXPORTED_TABLE} (pipeline_id, run_id, acknowledged_at, profile_id, "
        f"matching_value, external_ids, input_hash) "
        f"SELECT CAST({ph} AS BIGINT), CAST({ph} AS TEXT), CAST({ph} AS {_TIMESTAMP}), "
        f"a ->> 0, a ->> 1, {external_ids}, CAST(a ->> 3 AS {hash_type}) "
        f"FROM {rows} "
        f"ON CONFLICT (pipeline_id, profile_id) DO UPDATE SET "
        f"matching_value = excluded.matching_value, external_ids = excluded.external_ids, "
        f"input_hash = excluded.input_hash, run_id = excluded.run_id, "
        f"acknowledged_at = excluded.acknowledged_at"
    )


def acknowledged_any(dialect: Dialect) -> str:
    """One row, 1 when anything was acknowledged for the pipeline (the parameter), else 0."""
    return (
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {EXPORTED_TABLE} "
        f"WHERE pipeline_id = {_PLACEHOLDER[dialect]} LIMIT 1) AS acknowledged"
    )


def recorded_destination(dialect: Dialect) -> str:
    """The destination a pipeline's (the parameter) acknowledgements belong to: zero or one
    row."""
    return (
        f"SELECT destination FROM {DESTINATIONS_TABLE} WHERE pipeline_id = {_PLACEHOLDER[dialect]}"
    )


def forget_acknowledgements(dialect: Dialect) -> str:
    """Delete what was acknowledged for one pipeline (the parameter), and nothing else."""
    return f"DELETE FROM {EXPORTED_TABLE} WHERE pipeline_id = {_PLACEHOLDER[dialect]}"


def record_destination(dialect: Dialect) -> str:
    """Set a pipeline's destination. Parameters: pipeline id, destination, time (UTC)."""
    ph = _PLACEHOLDER[dialect]
    return (
        f"INSERT INTO {DESTINATIONS_TABLE} (pipeline_id, destination, recorded_at) "
        f"VALUES ({ph}, {ph}, {ph}) ON CONFLICT (pipeline_id) DO UPDATE SET "
        f"destination = excluded.destination, recorded_at = excluded.recorded_at"
    )


def record_errors(dialect: Dialect) -> str:
    """Insert of one run error: run id, pipeline id, profile id, external id, step, message,
    time (UTC)."""
    ph = _PLACEHOLDER[dialect]
    return (
        f"INSERT INTO {ERRORS_TABLE} (run_id, pipeline_id, profile_id, external_id, step, "
        f"message, occurred_at) VALUES ({', '.join([ph] * 7)})"
    )
