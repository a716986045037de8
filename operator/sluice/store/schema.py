"""The store's tables and their versioned migrations.

The store is derived state: workspaces, connections and pipelines can always be rebuilt from the
manifests (or the cluster); run history is the part only the store keeps. Each resource row keeps
the spec of its last *valid* version, and beside it the error of the newest version when that
one was refused, so an invalid edit never replaces what runs (GitOps safety). Each resource row
also names the apply set that last applied it, so that pruning removes only what its own source
applied.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

#: An apply set names the source of a resource (``sluice.reconcile.apply_set_of``): a digest of
#: the manifests' paths, or the cluster. None for rows written before version 3, which no source
#: prunes.
APPLY_SET = sa.String(64)

schema_version = sa.Table(
    "sluice_schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("namespace", sa.String(253), primary_key=True),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("spec", sa.JSON, nullable=True),  # last valid spec, as written in the manifest
    sa.Column("error", sa.JSON, nullable=True),  # the newest version's error, if refused
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("apply_set", APPLY_SET, nullable=True),  # the source that last applied it
)

# A workspace's keys to the read-only API, as SHA-256 digests: the store never holds a key, and
# a lookup by digest leaks nothing about keys through its timing.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column(
        "namespace",
        sa.String(253),
        sa.ForeignKey("workspaces.namespace", ondelete="CASCADE"),
        nullable=False,
    ),
)

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("namespace", sa.String(253), primary_key=True),
    sa.Column("name", sa.String(253), primary_key=True),
    sa.Column("id", sa.BigInteger, nullable=True),
    sa.Column("connector", sa.String(100), nullable=True),
    sa.Column("spec", sa.JSON, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("apply_set", APPLY_SET, nullable=True),  # the source that last applied it
)

pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("spec", sa.JSON, nullable=True),
    # What GET /v1/pipelines/{id} returns (but `running`), kept so reads never re-validate.
    sa.Column("body", sa.JSON, nullable=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("connection", sa.BigInteger, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("schedule_period", sa.String(8), nullable=True),
    sa.Column("schedule_start", sa.Integer, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("apply_set", APPLY_SET, nullable=True),  # the source that last applied it
    sa.UniqueConstraint("namespace", "name", name="pipelines_namespace_name"),
)
# The valid pipelines of a namespace, the API's listing: counting and paging read this index
# only, not the rows with their bodies. (Version 1 indexed every pipeline by namespace, which
# the planner could pick and then read each row's body to skip the invalid ones.)
_VALID = pipelines.c.body.is_not(None)
valid_pipelines_by_namespace = sa.Index(
    "pipelines_valid_by_namespace",
    pipelines.c.namespace,
    pipelines.c.id,
    sqlite_where=_VALID,
    postgresql_where=_VALID,
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "pipeline",
        sa.BigInteger,
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("job_name", sa.String(253), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("counts", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("error_samples", sa.JSON, nullable=True),
)
sa.Index("runs_by_pipeline", runs.c.pipeline, runs.c.id)


def _create_v1(connection: sa.Connection) -> None:
    metadata.create_all(connection, tables=[workspaces, api_keys, connections, pipelines, runs])


def _index_valid_pipelines(connection: sa.Connection) -> None:
    connection.execute(sa.text("DROP INDEX IF EXISTS pipelines_by_namespace"))
    # A new store got this index with its tables in version 1.
    valid_pipelines_by_namespace.create(connection, checkfirst=True)


def _add_apply_sets(connection: sa.Connection) -> None:
    for table in (workspaces, connections, pipelines):
        columns = {column["name"] for column in sa.inspect(connection).get_columns(table.name)}
        # A new store got the column with its tables in version 1.
        if "apply_set" not in columns:
            column_type = APPLY_SET.compile(dialect=connection.dialect)
            connection.execute(
                sa.text(f"ALTER TABLE {table.name} ADD COLUMN apply_set {column_type}")
            )


#: Migrations by the version they bring the store to, applied in order on start. A released
#: migration never changes: a new schema is a new entry.
MIGRATIONS: tuple[tuple[int, Callable[[sa.Connection], None]], ...] = (
    (1, _create_v1),
    (2, _index_valid_pipelines),
    (3, _add_apply_sets),
)
LATEST_VERSION = MIGRATIONS[-1][0]


def migrate(connection: sa.Connection) -> int:
    """Bring the store's tables to the latest version; return the version found before."""
    schema_version.create(connection, checkfirst=True)
    found = connection.execute(sa.select(schema_version.c.version)).scalar()
    if found is None:
        connection.execute(schema_version.insert().values(version=0))
        found = 0
    if found > LATEST_VERSION:
        raise RuntimeError(
            f"the store is at schema version {found}, newer than this Sluice ({LATEST_VERSION})"
        )
    for version, step in MIGRATIONS:
        if version > found:
            step(connection)
            connection.execute(schema_version.update().values(version=version))
    return found
