"""Exports meeting faults: bad warehouses and schemas, a revoked token, 429 storms, 5xx bursts,
lost answers and a killed process. Each run must end with a clear error or survive within its
retry budget, and leave the application and the bookkeeping consistent: no duplicate, nothing
missing once a later run completes."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from sluice.installation import INSTALLED
from sluice.warehouses import open_warehouse
from tests.integration.conftest import OUT_SCHEMA, PROFILE_SCHEMA, TOKEN, Target
from tests.integration.test_export import WRITES, exported_rows, people, person, requests_to
from tests.operator_process import ROOT, eventually
from tests.postgres import temporary_database

BY_CUSTOMER_CODE = {"in": "customer_id", "out": "contact.customer_code"}
WRITES_AND_LOOKUPS = (
    *WRITES,
    "POST /crm/v3/objects/contacts/batch/read",
    "POST /crm/v3/objects/contacts/search",
)
#: The ``sluice`` command of the environment running the tests.
SLUICE = str(Path(sys.executable).parent / "sluice")


def customer_codes(target: Target) -> list[str]:
    return sorted(str(c["properties"]["customer_code"]) for c in target.twin.contacts())


# -------------------------------------------------------------------------------------------
# Checked before anything is sent
# -------------------------------------------------------------------------------------------


def test_an_unreachable_warehouse_fails_the_run(target: Target) -> None:
    location = (
        "/nonexistent/warehouse.duckdb"
        if target.kind == "DuckDB"
        else "postgresql://sluice@127.0.0.1:9/nowhere?connect_timeout=2"
    )
    unreachable = Target(target.kind, location, target.twin, target.base_url)

    summary = unreachable.export()

    assert summary.outcome == "Failed"
    assert summary.error is not None
    assert summary.error.startswith(
        "the DuckDB warehouse" if target.kind == "DuckDB" else "cannot connect to the PostgreSQL"
    )
    assert target.twin.stats()["requests"] == {}


def test_a_missing_table_or_column_fails_before_anything_is_sent(target: Target) -> None:
    summary = target.export()
    assert summary.outcome == "Failed"
    assert summary.error == 'the profiles table "profiles" does not exist in the warehouse'

    target.load(people(4))
    target.sql('ALTER TABLE profiles DROP COLUMN "address_city"')
    summary = target.export()
    assert summary.error == (
        'the profiles table "profiles" has no column "address_city" for the property "address.city"'
    )
    assert requests_to(target, WRITES) == 0


def test_a_function_without_a_runner_fails_with_the_api_message(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validation refuses such a pipeline; a config written by hand, or by an operator with
    # more runners than this installation, still meets the same rule.
    monkeypatch.setattr(
        "sluice.engine.run.INSTALLED", dataclasses.replace(INSTALLED, languages=frozenset())
    )
    target.load(people(4))
    function = {
        "source": "def transform(profile):\n    return {}\n",
        "language": "Python",
        "preserveJSON": False,
        "inPaths": ["first_name"],
        "outPaths": ["contact.firstname"],
    }
    summary = target.export(target.config(transformation={"mapping": None, "function": function}))
    assert summary.outcome == "Failed"
    assert summary.error == (
        "transformation language is not supported: this installation has no Python runtime"
    )
    assert requests_to(target, WRITES) == 0


def test_schemas_that_no_longer_align_fail_with_the_api_message(target: Target) -> None:
    target.load(people(4))
    in_schema = json.loads(json.dumps(PROFILE_SCHEMA))
    in_schema["properties"][0]["type"]["maxLength"] = 50

    summary = target.export(target.config(inSchema=in_schema))

    assert summary.error is not None
    assert summary.error.startswith('in the input schema, "first_name" property')
    assert summary.error.endswith(
        "Please review and update the pipeline before attempting to export the profiles."
    )

    out_schema = json.loads(json.dumps(OUT_SCHEMA))
    out_schema["properties"][0]["type"]["properties"].append(
        {"name": "no_such_property", "type": {"kind": "string"}, "nullable": True}
    )
    summary = target.export(target.config(outSchema=out_schema))
    assert summary.error == (
        'in the output schema, "contact.no_such_property" property does not exist in the '
        "application's schema. Please review and update the pipeline before attempting to "
        "export the users."
    )
    assert requests_to(target, WRITES) == 0


# -------------------------------------------------------------------------------------------
# Application faults
# -------------------------------------------------------------------------------------------


def test_a_revoked_token_stops_the_run_and_keeps_only_acknowledged_state(target: Target) -> None:
    target.load(people(600))
    target.twin.fail_next(1, 401, path="batch/upsert")  # stands for a token revoked mid-run

    summary = target.export(target.config(exportMode="CreateOrUpdate"))

    assert summary.outcome == "Failed"
    assert summary.error is not None and "401" in summary.error
    created = len(target.twin.contacts())
    assert exported_rows(target) == created == summary.counts["created"]

    rerun = target.export(target.config(exportMode="CreateOrUpdate"))

    assert rerun.outcome == "Succeeded"
    assert rerun.counts["created"] == 300 - created
    assert len(target.contacts()) == 300


def test_429_storms_and_5xx_bursts_are_survived(target: Target) -> None:
    target.load(people(400))
    target.twin.force_rate_limit(3)
    target.twin.fail_next(3, 503, path="batch/create")
    target.twin.fail_next(2, 502, path="batch/read")

    summary = target.export()

    assert summary.outcome == "Succeeded"
    assert summary.counts["created"] == 200
    assert len(target.contacts()) == 200
    answered = target.twin.stats()["requests"].values()
    assert sum(statuses.get("429", 0) for statuses in answered) == 3
    assert sum(statuses.get("503", 0) + statuses.get("502", 0) for statuses in answered) == 5


def test_a_create_whose_answer_is_lost_is_not_sent_twice(target: Target) -> None:
    """The twin applies the create and answers 502: a blind retry would duplicate contacts
    matched on a non-unique property."""
    target.load(people(300))
    target.twin.fail_next(2, 502, path="batch/create", after_apply=True)

    summary = target.export(target.config(matching=BY_CUSTOMER_CODE))

    assert summary.outcome == "Succeeded"
    assert summary.counts["created"] == 150
    assert customer_codes(target) == sorted(str(1000 + i) for i in range(0, 300, 2))


BY_EMAIL = {"in": "email", "out": "contact.email"}


@pytest.mark.parametrize(
    ("matching", "mapping", "mode"),
    [
        # Searched before creating: a non-unique property.
        (
            BY_CUSTOMER_CODE,
            {"contact.email": "email", "contact.firstname": "first_name"},
            "CreateOnly",
        ),
        # Read by email before creating.
        (BY_EMAIL, {"contact.firstname": "first_name"}, "CreateOnly"),
        # Upserted by email: nothing to look up.
        (BY_EMAIL, {"contact.firstname": "first_name"}, "CreateOrUpdate"),
    ],
    ids=["search-first", "read-first", "upsert"],
)
def test_a_run_killed_midway_is_completed_by_the_next_without_duplicates(
    target: Target, tmp_path: Path, matching: dict[str, str], mapping: dict[str, str], mode: str
) -> None:
    target.load(people(2000))
    manifests = write_manifests(
        target, tmp_path, matching=matching, transformation={"mapping": mapping}, exportMode=mode
    )
    target.twin.set_latency(0.3)
    command = [SLUICE, "export", "-f", str(manifests), "--pipeline", "export-customers"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: target.twin.contact_count() >= 100, "100 contacts", timeout=60)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    partial = target.twin.contact_count()
    assert 100 <= partial < 1000
    target.twin.set_latency(0)
    requests_before = requests_to(target, WRITES_AND_LOOKUPS)

    rerun = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["outcome"] == "Succeeded"
    counts = summary["counts"]
    found = counts["alreadyInApplication"] + counts["updated"]  # created by the killed run
    assert counts["created"] + found == 1000 - counts["unchanged"]
    assert found >= partial - counts["unchanged"]
    assert target.twin.contact_count() == 1000
    # No create refused as existing, and no more requests than a first run of what was left:
    # a lookup and a write per 100 profiles (search pages hold 200).
    answered = target.twin.stats()["requests"].values()
    assert sum(statuses.get("409", 0) for statuses in answered) == 0
    left = -(-(1000 - counts["unchanged"]) // 100)
    assert requests_to(target, WRITES_AND_LOOKUPS) - requests_before <= 2 * left
    assert sorted(target.contacts()) == sorted(f"user{i}@example.com" for i in range(0, 2000, 2))


def test_a_run_stopped_by_sigterm_records_exactly_what_was_written(
    target: Target, tmp_path: Path
) -> None:
    target.load(people(20_000))
    manifests = write_manifests(target, tmp_path)
    target.twin.set_latency(0.3)
    command = [SLUICE, "export", "-f", str(manifests), "--pipeline", "export-customers"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        eventually(lambda: target.twin.contact_count() >= 100, "100 contacts", timeout=60)
        child.send_signal(signal.SIGTERM)
        stdout, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)

    assert child.returncode == 1
    summary = json.loads(stdout)
    assert summary["outcome"] == "Failed"
    assert summary["error"].startswith("stopped by SIGTERM before the end")
    written = target.twin.contact_count()
    assert 100 <= written < 10_000
    # Every contact the application holds is recorded, and nothing else.
    assert summary["counts"]["created"] == written
    ((recorded,),) = target.sql("SELECT COUNT(*) FROM sluice_exported_profiles")
    assert recorded == written
    target.twin.set_latency(0)

    rerun = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert json.loads(rerun.stdout)["counts"]["created"] == 10_000 - written
    assert sorted(target.contacts()) == sorted(f"user{i}@example.com" for i in range(0, 20_000, 2))


def write_manifests(target: Target, folder: Path, **pipeline: Any) -> Path:
    """The examples' manifests for this warehouse and twin, with pipeline changes."""
    documents = []
    for name in ("workspace.yaml", "hubspot-connection.yaml", "seed-pipeline.yaml"):
        documents.extend(yaml.safe_load_all((ROOT / "examples" / name).read_text()))
    for document in documents:
        kind, name = document["kind"], document["metadata"]["name"]
        if kind == "Workspace":
            warehouse = document["spec"]["warehouse"]
            warehouse["type"] = target.kind
            if target.kind == "DuckDB":
                warehouse.pop("dsnSecretRef")
                warehouse["path"] = target.location
            document["spec"]["profileSchema"] = PROFILE_SCHEMA
        elif kind == "Secret" and name == "warehouse":
            document["stringData"]["dsn"] = target.location
        elif kind == "Secret" and name == "hubspot-credentials":
            document["stringData"]["accessToken"] = TOKEN
        elif kind == "Connection":
            document["spec"]["settings"] = {"baseUrl": target.base_url}
        elif kind == "ExportPipeline":
            spec = document["spec"]
            spec.update(pipeline)
            written = {
                key.split(".")[-1]
                for key in [*spec["transformation"]["mapping"], spec["matching"]["out"]]
            }
            contact = OUT_SCHEMA["properties"][0]
            spec["outSchema"] = {
                "kind": "object",
                "properties": [
                    {
                        **contact,
                        "type": {
                            "kind": "object",
                            "properties": [
                                p for p in contact["type"]["properties"] if p["name"] in written
                            ],
                        },
                    }
                ],
            }
            sources = set(spec["transformation"]["mapping"].values())
            used = (*sources, spec["matching"]["in"])
            address = next(p for p in PROFILE_SCHEMA["properties"] if p["name"] == "address")
            country_only = {
                **address,
                "type": {"kind": "object", "properties": address["type"]["properties"][1:]},
            }
            spec["inSchema"] = {
                "kind": "object",
                "properties": [p for p in PROFILE_SCHEMA["properties"] if p["name"] in used]
                + [country_only],
            }
    path = folder / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def test_the_command_writes_the_summary_and_exits_by_outcome(
    target: Target, tmp_path: Path
) -> None:
    target.load({"p0": person(0), "p2": person(2, email=None)})
    manifests = write_manifests(target, tmp_path)
    log = tmp_path / "termination-log"
    command = [SLUICE, "export", "-f", str(manifests), "--termination-log", str(log)]

    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert log.read_text() == done.stdout.strip()
    assert summary["counts"]["created"] == 1
    assert summary["counts"]["withoutMatchingValue"] == 1
    assert summary["errorSamples"] == [
        {
            "profile": "p2",
            "externalId": None,
            "step": "Receive",
            "message": 'the matching property "email" has no value',
        }
    ]
    events = [json.loads(line)["event"] for line in done.stderr.splitlines()]
    assert events[0] == "run started" and events[-1] == "run finished"

    target.sql("DROP TABLE profiles")
    failed = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    assert json.loads(log.read_text())["outcome"] == "Failed"


def test_first_runs_starting_together_on_a_new_postgresql_warehouse_all_prepare_it(
    postgres_url: str,
) -> None:
    # Concurrent CREATE TABLE IF NOT EXISTS of one table race in PostgreSQL's catalog; local
    # mode and CronJobs start several pipelines' first runs at once.
    with temporary_database(postgres_url) as url:
        dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        start = threading.Barrier(8)
        failures: list[BaseException] = []

        def first_run() -> None:
            warehouse = open_warehouse("PostgreSQL", dsn=dsn)
            try:
                start.wait()
                warehouse.ensure_bookkeeping()
            except BaseException as err:  # reported below, with the others
                failures.append(err)
            finally:
                warehouse.close()

        runs = [threading.Thread(target=first_run) for _ in range(8)]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        assert failures == []
        warehouse = open_warehouse("PostgreSQL", dsn=dsn)
        try:
            assert warehouse.execute("SELECT version FROM sluice_schema_version") == [(2,)]
        finally:
            warehouse.close()
