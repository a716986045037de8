"""The integration tests' ``target`` (a DuckDB or PostgreSQL warehouse) and ``hubspot`` (the
HubSpot twin it exports to; a module may serve its own)."""

from tests.integration.conftest import hubspot, target

__all__ = ["hubspot", "target"]
