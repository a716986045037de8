"""What the export engine asks of an application connector.

A connector knows one application's HTTP API and nothing of warehouses: it describes the
destination schema, finds application users by matching value, and creates or updates users in
batches, answering for every record. The engine decides what to send; the connector decides how.

Records carry a ``key`` chosen by the engine, so results can come back in any order. Property
values are the transformation's output: nested dicts following the pipeline's output schema,
with Python values as :mod:`sluice.model.values` decodes them, except datetimes, dates and times,
which the mapping already formatted with the connector's :attr:`Connector.time_layouts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from sluice.mapping import TimeLayouts
from sluice.model.types import Type

if TYPE_CHECKING:  # sluice.apps.http imports this module
    from sluice.apps.http import ClientHooks


@dataclass(frozen=True, slots=True)
class AppUser:
    """An application user found by matching value: ``matching_value`` is the value asked for
    that the user matches, as the application compares values (HubSpot ignores the case of
    emails), so callers compare it exactly."""

    external_id: str
    matching_value: str


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One user to create (``external_id`` None) or update."""

    key: int
    external_id: str | None
    properties: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The application's answer for one record: the user's id, or why it was refused; or, for
    a create, the user that already holds the record's matching value (``existing_id``), when
    the application refuses a second one. An upsert says whether it ``created`` the user."""

    key: int
    external_id: str | None = None
    error: str | None = None
    existing_id: str | None = None
    created: bool = False


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How fast a connection may be called: a token bucket and a cap on requests in flight."""

    requests_per_second: float
    burst: int
    max_concurrent: int


class ConnectorError(Exception):
    """The application cannot be used for this run (refused token, unreachable, a fault that
    outlasted the retries): the run stops, and nothing unacknowledged is recorded as sent."""


class Connector(Protocol):
    """One application account, ready for one run. Close it with :meth:`aclose`."""

    #: Records per create or update call.
    batch_size: int
    #: Matching values per lookup call.
    lookup_batch_size: int
    rate_limit: RateLimit
    time_layouts: TimeLayouts

    async def destination_schema(self) -> Type:
        """The properties a pipeline may write, read-only ones excluded."""
        ...

    async def destination_identity(self) -> str:
        """The account the credentials reach (``hubspot:portal/62515``): what Sluice remembers
        of past runs belongs to it, and a new one starts afresh. The same account reached
        with another token or URL has the same identity."""
        ...

    async def upserts(self, matching_path: str) -> bool:
        """Whether :meth:`upsert` can create or update users by their value at
        ``matching_path`` in one call, so that users need not be looked up first."""
        ...

    async def lookup(self, matching_path: str, values: Sequence[str]) -> list[AppUser]:
        """The users whose property at ``matching_path`` (an output schema path) has one of
        ``values``; several users may share a value, and values without a user are absent."""
        ...

    async def create(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        """Create users, one result per record. A create is not blindly retried: when its
        outcome is unknown (a 5xx or a lost connection), the connector looks the records up by
        their value at ``matching_path`` and creates only those still missing."""
        ...

    async def update(self, records: Sequence[WriteRecord]) -> list[WriteResult]:
        """Update users by external id, one result per record."""
        ...

    async def upsert(self, matching_path: str, records: Sequence[WriteRecord]) -> list[WriteResult]:
        """Update the user holding each record's value at ``matching_path``, or create one
        (only where :meth:`upserts` says so); safe to repeat, one result per record."""
        ...

    async def aclose(self) -> None: ...


class ConnectorFactory(Protocol):
    """Builds a connector from a Connection's settings and credentials (one value per key of
    its Secret); tests add ``hooks`` for its HTTP client."""

    def __call__(
        self,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        **hooks: Unpack[ClientHooks],
    ) -> Connector: ...
