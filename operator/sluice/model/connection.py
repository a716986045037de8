"""The Connection resource: one account of a destination application."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sluice.model.decoding import decode_spec
from sluice.model.errors import bad_request, unprocessable
from sluice.model.specs import ConnectionSpec

# Settings land in a ConfigMap and in the API's responses: a credential there would leak.
_SECRET_LOOKING = re.compile(r"token|secret|password|passwd|api[_-]?key|credential|private", re.I)


@dataclass(frozen=True)
class Connection:
    namespace: str
    resource_name: str
    id: int
    connector: str
    role: str
    settings: dict[str, Any]
    credentials_secret: str | None


def validate_connection(
    namespace: str, name: str, data: Any, connectors: Collection[str]
) -> Connection:
    spec = decode_spec(ConnectionSpec, data)
    if spec.connector not in connectors:
        raise unprocessable(
            "ConnectorNotExist",
            "connector does not exist",
            ("spec", "connector"),
            cause=f'no connector "{spec.connector}"; known: {", ".join(sorted(connectors))}',
        )
    for key in spec.settings:
        if _SECRET_LOOKING.search(key):
            raise bad_request(
                f'settings cannot hold secrets: move "{key}" to the Secret named by '
                "credentialsSecretRef",
                ("spec", "settings", key),
            )
    return Connection(
        namespace=namespace,
        resource_name=name,
        id=spec.id,
        connector=spec.connector,
        role=spec.role,
        settings=dict(spec.settings),
        credentials_secret=spec.credentials_secret_ref.name
        if spec.credentials_secret_ref
        else None,
    )
