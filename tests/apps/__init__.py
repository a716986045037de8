"""One application under test per module (``tests.apps.hubspot``, ``tests.apps.mailchimp``…):
how the connector-independent integration tests (tests/integration/test_connectors.py) start
that application's twin, point a Connection at it, write a pipeline for it, and read back what
the application holds.

Every case follows :class:`AppCase`; :data:`CASES` lists them by connector code.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sluice.apps import http
from sluice.twins.common import Fault, FaultKind
from sluice.twins.serving import serve


@dataclass(frozen=True)
class AppUser:
    """A user as the application holds it, reduced to what the tests compare."""

    id: str
    email: str  # as the application stores it (lower-cased by most)
    first_name: str | None


class Twin(Protocol):
    """What the tests ask of every twin (sluice.twins.common.TwinControls, plus a rate limit
    that can be forced and a reset)."""

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        *,
        path: str | None = None,
        after_apply: bool = False,
        kind: FaultKind = "status",
        retry_after: float | None = None,
        seconds: float = 0.0,
    ) -> None: ...

    def pending_faults(self) -> list[Fault]:
        """The faults injected and not met yet."""
        ...

    def force_rate_limit(self, count: int) -> None:
        """The next ``count`` API requests answer 429 exactly as the application does."""
        ...

    def set_latency(self, seconds: float) -> None: ...

    def set_rate_limiting(self, enabled: bool) -> None:
        """Enforce the application's documented rate limit (as a default account has it)."""
        ...

    def revoke_token(self) -> None: ...

    def restore_token(self) -> None: ...

    def request_counts(self) -> dict[str, dict[str, int]]: ...

    def reset(self) -> None:
        """No users, no faults, no latency, statistics zeroed, credential restored, and the
        application's rate limit off (tests turn nothing on that they do not check)."""
        ...


class AppCase(Protocol):
    """One application: its twin and a pipeline exporting email, first and last name to it."""

    #: The connector code of the Connection.
    code: str
    #: The Connection Secret's keys and values.
    credentials: Mapping[str, str]
    #: The pipeline's ``outSchema``: the email property and the first and last name ones, and
    #: whatever else the application requires to create a user.
    out_schema: Mapping[str, Any]
    #: The output path of the email property, the pipeline's ``matching.out``.
    email_path: str
    #: The pipeline's mapping without the matching property: first and last name (from the
    #: profile's ``first_name`` and ``last_name``), plus constants the application requires.
    mapping: Mapping[str, str]
    #: The output path that ``first_name`` is written to.
    first_name_path: str
    #: Request path fragments for fault injection (``fail_next(path=…)``): the requests that
    #: write users, those that create them only (the writes of a ``CreateOnly`` run, sent
    #: after its lookups), and those that look them up by email.
    write_path: str
    create_path: str
    lookup_path: str
    #: "METHOD /path" keys of ``twin.request_counts()`` for writes and for lookups.
    write_endpoints: tuple[str, ...]
    lookup_endpoints: tuple[str, ...]
    #: An email address the application refuses per record (the others of its batch go on),
    #: and a fragment of the error message Sluice reports for it.
    invalid_email: str
    invalid_email_error: str
    #: The most profiles per second the twin's enforced rate limit lets a first
    #: ``CreateOrUpdate`` run write (its request budget times the profiles per request): the
    #: floor any client's time is measured against. None when the application limits
    #: something else than requests per second.
    allowed_profiles_per_second: float | None
    twin: Twin

    def serve(self) -> AbstractContextManager[str]:
        """Start the twin on loopback (rate limit off); yields its base URL."""
        ...

    def settings(self, base_url: str) -> dict[str, Any]:
        """The Connection's settings pointing the connector at ``base_url``."""
        ...

    def users(self) -> dict[str, AppUser]:
        """Every user the application holds, by lower-cased email."""
        ...

    def add_users(self, people: Sequence[tuple[str, str]]) -> None:
        """Create users directly in the twin (not counted, no rate limit): (email, first name)."""
        ...


class TwinCase:
    """What cases share: their twin served on loopback, and a Connection whose settings point
    the connector at it by ``baseUrl``."""

    twin: Any

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        with serve(self.twin) as base_url:
            yield base_url

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"baseUrl": base_url}


#: Connector code → the module holding its case (a ``CASE`` attribute).
MODULES = {
    "hubspot": "tests.apps.hubspot",
    "mailchimp": "tests.apps.mailchimp",
    "klaviyo": "tests.apps.klaviyo",
    "brevo": "tests.apps.brevo",
    "mailerlite": "tests.apps.mailerlite",
}


def case(code: str) -> AppCase:
    found: AppCase = importlib.import_module(MODULES[code]).CASE
    return found


def cases() -> Iterator[str]:
    yield from MODULES


@contextlib.contextmanager
def unpaced() -> Iterator[None]:
    """Every connector's token buckets hand out tokens at once (requests in flight stay capped,
    and 429s still pause): what tests of export semantics and unpaced benchmarks want, since
    the pacing itself is tested on a fake clock (tests/unit/test_app_http.py)."""

    async def at_once(self: http.TokenBucket) -> float:
        waited = self.pause_left()
        while waited > 0:
            await self._sleep(waited)
            waited = self.pause_left()
        return 0.0

    acquire = http.TokenBucket.acquire
    http.TokenBucket.acquire = at_once  # type: ignore[method-assign]
    try:
        yield
    finally:
        http.TokenBucket.acquire = acquire  # type: ignore[method-assign]
