"""Mutated manifests through ``sluice validate`` and ``sluice apply``: arbitrary values at any
depth of the examples' Workspace, Connection or seed pipeline. Neither command ever crashes
(an exit code of 0 or 1, no traceback), and a pipeline whose new version is refused keeps
serving its last valid version, byte for byte. Local mode and the operator save manifests
through the same reconciliation as ``sluice apply`` (``sluice.reconcile``); validation alone
is fuzzed further by tests/unit/test_robustness.py."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.cli import main
from sluice.installation import INSTALLED
from sluice.manifests import read_manifests
from sluice.reconcile import apply, apply_set_of
from sluice.store import Store
from tests.reliability.soak import FACTOR
from tests.support import EXAMPLES
from tests.unit.test_robustness import mutated

FILES = ("workspace.yaml", "hubspot-connection.yaml", "seed-pipeline.yaml")
KINDS = ("Workspace", "Connection", "ExportPipeline")


def example_documents() -> list[dict[str, Any]]:
    return [d for name in FILES for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


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
