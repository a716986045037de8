"""The node harness (tests/node.py) runs real pods and leaves the machine as it found it: after
a clean stop, and after a harness that was killed (the next start cleans up)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import Cluster, build, cluster_unavailable_reason, start
from tests.e2e.conftest import require
from tests.node import (
    NODE_NAME,
    PAUSE_IMAGE,
    machine_snapshot,
    node_unavailable_reason,
    restore_after_killed_harness,
)
from tests.operator_process import ROOT, eventually

START_IN_A_CHILD = """
import sys
from pathlib import Path
from tests.cluster import build, start
cluster = start(Path(sys.argv[1]), build(), with_node=True)
cluster.kubectl("run", "sleeper", f"--image={sys.argv[2]}", "--image-pull-policy=Never")
print("up", flush=True)
sys.stdin.read()  # until killed
"""


@pytest.fixture
def binaries() -> Path:
    """The cluster's binaries, on a machine that no killed harness left a node on (an earlier
    test run stopped midway), so that what each test compares starts clean."""
    require("a node", cluster_unavailable_reason() or node_unavailable_reason())
    restore_after_killed_harness()
    return build()


def _run_a_pod(cluster: Cluster, name: str) -> None:
    cluster.kubectl("run", name, f"--image={PAUSE_IMAGE}", "--image-pull-policy=Never")

    def running() -> bool:
        pod = json.loads(cluster.kubectl("get", "pod", name, "-o", "json").stdout)
        return bool(pod["status"].get("phase") == "Running")

    eventually(running, f"pod {name} running on {NODE_NAME}")


def test_a_node_runs_pods_and_a_stop_leaves_the_machine_as_it_was(
    binaries: Path, tmp_path: Path
) -> None:
    before = machine_snapshot()
    cluster = start(tmp_path / "cluster", binaries, with_node=True)
    try:
        assert machine_snapshot() != before  # the bridge, the chains: it did change things
        _run_a_pod(cluster, "first")
    finally:
        cluster.stop()
    assert machine_snapshot() == before


def test_the_next_start_cleans_up_after_a_harness_that_was_killed(
    binaries: Path, tmp_path: Path
) -> None:
    before = machine_snapshot()
    child = subprocess.Popen(
        [sys.executable, "-c", START_IN_A_CHILD, str(tmp_path / "killed"), PAUSE_IMAGE],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "up\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    # Its processes died with it, its pods' shims and the machine's changes did not.
    assert machine_snapshot() != before
    cluster = start(tmp_path / "next", binaries, with_node=True)
    try:
        _run_a_pod(cluster, "second")
    finally:
        cluster.stop()
    assert machine_snapshot() == before
