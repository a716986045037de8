"""A DuckDB warehouse where the duckdb package is not installed (Sluice's container image)."""

from __future__ import annotations

import sys

import pytest

from sluice.warehouses import WarehouseError, open_warehouse


def test_a_duckdb_warehouse_without_duckdb_fails_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "sluice.warehouses.duckdb", raising=False)
    with pytest.raises(WarehouseError) as refused:
        open_warehouse("DuckDB", path="warehouse.duckdb")
    assert str(refused.value) == (
        "DuckDB warehouses need the duckdb package, which this installation does not have "
        "(Sluice's container image reads PostgreSQL warehouses; for DuckDB, install "
        "sluice[duckdb])"
    )
