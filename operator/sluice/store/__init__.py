"""Stored state: resources derived from manifests, and run history (SQLite or PostgreSQL)."""

from sluice.store.store import Change, Store, StoredResource

__all__ = ["Change", "Store", "StoredResource"]
