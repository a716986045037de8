"""The export config ``sluice export`` runs: read from the file the operator writes
(``docs/operator-objects.md``), or built in memory from manifests by the same builder.

Secrets are resolved here, at the edge: the warehouse DSN from the environment variable the
config names, credentials from one file per key in the credentials folder (or, from manifests,
from the Secret documents).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.filters.model import Filter, parse_filter
from sluice.model.pipeline import Function
from sluice.model.types import Type, parse_type

SUPPORTED_CONFIG_VERSION = 1


class ConfigError(ValueError):
    """A config that cannot be run; the message says what is wrong."""


@dataclass(frozen=True)
class WarehouseConfig:
    type: str
    path: str | None
    profiles_table: str
    profile_id_column: str
    dsn: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ExportConfig:
    pipeline_id: int
    name: str
    namespace: str
    resource_name: str
    connection_id: int
    connector: str
    settings: Mapping[str, Any]
    credentials: Mapping[str, str] = field(repr=False)
    warehouse: WarehouseConfig
    profile_schema: Type
    in_schema: Type
    out_schema: Type
    filter: Filter | None
    matching_in: str
    matching_out: str
    export_mode: str
    update_on_duplicates: bool
    mapping: Mapping[str, str] | None
    #: The transformation function; None with a mapping.
    function: Function | None
    #: 63 bits of SHA-256 of every setting that decides what a profile becomes: a change of
    #: any of them makes every profile's hash change, so the next run re-evaluates them all.
    fingerprint: int


def parse_config(
    document: Any,
    *,
    environ: Mapping[str, str] | None = None,
    credentials: Mapping[str, str] | None = None,
) -> ExportConfig:
    """An :class:`ExportConfig` from the JSON the operator writes. ``credentials`` overrides
    reading the credentials folder (manifests carry them as Secrets)."""
    environ = os.environ if environ is None else environ
    try:
        return _parse(document, environ, credentials)
    except (KeyError, TypeError) as err:
        raise ConfigError(f"the export config is malformed: missing or wrong {err}") from None


def _parse(
    document: Any, environ: Mapping[str, str], credentials: Mapping[str, str] | None
) -> ExportConfig:
    if not isinstance(document, dict):
        raise ConfigError("the export config must be a JSON object")
    if document.get("version") != SUPPORTED_CONFIG_VERSION:
        raise ConfigError(
            f"export config version {document.get('version')!r} is not supported "
            f"(this Sluice reads version {SUPPORTED_CONFIG_VERSION})"
        )
    body, workspace, connection = (
        document["pipeline"],
        document["workspace"],
        document["connection"],
    )
    warehouse = workspace["warehouse"]
    dsn_env = warehouse.get("dsnEnv")
    dsn = environ.get(dsn_env) if dsn_env else None
    if dsn_env and not dsn:
        raise ConfigError(f"the warehouse DSN is missing: set the environment variable {dsn_env}")
    in_schema = parse_type(body["inSchema"], ("inSchema",))
    transformation = body["transformation"]
    decisive = {
        key: body.get(key)
        for key in (
            "filter",
            "matching",
            "exportMode",
            "updateOnDuplicates",
            "transformation",
            "inSchema",
            "outSchema",
        )
    }
    decisive["connection"] = connection["id"]
    fingerprint_text = json.dumps(decisive, sort_keys=True, separators=(",", ":"))
    fingerprint = int.from_bytes(hashlib.sha256(fingerprint_text.encode()).digest()[:8]) >> 1
    if credentials is None:
        credentials = _read_credentials(connection.get("credentialsDir"))
    return ExportConfig(
        pipeline_id=int(body["id"]),
        name=body["name"],
        namespace=document["namespace"],
        resource_name=document["resourceName"],
        connection_id=int(connection["id"]),
        connector=connection["connector"],
        settings=dict(connection.get("settings") or {}),
        credentials=credentials,
        warehouse=WarehouseConfig(
            type=warehouse["type"],
            path=warehouse.get("path"),
            profiles_table=warehouse["profilesTable"],
            profile_id_column=warehouse["profileIdColumn"],
            dsn=dsn,
        ),
        profile_schema=parse_type(workspace["profileSchema"], ("profileSchema",)),
        in_schema=in_schema,
        out_schema=parse_type(body["outSchema"], ("outSchema",)),
        filter=parse_filter(body["filter"], in_schema) if body.get("filter") else None,
        matching_in=body["matching"]["in"],
        matching_out=body["matching"]["out"],
        export_mode=body["exportMode"],
        update_on_duplicates=bool(body["updateOnDuplicates"]),
        mapping=transformation.get("mapping"),
        function=_function(transformation.get("function")),
        fingerprint=fingerprint,
    )


def _function(document: Any) -> Function | None:
    if not document:
        return None
    return Function(
        language=document["language"],
        source=document["source"],
        preserve_json=bool(document.get("preserveJSON")),
        in_paths=tuple(document["inPaths"]),
        out_paths=tuple(document["outPaths"]),
    )


def _read_credentials(folder: str | None) -> dict[str, str]:
    """One value per file of a mounted Secret (Kubernetes' ``..data`` links are skipped)."""
    if folder is None:
        return {}
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f'the credentials folder "{folder}" does not exist')
    return {
        entry.name: entry.read_text(encoding="utf-8").strip()
        for entry in sorted(path.iterdir())
        if not entry.name.startswith(".") and entry.is_file()
    }


def load_config_file(path: str) -> ExportConfig:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read the export config: {err.strerror}: {path}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"the export config is not JSON: {err.msg} at line {err.lineno}"
        ) from None
    return parse_config(document)
