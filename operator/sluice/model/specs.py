"""The specs of Sluice's three resources, as users write them in manifests.

These models only check the *shape* of a document (types, unknown fields), like the API's JSON
decoding step. Everything the API reports with a message of its own (an empty name, a missing
export mode, ...) is left optional here so that validation can report it with that exact message.
Field descriptions become the CRD's descriptions, so `kubectl explain` shows them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

API_GROUP = "sluice.dev"
API_VERSION = "v1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

SCHEDULE_PERIODS = ("5m", "15m", "30m", "1h", "2h", "3h", "6h", "8h", "12h", "24h")
EXPORT_MODES = ("CreateOnly", "UpdateOnly", "CreateOrUpdate")
FUNCTION_LANGUAGES = ("JavaScript", "Python")
WAREHOUSE_TYPES = ("PostgreSQL", "DuckDB")

SCHEMA_DESCRIPTION = (
    "A schema: a type of kind `object` whose `properties` list each property's `name`, `type` "
    "and flags (`readOptional`, `nullable`, `createRequired`, `updateRequired`, `description`)."
)


class Spec(BaseModel):
    # Strict: a quoted "true" or "5" must not silently become a boolean or a number (an
    # unquoted yes is a boolean already, as kubectl reads it: see sluice.manifests).
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)


class SecretKeyRef(Spec):
    name: str = Field(description="Name of a Secret in the same namespace.", min_length=1)
    key: str = Field(
        default="dsn", description="Key of the Secret holding the value.", min_length=1
    )


class SecretRef(Spec):
    name: str = Field(description="Name of a Secret in the same namespace.", min_length=1)


class ApiKeysSecretRef(Spec):
    name: str = Field(description="Name of a Secret in the same namespace.", min_length=1)
    key: str = Field(
        default="apiKeys",
        description="Key of the Secret holding the API keys, one per line.",
        min_length=1,
    )


class WarehouseSpec(Spec):
    type: Literal["PostgreSQL", "DuckDB"] = Field(description="The warehouse platform.")
    dsn_secret_ref: SecretKeyRef | None = Field(
        default=None,
        alias="dsnSecretRef",
        description=(
            "Secret key holding the connection string (a PostgreSQL DSN, or a DuckDB database "
            "path). Required for PostgreSQL."
        ),
    )
    path: str | None = Field(
        default=None,
        description="DuckDB only: the path of the database file, when no Secret is used.",
        min_length=1,
    )
    profiles_table: str = Field(
        default="profiles",
        alias="profilesTable",
        description="Table or view holding one row per profile, with flattened columns.",
    )
    profile_id_column: str = Field(
        default="_kpid",
        alias="profileIdColumn",
        description="Column holding each profile's unique id.",
    )


class WorkspaceSpec(Spec):
    warehouse: WarehouseSpec = Field(description="The data warehouse profiles are read from.")
    profile_schema: dict[str, Any] = Field(
        alias="profileSchema",
        description="The schema of the profiles in the warehouse. " + SCHEMA_DESCRIPTION,
    )
    api_keys_secret_ref: ApiKeysSecretRef | None = Field(
        default=None,
        alias="apiKeysSecretRef",
        description="Secret key holding the workspace's keys to the read-only API, one per line "
        "(each starting with api_).",
    )


class ConnectionSpec(Spec):
    id: int = Field(
        description="The connection's numeric id, unique in the namespace; pipelines refer to it.",
        ge=1,
        le=2**31 - 1,
    )
    connector: str = Field(
        description="Code of the application connector, such as `hubspot` or `mailchimp`.",
        min_length=1,
    )
    role: Literal["Destination"] = Field(
        default="Destination",
        description="The connection's role. Sluice exports to applications: `Destination`.",
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Non-secret connector settings (such as a list id or a base URL).",
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        alias="credentialsSecretRef",
        description="Secret holding the application credentials (such as an access token).",
    )


class Condition(Spec):
    property: str = Field(
        default="",
        description="Path of an input-schema property, such as `address.country`.",
    )
    operator: str = Field(
        default="", description="The condition's operator, such as `is` or `is one of`."
    )
    values: list[str] | None = Field(
        default=None,
        description="The operator's values, as strings; how many depends on the operator.",
    )


class FilterSpec(Spec):
    logical: str = Field(default="", description="How conditions combine: `and` or `or`.")
    conditions: list[Condition] | None = Field(
        default=None, description="The conditions; at least one."
    )


class MatchingSpec(Spec):
    in_: str = Field(
        default="",
        alias="in",
        description="Path of the input (profile) property identifying a profile.",
    )
    out: str = Field(
        default="",
        description="Path of the output (application) property matched against `in`.",
    )


class FunctionSpec(Spec):
    source: str = Field(
        default="",
        description="Source of a function named `transform` that turns a profile into a user.",
    )
    language: str = Field(default="", description="`JavaScript` or `Python`.")
    preserve_json: bool = Field(
        default=False,
        alias="preserveJSON",
        description="Pass and return JSON values as their JSON text instead of decoded values.",
    )
    in_paths: list[str] | None = Field(
        default=None,
        alias="inPaths",
        description="Paths of the input properties passed to the function; at least one.",
    )
    out_paths: list[str] | None = Field(
        default=None,
        alias="outPaths",
        description="Paths of the output properties the function may return; at least one.",
    )


class TransformationSpec(Spec):
    mapping: dict[str, str] | None = Field(
        default=None,
        description=(
            "Output property paths mapped to expressions over the profile, such as "
            "`contact.firstname: first_name`. Exactly one of mapping and function."
        ),
    )
    function: FunctionSpec | None = Field(
        default=None,
        description="A JavaScript or Python function. Exactly one of mapping and function.",
    )


class ExportPipelineSpec(Spec):
    """The API's create payload, plus the schedule."""

    name: str = Field(default="", description="The pipeline's name: 1 to 60 characters.")
    connection: int | str | None = Field(
        default=None,
        description="The id of a Connection in the same namespace (a Connection name works too).",
    )
    target: str | None = Field(
        default=None, description='The entity exported. Must be "User" (profiles).'
    )
    enabled: bool = Field(default=False, description="Whether the pipeline runs.")
    filter: FilterSpec | None = Field(
        default=None,
        description="Only profiles that match the filter are exported; null exports all.",
    )
    matching: MatchingSpec | None = Field(
        default=None,
        description="The properties that identify whether a profile matches an application user.",
    )
    export_mode: str = Field(
        default="",
        alias="exportMode",
        description="`CreateOnly`, `UpdateOnly` or `CreateOrUpdate`.",
    )
    update_on_duplicates: bool = Field(
        default=False,
        alias="updateOnDuplicates",
        description="Update application users even when several match one profile.",
    )
    transformation: TransformationSpec | None = Field(
        default=None,
        description="The mapping or function that turns profiles into application users.",
    )
    in_schema: Any = Field(
        default=None,
        alias="inSchema",
        description=(
            "Schema of the profile properties the pipeline uses (filter, transformation, "
            "matching); a subset of the Workspace's profile schema. " + SCHEMA_DESCRIPTION
        ),
    )
    out_schema: Any = Field(
        default=None,
        alias="outSchema",
        description=(
            "Schema of the application properties the pipeline writes, including the output "
            "matching property. " + SCHEMA_DESCRIPTION
        ),
    )
    schedule_period: str | None = Field(
        default=None,
        alias="schedulePeriod",
        description="How often the export runs: 5m, 15m, 30m, 1h, 2h, 3h, 6h, 8h, 12h or 24h. "
        "Null (the default) runs it only on demand.",
    )
    schedule_start: int | None = Field(
        default=None,
        alias="scheduleStart",
        description="Minute of the day (UTC, 0-1439) of the first run of the day. When absent "
        "it is derived from the pipeline id, spreading pipelines over the period.",
    )


KIND_SPECS: dict[str, type[Spec]] = {
    "Workspace": WorkspaceSpec,
    "Connection": ConnectionSpec,
    "ExportPipeline": ExportPipelineSpec,
}
