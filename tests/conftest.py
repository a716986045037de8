"""Shared fixtures: a real, throw-away PostgreSQL server (see tests/postgres.py)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from tests.postgres import (
    ci_requires_postgres,
    postgres_unavailable_reason,
    running_postgres,
    temporary_database,
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a PostgreSQL server started for this test session.

    Skips the tests that use it when PostgreSQL is not installed, except under CI (the `CI`
    environment variable set), where it must be: there they fail instead.
    """
    reason = postgres_unavailable_reason()
    if reason is not None:
        if ci_requires_postgres():
            pytest.fail(f"PostgreSQL is required under CI, but: {reason}", pytrace=False)
        pytest.skip(reason)
    with _sigterm_unwinds(), running_postgres() as url:
        yield url


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database (`test_<random>`), dropped after the test."""
    with temporary_database(postgres_url) as url:
        yield url


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Make SIGTERM (a CI time-out, `kill`) unwind the session so the server is stopped too.

    By default SIGTERM ends Python at once, without running `finally` blocks or fixture
    teardown, which would leave the server running.
    """
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def unwind(signum: int, frame: FrameType | None) -> None:
        # pytest stops the session on KeyboardInterrupt and runs the teardowns (SystemExit would
        # only fail the current test).
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
