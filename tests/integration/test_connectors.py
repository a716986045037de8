"""Every connector, end to end, on DuckDB and PostgreSQL: the same exports against each
application's twin (tests/apps/), asserting what a user sees — the run summary, what the
application holds afterwards, and how many requests it took.

Email is unique in all five applications, so duplicates on the application side cannot exist
for these pipelines; the HubSpot tests cover them on a non-unique property.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from sluice.controller.summary import RunSummary
from sluice.engine.config import ExportConfig, parse_config
from sluice.engine.export import run_export
from tests.apps import AppCase, case, cases, unpaced
from tests.integration.conftest import DSN_ENV, PROFILE_SCHEMA, Target, _example_document
from tests.integration.test_export import US_ONLY, people
from tests.postgres import temporary_database


@pytest.fixture(scope="module", params=list(cases()))
def app(request: pytest.FixtureRequest) -> Iterator[tuple[AppCase, str]]:
    under_test = case(request.param)
    with under_test.serve() as base_url:
        yield under_test, base_url


@pytest.fixture(autouse=True)
def pacing(request: pytest.FixtureRequest) -> Iterator[None]:
    """Exports go as fast as the twins answer, except in tests marked ``paced``: the pacing
    is tested on a fake clock, and the applications' own budgets would make these tests
    minutes long (MailerLite creates 250 subscribers a minute)."""
    if request.node.get_closest_marker("paced") is not None:
        yield
        return
    with unpaced():
        yield


@dataclass
class Export:
    """A warehouse of one kind and one application's twin, ready to export between."""

    warehouse: Target
    app: AppCase
    base_url: str

    def config(self, **pipeline: Any) -> ExportConfig:
        document = copy.deepcopy(_example_document("export-customers"))
        body = document["pipeline"]
        body.update(
            outSchema=copy.deepcopy(dict(self.app.out_schema)),
            matching={"in": "email", "out": self.app.email_path},
            transformation={"mapping": dict(self.app.mapping)},
            exportMode="CreateOrUpdate",
            filter=US_ONLY,
        )
        body.update(pipeline)
        body["inSchema"] = document["workspace"]["profileSchema"] = PROFILE_SCHEMA
        warehouse = document["workspace"]["warehouse"]
        warehouse["type"] = self.warehouse.kind
        warehouse["path"] = self.warehouse.location if self.warehouse.kind == "DuckDB" else None
        warehouse["dsnEnv"] = DSN_ENV if self.warehouse.kind == "PostgreSQL" else None
        document["connection"]["connector"] = self.app.code
        document["connection"]["settings"] = self.app.settings(self.base_url)
        return parse_config(
            document,
            environ={DSN_ENV: self.warehouse.location},
            credentials=dict(self.app.credentials),
        )

    def run(self, **pipeline: Any) -> RunSummary:
        return run_export(self.config(**pipeline), out=io.StringIO(), err=io.StringIO())

    def requests(self, endpoints: tuple[str, ...]) -> int:
        counts = self.app.twin.request_counts()
        return sum(sum(counts.get(endpoint, {}).values()) for endpoint in endpoints)

    def answered(self, status: int) -> int:
        return sum(s.get(str(status), 0) for s in self.app.twin.request_counts().values())

    def first_names(self) -> dict[str, str | None]:
        return {email: user.first_name for email, user in self.app.users().items()}


@pytest.fixture(params=["DuckDB", "PostgreSQL"])
def export(
    request: pytest.FixtureRequest, app: tuple[AppCase, str], tmp_path: Path
) -> Iterator[Export]:
    under_test, base_url = app
    under_test.twin.reset()
    if request.param == "DuckDB":
        path = tmp_path / "warehouse.duckdb"
        duckdb.connect(str(path)).close()
        yield Export(Target("DuckDB", str(path), None, base_url), under_test, base_url)  # type: ignore[arg-type]
        return
    with temporary_database(request.getfixturevalue("postgres_url")) as url:
        dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        yield Export(Target("PostgreSQL", dsn, None, base_url), under_test, base_url)  # type: ignore[arg-type]


def us_emails(count: int, *, without: tuple[int, ...] = ()) -> list[str]:
    return [f"user{i}@example.com" for i in range(0, count, 2) if i not in without]


def test_a_first_run_creates_the_selected_profiles_and_a_rerun_sends_nothing(
    export: Export,
) -> None:
    profiles = people(60)
    profiles["p00002"]["email"] = None  # no matching value
    profiles["p00004"]["email"] = "user6@example.com"  # two profiles, one email
    export.warehouse.load(profiles)

    first = export.run()

    assert first.outcome == "PartiallyFailed"
    assert (first.counts["selected"], first.counts["created"]) == (30, 27)
    assert first.counts["withoutMatchingValue"] == 1 and first.counts["duplicated"] == 2
    names = export.first_names()
    assert sorted(names) == sorted(us_emails(60, without=(2, 4, 6)))
    assert names["user8@example.com"] == "First8"

    app = export.app
    before = export.requests(app.write_endpoints + app.lookup_endpoints)
    second = export.run()

    assert (second.counts["unchanged"], second.counts["created"]) == (27, 0)
    assert export.requests(app.write_endpoints + app.lookup_endpoints) == before


def test_a_one_percent_change_sends_that_one_percent(export: Export) -> None:
    export.warehouse.load(people(400))
    assert export.run().counts["created"] == 200
    placeholder = "%s" if export.warehouse.kind == "PostgreSQL" else "?"
    for profile_id in ("p00000", "p00002"):  # 1 % of the 200 selected
        export.warehouse.sql(
            f"UPDATE profiles SET first_name = 'Renamed' WHERE _kpid = {placeholder}", [profile_id]
        )
    writes_before = export.requests(export.app.write_endpoints)

    rerun = export.run()

    assert rerun.outcome == "Succeeded"
    assert (rerun.counts["updated"], rerun.counts["unchanged"], rerun.counts["created"]) == (
        2,
        198,
        0,
    )
    assert export.requests(export.app.write_endpoints) - writes_before == 1
    names = export.first_names()
    assert names["user0@example.com"] == names["user2@example.com"] == "Renamed"
    assert names["user4@example.com"] == "First4"


@pytest.mark.parametrize("mode", ["CreateOnly", "UpdateOnly", "CreateOrUpdate"])
def test_every_export_mode_with_users_already_in_the_application(export: Export, mode: str) -> None:
    export.warehouse.load(people(80))  # 40 selected
    existing = [f"user{i}@example.com" for i in range(0, 20, 2)]  # 10 of them
    export.app.add_users([(email, "Before") for email in existing])

    summary = export.run(exportMode=mode)

    assert summary.outcome == "Succeeded", summary.error_samples
    counts = summary.counts
    names = export.first_names()
    if mode == "CreateOnly":
        assert (counts["created"], counts["alreadyInApplication"]) == (30, 10)
        assert {names[email] for email in existing} == {"Before"}
    elif mode == "UpdateOnly":
        assert (counts["updated"], counts["notInApplication"]) == (10, 30)
        assert sorted(names) == sorted(existing)
        assert names["user2@example.com"] == "First2"
    else:
        assert (counts["created"], counts["updated"]) == (30, 10)
        assert names["user2@example.com"] == "First2" and names["user78@example.com"] == "First78"
    assert len(names) == (10 if mode == "UpdateOnly" else 40)


def test_a_record_the_application_refuses_fails_alone(export: Export) -> None:
    profiles = people(40)
    profiles["p00010"]["email"] = export.app.invalid_email
    export.warehouse.load(profiles)

    summary = export.run()

    assert summary.outcome == "PartiallyFailed"
    assert summary.counts["created"] == 19
    refused = [s for s in summary.error_samples if s.profile == "p00010"]
    assert refused and export.app.invalid_email_error in refused[0].message
    assert sorted(export.first_names()) == sorted(us_emails(40, without=(10,)))


@pytest.mark.paced
# Pacing is the application's side of the run, the same whatever the warehouse: one is enough.
@pytest.mark.parametrize("export", ["DuckDB"], indirect=True)
def test_429_storms_and_5xx_bursts_are_survived(export: Export) -> None:
    export.warehouse.load(people(40))
    export.app.add_users([("user0@example.com", "Before")])
    export.app.twin.force_rate_limit(3)
    export.app.twin.fail_next(2, 503, path=export.app.write_path)
    export.app.twin.fail_next(2, 502, path=export.app.lookup_path)

    summary = export.run(exportMode="CreateOnly")

    assert summary.outcome == "Succeeded", summary.error_samples
    assert (summary.counts["created"], summary.counts["alreadyInApplication"]) == (19, 1)
    assert sorted(export.first_names()) == sorted(us_emails(40))
    assert export.answered(429) == 3
    assert export.answered(503) + export.answered(502) >= 3


def test_a_write_whose_answer_is_lost_is_not_applied_twice(export: Export) -> None:
    export.warehouse.load(people(200))
    export.app.twin.fail_next(1, 502, path=export.app.write_path, after_apply=True)

    summary = export.run(exportMode="CreateOnly")

    assert summary.outcome == "Succeeded", summary.error_samples
    assert summary.counts["created"] + summary.counts["alreadyInApplication"] == 100
    assert sorted(export.first_names()) == sorted(us_emails(200))
    rerun = export.run(exportMode="CreateOnly")
    assert rerun.counts["unchanged"] == 100


def test_a_refused_credential_stops_the_run_and_records_nothing(export: Export) -> None:
    export.warehouse.load(people(20))
    export.app.twin.revoke_token()

    summary = export.run()

    assert summary.outcome == "Failed"
    assert summary.error is not None and "401" in summary.error
    assert export.app.users() == {}
    export.app.twin.restore_token()
    assert export.run().counts["created"] == 10
