"""The application misbehaving, for every connector: bursts of 429 with and without
``Retry-After``, 500/502/503/504, connections reset, answers slower than the client's timeout,
truncated JSON bodies and 200s of another shape, on writes and on lookups.

Each run either succeeds with exactly the expected users in the application, or fails with a
one-line error naming the application and the problem; either way its counts claim no user the
application does not hold, and after a failure the next run completes the set. Email is unique
in all five applications (their twins refuse a second user with one), so the users by email
are the users: a duplicate cannot hide.

One warehouse, DuckDB: the warehouse does not change the application's side of a run. The runs
are unpaced and each connector runs on a fake clock (tests/connector_runs.py), so backoff and
``Retry-After`` take no real time while attempts and the retry budget count as they ship; only
the slow answers take real time, past the client's timeout shortened to :data:`TIMEOUT`.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from sluice.apps.connector import ConnectorFactory
from sluice.apps.registry import connector_factory
from sluice.controller.summary import RunSummary
from sluice.engine import export as export_module
from sluice.twins.common import FaultKind
from tests.apps import AppCase, Twin, case, cases, unpaced
from tests.connector_runs import FakeTime
from tests.integration.conftest import Target
from tests.integration.test_connectors import Export
from tests.integration.test_export import people

#: The client's timeout in these runs, and how late a slow answer comes.
TIMEOUT = 0.5
SLOW = 1.5
#: Profiles in the warehouse; the US half (user0, user2… user18) is selected, and the first two
#: of those exist in the application before the run.
PROFILES = 20


def email(i: int) -> str:
    return f"user{i}@example.com"


SELECTED = [email(i) for i in range(0, PROFILES, 2)]
EXISTING = SELECTED[:2]
#: What a Python exception's name says in a message that should have said what went wrong.
PYTHON_ERRORS = re.compile(r"\b(Key|Attribute|Type|Value|Index|JSONDecode)Error\b")


@dataclass(frozen=True)
class Fault:
    """What the application does to the next ``count`` requests aimed at. ``survived``: the
    documented retry rules get the run past it (retried within the budget, or a create's
    outcome settled by lookup); the other faults may also fail the run, clearly."""

    name: str
    count: int = 1
    status: int = 503
    kind: FaultKind = "status"
    after_apply: bool = False
    retry_after: float | None = None
    survived: bool = True

    def inject(self, twin: Twin, path: str) -> None:
        twin.fail_next(
            self.count,
            self.status,
            path=path,
            after_apply=self.after_apply,
            kind=self.kind,
            retry_after=self.retry_after,
            seconds=SLOW if self.kind == "slow" else 0.0,
        )


FAULTS = [
    Fault("429-retry-after", 3, 429, retry_after=2),
    Fault("429", 3, 429),
    *(Fault(f"{status}", 2, status) for status in (500, 502, 503, 504)),
    *(Fault(f"{status}-after-apply", 1, status, after_apply=True) for status in (502, 504)),
    Fault("reset", kind="reset"),
    Fault("reset-after-apply", kind="reset", after_apply=True),
    # Carried out at once and answered late: carried out late, it could outlive the test.
    Fault("slow", kind="slow", after_apply=True),
    Fault("truncated", kind="truncated", after_apply=True, survived=False),
    Fault("wrong-shape", kind="wrong-shape", after_apply=True, survived=False),
]


@dataclass(frozen=True)
class Aim:
    """The requests a fault meets, and the export mode of the run."""

    requests: str  # "writes" or "lookups"
    mode: str

    def path(self, app: AppCase) -> str:
        if self.requests == "lookups":
            return app.lookup_path
        return app.create_path if self.mode == "CreateOnly" else app.write_path


AIMS = [
    Aim("writes", "CreateOnly"),  # creates: never blindly sent again
    Aim("writes", "CreateOrUpdate"),  # upserts where the application has them
    Aim("lookups", "CreateOnly"),  # every connector looks up before creating only
]


@pytest.fixture(scope="module", params=list(cases()))
def app(request: pytest.FixtureRequest) -> Iterator[tuple[AppCase, str]]:
    under_test = case(request.param)
    with under_test.serve() as base_url:
        yield under_test, base_url


@pytest.fixture
def export(app: tuple[AppCase, str], tmp_path: Path) -> Iterator[Export]:
    under_test, base_url = app
    under_test.twin.reset()
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    # The Target's twin is the HubSpot one of other tests; Export reaches its own through app.
    warehouse = Target("DuckDB", str(path), None, base_url)  # type: ignore[arg-type]
    with unpaced():
        yield Export(warehouse, under_test, base_url)


@pytest.fixture(autouse=True)
def fake_clock_and_short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run's connector gets a fake clock of its own and the short :data:`TIMEOUT`."""

    def hooked(code: str) -> ConnectorFactory:
        return functools.partial(connector_factory(code), timeout=TIMEOUT, **FakeTime().hooks())

    monkeypatch.setattr(export_module, "connector_factory", hooked)


def expected_first_names(mode: str) -> dict[str, str]:
    """Every selected user by email: created with its profile's first name, or existing and
    left as it was (CreateOnly) or updated."""
    return {
        email(i): "Before" if mode == "CreateOnly" and email(i) in EXISTING else f"First{i}"
        for i in range(0, PROFILES, 2)
    }


def check_counts(summary: RunSummary, export: Export) -> None:
    """Every user the run counts as created or updated is in the application with its
    profile's data, and every one counted as created is new there."""
    held = export.first_names()
    written = sum(held.get(email(i)) == f"First{i}" for i in range(0, PROFILES, 2))
    counts = summary.counts
    assert counts["created"] + counts["updated"] <= written, counts
    assert counts["created"] <= len(held.keys() - EXISTING), counts


def check_clear_error(error: str | None, app: AppCase) -> None:
    app_name = importlib.import_module(f"sluice.apps.{app.code}").APP
    assert error is not None
    assert "\n" not in error and "Traceback" not in error, error
    assert not error.startswith("internal error") and not PYTHON_ERRORS.search(error), error
    assert app_name in error, error


@pytest.mark.parametrize("aim", AIMS, ids=lambda a: f"{a.requests}-{a.mode}")
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_a_misbehaving_application_loses_and_duplicates_nothing(
    export: Export, fault: Fault, aim: Aim
) -> None:
    app = export.app
    export.warehouse.load(people(PROFILES))
    app.add_users([(address, "Before") for address in EXISTING])
    fault.inject(app.twin, aim.path(app))

    summary = export.run(exportMode=aim.mode)

    assert app.twin.pending_faults() == [], "the run did not meet the fault"
    expected = ("Succeeded",) if fault.survived else ("Succeeded", "Failed")
    assert summary.outcome in expected, (summary.outcome, summary.error, summary.error_samples)
    check_counts(summary, export)
    if summary.outcome == "Failed":
        check_clear_error(summary.error, app)
        rerun = export.run(exportMode=aim.mode)
        assert rerun.outcome == "Succeeded", (rerun.error, rerun.error_samples)
    assert export.first_names() == expected_first_names(aim.mode)
