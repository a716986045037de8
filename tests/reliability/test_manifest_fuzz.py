"""Mutated manifests through ``sluice validate``, ``sluice apply`` and a running ``sluice local``:
arbitrary values at any depth of the examples' Workspace, Connection or seed pipeline. None of
them ever crashes (the commands exit with 0 or 1, local mode keeps running until SIGTERM ends it
with 0, no traceback), and a pipeline whose new version is refused keeps serving its last valid
version, byte for byte. Local mode is fuzzed as a process, through its folder and its HTTP API,
with files that are not whole manifests among the mutations. The operator is fuzzed on a real
control plane by tests/e2e/test_operator_fuzz.py, validation alone by
tests/unit/test_robustness.py."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sluice.cli import main
from sluice.installation import INSTALLED
from sluice.manifests import read_manifests
from sluice.model.ids import pipeline_id, workspace_id
from sluice.model.pipeline import Pipeline, pipeline_to_api
from sluice.model.resources import validate_resources
from sluice.reconcile import apply, apply_set_of
from sluice.store import Store
from tests.integration.test_local import Local
from tests.operator_process import eventually
from tests.reliability.soak import FACTOR
from tests.support import EXAMPLES, free_port
from tests.unit.test_robustness import mutated

FILES = ("workspace.yaml", "hubspot-connection.yaml", "seed-pipeline.yaml")
KINDS = ("Workspace", "Connection", "ExportPipeline")


def example_documents() -> list[dict[str, Any]]:
    return [d for name in FILES for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def mutations(
    documents: list[dict[str, Any]], count: int, kinds: Sequence[str] = KINDS
) -> list[list[dict[str, Any]]]:
    """Copies of ``documents``, each with the spec of one of them (of one of ``kinds``) given
    arbitrary values at any depth: up to ``count`` distinct copies (Hypothesis draws some more
    than once), the same on every run, for a test that feeds them to a process one by one."""
    versions: dict[str, list[dict[str, Any]]] = {}

    @settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data(), st.sampled_from(kinds))
    def draw(data: st.DataObject, kind: str) -> None:
        version = copy.deepcopy(documents)
        document = next(d for d in version if d["kind"] == kind)
        document["spec"] = mutated(document["spec"], data)
        versions.setdefault(json.dumps(version, sort_keys=True), version)

    draw()
    return list(versions.values())


def renamed(documents: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """A copy of the documents with the seed pipeline named ``name``, unless a mutation gave it
    a name of its own: each version taken then changes what is served, and is reported."""
    copied = copy.deepcopy(documents)
    seed = next(d for d in copied if d["kind"] == "ExportPipeline")
    if seed["spec"].get("name") == "Export customers":
        seed["spec"]["name"] = name
    return copied


def quietly(argv: list[str]) -> tuple[int, str]:
    """``sluice ARGV`` in process: its exit code and everything it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = main(argv)
    return code, printed.getvalue()


def served_bodies(store: Store) -> dict[int, str | None]:
    """Every pipeline's body as the API serves it."""
    return {
        pipeline_id: (found[1] if (found := store.pipeline(pipeline_id)) else None)
        for pipeline_id in store.pipeline_ids().values()
    }


def test_mutated_manifests_never_crash_and_never_replace_a_valid_version(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    apply_set = apply_set_of([folder])

    def save(documents: list[dict[str, Any]]) -> list[Any]:
        (folder / "namespace.yaml").write_text(yaml.safe_dump_all(documents), encoding="utf-8")
        return apply(store, read_manifests([folder]), INSTALLED, apply_set)

    assert not [a.error for a in save(example_documents()) if a.error]
    tried: list[bool] = []

    @settings(
        max_examples=150 * FACTOR,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.data(), st.sampled_from(KINDS))
    def check(data: st.DataObject, kind: str) -> None:
        documents = example_documents()
        document = next(d for d in documents if d["kind"] == kind)
        document["spec"] = mutated(document["spec"], data)
        before = served_bodies(store)

        (folder / "namespace.yaml").write_text(yaml.safe_dump_all(documents), encoding="utf-8")
        code, printed = quietly(["validate", str(folder)])
        assert code in (0, 1) and "Traceback" not in printed, printed
        applied = save(documents)

        after = served_bodies(store)
        refused = [a for a in applied if a.error is not None]
        tried.append(bool(refused))
        for item in refused:
            if item.resource.kind == "ExportPipeline":
                pipeline_id = store.pipeline_ids()[item.resource.namespace, item.resource.name]
                assert after[pipeline_id] == before[pipeline_id], item.error
        if any(a.resource.kind != "ExportPipeline" for a in refused):
            # A refused Workspace or Connection changes no pipeline's served version.
            assert after == before
        # Back to the examples, for the next mutation to start from.
        assert not [a.error for a in save(example_documents()) if a.error]

    check()
    store.close()
    assert sum(tried) >= 100, f"only {sum(tried)} of {len(tried)} mutations were refused"


# -- local mode, as a process ---------------------------------------------------------------

NAMESPACE, PIPELINE = "marketing", "export-customers"
SUBJECT = f"exportpipeline.sluice.dev/{NAMESPACE}/{PIPELINE}"
URL = f"/v1/pipelines/{pipeline_id(NAMESPACE, PIPELINE)}"
KEPT = "what was applied before keeps running"
LOCAL_MUTATIONS = 30 * FACTOR
#: Local mode looks four times a second and applies a file once it held still for one look.
REPORT_SECONDS = 10.0
#: An admin key reads the examples' workspace whatever its own keys become: a valid mutation
#: of the Workspace may take them away (`apiKeysSecretRef: null`).
ADMIN_KEY = "api_manifest_fuzz_admin"
#: A warehouse nothing answers for: a run that falls due fails at once, before any request.
CLOSED_DSN = "postgresql://sluice@127.0.0.1:1/analytics"


def far_schedule(now: datetime) -> dict[str, Any]:
    """A pipeline's schedule that falls due 12 hours from ``now``: no run during a test (but
    for a mutated schedule)."""
    far = now + timedelta(hours=12)
    return {"schedulePeriod": "24h", "scheduleStart": far.hour * 60 + far.minute}


def quiet_examples(now: datetime) -> list[dict[str, Any]]:
    """The examples as local mode may run them here: the seed pipeline on a far schedule and
    a warehouse at a closed loopback port."""
    documents = example_documents()
    for document in documents:
        if document["kind"] == "Secret" and document["metadata"]["name"] == "warehouse":
            document["stringData"]["dsn"] = CLOSED_DSN
        elif document["kind"] == "ExportPipeline":
            document["spec"] |= far_schedule(now)
    return documents


def as_file(documents: list[dict[str, Any]]) -> bytes:
    """The documents as one manifest file."""
    return yaml.safe_dump_all(documents, sort_keys=False).encode()


def broken_files(valid: bytes) -> list[bytes]:
    """Files made from a valid file that are not whole manifests."""
    pipeline = valid.index(b"kind: ExportPipeline")
    return [
        b"\x89PNG\r\n\x1a\n\x00\xff",  # not text
        b"kind: [ExportPipeline\nspec: {name: ",  # not YAML
        valid[: valid.index(b"exportMode", pipeline) + 4],  # cut in the middle of a key
        valid[: valid.index(b"maxLength: 100", pipeline) + 12],  # cut in a value
        valid.replace(b"kind: ExportPipeline", b"kind: Pipeline"),  # not a Sluice kind
        as_file([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}]),
    ]


def expected_report(folder: Path) -> tuple[str, Pipeline | None]:
    """How local mode must report the manifests in ``folder``: the line about the seed
    pipeline (or about applying nothing), and the pipeline it then serves if it takes a new
    version (None: it keeps serving what it served)."""
    manifests = read_manifests([folder])
    if manifests.problems:
        return f"nothing applied: fix the manifests; {KEPT}", None
    if not manifests.objects:
        return f"no Sluice object in the input: nothing pruned; {KEPT}", None
    outcomes = validate_resources(manifests.resources, INSTALLED, secrets=manifests.secrets)
    seed = next(o for o in outcomes if o.resource.name == PIPELINE)
    if seed.error is not None:
        return f"{SUBJECT} invalid: {seed.error}; the last valid version keeps running", None
    assert isinstance(seed.value, Pipeline)
    return f"{SUBJECT} configured", seed.value


def report_after(local: Local, seen: int) -> str | None:
    """The first report of the seed pipeline or of applying nothing among the lines local
    mode printed after its first ``seen``; None while there is none."""
    assert local.process.poll() is None, f"local mode exited:\n{local.output}"
    reports = (f"{SUBJECT} ", "nothing applied: ", "no Sluice object in the input")
    return next((line for line in local.lines[seen:] if line.startswith(reports)), None)


def serving(api: httpx.Client) -> bool:
    """Whether the API serves the seed pipeline (the socket listens once uvicorn started)."""
    try:
        return api.get(URL).status_code == 200
    except httpx.TransportError:
        return False


@dataclass(frozen=True)
class RunningLocal:
    """``sluice local`` watching the folder of ``file``, and a client of its API."""

    local: Local
    file: Path
    api: httpx.Client


@pytest.fixture
def local_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningLocal]:
    """``sluice local`` watching an empty folder with its API on a free port, read with an
    admin key naming the examples' workspace; killed at the end if it is still running."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    monkeypatch.setenv("SLUICE_ADMIN_API_KEYS", ADMIN_KEY)
    listen = f"127.0.0.1:{free_port()}"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    state = str(tmp_path / "state")
    local = Local([str(folder), "--store", store, "--listen", listen, "--state", state])
    headers = {
        "Authorization": f"Bearer {ADMIN_KEY}",
        "Sluice-Workspace": str(workspace_id(NAMESPACE)),
    }
    api = httpx.Client(base_url=f"http://{listen}", headers=headers, timeout=10)
    try:
        yield RunningLocal(local, folder / "namespace.yaml", api)
    finally:
        api.close()
        if local.process.poll() is None:
            local.process.kill()
            local.wait()


def apply_file(running: RunningLocal, content: bytes, number: int) -> str:
    """Write the file local mode watches, wait for its report and check what its API serves
    then: ``taken``, ``refused`` (the seed pipeline) or ``nothing applied`` (the file)."""
    before = running.api.get(URL)
    assert before.status_code == 200, before.text
    seen = len(running.local.lines)
    running.file.write_bytes(content)
    expected, taken = expected_report(running.file.parent)
    report = eventually(
        functools.partial(report_after, running.local, seen),
        f"the report of file {number}",
        REPORT_SECONDS,
    )
    assert report == expected, f"file {number}"
    served = running.api.get(URL)
    if taken is not None:
        assert served.json() == pipeline_to_api(taken), f"file {number}"
        return "taken"
    assert served.content == before.content, f"file {number}: {report}"
    return "refused" if report.startswith(SUBJECT) else "nothing applied"


def test_local_mode_reports_every_mutation_and_keeps_serving_the_last_valid_version(
    local_mode: RunningLocal,
) -> None:
    base = quiet_examples(datetime.now(UTC))
    mutated_versions = mutations(base, LOCAL_MUTATIONS)
    first = as_file(renamed(base, "Fuzz start"))
    broken = broken_files(first)
    every = len(mutated_versions) // len(broken)
    files: list[bytes] = []
    for step, version in enumerate(mutated_versions, 1):
        files.append(as_file(renamed(version, f"Fuzz step {step}")))
        if step % every == 0 and step // every <= len(broken):
            # A broken file, then a valid version: what the next refusals must keep serving.
            files += [broken[step // every - 1], as_file(renamed(base, f"Fuzz after {step}"))]

    local = local_mode.local
    local_mode.file.write_bytes(first)
    eventually(functools.partial(serving, local_mode.api), "the examples served", timeout=30)
    started = time.monotonic()
    outcomes = Counter(apply_file(local_mode, content, n) for n, content in enumerate(files, 1))
    took = time.monotonic() - started

    local.process.send_signal(signal.SIGTERM)
    assert local.wait(timeout=30) == 0, local.output
    assert "Traceback" not in local.output, local.output
    print(
        f"\nlocal mode: {len(mutated_versions)} mutations, {len(broken)} broken files and as many "
        f"valid ones in {took:.1f}s: {dict(outcomes)}"
    )
    assert outcomes["refused"] >= len(mutated_versions) // 2, outcomes
    assert outcomes["taken"] >= len(broken), outcomes
