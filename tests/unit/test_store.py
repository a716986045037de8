"""The store and `sluice apply`, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import io
import json
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sluice.cli import main
from sluice.installation import INSTALLED
from sluice.manifests import read_manifests
from sluice.model.ids import pipeline_id, workspace_id
from sluice.reconcile import apply, apply_set_of
from sluice.store import FinishedRun, Store
from sluice.store.schema import (
    LATEST_VERSION,
    api_keys,
    connections,
    metadata,
    pipelines,
    runs,
    schema_version,
    valid_pipelines_by_namespace,
    workspaces,
)
from sluice.store.store import POOL_SIZE
from tests.support import EXAMPLES, example_names

SEED_ID = pipeline_id("marketing", "export-customers")
#: The examples' Sluice objects in `marketing` (the `repo` fixture's), and its pipelines.
MARKETING = example_names("marketing")
PIPELINES = example_names("marketing", "ExportPipeline")
WORKSPACE_ID = re.compile(r" \(id \d+\)$")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "manifests", ignore=shutil.ignore_patterns("demo"))
    return tmp_path / "manifests"


def applied(store: Store, *paths: Path, prune: bool = False) -> dict[str, str]:
    """What applying the paths did, by kind/name."""
    results = apply(store, read_manifests(paths), INSTALLED, apply_set_of(paths), prune=prune)
    # A workspace's line ends with its id, checked on its own.
    return {
        f"{r.resource.kind}/{r.resource.name}": WORKSPACE_ID.sub("", r.line().split(" ", 1)[1])
        for r in results
    }


def served(store: Store, pipeline_id: int) -> tuple[str, dict[str, Any]] | None:
    """The pipeline's namespace and body as the API serves it, decoded."""
    found = store.pipeline(pipeline_id)
    return None if found is None else (found[0], json.loads(found[1]))


def listed(store: Store, namespace: str, **options: Any) -> tuple[list[dict[str, Any]], int]:
    items, total = store.pipelines(namespace, **options)
    return [json.loads(item) for item in items], total


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_applying_creates_then_changes_nothing(store: Store, repo: Path) -> None:
    assert set(applied(store, repo).values()) == {"created"}
    assert set(applied(store, repo).values()) == {"unchanged"}


def test_the_stored_pipeline_is_served_as_the_api_returns_it(store: Store, repo: Path) -> None:
    applied(store, repo)
    found = served(store, SEED_ID)
    assert found is not None
    namespace, body = found
    assert namespace == "marketing"
    assert list(body)[-3:] == ["running", "scheduleStart", "schedulePeriod"]
    assert (body["id"], body["name"], body["running"]) == (SEED_ID, "Export customers", False)
    assert body["transformation"] == {
        "mapping": {"contact.firstname": "first_name", "contact.lastname": "last_name"},
        "function": None,
    }


def test_running_is_placed_in_the_body_whatever_its_texts_hold(store: Store, repo: Path) -> None:
    # The served body is the stored JSON text with `running` spliced in: a description that
    # reads like the member it precedes must not be taken for it.
    edit(repo / "seed-pipeline.yaml", "description: Last Name", 'description: "scheduleStart"')
    applied(store, repo)
    found = served(store, SEED_ID)
    assert found is not None
    body = found[1]
    assert list(body)[-3:] == ["running", "scheduleStart", "schedulePeriod"]
    assert body["outSchema"]["properties"][0]["type"]["properties"][2] == {
        "name": "lastname",
        "type": {"kind": "string"},
        "nullable": True,
        "description": "scheduleStart",
    }


def test_an_invalid_edit_keeps_the_last_valid_version(store: Store, repo: Path) -> None:
    applied(store, repo)
    edit(repo / "seed-pipeline.yaml", "exportMode: CreateOnly", "exportMode: Sometimes")
    result = applied(store, repo)
    assert (
        result["ExportPipeline/export-customers"] == 'invalid: export mode "Sometimes" is not valid'
    )
    found = served(store, SEED_ID)
    assert found is not None and found[1]["exportMode"] == "CreateOnly"
    held = {s.resource.name: s for s in store.resources()}["export-customers"]
    assert held.valid and held.error is not None
    assert held.error["message"] == 'export mode "Sometimes" is not valid'
    # Fixed again: the error goes, the (unchanged) valid version stays.
    edit(repo / "seed-pipeline.yaml", "exportMode: Sometimes", "exportMode: CreateOnly")
    assert applied(store, repo)["ExportPipeline/export-customers"] == "configured"
    held = {s.resource.name: s for s in store.resources()}["export-customers"]
    assert held.error is None


def test_a_valid_edit_replaces_the_version_and_bumps_the_generation(
    store: Store, repo: Path
) -> None:
    applied(store, repo)
    edit(repo / "seed-pipeline.yaml", "exportMode: CreateOnly", "exportMode: CreateOrUpdate")
    assert applied(store, repo)["ExportPipeline/export-customers"] == "configured"
    found = served(store, SEED_ID)
    assert found is not None and found[1]["exportMode"] == "CreateOrUpdate"
    with store.engine.connect() as connection:
        generation = connection.execute(
            sa.text("SELECT generation FROM pipelines WHERE id = :id"), {"id": SEED_ID}
        ).scalar()
    assert generation == 2


def test_a_pipeline_applied_alone_finds_its_workspace_in_the_store(
    store: Store, repo: Path
) -> None:
    assert applied(store, repo / "workspace.yaml", repo / "hubspot-connection.yaml") == {
        "Workspace/marketing": "created",
        "Connection/hubspot": "created",
    }
    assert applied(store, repo / "seed-pipeline.yaml") == {
        "ExportPipeline/export-customers": "created"
    }


def test_a_workspace_edit_revalidates_the_stored_pipelines(store: Store, repo: Path) -> None:
    applied(store, repo)
    edit(repo / "workspace.yaml", "type: {kind: string, maxLength: 254}", "type: {kind: string}")
    result = applied(store, repo / "workspace.yaml")
    assert result["Workspace/marketing"] == "configured"
    # Every pipeline uses email with maxLength 254: all are now refused, and say so.
    for name in PIPELINES:
        assert result[f"ExportPipeline/{name}"].startswith(
            'invalid: in the input schema, "email" property has a maximum length of 254'
        )
    found = served(store, SEED_ID)
    assert found is not None  # the last valid version still stands


def test_prune_removes_what_the_manifests_no_longer_hold(store: Store, repo: Path) -> None:
    applied(store, repo)
    (repo / "european-customers-pipeline.yaml").unlink()
    (repo / "expressions-pipeline.yaml").unlink()
    removed = {"export-loyal-customers", "sync-european-customers"}
    assert applied(store, repo, prune=True) == {
        "Workspace/marketing": "unchanged",
        **{f"Connection/{name}": "unchanged" for name in example_names("marketing", "Connection")},
        **{
            f"ExportPipeline/{name}": "pruned" if name in removed else "unchanged"
            for name in PIPELINES
        },
    }
    assert {s.resource.name for s in store.resources()} == set(MARKETING) - removed


def test_prune_keeps_what_other_paths_applied_and_its_run_history(
    store: Store, repo: Path, tmp_path: Path
) -> None:
    applied(store, repo)
    run = store.start_run(SEED_ID, "export-customers-1", datetime(2026, 11, 26, tzinfo=UTC))
    demo = tmp_path / "demo"
    shutil.copytree(EXAMPLES / "demo", demo)
    assert set(applied(store, demo, prune=True).values()) == {"created"}
    kept = sorted(s.resource.name for s in store.resources() if s.resource.namespace != "demo")
    assert kept == MARKETING
    runs, total = store.runs(SEED_ID)
    assert total == 1 and runs[0]["id"] == run


def test_an_object_belongs_to_the_paths_that_applied_it_last(
    store: Store, repo: Path, tmp_path: Path
) -> None:
    applied(store, repo)
    seed = tmp_path / "seed.yaml"
    shutil.move(repo / "seed-pipeline.yaml", seed)
    assert applied(store, seed) == {"ExportPipeline/export-customers": "unchanged"}
    # The folder no longer holds the seed pipeline, but the folder is not what applied it last.
    assert set(applied(store, repo, prune=True).values()) == {"unchanged"}
    assert SEED_ID in store.pipeline_ids().values()
    # The file that did prunes it once it no longer holds it.
    shutil.copy(repo / "expressions-pipeline.yaml", seed)
    assert applied(store, seed, prune=True) == {
        "ExportPipeline/export-loyal-customers": "unchanged",
        "ExportPipeline/export-customers": "pruned",
    }


def test_listing_pages_and_filters(store: Store, repo: Path) -> None:
    applied(store, repo)
    items, total = listed(store, "marketing")
    assert total == len(PIPELINES) and [i["id"] for i in items] == sorted(i["id"] for i in items)
    page, total = listed(store, "marketing", first=1, limit=1)
    assert total == len(PIPELINES) and page == items[1:2]
    enabled, total = listed(store, "marketing", enabled=False)
    assert total == 1 and enabled[0]["name"] == "Export loyal customers"
    assert listed(store, "marketing", connection_id=1) == ([], 0)
    assert listed(store, "sales") == ([], 0)


def test_runs_newest_first_and_running_while_one_is_live(store: Store, repo: Path) -> None:
    applied(store, repo)
    start = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    first = store.start_run(SEED_ID, "export-customers-1", start)
    store.finish_run(
        first,
        FinishedRun(start + timedelta(minutes=1), "Succeeded", {"read": 10, "created": 10}),
    )
    second = store.start_run(SEED_ID, "export-customers-2", start + timedelta(hours=1))
    found = served(store, SEED_ID)
    assert found is not None and found[1]["running"] is True
    runs, total = store.runs(SEED_ID)
    assert total == 2 and [r["id"] for r in runs] == [second, first]
    assert store.latest_runs() == {SEED_ID: runs[0]}
    assert runs[1] == {
        "id": first,
        "pipeline": SEED_ID,
        "jobName": "export-customers-1",
        "startTime": "2026-11-26T10:00:00Z",
        "endTime": "2026-11-26T10:01:00Z",
        "outcome": "Succeeded",
        "counts": {"read": 10, "created": 10},
        "error": None,
        "errorSamples": [],
    }
    store.finish_run(second, FinishedRun(start + timedelta(hours=2), "Failed", {}))
    found = served(store, SEED_ID)
    assert found is not None and found[1]["running"] is False


def test_a_job_seen_many_times_is_one_run_finished_once(store: Store, repo: Path) -> None:
    applied(store, repo)
    start = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    finished = FinishedRun(start + timedelta(minutes=2), "PartiallyFailed", {"read": 5}, "1 failed")
    run, newly_finished = store.record_job_run(SEED_ID, "export-customers-7", start)
    assert not newly_finished
    assert store.record_job_run(SEED_ID, "export-customers-7", start) == (run, False)
    assert store.record_job_run(SEED_ID, "export-customers-7", start, finished) == (run, True)
    assert store.record_job_run(SEED_ID, "export-customers-7", start, finished) == (run, False)
    runs, total = store.runs(SEED_ID)
    assert total == 1
    assert (runs[0]["outcome"], runs[0]["error"], runs[0]["endTime"]) == (
        "PartiallyFailed",
        "1 failed",
        "2026-11-26T10:02:00Z",
    )


def test_migrations_run_once_and_refuse_a_newer_store(store_url: str) -> None:
    Store(store_url).close()
    store = Store(store_url)  # a second start finds the tables in place
    with store.engine.begin() as connection:
        assert connection.execute(sa.select(schema_version.c.version)).scalar() == LATEST_VERSION
        connection.execute(schema_version.update().values(version=LATEST_VERSION + 1))
    store.close()
    with pytest.raises(RuntimeError, match="newer than this Sluice"):
        Store(store_url)


def test_a_version_1_store_gets_the_index_of_valid_pipelines(store_url: str) -> None:
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:
        schema_version.create(connection)
        connection.execute(schema_version.insert().values(version=1))
        metadata.create_all(connection, tables=[workspaces, api_keys, connections, pipelines, runs])
        # As version 1 left them: every pipeline indexed by namespace.
        valid_pipelines_by_namespace.drop(connection)
        connection.execute(
            sa.text("CREATE INDEX pipelines_by_namespace ON pipelines (namespace, id)")
        )
    Store(store_url).close()
    indexes = {index["name"] for index in sa.inspect(engine).get_indexes("pipelines")}
    engine.dispose()
    assert "pipelines_valid_by_namespace" in indexes
    assert "pipelines_by_namespace" not in indexes


def test_a_version_2_store_keeps_its_rows_which_no_paths_prune(store_url: str, repo: Path) -> None:
    store = Store(store_url)
    applied(store, repo)
    store.start_run(SEED_ID, "export-customers-1", datetime(2026, 11, 26, tzinfo=UTC))
    store.close()
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:  # as version 2 left it: no source recorded
        for table in (workspaces, connections, pipelines):
            connection.execute(sa.text(f"ALTER TABLE {table.name} DROP COLUMN apply_set"))
        connection.execute(schema_version.update().values(version=2))
    engine.dispose()
    store = Store(store_url)
    try:
        assert len(store.resources()) == len(MARKETING) and store.runs(SEED_ID)[1] == 1
        (repo / "european-customers-pipeline.yaml").unlink()
        assert set(applied(store, repo, prune=True).values()) == {"unchanged"}
        assert len(store.resources()) == len(MARKETING)
    finally:
        store.close()


def test_sluice_apply_prints_kubectl_lines_and_exits_1_on_invalid(
    store_url: str, repo: Path
) -> None:
    out = io.StringIO()
    assert main(["apply", "-f", str(repo / "workspace.yaml"), "--store", store_url], out) == 0
    workspace = workspace_id("marketing")
    assert out.getvalue() == f"workspace.sluice.dev/marketing/marketing created (id {workspace})\n"
    edit(repo / "seed-pipeline.yaml", "name: Export customers", 'name: ""')
    out = io.StringIO()
    code = main(
        [
            "apply",
            "-f",
            str(repo / "seed-pipeline.yaml"),
            "-f",
            str(repo / "hubspot-connection.yaml"),
            "--store",
            store_url,
        ],
        out,
    )
    assert code == 1
    # In the order the files were given, as kubectl does.
    assert out.getvalue().splitlines() == [
        "exportpipeline.sluice.dev/marketing/export-customers invalid: name is empty",
        "connection.sluice.dev/marketing/hubspot created",
    ]


def test_unreadable_manifests_apply_nothing(store_url: str, repo: Path) -> None:
    (repo / "broken.yaml").write_text("apiVersion: sluice.dev/v1\nkind: [\n")
    out = io.StringIO()
    assert main(["apply", "-f", str(repo), "--store", store_url, "--prune"], out) == 1
    assert "malformed YAML" in out.getvalue()
    store = Store(store_url)
    assert store.resources() == []
    store.close()


def test_an_emptied_file_prunes_nothing(
    store_url: str, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = repo / "seed-pipeline.yaml"
    assert main(["apply", "-f", str(repo), "--store", store_url], io.StringIO()) == 0
    assert main(["apply", "-f", str(pipeline), "--store", store_url, "--prune"], io.StringIO()) == 0
    store = Store(store_url)
    try:
        store.start_run(SEED_ID, "export-customers-1", datetime(2026, 11, 26, tzinfo=UTC))
        pipeline.write_text("")  # truncated, as by a save that failed half way
        out = io.StringIO()
        code = main(["apply", "-f", str(pipeline), "--store", store_url, "--prune"], out)
        assert (code, out.getvalue(), capsys.readouterr().err) == (
            1,
            "",
            "error: no Sluice object in the input: nothing pruned\n",
        )
        assert len(store.resources()) == len(MARKETING) and store.runs(SEED_ID)[1] == 1
    finally:
        store.close()


def test_workspace_api_keys_are_stored_as_digests(store: Store, repo: Path) -> None:
    applied(store, repo)
    workspace = (workspace_id("marketing"), "marketing")
    assert store.workspace_for_key("api_marketing_dashboard_change_me") == workspace
    assert store.workspace_for_key("api_unknown") is None
    assert store.workspace_namespace(workspace[0]) == "marketing"
    with store.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT digest FROM api_keys")).scalars().all()
    assert stored and "api_marketing_dashboard_change_me" not in stored
    # A Secret that is not among the manifests leaves the stored keys as they are...
    applied(store, repo / "workspace.yaml")
    edit(
        repo / "workspace.yaml", "api_marketing_dashboard_change_me", "api_rotated\n    api_second"
    )
    applied(store, repo / "workspace.yaml")
    assert store.workspace_for_key("api_marketing_dashboard_change_me") is None
    assert store.workspace_for_key("api_rotated") == workspace
    assert store.workspace_for_key("api_second") == workspace
    # ... and a workspace without a key Secret has no keys.
    edit(
        repo / "workspace.yaml",
        "  apiKeysSecretRef:\n    name: sluice-api-keys\n    key: apiKeys\n",
        "",
    )
    applied(store, repo / "workspace.yaml")
    assert store.workspace_for_key("api_rotated") is None


def test_a_key_listed_by_two_workspaces_opens_the_first_only(store: Store, repo: Path) -> None:
    applied(store, repo)
    sales = repo / "sales.yaml"
    sales.write_text((repo / "workspace.yaml").read_text().replace("marketing", "sales"))
    assert applied(store, sales)["Workspace/sales"] == "created"
    marketing = (workspace_id("marketing"), "marketing")
    assert store.workspace_for_key("api_marketing_dashboard_change_me") == marketing


def test_a_missing_api_keys_secret_key_is_reported(store: Store, repo: Path) -> None:
    edit(repo / "workspace.yaml", "    key: apiKeys\n", "    key: keys\n")
    result = applied(store, repo / "workspace.yaml")
    assert result["Workspace/marketing"] == 'invalid: Secret "sluice-api-keys" has no key "keys"'


def test_as_many_readers_as_the_pool_holds_open_no_new_connection(store: Store) -> None:
    """The API reads the store from POOL_SIZE threads at once: once each holds a connection,
    the next rounds open none (a connection opened past the pool would be closed after its
    request, and opened again by the next)."""
    opened: list[object] = []
    sa.event.listen(store.engine, "connect", lambda connection, _record: opened.append(connection))
    together = threading.Barrier(POOL_SIZE)

    def read(rounds: int) -> None:
        for _ in range(rounds):
            with store.engine.connect() as connection:
                connection.execute(sa.select(1))
                together.wait(timeout=10)  # every thread holds a connection at once

    for rounds in (1, 3):
        before = len(opened)
        with ThreadPoolExecutor(POOL_SIZE) as threads:
            list(threads.map(read, [rounds] * POOL_SIZE))
        if rounds == 1:
            assert len(opened) <= POOL_SIZE
        else:
            assert len(opened) == before, "a reader opened a connection the pool should hold"
