"""The connectors this installation has, by connector code: how validation knows which codes
can run (sluice/installation.py) and how the engine gets a connector for a Connection.

``connector_factory("hubspot")(settings, credentials)`` builds the HubSpot connector. A module
is imported on first use, so that validating manifests never loads an HTTP client.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType

from sluice.apps.catalog import CONNECTORS
from sluice.apps.connector import ConnectorFactory

#: Connector code → the module implementing it, whose ``connect`` is the factory: one module
#: per connector of the catalog, named after its code.
MODULES: MappingProxyType[str, str] = MappingProxyType(
    {code: f"sluice.apps.{code}" for code in CONNECTORS}
)


def connector_factory(code: str) -> ConnectorFactory:
    """The factory of the connector ``code``; KeyError for a code this installation lacks."""
    module = MODULES.get(code)
    if module is None:
        known = ", ".join(f'"{c}"' for c in sorted(MODULES))
        raise KeyError(f'there is no connector "{code}" (connectors: {known})')
    factory: ConnectorFactory = importlib.import_module(module).connect
    return factory
