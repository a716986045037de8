"""The ExportPipeline resource: validation in the API's order, with the API's messages.

The checks follow the order of the API's create/update validation (the first failure wins).
Checks the API only makes when a run starts — the connection and its connector exist, the input
schema is part of the workspace's profile schema — are made here, before anything runs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sluice.filters.model import Filter, FilterError, filter_to_json, parse_filter, used_paths
from sluice.mapping import MappingError, compile_mapping
from sluice.model.alignment import AlignmentError, check_alignment
from sluice.model.capabilities import SourceCheck
from sluice.model.connection import Connection
from sluice.model.decoding import decode_schema, decode_spec
from sluice.model.errors import (
    ApiError,
    Location,
    bad_request,
    not_found,
    parse_location,
    unprocessable,
)
from sluice.model.ids import default_schedule_start
from sluice.model.specs import (
    EXPORT_MODES,
    FUNCTION_LANGUAGES,
    SCHEDULE_PERIODS,
    ExportPipelineSpec,
    FunctionSpec,
)
from sluice.model.types import (
    CONTAINER_KINDS,
    Kind,
    Type,
    first_nested_pair,
    is_meta_property,
    is_valid_property_path,
    property_by_path,
    type_to_json,
    walk_properties,
)
from sluice.model.workspace import Workspace, first_column_collision

MATCHING_KINDS = frozenset({Kind.STRING, Kind.INT, Kind.UUID})
MAX_NAME_LENGTH = 60
MAX_SOURCE_LENGTH = 50000
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Function:
    source: str
    language: str
    preserve_json: bool
    in_paths: tuple[str, ...]
    out_paths: tuple[str, ...]


@dataclass(frozen=True)
class Pipeline:
    """A valid pipeline, normalised: what the store keeps and the API returns."""

    id: int
    namespace: str
    resource_name: str
    name: str
    connection: int
    connector: str
    target: str
    enabled: bool
    filter: Filter | None
    matching_in: str
    matching_out: str
    export_mode: str
    update_on_duplicates: bool
    mapping: dict[str, str] | None
    function: Function | None
    in_schema: Type
    out_schema: Type
    schedule_period: str | None
    schedule_start: int


@dataclass(frozen=True)
class ConnectionEntry:
    """A Connection resource of the namespace as validation found it: valid, or why not."""

    resource_name: str
    id: int | None
    connection: Connection | None = None
    error: ApiError | None = None


@dataclass(frozen=True)
class PipelineContext:
    """What a pipeline refers to: the namespace's Workspace and Connections."""

    workspace: Workspace | None
    workspace_error: ApiError | None = None
    connections: Sequence[ConnectionEntry] = ()
    #: Function languages this installation can run.
    languages: Collection[str] = field(default_factory=lambda: frozenset(FUNCTION_LANGUAGES))
    #: Compiles function sources (without running them); None accepts any source.
    check_source: SourceCheck | None = None


# Members of the API's payload that only other kinds of pipeline use, with the API's message
# for an application export that sets one. Left empty (null, false, "", [], {}) the API accepts
# them, and so does Sluice.
FOREIGN_MEMBERS = {
    "eventType": "pipelines with target 'User' on destination application connections cannot "
    "specify an event type",
    "format": "pipelines on Application connections cannot have a format",
    "requiredConsents": "required consents are not allowed",
    "incremental": "incremental cannot be true for destination pipelines",
    "compression": "application pipelines cannot have compression",
    "formatSettings": "application pipelines cannot have destination format settings",
    "query": "Application pipelines cannot have a query",
    "path": "Application pipelines cannot have a path",
    "sheet": "Application pipelines cannot have a sheet",
    "userIDColumn": "pipeline cannot specify a user ID column",
    "updatedAtColumn": "pipeline cannot specify an update time column",
    "updatedAtFormat": "pipeline cannot specify an update time format",
    "orderBy": "pipelines that do not export users to files cannot specify a order by property",
    "tableName": "table name is not allowed",
    "tableKey": "table key is not allowed",
}


def validate_pipeline(
    namespace: str, name: str, data: Any, pipeline_id: int, context: PipelineContext
) -> Pipeline:
    spec = decode_spec(ExportPipelineSpec, _without_foreign_members(data))
    in_schema = _optional_schema(spec.in_schema, "inSchema")
    out_schema = _optional_schema(spec.out_schema, "outSchema")
    _check_target(spec)
    _check_workspace(context)
    connection = _resolve_connection(spec.connection, context.connections)
    checker = _BodyChecker(spec, in_schema, out_schema, context.languages, context.check_source)
    checker.run()
    # The body checks passed, so the transformation has made sure both schemas are present.
    assert in_schema is not None and out_schema is not None
    assert context.workspace is not None
    _check_profile_alignment(in_schema, context.workspace.profile_schema)
    period, start = _check_schedule(spec, pipeline_id)
    matching = spec.matching
    assert matching is not None
    return Pipeline(
        id=pipeline_id,
        namespace=namespace,
        resource_name=name,
        name=unicodedata.normalize("NFC", spec.name),
        connection=connection.id,
        connector=connection.connector,
        target="User",
        enabled=spec.enabled,
        filter=checker.filter,
        matching_in=matching.in_,
        matching_out=matching.out,
        export_mode=spec.export_mode,
        update_on_duplicates=spec.update_on_duplicates,
        mapping=checker.mapping,
        function=checker.function,
        in_schema=in_schema,
        out_schema=out_schema,
        schedule_period=period,
        schedule_start=start,
    )


def _optional_schema(data: Any, member: str) -> Type | None:
    """A schema member; null means "no schema", as in the API."""
    return None if data is None else decode_schema(data, ("spec", member))


def _without_foreign_members(data: Any) -> Any:
    if not isinstance(data, dict) or not data.keys() & FOREIGN_MEMBERS.keys():
        return data
    for key, message in FOREIGN_MEMBERS.items():
        value = data.get(key)
        if value and not (key == "requiredConsents" and _no_purposes(value)):
            raise bad_request(message, ("spec", key))
    return {key: value for key, value in data.items() if key not in FOREIGN_MEMBERS}


def _no_purposes(consents: Any) -> bool:
    return isinstance(consents, dict) and not consents.get("purposes")


def pipeline_to_api(pipeline: Pipeline, running: bool = False) -> dict[str, Any]:
    """The body of ``GET /v1/pipelines/{id}``: the API's members, in the API's order."""
    function = pipeline.function
    scheduled = pipeline.schedule_period is not None
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "connector": pipeline.connector,
        "connectorType": "Application",
        "connection": pipeline.connection,
        "connectionRole": "Destination",
        "target": pipeline.target,
        "enabled": pipeline.enabled,
        "filter": filter_to_json(pipeline.filter) if pipeline.filter else None,
        "matching": {"in": pipeline.matching_in, "out": pipeline.matching_out},
        "exportMode": pipeline.export_mode,
        "updateOnDuplicates": pipeline.update_on_duplicates,
        "transformation": {
            "mapping": dict(pipeline.mapping) if pipeline.mapping is not None else None,
            "function": None
            if function is None
            else {
                "source": function.source,
                "language": function.language,
                "preserveJSON": function.preserve_json,
                "inPaths": list(function.in_paths),
                "outPaths": list(function.out_paths),
            },
        },
        "inSchema": type_to_json(pipeline.in_schema),
        "outSchema": type_to_json(pipeline.out_schema),
        "running": running,
        "scheduleStart": pipeline.schedule_start if scheduled else None,
        "schedulePeriod": pipeline.schedule_period,
    }


# ---------------------------------------------------------------------------------------------
# Request-level checks: target, workspace, connection
# ---------------------------------------------------------------------------------------------


def _check_target(spec: ExportPipelineSpec) -> None:
    where = ("spec", "target")
    if spec.target is None:
        raise bad_request("target is required", where)
    if spec.target not in ("Event", "User", "Group"):
        raise bad_request('target must be "Event", "User", or "Group"', where)
    if spec.target != "User":
        raise bad_request(
            f"pipeline with target '{spec.target}' not allowed for destination Application "
            "connections",
            where,
        )


def _check_workspace(context: PipelineContext) -> None:
    if context.workspace is None:
        cause = (
            f"the namespace's Workspace is not valid: {context.workspace_error}"
            if context.workspace_error
            else "no Workspace in the namespace"
        )
        raise not_found("workspace does not exist", cause=cause)


def _resolve_connection(
    reference: int | str | None, entries: Iterable[ConnectionEntry]
) -> Connection:
    """The Connection a pipeline names, by id or by resource name."""
    where = ("spec", "connection")
    if reference is None:
        raise bad_request("connection is required", where)
    if isinstance(reference, int) and reference < 1:
        raise bad_request(f'connection identifier "{reference}" is not valid', where)
    entries = list(entries)
    found = [e for e in entries if e.resource_name == reference]
    if not found:
        wanted = int(reference) if str(reference).isdigit() else None
        found = [e for e in entries if wanted is not None and e.id == wanted]
    if not found:
        raise unprocessable(
            "ConnectionNotExist",
            "connection does not exist",
            where,
            cause=f"no Connection with id or name {reference!r} in the namespace",
        )
    entry = found[0]
    if entry.connection is not None:
        return entry.connection
    assert entry.error is not None
    if entry.error.code == "ConnectorNotExist":
        raise unprocessable(
            "ConnectorNotExist", "connector does not exist", where, entry.error.cause
        )
    raise unprocessable(
        "ConnectionNotExist",
        "connection does not exist",
        where,
        cause=f'Connection "{entry.resource_name}" is not valid: {entry.error}',
    )


def _check_profile_alignment(in_schema: Type, profile_schema: Type) -> None:
    try:
        check_alignment(in_schema, profile_schema, None, other="the profile schema")
    except AlignmentError as err:
        raise unprocessable(
            "SchemaNotAligned", f"in the input schema, {err.message}", ("spec", "inSchema")
        ) from None


def _check_schedule(spec: ExportPipelineSpec, pipeline_id: int) -> tuple[str | None, int]:
    period = spec.schedule_period
    if period is not None and period not in SCHEDULE_PERIODS:
        choices = ", ".join(f'"{p}"' for p in SCHEDULE_PERIODS[:-1])
        raise bad_request(
            f'schedule period can be {choices}, or "{SCHEDULE_PERIODS[-1]}"',
            ("spec", "schedulePeriod"),
        )
    start = spec.schedule_start
    if start is None:
        return period, default_schedule_start(pipeline_id)
    if not 0 <= start < MINUTES_PER_DAY:
        raise bad_request(
            f"schedule start must be in the range [0, {MINUTES_PER_DAY - 1}]",
            ("spec", "scheduleStart"),
        )
    return period, start


# ---------------------------------------------------------------------------------------------
# The body checks, in the API's order
# ---------------------------------------------------------------------------------------------


def check_string_field(field_name: str, value: str, max_runes: int, location: Location) -> None:
    if value == "":
        raise bad_request(f"{field_name} is empty", location)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(
            f"{field_name} contains invalid UTF-8 encoded characters", location
        ) from None
    if "\x00" in value:
        raise bad_request(f"{field_name} contains the NUL byte", location)
    if len(unicodedata.normalize("NFC", value)) > max_runes:
        raise bad_request(f"{field_name} is longer than {max_runes} runes", location)


class _BodyChecker:
    """Runs the body checks in order, collecting what later steps and the result need."""

    def __init__(
        self,
        spec: ExportPipelineSpec,
        in_schema: Type | None,
        out_schema: Type | None,
        languages: Collection[str],
        check_source: SourceCheck | None,
    ) -> None:
        self.spec = spec
        self.in_schema = in_schema
        self.out_schema = out_schema
        self.languages = languages
        self.check_source = check_source
        self.filter: Filter | None = None
        self.mapping: dict[str, str] | None = None
        self.mapping_inputs: tuple[str, ...] = ()
        self.function: Function | None = None
        self.used_in: set[str] = set()
        self.used_out: set[str] = set()

    def run(self) -> None:
        check_string_field("name", self.spec.name, MAX_NAME_LENGTH, ("spec", "name"))
        self._check_schema_kinds()
        self._check_filter()
        self._check_transformation()
        self._check_export_mode()
        self._check_matching()
        self._check_input_schema()
        self._check_output_schema()
        self._check_required_options()
        self._check_not_constant_only()
        self._check_unused()

    def _check_schema_kinds(self) -> None:
        if self.in_schema is not None and self.in_schema.kind is not Kind.OBJECT:
            raise bad_request("input schema, if provided, must be an object", ("spec", "inSchema"))
        if self.out_schema is not None and self.out_schema.kind is not Kind.OBJECT:
            raise bad_request("out schema, if provided, must be an object", ("spec", "outSchema"))

    def _check_filter(self) -> None:
        if self.spec.filter is None:
            return
        where: Location = ("spec", "filter")
        if self.in_schema is None:
            raise bad_request("input schema is required by the filter", where)
        try:
            self.filter = parse_filter(
                self.spec.filter.model_dump(exclude_none=True), self.in_schema
            )
        except FilterError as err:
            raise bad_request(
                f"filter is not valid: {err.reason}", (*where, *parse_location(err.path))
            ) from None
        self.used_in.update(used_paths(self.filter))

    def _check_transformation(self) -> None:
        transformation = self.spec.transformation
        if transformation is None:
            return
        where: Location = ("spec", "transformation")
        mapping, function = transformation.mapping, transformation.function
        if mapping is not None and function is not None:
            raise bad_request(
                "pipeline cannot have both transformation mapping and function", where
            )
        if mapping is not None:
            self._check_mapping(mapping, (*where, "mapping"))
        elif function is not None:
            self._check_function(function, (*where, "function"))
        else:
            raise bad_request(
                "pipeline cannot have a transformation without mapping and function.", where
            )

    def _check_mapping(self, mapping: dict[str, str], where: Location) -> None:
        if not mapping:
            raise bad_request("transformation mapping must have mapped properties", where)
        if self.in_schema is None:
            raise bad_request("input schema is required by the mapping", where)
        if self.out_schema is None:
            raise bad_request("output schema is required by the mapping", where)
        try:
            compiled = compile_mapping(mapping, self.in_schema, self.out_schema)
        except MappingError as err:
            location = (*where, err.key) if err.key is not None else where
            error = bad_request(f"invalid mapping: {err.message}", location)
            if err.position is not None:
                error = replace(error, cause=f"at character {err.position + 1} of the expression")
            raise error from None
        self.mapping = {key: mapping[key] for key in compiled.output_paths}
        self.mapping_inputs = compiled.input_paths
        self.used_in.update(compiled.input_paths)
        self.used_out.update(compiled.output_paths)

    def _check_function(self, function: FunctionSpec, where: Location) -> None:
        if self.in_schema is None:
            raise bad_request("input schema is required by the transformation function", where)
        if self.out_schema is None:
            raise bad_request("output schema is required by the transformation function", where)
        check_string_field(
            "source of transformation function",
            function.source,
            MAX_SOURCE_LENGTH,
            (*where, "source"),
        )
        self._check_language(function.language, (*where, "language"))
        if self.check_source is not None:
            problem = self.check_source(function.language, function.source)
            if problem is not None:
                raise bad_request(
                    f"transformation function is not valid: {problem}", (*where, "source")
                )
        in_paths = _check_function_paths(
            "input", function.in_paths, self.in_schema, (*where, "inPaths")
        )
        out_paths = _check_function_paths(
            "output", function.out_paths, self.out_schema, (*where, "outPaths")
        )
        self.function = Function(
            source=function.source,
            language=function.language,
            preserve_json=function.preserve_json,
            in_paths=in_paths,
            out_paths=out_paths,
        )
        self.used_in.update(in_paths)
        self.used_out.update(out_paths)

    def _check_language(self, language: str, where: Location) -> None:
        if language == "":
            raise bad_request("transformation language is empty", where)
        if language not in FUNCTION_LANGUAGES:
            raise bad_request(f'transformation language "{language}" is not valid', where)
        if language not in self.languages:
            raise unprocessable(
                "UnsupportedLanguage",
                "transformation language is not supported",
                where,
                cause=f"this installation has no {language} runtime",
            )

    def _check_export_mode(self) -> None:
        mode = self.spec.export_mode
        if mode and mode not in EXPORT_MODES:
            raise bad_request(f'export mode "{mode}" is not valid', ("spec", "exportMode"))

    def _check_matching(self) -> None:
        matching = self.spec.matching
        if matching is None or (matching.in_ == "" and matching.out == ""):
            return
        where: Location = ("spec", "matching")
        if matching.in_ == "":
            raise bad_request(
                "input matching property cannot be empty if output matching property is not empty",
                (*where, "in"),
            )
        if matching.out == "":
            raise bad_request(
                "output matching property cannot be empty if input matching property is not empty",
                (*where, "out"),
            )
        if self.spec.export_mode == "":
            raise bad_request("export mode cannot be empty if there are matching properties", where)
        in_type = _matching_type("input", matching.in_, self.in_schema, (*where, "in"))
        out_type = _matching_type("output", matching.out, self.out_schema, (*where, "out"))
        if {in_type.kind, out_type.kind} == {Kind.INT, Kind.UUID}:
            raise bad_request(
                "input matching property cannot be converted to the output matching property",
                where,
            )
        covered = _ancestors_or_self(matching.out)
        if self.mapping is not None and covered & self.mapping.keys():
            raise bad_request(
                "mapping cannot map over the output matching property",
                ("spec", "transformation", "mapping"),
            )
        if self.function is not None and covered & set(self.function.out_paths):
            raise bad_request(
                "transformation function cannot transform over the output matching property",
                ("spec", "transformation", "function", "outPaths"),
            )
        self.used_in.add(matching.in_)
        self.used_out.add(matching.out)

    def _check_input_schema(self) -> None:
        if self.in_schema is None:
            return
        where: Location = ("spec", "inSchema")
        for path, prop in walk_properties(self.in_schema):

            def fail(problem: str, path: str = path) -> ApiError:
                return bad_request(f'input pipeline schema property "{path}" {problem}', where)

            if prop.prefilled:
                raise fail(
                    "has a prefilled value, but pipeline schema properties cannot have "
                    "prefilled values"
                )
            if is_meta_property(prop.name):
                raise fail("is a meta property")
            element = prop.type.element_type
            if element is not None and element.kind in CONTAINER_KINDS:
                raise fail(f"cannot have type {prop.type}")
            if prop.create_required:
                raise fail("cannot have CreateRequired set to true")
            if prop.update_required:
                raise fail("cannot have UpdateRequired set to true")
            if not prop.read_optional:
                raise fail("must have ReadOptional set to true")
            if prop.nullable:
                raise fail("cannot have Nullable set to true")
        column = first_column_collision(self.in_schema)
        if column:
            raise bad_request(
                f'two input pipeline schema properties would have the same column name "{column}" '
                "in the data warehouse, case-insensitively",
                where,
            )

    def _check_output_schema(self) -> None:
        if self.out_schema is None:
            return
        matching = self.spec.matching
        may_be_read_optional = _ancestors_or_self(matching.out) if matching else set()
        for path, prop in walk_properties(self.out_schema):
            problem = None
            if prop.prefilled:
                problem = (
                    "has a prefilled value, but pipeline schema properties cannot have "
                    "prefilled values"
                )
            elif prop.read_optional and path not in may_be_read_optional:
                problem = "cannot have ReadOptional set to true"
            if problem:
                raise bad_request(
                    f'output pipeline schema property "{path}" {problem}', ("spec", "outSchema")
                )

    def _check_required_options(self) -> None:
        if self.spec.export_mode == "":
            raise bad_request("export mode cannot be empty", ("spec", "exportMode"))
        matching = self.spec.matching
        if matching is None or matching.in_ == "":
            raise bad_request("matching properties must be provided", ("spec", "matching"))
        if self.spec.transformation is None:
            raise bad_request("pipeline must have a transformation", ("spec", "transformation"))

    def _check_not_constant_only(self) -> None:
        # Each expression may be a constant, but a mapping that reads no profile property at all
        # would send every user the same record.
        if self.mapping is not None and not self.mapping_inputs:
            raise bad_request(
                "transformation must map at least one property", ("spec", "transformation")
            )

    def _check_unused(self) -> None:
        assert self.in_schema is not None and self.out_schema is not None
        for which, schema, used in (
            ("input", self.in_schema, self.used_in),
            ("output", self.out_schema, self.used_out),
        ):
            unused = _first_unused_leaf(schema, used)
            if unused:
                raise bad_request(
                    f"{which} schema contains an unused property: {unused}",
                    ("spec", "inSchema" if which == "input" else "outSchema"),
                )


def _check_function_paths(
    which: str, paths: list[str] | None, schema: Type, where: Location
) -> tuple[str, ...]:
    if paths is None:
        raise bad_request(f"{which} properties of transformation function cannot be null", where)
    if not paths:
        raise bad_request(f"there are no {which} properties in transformation function", where)
    for index, path in enumerate(paths):
        if not is_valid_property_path(path):
            raise bad_request(
                f'transformation function {which} property path "{path}" is not valid',
                (*where, index),
            )
        if path in paths[:index]:
            raise bad_request(
                f'transformation function {which} property path "{path}" is repeated',
                (*where, index),
            )
    ordered = sorted(paths)
    nested = first_nested_pair(ordered)
    if nested:
        raise bad_request(
            f'transformation function {which} paths cannot contain both "{nested[0]}" and its '
            f'sub-property path "{nested[1]}"',
            where,
        )
    for index, path in enumerate(paths):
        try:
            property_by_path(schema, path)
        except KeyError:
            raise bad_request(
                f'{which} property "{path}" of transformation function does not exist in schema',
                (*where, index),
            ) from None
    return tuple(ordered)


def _matching_type(which: str, path: str, schema: Type | None, where: Location) -> Type:
    # The API says "property name" for the output side (sic), "property path" for the input.
    path_word = "path" if which == "input" else "name"
    if schema is None:
        raise bad_request(f"{which} schema must be valid", where)
    if not is_valid_property_path(path):
        raise bad_request(
            f'{which} matching property "{path}" is not a valid property {path_word}', where
        )
    try:
        found = property_by_path(schema, path).type
    except KeyError:
        raise bad_request(
            f'{which} matching property "{path}" not found within the {which} schema', where
        ) from None
    if found.kind not in MATCHING_KINDS:
        raise bad_request(f"type {found} cannot be used as matching property", where)
    return found


def _ancestors_or_self(path: str) -> set[str]:
    """``a.b.c`` → ``{"a", "a.b", "a.b.c"}``."""
    names = path.split(".")
    return {".".join(names[: i + 1]) for i in range(len(names))}


def _first_unused_leaf(schema: Type, used: set[str]) -> str | None:
    """The first non-object property that no used path covers.

    A used path covers its own subtree (an object used as a whole) and counts for the property
    it goes through (a path into a map or JSON value uses that property).
    """
    for path, prop in walk_properties(schema):
        if prop.type.kind is Kind.OBJECT:
            continue
        if not _ancestors_or_self(path) & used and not any(u.startswith(path + ".") for u in used):
            return path
    return None
