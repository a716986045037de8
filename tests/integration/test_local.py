"""``sluice local``: manifests applied and watched, the API served, pipelines run as child
``sluice export`` processes, on DuckDB and PostgreSQL, against the HubSpot twin."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import signal
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from sluice.cli import main
from sluice.demo.profiles import demo_profiles, load_demo_profiles
from sluice.local.mode import LocalMode
from sluice.store import Store
from tests.integration.conftest import TOKEN, Target
from tests.integration.test_export import WRITES, people, person, requests_to
from tests.integration.test_export_faults import SLUICE, write_manifests
from tests.operator_process import eventually
from tests.support import EXAMPLES

API_KEY = "api_marketing_dashboard_change_me"  # the examples' Workspace key
NAMESPACE, PIPELINE = "marketing", "export-customers"


class Local:
    """A ``sluice local`` child, its console lines collected as they come."""

    def __init__(self, arguments: list[str]) -> None:
        self.process = subprocess.Popen(
            [SLUICE, "local", *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, fragment: str) -> bool:
        return any(fragment in line for line in self.lines)

    def wait(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def local_setup(target: Target, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """Manifests for this warehouse and twin, and the store/state arguments of local mode."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    write_manifests(target, manifests)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    yield manifests, ["--store", store, "--state", str(tmp_path / "state")]


def store_url(arguments: list[str]) -> str:
    """The store local mode is given in ``arguments``."""
    return arguments[arguments.index("--store") + 1]


def pipeline_runs(arguments: list[str]) -> list[dict[str, object]]:
    store = Store(store_url(arguments))
    try:
        runs, _ = store.runs(store.pipeline_ids()[NAMESPACE, PIPELINE])
        return runs
    finally:
        store.close()


def pipeline_body(arguments: list[str]) -> dict[str, object]:
    """The pipeline as ``GET /v1/pipelines/{id}`` serves it."""
    store = Store(store_url(arguments))
    try:
        found = store.pipeline(store.pipeline_ids()[NAMESPACE, PIPELINE])
        assert found is not None
        body: dict[str, object] = json.loads(found[1])
        return body
    finally:
        store.close()


def test_once_runs_each_pipeline_and_records_the_run(
    target: Target, local_setup: tuple[Path, list[str]]
) -> None:
    manifests, arguments = local_setup
    target.load(people(200))

    first = Local([str(manifests), "--once", *arguments])
    assert first.wait() == 0, first.output
    assert first.said(f"exportpipeline.sluice.dev/{NAMESPACE}/{PIPELINE} created")
    assert first.said(f"{NAMESPACE}/{PIPELINE}: Succeeded in")
    assert first.said("100 created")
    assert target.twin.contact_count() == 100
    (run,) = pipeline_runs(arguments)
    assert run["outcome"] == "Succeeded" and run["counts"]["created"] == 100  # type: ignore[index]

    writes = requests_to(target, WRITES)
    second = Local([str(manifests), "--once", *arguments])
    assert second.wait() == 0, second.output
    assert second.said("100 unchanged")
    assert requests_to(target, WRITES) == writes  # nothing sent
    assert target.twin.contact_count() == 100
    latest, earlier = pipeline_runs(arguments)
    assert latest["outcome"] == earlier["outcome"] == "Succeeded"
    assert latest["counts"]["created"] == 0  # type: ignore[index]


def demo_manifests(target: Target, folder: Path) -> Path:
    """``examples/demo/`` pointed at this warehouse and twin, nothing else changed."""
    documents = []
    for file in sorted((EXAMPLES / "demo").glob("*.yaml")):
        documents.extend(yaml.safe_load_all(file.read_text()))
    for document in documents:
        if document["kind"] == "Workspace":
            warehouse = document["spec"]["warehouse"]
            warehouse["type"] = target.kind
            if target.kind == "DuckDB":
                warehouse["path"] = target.location
            else:
                del warehouse["path"]
                warehouse["dsnSecretRef"] = {"name": "warehouse", "key": "dsn"}
                documents.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "warehouse", "namespace": "demo"},
                        "stringData": {"dsn": target.location},
                    }
                )
        elif document["kind"] == "Connection":
            document["spec"]["settings"] = {"baseUrl": target.base_url}
        elif document["kind"] == "Secret" and document["metadata"]["name"] == "hubspot-credentials":
            document["stringData"]["accessToken"] = TOKEN
    path = folder / "demo.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def test_once_on_the_demo_manifests_and_profiles(target: Target, tmp_path: Path) -> None:
    warehouse = target.open()
    try:
        load_demo_profiles(warehouse, 3000)
    finally:
        warehouse.close()
    in_us = [p for _, p in demo_profiles(3000) if p["address"]["country"] == "US"]
    emails = Counter(p["email"] for p in in_us if "email" in p)
    unique = sorted(email for email, times in emails.items() if times == 1)
    shared = sum(times for times in emails.values() if times > 1)
    assert shared > 0  # the demo's duplicates are among the US profiles
    manifests = demo_manifests(target, tmp_path)
    arguments = ["--store", f"sqlite:///{tmp_path / 'store.db'}", "--state", str(tmp_path / "s")]

    local = Local([str(manifests), "--once", *arguments])

    assert local.wait() == 2, local.output  # partially failed: the shared emails
    expected = (
        "demo/export-customers: PartiallyFailed in",
        f"{len(in_us):,} selected",
        f"{len(in_us) - sum(emails.values()):,} withoutMatchingValue",
        f"{shared:,} duplicated",
        f"{len(unique):,} created",
    )
    assert all(local.said(fragment) for fragment in expected), local.output
    assert sorted(target.contacts()) == unique


REGIONS = {"DE": "Europe", "ES": "Europe", "FR": "Europe", "GB": "Europe", "IT": "Europe",
           "NL": "Europe", "CA": "Americas", "US": "Americas"}  # fmt: skip


def test_once_runs_the_function_examples(target: Target, tmp_path: Path) -> None:
    """The examples' Python and JavaScript pipelines, in the demo's namespace, on its profiles:
    local mode runs them in their sandboxed workers as an export pod does."""
    warehouse = target.open()
    try:
        load_demo_profiles(warehouse, 600)
    finally:
        warehouse.close()
    folder = tmp_path / "manifests"
    folder.mkdir()
    demo_manifests(target, folder)
    for name in ("python-function-pipeline.yaml", "javascript-function-pipeline.yaml"):
        text = (EXAMPLES / name).read_text().replace("namespace: marketing", "namespace: demo")
        (folder / name).write_text(text)
    profiles = [p for _, p in demo_profiles(600)]
    emails = Counter(p["email"] for p in profiles if "email" in p)
    unique = {p["email"]: p for p in profiles if emails.get(p.get("email")) == 1}
    arguments = ["--store", f"sqlite:///{tmp_path / 'store.db'}", "--state", str(tmp_path / "s")]

    local = Local([str(folder), "--once", *arguments])

    assert local.wait() == 2, local.output  # partially failed: the shared emails
    for pipeline in ("stage-customers", "region-customers"):
        assert local.said(f"demo/{pipeline}: PartiallyFailed in"), local.output
    assert "transformationFailed" not in local.output
    contacts = {email: c["properties"] for email, c in target.contacts().items()}
    assert sorted(contacts) == sorted(unique)
    for email, profile in unique.items():
        country = profile.get("address", {}).get("country")
        if country in REGIONS:
            assert contacts[email]["country"] == f"{country} ({REGIONS[country]})"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("target", ["DuckDB"], indirect=True)
def test_edits_are_applied_while_running_and_invalid_ones_keep_the_last_valid_version(
    target: Target, local_setup: tuple[Path, list[str]]
) -> None:
    manifests, arguments = local_setup
    listen = f"127.0.0.1:{free_port()}"
    local = Local([str(manifests), "--listen", listen, *arguments])
    api = httpx.Client(
        base_url=f"http://{listen}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )
    try:

        def names() -> list[str]:
            try:
                response = api.get("/v1/pipelines")
            except httpx.TransportError:
                return []
            return [p["name"] for p in response.json().get("pipelines", [])]

        assert eventually(lambda: names() == ["Export customers"], "the API", timeout=30)
        file = manifests / "manifests.yaml"
        file.write_text(file.read_text().replace("name: Export customers", "name: Export US"))
        eventually(lambda: names() == ["Export US"], "the edit applied", timeout=5)
        assert local.said(f"exportpipeline.sluice.dev/{NAMESPACE}/{PIPELINE} configured")

        file.write_text(file.read_text().replace("exportMode: CreateOnly", "exportMode: Never"))
        eventually(lambda: local.said("the last valid version keeps running"), "the report", 5)
        assert local.said('invalid: export mode "Never" is not valid')
        assert names() == ["Export US"]

        local.process.send_signal(signal.SIGINT)
        assert local.wait(timeout=60) == 0, local.output
    finally:
        api.close()
        if local.process.poll() is None:
            local.process.kill()
            local.wait()


@pytest.mark.parametrize("target", ["DuckDB"], indirect=True)
def test_ctrl_c_during_a_run_leaves_no_partial_state(
    target: Target, local_setup: tuple[Path, list[str]]
) -> None:
    manifests, arguments = local_setup
    target.load(people(20_000))
    target.twin.set_latency(0.3)
    local = Local([str(manifests), "--once", *arguments])
    try:
        eventually(lambda: target.twin.contact_count() >= 100, "100 contacts", timeout=60)
        assert pipeline_body(arguments)["running"] is True
        local.process.send_signal(signal.SIGINT)
        assert local.wait(timeout=60) == 1, local.output
    finally:
        if local.process.poll() is None:
            local.process.kill()
            local.wait()
    assert pipeline_body(arguments)["running"] is False
    written = target.twin.contact_count()
    assert written < 10_000
    (run,) = pipeline_runs(arguments)
    assert run["outcome"] == "Failed"
    assert str(run["error"]).startswith("stopped by SIGTERM before the end")
    ((recorded,),) = target.sql("SELECT COUNT(*) FROM sluice_exported_profiles")
    assert recorded == written == run["counts"]["created"]  # type: ignore[index]
    target.twin.set_latency(0)

    rerun = Local([str(manifests), "--once", *arguments])
    assert rerun.wait() == 0, rerun.output
    assert sorted(target.contacts()) == sorted(f"user{i}@example.com" for i in range(0, 20_000, 2))


@pytest.mark.parametrize("target", ["DuckDB"], indirect=True)
def test_runs_follow_the_cronjob_schedule_and_never_overlap(
    target: Target, local_setup: tuple[Path, list[str]], tmp_path: Path
) -> None:
    manifests, arguments = local_setup
    target.load(people(2000))
    target.twin.set_latency(0.5)  # the run is still going when the next one is due
    store = Store(store_url(arguments))
    lines: list[str] = []
    mode = LocalMode([str(manifests)], store, tmp_path / "runs", lines.append)
    day = datetime(2026, 11, 26, tzinfo=UTC)

    async def scheduled() -> None:
        mode.refresh()
        mode.schedule(day + timedelta(hours=10))  # the seed runs hourly at minute 15
        assert not mode.running()
        mode.schedule(day + timedelta(hours=10, minutes=14, seconds=59))
        assert not mode.running()
        mode.schedule(day + timedelta(hours=10, minutes=15))
        assert mode.running()
        mode.schedule(day + timedelta(hours=11, minutes=15))  # due again, still running
        await mode.finish_runs()

    try:
        asyncio.run(scheduled())
        runs, total = store.runs(store.pipeline_ids()[NAMESPACE, PIPELINE])
    finally:
        store.close()
    assert total == 1 and runs[0]["outcome"] == "Succeeded"
    assert any("still running; the run due at 11:15 UTC skipped" in line for line in lines)
    assert target.twin.contact_count() == 1000


@pytest.mark.parametrize("target", ["DuckDB"], indirect=True)
def test_local_mode_prunes_nothing_other_paths_applied_nor_their_run_history(
    target: Target, local_setup: tuple[Path, list[str]]
) -> None:
    """``sluice local examples/demo`` after ``sluice apply -f examples/``, on one store."""
    manifests, arguments = local_setup
    demo = manifests / "demo"
    demo.mkdir()
    demo_manifests(target, demo)
    apply = ["apply", "-f", str(manifests), "--store", store_url(arguments)]
    assert main(apply, io.StringIO()) == 0
    store = Store(store_url(arguments))
    try:
        pipeline_id = store.pipeline_ids()[NAMESPACE, PIPELINE]
        store.start_run(pipeline_id, "export-customers-1", datetime.now(UTC))
    finally:
        store.close()
    warehouse = target.open()
    try:
        load_demo_profiles(warehouse, 300)
    finally:
        warehouse.close()

    local = Local([str(demo), "--once", *arguments])

    assert local.wait() == 0, local.output
    assert local.said("demo/export-customers: Succeeded in")
    assert not local.said("pruned"), local.output
    assert pipeline_body(arguments)["name"] == "Export customers"
    assert len(pipeline_runs(arguments)) == 1


@pytest.mark.parametrize("target", ["DuckDB"], indirect=True)
def test_an_emptied_or_half_saved_file_deletes_nothing_that_runs(
    target: Target, local_setup: tuple[Path, list[str]], tmp_path: Path
) -> None:
    manifests, arguments = local_setup
    file = manifests / "manifests.yaml"
    text = file.read_text()
    store = Store(store_url(arguments))
    lines: list[str] = []
    mode = LocalMode([str(manifests)], store, tmp_path / "runs", lines.append)

    def look_twice() -> None:
        """Local mode's next two looks: a change is applied once it held still for one."""
        mode.refresh()
        mode.refresh()

    try:
        mode.refresh()
        pipeline_id = store.pipeline_ids()[NAMESPACE, PIPELINE]
        store.start_run(pipeline_id, "local-1", datetime.now(UTC))
        lines.clear()
        # An editor's save seen half done: the file empty at one look, written at the next.
        file.write_text("")
        mode.refresh()
        file.write_text(text)
        look_twice()
        assert lines == []
        # Emptied for good: an input without any Sluice object prunes nothing.
        file.write_text("")
        look_twice()
        assert lines == [
            "no Sluice object in the input: nothing pruned; what was applied before keeps running"
        ]
        assert pipeline_id in mode.setups and store.runs(pipeline_id)[1] == 1
        # The same folder without the pipeline still prunes it, and its run history.
        kept = [d for d in yaml.safe_load_all(text) if d["kind"] != "ExportPipeline"]
        file.write_text(yaml.safe_dump_all(kept, sort_keys=False))
        look_twice()
        assert lines[-1] == f"exportpipeline.sluice.dev/{NAMESPACE}/{PIPELINE} pruned"
        assert mode.setups == {} and store.pipeline_ids() == {}
        assert store.runs(pipeline_id)[1] == 0
    finally:
        store.close()


@pytest.mark.parametrize("target", ["DuckDB"], indirect=True)
def test_pipelines_on_one_duckdb_file_take_turns(
    target: Target, local_setup: tuple[Path, list[str]]
) -> None:
    manifests, arguments = local_setup
    countries = ("US", "GB", "FR")
    target.load(
        {
            f"p{i:05d}": person(i, address={"city": f"City{i}", "country": countries[i % 3]})
            for i in range(300)
        }
    )
    file = manifests / "manifests.yaml"
    documents = list(yaml.safe_load_all(file.read_text()))
    seed = next(d for d in documents if d["kind"] == "ExportPipeline")
    documents.remove(seed)
    for country in countries:
        pipeline = copy.deepcopy(seed)
        pipeline["metadata"]["name"] = f"export-{country.lower()}"
        pipeline["spec"]["name"] = f"Export {country}"
        pipeline["spec"]["filter"]["conditions"][0]["values"] = [country]
        documents.append(pipeline)
    file.write_text(yaml.safe_dump_all(documents, sort_keys=False))

    local = Local([str(manifests), "--once", *arguments])

    assert local.wait() == 0, local.output
    for country in countries:
        assert local.said(f"{NAMESPACE}/export-{country.lower()}: Succeeded in"), local.output
    assert local.said(f"waiting for its turn on the DuckDB warehouse {target.location}")
    assert target.twin.contact_count() == 300
