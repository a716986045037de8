"""Connector factories by connector code: how the engine gets a connector for a Connection.

``connector_factory("hubspot")(settings, credentials)`` builds the HubSpot connector. Codes
the catalog lists but no module implements yet, and unknown codes, raise :class:`KeyError`.
"""

from __future__ import annotations

from types import MappingProxyType

from sluice.apps import hubspot
from sluice.apps.catalog import CONNECTORS
from sluice.apps.connector import ConnectorFactory

FACTORIES: MappingProxyType[str, ConnectorFactory] = MappingProxyType({"hubspot": hubspot.connect})


def connector_factory(code: str) -> ConnectorFactory:
    """The factory of the connector ``code``."""
    try:
        return FACTORIES[code]
    except KeyError:
        pass
    if code in CONNECTORS:
        raise KeyError(f'the {CONNECTORS[code]} connector ("{code}") is not implemented yet')
    known = ", ".join(f'"{c}"' for c in sorted(FACTORIES))
    raise KeyError(f'there is no connector "{code}" (connectors: {known})')
