"""Stored state: resources derived from manifests, and run history (SQLite or PostgreSQL)."""

from sluice.store.store import Change, FinishedRun, Store, StoredResource, StoreUnavailableError

__all__ = ["Change", "FinishedRun", "Store", "StoreUnavailableError", "StoredResource"]
