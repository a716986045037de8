"""One export run: from the warehouse's changed profiles to acknowledged application writes.

The stages run concurrently with bounded queues between them, so a slow application slows the
warehouse read instead of filling memory::

    warehouse read (thread) ─► decide & transform ─► writers (N) ─► acknowledgements (warehouse)

What Sluice records as exported is written only after the application acknowledged it; a run
that stops half-way (a crash, a revoked token, a 5xx storm) leaves the unacknowledged profiles
to the next run, which matches each of them by its matching value before anything is created
again: an upsert by that value where the application has one, a lookup otherwise. No create is
sent for a profile whose user could have been found.

What Sluice remembers belongs to one destination account (the connector's identity): a run that
finds the pipeline pointed at another account forgets the old account's acknowledgements first,
so every selected profile is matched and written there.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sluice.apps.connector import Connector, ConnectorError, WriteRecord, WriteResult
from sluice.controller.summary import ErrorSample, RunOutcome, RunSummary
from sluice.discovery import column_type
from sluice.engine.config import ExportConfig
from sluice.engine.matching import MatchingValueError, matching_value
from sluice.fastjson import encode_json
from sluice.functions.transformer import FunctionError, FunctionTransformer
from sluice.installation import INSTALLED
from sluice.mapping import CompiledMapping, MappingError, Purpose, RecordError, compile_mapping
from sluice.model.alignment import AlignmentError, check_alignment, output_alignment_error
from sluice.model.types import Kind, Type, column_name, property_by_path
from sluice.model.values import InvalidValue, put_at, value_at
from sluice.warehouses import Warehouse, WarehouseError
from sluice.warehouses.queries import (
    CANDIDATES_TABLE,
    ProfileSelection,
    acknowledge,
    acknowledged_any,
    record_errors,
)
from sluice.warehouses.rows import ProfileBuilder

#: The counts of a run summary, in the order they are reported.
COUNT_NAMES = (
    "selected",  # profiles the filter selects
    "unchanged",  # selected, with a matching value, and acknowledged as they are
    "read",  # profiles read from the warehouse: new, changed or failed last time
    "withoutMatchingValue",  # selected but without a matching value: not exportable
    "duplicated",  # sharing a matching value with another profile, or with several app users
    "invalidInput",  # a matching value the application's property cannot hold
    "transformationFailed",
    "outputValidationFailed",
    "alreadyInApplication",  # CreateOnly: a user with the matching value exists
    "notInApplication",  # UpdateOnly: no user has the matching value
    "created",
    "updated",
    "failed",  # refused by the application
)
_FAILURE_COUNTS = (
    "duplicated",
    "invalidInput",
    "transformationFailed",
    "outputValidationFailed",
    "failed",
)
SAMPLE_LIMIT = 20
# Compared with module constants: an enum member looked up on its class costs 70 ns, several
# times per profile.
_CREATE, _UPDATE = Purpose.CREATE, Purpose.UPDATE
ROWS_PER_FETCH = 2000
ACKNOWLEDGE_EVERY = 5000
_READ_QUEUE_CHUNKS = 2


class RunError(Exception):
    """Ends the run: the message is the run's error."""


@dataclass(frozen=True)
class _Candidate:
    profile: dict[str, Any]
    profile_id: str
    matching: Any
    matching_text: str
    input_hash: int
    known_ids: list[str] | None


@dataclass
class _Pending:
    """A profile on its way: what to acknowledge once the application answered."""

    candidate: _Candidate
    external_ids: list[str]
    purpose: Purpose
    #: Writes still unanswered (one per matched user when updating duplicates).
    waiting: int = 1
    failed: bool = False
    #: Sent as an upsert: the answer tells whether it created or updated.
    upsert: bool = False

    @property
    def profile_id(self) -> str:
        return self.candidate.profile_id


@dataclass(frozen=True)
class _Submission:
    """A profile decided on, waiting for its transformation."""

    candidate: _Candidate
    ids: list[str]
    purpose: Purpose
    upsert: bool


@dataclass
class _Batches:
    creates: list[WriteRecord] = field(default_factory=list)
    updates: list[WriteRecord] = field(default_factory=list)
    upserts: list[WriteRecord] = field(default_factory=list)

    def by_kind(self) -> tuple[tuple[str, list[WriteRecord]], ...]:
        return (("create", self.creates), ("update", self.updates), ("upsert", self.upserts))


class ExportRun:
    """Runs one export of ``config`` from ``warehouse`` to ``connector``."""

    def __init__(
        self,
        config: ExportConfig,
        warehouse: Warehouse,
        connector: Connector,
        *,
        full: bool = False,
        progress: Callable[[Counter[str]], None] | None = None,
    ) -> None:
        self.config = config
        self.warehouse = warehouse
        self.connector = connector
        self.full = full
        self.run_id = uuid.uuid4().hex[:16]
        self.concurrency = max(1, connector.rate_limit.max_concurrent)
        self.progress = progress
        self.counts: Counter[str] = Counter()
        self.samples: list[ErrorSample] = []
        #: Samples of profiles without a matching value: reported after the failures.
        self._unmatchable: list[ErrorSample] = []
        self._errors: list[tuple[object, ...]] = []
        self._acks: list[_Pending] = []
        self._pending: dict[int, _Pending] = {}
        self._next_key = 0
        self._db_lock = asyncio.Lock()
        self._out_matching = property_by_path(config.out_schema, config.matching_out)
        self._in_matching_type = property_by_path(config.in_schema, config.matching_in).type
        self._shared: set[str] = set()
        self._found: dict[str, list[str]] = {}
        #: The first error that ended the writes; the reading loop stops on it.
        self._fatal: BaseException | None = None
        #: Profiles without a known user are upserted instead of looked up and then written.
        self._upsert = False
        #: Why the pipeline's past acknowledgements were forgotten, if they were.
        self._notes: list[str] = []
        self._mapping: CompiledMapping | None = None
        self._function: FunctionTransformer | None = None
        #: Decided, not yet transformed: a function transforms them together, in its workers.
        self._submissions: list[_Submission] = []
        self._conflicts: list[tuple[_Candidate, str]] = []
        #: Why the run was asked to stop early (a signal's name), if it was.
        self._stop_reason: str | None = None

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> RunSummary:
        started = datetime.now(UTC)
        error: str | None = None
        try:
            await self._export()
        except (RunError, WarehouseError, ConnectorError) as err:
            error = str(err)
        finally:
            try:
                await self._flush(final=True)
            except WarehouseError as err:
                error = error or str(err)
        return self._summary(started, error)

    def stop(self, reason: str) -> None:
        """Stop reading profiles: the writes already sent are awaited and acknowledged, the
        batches not yet sent are dropped, and the run ends Failed with ``reason``; the next run
        takes up the profiles left, matching each one before anything is created again."""
        self._stop_reason = self._stop_reason or reason

    def _raise_stopped(self) -> None:
        if self._stop_reason is not None:
            raise RunError(
                f"stopped by {self._stop_reason} before the end: what the application "
                "acknowledged is recorded, the other profiles are left to the next run"
            )

    async def _export(self) -> None:
        try:
            await self._export_transformed()
        except FunctionError as err:
            raise RunError(str(err)) from None
        finally:
            if self._function is not None:
                await asyncio.to_thread(self._function.close)

    async def _export_transformed(self) -> None:
        config = self.config
        function = config.function
        if function is not None and function.language not in INSTALLED.languages:
            # Validation refuses such a pipeline; a config written by an older operator or by
            # hand still gets the API's message.
            raise RunError(
                "transformation language is not supported: this installation has no "
                f"{function.language} runtime"
            )
        if config.mapping is None and function is None:
            raise RunError("the pipeline has no mapping or function to transform profiles with")
        selection = self._selection()
        await asyncio.to_thread(self._check_warehouse, selection)
        await self._check_destination()
        if function is not None:
            self._function = FunctionTransformer.of(
                function, config.in_schema, config.out_schema, self.connector.time_layouts
            )
            # A source whose top level fails ends the run before anything is read.
            await asyncio.to_thread(self._function.start)
        else:
            assert config.mapping is not None
            try:
                self._mapping = compile_mapping(
                    config.mapping,
                    config.in_schema,
                    config.out_schema,
                    time_layouts=self.connector.time_layouts,
                )
            except MappingError as err:
                raise RunError(f"the mapping cannot be compiled: {err}") from None
        # One upsert per 100 profiles instead of a lookup and a write; only where the record
        # sent is the same whether it creates or updates (a function told the purpose may
        # make them differ).
        self._upsert = (
            config.export_mode == "CreateOrUpdate"
            and _purpose_free(config.out_schema)
            and not (self._function is not None and self._function.uses_purpose)
            and await self.connector.upserts(config.matching_out)
        )
        await self._check_identity()
        shared, to_read = await self._count(selection)
        self._raise_stopped()
        if not to_read:
            return  # nothing new, changed or failed: nothing is read, nothing is sent
        builder = ProfileBuilder(config.in_schema, selection.input_paths, selection.dialect)
        writes: asyncio.Queue[tuple[str, list[WriteRecord]] | None] = asyncio.Queue(
            maxsize=self.concurrency * 2
        )
        writers = [asyncio.create_task(self._writer(writes)) for _ in range(self.concurrency)]
        try:
            batches = _Batches()
            with _existing_objects_frozen():
                # Closed here, not when collected: the reading thread stops before the
                # warehouse connection it uses is closed.
                async with contextlib.aclosing(self._read(selection, shared)) as chunks:
                    async for chunk in chunks:
                        if self._stop_reason is not None:
                            break
                        candidates = [
                            candidate
                            for row in chunk
                            if (candidate := self._candidate(row, builder)) is not None
                        ]
                        await self._match(candidates)
                        for candidate in candidates:
                            self._decide(candidate, batches)
                        self._update_conflicts(batches)
                        await self._transform(batches)
                        await self._send_full(batches, writes)
                        self._raise_fatal()
                        await self._flush()
                if self._stop_reason is None:
                    await self._send_full(batches, writes, everything=True)
                    # Creates refused for an existing user come back as updates, until none is
                    # left.
                    await writes.join()
                    while self._update_conflicts(batches) and self._stop_reason is None:
                        await self._transform(batches)
                        await self._send_full(batches, writes, everything=True)
                        await writes.join()
                for _ in writers:
                    await writes.put(None)
                await asyncio.gather(*writers)
                self._raise_fatal()
                self._raise_stopped()
        finally:
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)

    # -- checks before anything is read ----------------------------------------------------

    def _selection(self) -> ProfileSelection:
        config = self.config
        return ProfileSelection(
            dialect=self.warehouse.dialect,
            table=config.warehouse.profiles_table,
            id_column=config.warehouse.profile_id_column,
            in_schema=config.in_schema,
            matching_in=config.matching_in,
            filter=config.filter,
        )

    def _check_warehouse(self, selection: ProfileSelection) -> None:
        config = self.config
        try:
            check_alignment(config.in_schema, config.profile_schema, other="the profile schema")
        except AlignmentError as err:
            raise RunError(
                f"in the input schema, {err}. Please review and update the pipeline before "
                "attempting to export the profiles."
            ) from None
        table = selection.table
        columns = self.warehouse.table_columns(table)
        if columns is None:
            raise RunError(f'the profiles table "{table}" does not exist in the warehouse')
        wanted = [(config.warehouse.profile_id_column, "the profile id")] + [
            (column_name(path), f'the property "{path}"') for path in selection.input_paths
        ]
        for column, what in wanted:
            if column not in columns:
                raise RunError(f'the profiles table "{table}" has no column "{column}" for {what}')
        for path in selection.input_paths:
            column, t = column_name(path), property_by_path(config.in_schema, path).type
            if not _column_holds(columns[column], t):
                raise RunError(
                    f'the profiles table "{table}" has the column "{column}" of type '
                    f'{columns[column]}, which cannot hold the property "{path}" of type {t}'
                )
        self.warehouse.ensure_bookkeeping()

    async def _check_destination(self) -> None:
        config = self.config
        destination = await self.connector.destination_schema()
        error = output_alignment_error(
            config.out_schema, destination, config.export_mode, config.matching_out
        )
        if error is not None:
            raise RunError(error)

    async def _check_identity(self) -> None:
        """Keep the bookkeeping to the account the connection reaches: a new one makes this a
        full run, and says so."""
        identity = await self.connector.destination_identity()
        previous = await asyncio.to_thread(
            self.warehouse.claim_destination, self.config.pipeline_id, identity
        )
        if previous is not None and previous != identity:
            self._notes.append(
                f"the connection now reaches {identity} instead of {previous}: what was sent "
                f"to {previous} does not count there, so every selected profile is matched and "
                "written again"
            )

    async def _count(self, selection: ProfileSelection) -> tuple[list[str], int]:
        """Counts the selected profiles and stages the candidates (new or changed, and the
        holders of shared matching values) in the warehouse; returns the shared matching
        values and how many profiles are new or changed."""
        config, warehouse = self.config, self.warehouse

        def stage() -> int:
            warehouse.prepare(f"DROP TABLE IF EXISTS {CANDIDATES_TABLE}")
            statement = selection.stage_candidates(
                config.pipeline_id, config.fingerprint, everything=self.full
            )
            warehouse.prepare(statement.sql, statement.params)
            ((changed,),) = warehouse.prepare(f"SELECT COUNT(*) FROM {CANDIDATES_TABLE}")
            return int(changed)

        def count() -> tuple[int, int, list[str], list[str] | None]:
            # On the bookkeeping connection, while the reading one stages.
            statement = selection.counts()
            ((selected, missing),) = warehouse.execute(statement.sql, statement.params)
            without: list[str] = []
            if missing:
                statement = selection.without_matching_value(SAMPLE_LIMIT)
                without = [row[0] for row in warehouse.execute(statement.sql, statement.params)]
            ((acknowledged,),) = warehouse.execute(
                acknowledged_any(warehouse.dialect), [config.pipeline_id]
            )
            if acknowledged and not self.full:
                return selected, missing, without, None
            # Every selected profile is a candidate: the selection's own shared values are the
            # duplicates, found here while the reading connection stages.
            statement = selection.shared_matching_values(every_candidate=True)
            shared = [row[0] for row in warehouse.execute(statement.sql, statement.params)]
            return selected, missing, without, shared

        def share_among_candidates() -> list[str]:
            statement = selection.shared_matching_values(every_candidate=False)
            shared = [row[0] for row in warehouse.prepare(statement.sql, statement.params)]
            if shared:
                # The unchanged profiles holding a shared value are reported too.
                statement = selection.stage_sharing(config.pipeline_id, config.fingerprint, shared)
                warehouse.prepare(statement.sql, statement.params)
            return shared

        changed, (selected, missing, without, shared) = await asyncio.gather(
            asyncio.to_thread(stage), asyncio.to_thread(count)
        )
        self.counts["selected"] = selected
        self.counts["withoutMatchingValue"] = missing
        message = f'the matching property "{self.config.matching_in}" has no value'
        self._unmatchable = [ErrorSample(pid, None, "Receive", message) for pid in without]
        if shared is None and changed:  # duplicates arise only from new or changed profiles
            shared = await asyncio.to_thread(share_among_candidates)
        return shared or [], changed

    # -- reading ---------------------------------------------------------------------------

    async def _read(
        self, selection: ProfileSelection, shared: list[str]
    ) -> AsyncGenerator[list[Any], None]:
        staged = selection.staged_candidates()
        self._shared = set(shared)
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[list[Any] | BaseException | None] = asyncio.Queue(
            maxsize=_READ_QUEUE_CHUNKS
        )
        stop = False

        def produce() -> None:
            try:
                for rows in self.warehouse.stream(staged, (), ROWS_PER_FETCH):
                    if stop:
                        return
                    asyncio.run_coroutine_threadsafe(chunks.put(rows), loop).result()
                asyncio.run_coroutine_threadsafe(chunks.put(None), loop).result()
            except BaseException as err:  # handed to the event loop, raised there
                asyncio.run_coroutine_threadsafe(chunks.put(err), loop).result()

        reader = asyncio.create_task(asyncio.to_thread(produce))
        try:
            while (chunk := await chunks.get()) is not None:
                if isinstance(chunk, BaseException):
                    raise chunk
                yield chunk
        finally:
            stop = True
            while not chunks.empty():
                chunks.get_nowait()
            if not reader.done():
                # Let the producer see ``stop``: it may be blocked on a full queue.
                while not reader.done():
                    if not chunks.empty():
                        chunks.get_nowait()
                    await asyncio.sleep(0.01)
            await reader

    def _candidate(self, row: Sequence[Any], builder: ProfileBuilder) -> _Candidate | None:
        """The profile of a row, or None when a value does not fit the input schema: that
        profile fails, the others go on."""
        profile_id, matching_text, input_hash, last_matching, last_ids = row[-5:]
        self.counts["read"] += 1
        try:
            profile = builder.profile(row)
        except InvalidValue as err:
            self._fail("invalidInput", profile_id, None, "InputValidation", str(err))
            return None
        known = list(last_ids) if last_matching == matching_text and last_ids is not None else None
        return _Candidate(
            profile=profile,
            profile_id=profile_id,
            matching=value_at(profile, self.config.matching_in),
            matching_text=matching_text,
            input_hash=input_hash,
            known_ids=known,
        )

    async def _match(self, candidates: list[_Candidate]) -> None:
        """Find the application users of the candidates not matched before (new profiles and
        changed matching values)."""
        unknown = sorted(
            {
                c.matching_text
                for c in candidates
                if c.known_ids is None and c.matching_text not in self._shared
            }
            if not self._upsert
            else ()
        )
        self._found = {}
        size = self.connector.lookup_batch_size
        lookups = [
            self.connector.lookup(self.config.matching_out, unknown[i : i + size])
            for i in range(0, len(unknown), size)
        ]
        found: dict[str, set[str]] = {}
        for users in await asyncio.gather(*lookups):
            for user in users:
                found.setdefault(user.matching_value, set()).add(user.external_id)
        self._found = {value: sorted(found.get(value, ())) for value in unknown}

    # -- deciding --------------------------------------------------------------------------

    def _decide(self, candidate: _Candidate, batches: _Batches) -> None:
        config = self.config
        pid = candidate.profile_id
        if candidate.matching_text in self._shared:
            self._fail(
                "duplicated",
                pid,
                None,
                "Receive",
                f"profile has the same «{config.matching_in}» (the matching property) as other "
                "profiles selected for export",
            )
            return
        ids = candidate.known_ids
        if ids is None:
            if self._upsert:
                self._submit(candidate, [], _CREATE, batches, upsert=True)
                return
            ids = self._found.get(candidate.matching_text, [])
        mode = config.export_mode
        if ids and mode == "CreateOnly":
            self._acknowledge(candidate, ids, _CREATE, "alreadyInApplication")
            return
        if not ids and mode == "UpdateOnly":
            self._acknowledge(candidate, ids, _UPDATE, "notInApplication")
            return
        if len(ids) > 1 and not config.update_on_duplicates:
            self._fail(
                "duplicated",
                pid,
                None,
                "Receive",
                f"duplicates found for the matching property {config.matching_in} in the app users",
            )
            return
        self._submit(candidate, ids, _UPDATE if ids else _CREATE, batches)

    def _submit(
        self,
        candidate: _Candidate,
        ids: list[str],
        purpose: Purpose,
        batches: _Batches,
        *,
        upsert: bool = False,
    ) -> None:
        """Queue the profile for its transformation for ``purpose`` (an upsert is transformed
        as a create, which :func:`_purpose_free` makes the same)."""
        self._submissions.append(_Submission(candidate, ids, purpose, upsert))

    async def _transform(self, batches: _Batches) -> None:
        """Transform the profiles submitted, and queue their writes."""
        submissions, self._submissions = self._submissions, []
        items = [(s.candidate.profile, s.purpose) for s in submissions]
        if self._function is not None:
            records = await asyncio.to_thread(self._function.transform, items)
        else:
            assert self._mapping is not None  # compiled before anything is read
            records = self._mapping.transform_each(items)
        for submission, record in zip(submissions, records, strict=True):
            self._queue(submission, record, batches)

    def _queue(
        self, submission: _Submission, record: dict[str, object] | RecordError, batches: _Batches
    ) -> None:
        """Queue the write of a transformed profile (one update per id)."""
        candidate, ids, purpose = submission.candidate, submission.ids, submission.purpose
        config, pid = self.config, candidate.profile_id
        out_matching = self._out_matching
        if isinstance(record, RecordError):
            self._transformation_failed(pid, record)
            return
        try:
            if not record and purpose is _UPDATE and not out_matching.update_required:
                # Nothing to write: every mapped value was missing and may be left as it is.
                self._acknowledge(candidate, ids, purpose, "updated")
                return
            if purpose is _CREATE or out_matching.update_required:
                value = matching_value(
                    config.matching_in,
                    self._in_matching_type,
                    config.matching_out,
                    out_matching.type,
                    candidate.matching,
                )
                put_at(record, config.matching_out, value)
        except MatchingValueError as err:
            self._fail("invalidInput", pid, None, "InputValidation", str(err))
            return
        upsert = submission.upsert
        pending = _Pending(candidate, list(ids), purpose, waiting=max(1, len(ids)), upsert=upsert)
        if purpose is _CREATE:
            queue = batches.upserts if upsert else batches.creates
            queue.append(self._record(pending, None, record))
        else:
            for external_id in ids:
                batches.updates.append(self._record(pending, external_id, record))

    def _transformation_failed(self, profile_id: str, err: RecordError) -> None:
        step = "transformationFailed" if err.step == "Transformation" else "outputValidationFailed"
        self._fail(step, profile_id, None, err.step, err.message)

    def _record(self, pending: _Pending, external_id: str | None, record: Any) -> WriteRecord:
        key = self._next_key
        self._next_key += 1
        self._pending[key] = pending
        return WriteRecord(key, external_id, record)

    async def _send_full(
        self,
        batches: _Batches,
        writes: asyncio.Queue[tuple[str, list[WriteRecord]] | None],
        everything: bool = False,
    ) -> None:
        size = self.connector.batch_size
        for kind, records in batches.by_kind():
            while len(records) >= size or (everything and records):
                batch = records[:size]
                del records[:size]
                await writes.put((kind, batch))

    # -- writing ---------------------------------------------------------------------------

    async def _writer(self, writes: asyncio.Queue[tuple[str, list[WriteRecord]] | None]) -> None:
        """Sends batches until told to stop. After a fatal error or a request to stop it keeps
        taking batches without sending them, so the reading loop never waits on a full queue."""
        while (item := await writes.get()) is not None:
            try:
                if self._fatal is None and self._stop_reason is None:
                    await self._write(*item)
            except Exception as err:
                self._fatal = self._fatal or err
            finally:
                writes.task_done()

    async def _write(self, kind: str, records: list[WriteRecord]) -> None:
        connector, matching = self.connector, self.config.matching_out
        if kind == "create":
            results = await connector.create(matching, records)
        elif kind == "upsert":
            results = await connector.upsert(matching, records)
        else:
            results = await connector.update(records)
        self._answered(records, results)

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    def _answered(self, records: list[WriteRecord], results: Iterable[WriteResult]) -> None:
        by_key = {result.key: result for result in results}
        for record in records:
            pending = self._pending.pop(record.key)
            result = by_key.get(record.key)
            error = (
                "the application gave no answer for this record"
                if result is None
                else (result.error)
            )
            if result is not None and result.existing_id is not None and error is None:
                self._conflicted(pending, result.existing_id)
                continue
            if error is not None:
                if not pending.failed:
                    pending.failed = True
                    self._fail("failed", pending.profile_id, record.external_id, "Finalize", error)
            elif record.external_id is None and result is not None and result.external_id:
                pending.external_ids = [result.external_id]
                if pending.upsert and not result.created:
                    pending.purpose = _UPDATE
            pending.waiting -= 1
            if pending.waiting == 0 and not pending.failed:
                self.counts["created" if pending.purpose is _CREATE else "updated"] += 1
                self._acks.append(pending)
        if self.progress is not None:
            self.progress(self.counts)

    def _conflicted(self, pending: _Pending, existing_id: str) -> None:
        """A create refused because ``existing_id`` holds the matching value: the profile is
        that user's (CreateOnly leaves it, CreateOrUpdate updates it)."""
        if self.config.export_mode == "CreateOnly":
            self._acknowledge(pending.candidate, [existing_id], _CREATE, "alreadyInApplication")
        else:
            self._conflicts.append((pending.candidate, existing_id))

    def _update_conflicts(self, batches: _Batches) -> bool:
        """Queue updates for the creates that found an existing user; whether there were any."""
        conflicts, self._conflicts = self._conflicts, []
        for candidate, existing_id in conflicts:
            self._submit(candidate, [existing_id], _UPDATE, batches)
        return bool(conflicts)

    # -- bookkeeping -----------------------------------------------------------------------

    def _acknowledge(
        self, candidate: _Candidate, ids: list[str], purpose: Purpose, count: str
    ) -> None:
        self.counts[count] += 1
        self._acks.append(_Pending(candidate, list(ids), purpose, waiting=0))

    def _fail(
        self, count: str, profile_id: str, external_id: str | None, step: str, message: str
    ) -> None:
        self.counts[count] += 1
        self._sample(profile_id, external_id, step, message)
        self._errors.append(
            (
                self.run_id,
                self.config.pipeline_id,
                profile_id,
                external_id,
                step,
                message,
                datetime.now(UTC).replace(tzinfo=None),
            )
        )

    def _sample(
        self, profile_id: str | None, external_id: str | None, step: str, message: str
    ) -> None:
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append(ErrorSample(profile_id, external_id, step, message))

    async def _flush(self, final: bool = False) -> None:
        if (
            not final
            and len(self._acks) < ACKNOWLEDGE_EVERY
            and len(self._errors) < ACKNOWLEDGE_EVERY
        ):
            return
        acks, self._acks = self._acks, []
        errors, self._errors = self._errors, []
        if not acks and not errors:
            return
        async with self._db_lock:
            await asyncio.to_thread(self._write_bookkeeping, acks, errors)

    def _write_bookkeeping(self, acks: list[_Pending], errors: list[tuple[object, ...]]) -> None:
        warehouse = self.warehouse
        if acks:
            now = datetime.now(UTC).replace(tzinfo=None)
            rows = [
                (a.profile_id, a.candidate.matching_text, a.external_ids, a.candidate.input_hash)
                for a in acks
            ]
            warehouse.execute(
                acknowledge(warehouse.dialect),
                [self.config.pipeline_id, self.run_id, now, encode_json(rows).decode()],
            )
        statement = record_errors(warehouse.dialect)
        for error in errors:
            warehouse.execute(statement, error)

    # -- the summary -----------------------------------------------------------------------

    def _summary(self, started: datetime, error: str | None) -> RunSummary:
        counts = {name: self.counts[name] for name in COUNT_NAMES}
        counts["unchanged"] = max(
            0, counts["selected"] - counts["withoutMatchingValue"] - counts["read"]
        )
        failures = sum(counts[name] for name in _FAILURE_COUNTS)
        outcome: RunOutcome = "Succeeded"
        exportable = counts["read"] + counts["unchanged"]
        if error is not None or (failures and failures >= exportable):
            outcome = "Failed"
        elif failures:
            outcome = "PartiallyFailed"
        if error is None and failures:
            error = (
                f"{failures} of {exportable} profiles failed"
                if outcome == "PartiallyFailed"
                else f"every profile failed ({failures})"
            )
        return RunSummary(
            outcome=outcome,
            started_at=started,
            finished_at=datetime.now(UTC),
            counts=counts,
            error=error,
            error_samples=tuple((self.samples + self._unmatchable)[:SAMPLE_LIMIT]),
            notes=tuple(self._notes),
        )


_NUMBERS = frozenset({Kind.INT, Kind.FLOAT, Kind.DECIMAL, Kind.YEAR})
#: The kinds of property a column read as a kind (by :func:`column_type`) holds, when they are
#: more than that kind: numbers hold one another (each value is range-checked as it is read),
#: text holds what the API decodes from text, a timestamp holds a date.
_COLUMN_HOLDS: dict[Kind, frozenset[Kind]] = {
    Kind.INT: _NUMBERS,
    Kind.FLOAT: _NUMBERS,
    Kind.DECIMAL: _NUMBERS,
    Kind.STRING: frozenset({Kind.STRING, Kind.UUID, Kind.IP, Kind.JSON, Kind.MAP}),
    Kind.DATETIME: frozenset({Kind.DATETIME, Kind.DATE}),
    Kind.JSON: frozenset({Kind.JSON, Kind.MAP}),
}


def _column_holds(data_type: str, t: Type) -> bool:
    """Whether a column of the SQL type ``data_type`` can hold values of a property of type
    ``t``: a column altered to another type (text to integer) fails the run before anything is
    read, instead of failing every profile. A type Sluice does not read is given the benefit of
    the doubt: its values are checked one by one."""
    column = column_type(data_type, None, None, None)
    if column is None:
        return True
    return t.kind in _COLUMN_HOLDS.get(column.kind, frozenset({column.kind}))


@contextlib.contextmanager
def _existing_objects_frozen() -> Iterator[None]:
    """Keeps the garbage collector's full collections, frequent while profiles stream through,
    from walking every object that already existed (modules, connections, the compiled
    mapping) each time: a sixth of a first export's CPU time otherwise."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _purpose_free(schema: Type) -> bool:
    """Whether a record transformed for creation is the one an update would send: no property
    is required for one purpose and not the other."""
    if schema.element_type is not None and not _purpose_free(schema.element_type):
        return False
    return all(
        p.create_required == p.update_required and _purpose_free(p.type) for p in schema.properties
    )
