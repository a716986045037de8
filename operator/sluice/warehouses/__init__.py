"""Warehouses profiles are read from: PostgreSQL and DuckDB (the embedded default).

Sluice keeps its own bookkeeping there too, in tables named ``sluice_*`` that it creates and
migrates itself: what it last exported per pipeline and profile, and per-record run errors.
"""

from sluice.warehouses.base import Warehouse, WarehouseError, open_warehouse

__all__ = ["Warehouse", "WarehouseError", "open_warehouse"]
