"""Stored state: resources derived from manifests, and run history (SQLite or PostgreSQL)."""

from sluice.store.store import Change, FinishedRun, Store, StoredResource

__all__ = ["Change", "FinishedRun", "Store", "StoredResource"]
