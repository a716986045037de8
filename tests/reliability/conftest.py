"""The integration tests' ``target``: a DuckDB or PostgreSQL warehouse and the HubSpot twin
that a module serves as its ``hubspot`` fixture."""

from tests.integration.conftest import target

__all__ = ["target"]
