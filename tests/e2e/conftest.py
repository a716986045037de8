"""Fixtures for end-to-end tests against a real control plane (see tests/cluster.py)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from image.build import build as build_image

from tests.cluster import (
    Cluster,
    Kubectl,
    build,
    cluster_unavailable_reason,
    running_under_ci,
    start,
)
from tests.e2e.test_operator import ExampleNamespace
from tests.helm import build_helm, helm_unavailable_reason
from tests.node import node_unavailable_reason
from tests.operator_process import OperatorProcess, install_crds, running_operator


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Cluster]:
    """A private cluster for this test session, in a temporary directory; stopped at the end.

    Builds the binaries first when they are not cached (the first time: many minutes, with the
    progress shown despite output capture). Skips the tests that use it when Go is missing to
    build them, except under CI (the `CI` environment variable set): there they fail instead.
    """
    require("a Kubernetes cluster", cluster_unavailable_reason())
    with _output_not_captured(pytestconfig):
        binaries = build()
    running = start(tmp_path_factory.mktemp("cluster"), binaries)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def node_cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Cluster]:
    """A second private cluster, with a real node (tests/node.py) running Sluice's image, and
    Helm; stopped at the end of the module (one node runs on a machine at a time), leaving the
    machine as it was. Skipped where a node cannot run
    (not root, Debian's packages missing), except under CI, where it must."""
    require(
        "a node",
        cluster_unavailable_reason() or node_unavailable_reason() or helm_unavailable_reason(),
    )
    with _output_not_captured(pytestconfig):
        binaries = build()
        image = build_image()
        build_helm()
    running = start(
        tmp_path_factory.mktemp("node-cluster"), binaries, with_node=True, images=[image]
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def kubectl(cluster: Cluster) -> Kubectl:
    """Runs the cached kubectl against the session's cluster: `kubectl("get", "ns")` returns the
    CompletedProcess (text), and raises KubectlError on failure unless `check=False`."""
    return cluster.kubectl


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace, deleted afterwards (without waiting: the namespace controller does)."""
    name = f"e2e-{secrets.token_hex(4)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """A `sluice operator` of the test's own (test_operator.py shares one per module)."""
    with running_operator(cluster, tmp_path_factory.mktemp("operator")) as running:
        yield running


@pytest.fixture
def examples(cluster: Cluster, tmp_path: Path) -> Iterator[ExampleNamespace]:
    """The examples applied in a fresh namespace of their own (Sluice's CRDs installed)."""
    install_crds(cluster)
    applied = ExampleNamespace(cluster.kubectl, tmp_path, f"e2e-{secrets.token_hex(4)}")
    yield applied
    cluster.kubectl("delete", "namespace", applied.namespace, "--wait=false")


def require(what: str, reason: str | None) -> None:
    """Skip the tests when `what` cannot be had here, except under CI, where they fail."""
    if reason is None:
        return
    if running_under_ci():
        pytest.fail(f"{what} is required under CI, but: {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def _output_not_captured(config: pytest.Config) -> Iterator[None]:
    capture_manager = config.pluginmanager.getplugin("capturemanager")
    if capture_manager is None:  # pytest run with -p no:capture
        yield
        return
    with capture_manager.global_and_fixture_disabled():
        yield
