"""The store: one code path for SQLite (the default) and PostgreSQL, through SQLAlchemy Core."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, overload

import sqlalchemy as sa

from sluice.controller.summary import RunSummary, sample_json
from sluice.model.connection import Connection
from sluice.model.errors import ApiError
from sluice.model.ids import workspace_id
from sluice.model.pipeline import Pipeline, pipeline_to_api
from sluice.model.resources import Outcome, Resource
from sluice.model.workspace import Workspace
from sluice.store.schema import api_keys, connections, migrate, pipelines, runs, workspaces

MAX_PAGE = 1000
#: Connections the store keeps open: one for each thread the API reads it from.
POOL_SIZE = 16


class Change(StrEnum):
    """What saving a resource did, in ``kubectl apply``'s words."""

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    INVALID = "invalid"
    PRUNED = "pruned"


@dataclass(frozen=True)
class StoredResource:
    """A resource as the store holds it: its last valid spec (None if it never had one)."""

    resource: Resource
    valid: bool
    error: dict[str, Any] | None
    id: int | None = None
    #: The source that last applied it; None when applied before sources were recorded.
    apply_set: str | None = None


@dataclass(frozen=True)
class FinishedRun:
    """How a run ended."""

    ended_at: datetime
    outcome: str
    counts: dict[str, int]
    error: str | None = None
    error_samples: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, summary: RunSummary) -> FinishedRun:
        """How a run that ended with ``summary`` is recorded."""
        return cls(
            summary.finished_at,
            summary.outcome,
            dict(summary.counts),
            summary.error,
            [sample_json(sample) for sample in summary.error_samples],
        )

    def columns(self) -> dict[str, Any]:
        return {
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "counts": self.counts,
            "error": self.error,
            "error_samples": self.error_samples or [],
        }


@dataclass(frozen=True)
class PipelineState:
    """What the store knows of a pipeline beside its body: whether its newest version was
    valid, and its runs."""

    #: A valid version is stored, and is the one that runs.
    in_force: bool
    #: The newest version's error (:func:`error_record`), when that version was refused.
    error: dict[str, Any] | None
    #: 1 for the first valid version, one more for each valid change; 0 before any.
    generation: int
    updated_at: str
    enabled: bool
    schedule_period: str | None
    schedule_start: int | None
    running: bool
    #: The newest run, as ``GET /v1/pipelines/{id}/runs`` lists it.
    last_run: dict[str, Any] | None


def error_record(error: ApiError) -> dict[str, Any]:
    record: dict[str, Any] = {"status": error.status, **error.body()["error"]}
    return record


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def compact_json(value: object) -> str:
    """JSON as the API writes it: UTF-8 text, no spaces."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _now() -> datetime:
    return datetime.now(UTC)


def _shown_url(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return repr(url)


def driver_message(error: sa.exc.SQLAlchemyError) -> str:
    """The driver's own message when there is one, without SQLAlchemy's links and SQL."""
    cause = getattr(error, "orig", None) or error
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def _json_safe(spec: object) -> Any:
    """A manifest spec as JSON (YAML may hold dates and other non-JSON scalars)."""
    return json.loads(json.dumps(spec, default=str))


class StoreUnavailableError(Exception):
    """The store cannot be opened: a URL SQLAlchemy cannot use, or a database that does not
    answer. The message names the store (never its password) and the reason, on one line."""


class Store:
    """Stored state: resources (derived from manifests) and run history (kept only here)."""

    def __init__(self, url: str) -> None:
        try:
            # Compact JSON, as the API writes it: stored bodies are served as they are stored.
            # The pool keeps a connection for each of the API's threads: one opened past the
            # pool is closed after its request, and opening one costs more than most reads.
            # A PostgreSQL connection is checked before use: after the server restarts, the
            # next read gets a new connection instead of failing on a dead one.
            self.engine = sa.create_engine(
                url,
                json_serializer=compact_json,
                pool_size=POOL_SIZE,
                pool_pre_ping=not url.startswith("sqlite"),
            )
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            with self.engine.begin() as connection:
                migrate(connection)
        except sa.exc.SQLAlchemyError as error:
            raise StoreUnavailableError(
                f"cannot open the store {_shown_url(url)}: {driver_message(error)}"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as connection:
            yield connection

    # -----------------------------------------------------------------------------------------
    # Resources
    # -----------------------------------------------------------------------------------------

    def resources(self) -> list[StoredResource]:
        """Every stored Workspace, Connection and ExportPipeline, valid or not."""
        found: list[StoredResource] = []
        with self.engine.connect() as connection:
            for row in connection.execute(sa.select(workspaces)):
                found.append(_stored("Workspace", row, row.id))
            for row in connection.execute(sa.select(connections)):
                found.append(_stored("Connection", row, row.id))
            for row in connection.execute(sa.select(pipelines)):
                found.append(_stored("ExportPipeline", row, row.id))
        return found

    @contextmanager
    def _writing(self, connection: sa.Connection | None) -> Iterator[sa.Connection]:
        """The caller's transaction, or one of its own."""
        if connection is not None:
            yield connection
        else:
            with self.transaction() as own:
                yield own

    def save(
        self,
        outcome: Outcome,
        api_keys: Sequence[str] | None = None,
        *,
        apply_set: str | None = None,
        connection: sa.Connection | None = None,
    ) -> Change:
        """Record a validated resource: a valid version replaces the stored one; an invalid one
        is recorded beside the last valid version, which stays in force.

        ``api_keys`` are a valid Workspace's keys to the read-only API (None: unknown here, the
        stored ones stay). ``apply_set`` is the source applying it, which it then belongs to
        (None: the stored one stays, as when a held resource is re-validated). Within
        ``connection``'s transaction when given (many saves, one commit).
        """
        values: dict[str, Any] = {"updated_at": _now()}
        if apply_set is not None:
            values["apply_set"] = apply_set
        with self._writing(connection) as writer:
            match outcome.resource.kind:
                case "Workspace":
                    change = self._save_workspace(writer, outcome, values)
                    if api_keys is not None and outcome.error is None:
                        self._replace_api_keys(writer, outcome.resource.namespace, api_keys)
                case "Connection":
                    change = self._save_connection(writer, outcome, values)
                case _:
                    change = self._save_pipeline(writer, outcome, values)
        # A refused version is reported as such even when its error was already recorded.
        return Change.INVALID if outcome.error is not None else change

    def delete(
        self, kind: str, namespace: str, name: str, *, connection: sa.Connection | None = None
    ) -> None:
        table = {"Workspace": workspaces, "Connection": connections}.get(kind, pipelines)
        condition = table.c.namespace == namespace
        if kind != "Workspace":
            condition &= table.c.name == name
        with self._writing(connection) as writer:
            writer.execute(table.delete().where(condition))

    def _save_workspace(
        self, connection: sa.Connection, outcome: Outcome, values: dict[str, Any]
    ) -> Change:
        resource = outcome.resource
        row = connection.execute(
            sa.select(workspaces).where(workspaces.c.namespace == resource.namespace)
        ).first()
        values["name"] = resource.name
        if isinstance(outcome.value, Workspace):
            values |= {"spec": _json_safe(resource.spec), "error": None}
        else:
            assert outcome.error is not None
            values["error"] = error_record(outcome.error)
        if row is None:
            taken = connection.execute(sa.select(workspaces.c.id)).scalars().all()
            values |= {
                "namespace": resource.namespace,
                "id": workspace_id(resource.namespace, set(taken)),
            }
            connection.execute(workspaces.insert().values(**values))
            return Change.CREATED
        return self._update(
            connection, workspaces, workspaces.c.namespace == resource.namespace, row, values
        )

    @staticmethod
    def _replace_api_keys(connection: sa.Connection, namespace: str, keys: Sequence[str]) -> None:
        connection.execute(api_keys.delete().where(api_keys.c.namespace == namespace))
        # A key opens one workspace: one already held by another workspace stays with it.
        held = set(connection.execute(sa.select(api_keys.c.digest)).scalars())
        digests = sorted({key_digest(key) for key in keys} - held)
        if digests:
            connection.execute(
                api_keys.insert(), [{"digest": d, "namespace": namespace} for d in digests]
            )

    def _save_connection(
        self, connection: sa.Connection, outcome: Outcome, values: dict[str, Any]
    ) -> Change:
        resource = outcome.resource
        where = (connections.c.namespace == resource.namespace) & (
            connections.c.name == resource.name
        )
        row = connection.execute(sa.select(connections).where(where)).first()
        if isinstance(outcome.value, Connection):
            values |= {
                "spec": _json_safe(resource.spec),
                "id": outcome.value.id,
                "connector": outcome.value.connector,
                "error": None,
            }
        else:
            assert outcome.error is not None
            values["error"] = error_record(outcome.error)
        if row is None:
            values |= {"namespace": resource.namespace, "name": resource.name}
            connection.execute(connections.insert().values(**values))
            return Change.CREATED
        return self._update(connection, connections, where, row, values)

    def _save_pipeline(
        self, connection: sa.Connection, outcome: Outcome, values: dict[str, Any]
    ) -> Change:
        resource = outcome.resource
        assert outcome.pipeline_id is not None
        where = pipelines.c.id == outcome.pipeline_id
        row = connection.execute(sa.select(pipelines).where(where)).first()
        if isinstance(outcome.value, Pipeline):
            pipeline = outcome.value
            body = pipeline_to_api(pipeline)
            del body["running"]  # a run's state, read from the runs when served
            values |= {
                "spec": _json_safe(resource.spec),
                "body": body,
                "connection": pipeline.connection,
                "enabled": pipeline.enabled,
                "schedule_period": pipeline.schedule_period,
                "schedule_start": pipeline.schedule_start,
                "error": None,
            }
        else:
            assert outcome.error is not None
            values["error"] = error_record(outcome.error)
        if row is None:
            values |= {
                "id": outcome.pipeline_id,
                "namespace": resource.namespace,
                "name": resource.name,
                "generation": 1 if outcome.error is None else 0,
                "enabled": values.get("enabled", False),
            }
            connection.execute(pipelines.insert().values(**values))
            return Change.CREATED
        if "spec" in values and values["spec"] != row.spec:
            values["generation"] = row.generation + 1
        return self._update(connection, pipelines, where, row, values)

    @staticmethod
    def _update(
        connection: sa.Connection,
        table: sa.Table,
        where: sa.ColumnElement[bool],
        row: sa.Row[Any],
        values: dict[str, Any],
    ) -> Change:
        changed = {k for k, v in values.items() if getattr(row, k) != v} - {"updated_at"}
        if not changed:
            return Change.UNCHANGED
        connection.execute(table.update().where(where).values(**values))
        # Which source applied a resource is bookkeeping: the resource itself did not change.
        return Change.CONFIGURED if changed - {"apply_set"} else Change.UNCHANGED

    # -----------------------------------------------------------------------------------------
    # Reads for the API
    # -----------------------------------------------------------------------------------------

    def workspace_for_key(self, key: str) -> tuple[int, str] | None:
        """The id and namespace of the workspace an API key opens, if any."""
        with self.engine.connect() as connection:
            row = connection.execute(_WORKSPACE_FOR_KEY, {"digest": key_digest(key)}).first()
        return None if row is None else (row.id, row.namespace)

    def workspace_namespace(self, workspace_id: int) -> str | None:
        with self.engine.connect() as connection:
            namespace: str | None = connection.execute(
                _WORKSPACE_NAMESPACE, {"id": workspace_id}
            ).scalar()
        return namespace

    def workspace_ids(self) -> dict[str, int]:
        """Every stored workspace's id, by namespace."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(workspaces.c.namespace, workspaces.c.id))
            return {row.namespace: row.id for row in rows}

    def pipeline_ids(self) -> dict[tuple[str, str], int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(pipelines.c.namespace, pipelines.c.name, pipelines.c.id)
            )
            return {(row.namespace, row.name): row.id for row in rows}

    def pipeline(self, pipeline_id: int, namespace: str | None = None) -> tuple[str, str] | None:
        """A valid pipeline's namespace and API body as JSON text, ``running`` included; with
        ``namespace``, only a pipeline of that namespace (see :class:`_PipelineRead`)."""
        with self.engine.connect() as connection:
            row = connection.execute(*_PIPELINE_BODY.of(pipeline_id, namespace)).first()
        if row is None:
            return None
        return row.namespace, _with_running(row.body, row.running)

    def pipeline_state(
        self, pipeline_id: int, namespace: str | None = None
    ) -> tuple[str, PipelineState] | None:
        """Any stored pipeline's namespace and state, valid or refused; with ``namespace``, only
        a pipeline of that namespace (see :class:`_PipelineRead`)."""
        with self.engine.connect() as connection:
            row = connection.execute(*_PIPELINE_STATE.of(pipeline_id, namespace)).first()
            if row is None:
                return None
            run = connection.execute(_LAST_RUN, {"id": pipeline_id}).first()
        state = PipelineState(
            in_force=bool(row.in_force),
            error=row.error,
            generation=row.generation,
            updated_at=_iso(row.updated_at),
            enabled=row.enabled,
            schedule_period=row.schedule_period,
            schedule_start=row.schedule_start,
            running=bool(row.running),
            last_run=_run_body(run) if run is not None else None,
        )
        return row.namespace, state

    def pipelines(
        self,
        namespace: str,
        first: int = 0,
        limit: int = 100,
        connection_id: int | None = None,
        enabled: bool | None = None,
    ) -> tuple[list[str], int]:
        """A page of a namespace's valid pipelines, by id, as JSON text, and how many there
        are in all."""
        condition = (pipelines.c.namespace == namespace) & pipelines.c.body.is_not(None)
        if connection_id is not None:
            condition &= pipelines.c.connection == connection_id
        if enabled is not None:
            condition &= pipelines.c.enabled == enabled
        # The page's ids come from the index alone; only their bodies are read.
        page = (
            sa.select(pipelines.c.id)
            .where(condition)
            .order_by(pipelines.c.id)
            .offset(first)
            .limit(min(limit, MAX_PAGE))
            .subquery()
        )
        with self.engine.connect() as connection:
            total = connection.execute(
                sa.select(sa.func.count()).select_from(pipelines).where(condition)
            ).scalar_one()
            rows = connection.execute(
                sa.select(_body_text(), _running())
                .join_from(pipelines, page, page.c.id == pipelines.c.id)
                .order_by(pipelines.c.id)
            )
            return [_with_running(row.body, row.running) for row in rows], total

    # -----------------------------------------------------------------------------------------
    # Runs
    # -----------------------------------------------------------------------------------------

    def start_run(self, pipeline_id: int, job_name: str | None, started_at: datetime) -> int:
        with self.transaction() as connection:
            result = connection.execute(
                runs.insert().values(pipeline=pipeline_id, job_name=job_name, started_at=started_at)
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish_run(self, run_id: int, finished: FinishedRun) -> None:
        with self.transaction() as connection:
            connection.execute(
                runs.update().where(runs.c.id == run_id).values(**finished.columns())
            )

    def record_job_run(
        self,
        pipeline_id: int,
        job_name: str,
        started_at: datetime,
        finished: FinishedRun | None = None,
    ) -> tuple[int, bool]:
        """The run of a Job, recorded once whatever how often the Job is seen: created when first
        seen, finished when first seen finished. Returns its id and whether this call finished
        it (so the finish is announced once)."""
        with self.transaction() as connection:
            row = connection.execute(
                sa.select(runs.c.id, runs.c.ended_at).where(
                    runs.c.pipeline == pipeline_id, runs.c.job_name == job_name
                )
            ).first()
            if row is None:
                inserted = connection.execute(
                    runs.insert().values(
                        pipeline=pipeline_id, job_name=job_name, started_at=started_at
                    )
                ).inserted_primary_key
                assert inserted is not None
                run_id, ended = int(inserted[0]), False
            else:
                run_id, ended = row.id, row.ended_at is not None
            if finished is None or ended:
                return run_id, False
            connection.execute(
                runs.update().where(runs.c.id == run_id).values(**finished.columns())
            )
            return run_id, True

    def latest_runs(self) -> dict[int, dict[str, Any]]:
        """Each pipeline's newest run, by pipeline id."""
        newest = sa.select(sa.func.max(runs.c.id)).group_by(runs.c.pipeline)
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(runs).where(runs.c.id.in_(newest)))
            return {row.pipeline: _run_body(row) for row in rows}

    def runs(
        self, pipeline_id: int, first: int = 0, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of a pipeline's runs, newest first, and how many there are in all."""
        condition = runs.c.pipeline == pipeline_id
        with self.engine.connect() as connection:
            total = connection.execute(
                sa.select(sa.func.count()).select_from(runs).where(condition)
            ).scalar_one()
            rows = connection.execute(
                sa.select(runs)
                .where(condition)
                .order_by(runs.c.id.desc())
                .offset(first)
                .limit(min(limit, MAX_PAGE))
            )
            return [_run_body(row) for row in rows], total


def _running() -> sa.Label[bool]:
    live = sa.select(runs.c.id).where(runs.c.pipeline == pipelines.c.id, runs.c.ended_at.is_(None))
    return sa.exists(live).label("running")


def _body_text() -> sa.Label[str]:
    # The stored JSON text as is: decoding and encoding it again would cost more than the read.
    return sa.cast(pipelines.c.body, sa.Text).label("body")


def _with_running(body: str, running: bool) -> str:
    """The stored body with ``running``, which sits between outSchema and scheduleStart in the
    API's member order. scheduleStart and schedulePeriod are the last members and hold no
    text, so the last "scheduleStart" in the body is the member itself."""
    at = body.rindex('"scheduleStart"')
    return f'{body[:at]}"running":{"true" if running else "false"},{body[at:]}'


# The API's reads, built once: building a statement costs more than running it on SQLite.
_WORKSPACE_FOR_KEY = (
    sa.select(workspaces.c.id, workspaces.c.namespace)
    .join(api_keys, api_keys.c.namespace == workspaces.c.namespace)
    .where(api_keys.c.digest == sa.bindparam("digest"))
)
_WORKSPACE_NAMESPACE = sa.select(workspaces.c.namespace).where(
    workspaces.c.id == sa.bindparam("id")
)


class _PipelineRead:
    """A read of one pipeline by id, built both ways: anywhere, and confined to a namespace.
    Confined in the query, so that another namespace's pipeline is read exactly as a missing one
    (no row, no further read): neither the API's answer nor its timing tells the id is taken."""

    def __init__(self, anywhere: sa.Select[Any]) -> None:
        self._anywhere = anywhere
        self._within = anywhere.where(pipelines.c.namespace == sa.bindparam("namespace"))

    def of(self, pipeline_id: int, namespace: str | None) -> tuple[sa.Select[Any], dict[str, Any]]:
        """The statement and its parameters."""
        if namespace is None:
            return self._anywhere, {"id": pipeline_id}
        return self._within, {"id": pipeline_id, "namespace": namespace}


_PIPELINE_BODY = _PipelineRead(
    sa.select(pipelines.c.namespace, _body_text(), _running()).where(
        pipelines.c.id == sa.bindparam("id"), pipelines.c.body.is_not(None)
    )
)
_PIPELINE_STATE = _PipelineRead(
    sa.select(
        pipelines.c.namespace,
        pipelines.c.body.is_not(None).label("in_force"),
        pipelines.c.error,
        pipelines.c.generation,
        pipelines.c.updated_at,
        pipelines.c.enabled,
        pipelines.c.schedule_period,
        pipelines.c.schedule_start,
        _running(),
    ).where(pipelines.c.id == sa.bindparam("id"))
)
_LAST_RUN = (
    sa.select(runs).where(runs.c.pipeline == sa.bindparam("id")).order_by(runs.c.id.desc()).limit(1)
)


def _run_body(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "pipeline": row.pipeline,
        "jobName": row.job_name,
        "startTime": _iso(row.started_at),
        "endTime": _iso(row.ended_at),
        "outcome": row.outcome,
        "counts": row.counts or {},
        "error": row.error,
        "errorSamples": row.error_samples or [],
    }


@overload
def _iso(moment: datetime) -> str: ...
@overload
def _iso(moment: datetime | None) -> str | None: ...
def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite keeps no zone: every stored time is UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _stored(kind: str, row: sa.Row[Any], resource_id: int | None) -> StoredResource:
    return StoredResource(
        Resource(kind, row.namespace, row.name, row.spec),
        valid=row.spec is not None,
        error=row.error,
        id=resource_id,
        apply_set=row.apply_set,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while an apply or a run record writes; foreign keys are off by
    # default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
