"""Fixtures for end-to-end tests against a real control plane (see tests/cluster.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.cluster import (
    Cluster,
    Kubectl,
    build,
    cluster_unavailable_reason,
    running_under_ci,
    start,
)


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Cluster]:
    """A private cluster for this test session, in a temporary directory; stopped at the end.

    Builds the binaries first when they are not cached (the first time: many minutes, with the
    progress shown despite output capture). Skips the tests that use it when Go is missing to
    build them, except under CI (the `CI` environment variable set): there they fail instead.
    """
    reason = cluster_unavailable_reason()
    if reason is not None:
        if running_under_ci():
            pytest.fail(f"a Kubernetes cluster is required under CI, but: {reason}", pytrace=False)
        pytest.skip(reason)
    with _output_not_captured(pytestconfig):
        binaries = build()
    running = start(tmp_path_factory.mktemp("cluster"), binaries)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def kubectl(cluster: Cluster) -> Kubectl:
    """Runs the cached kubectl against the session's cluster: `kubectl("get", "ns")` returns the
    CompletedProcess (text), and raises KubectlError on failure unless `check=False`."""
    return cluster.kubectl


@contextlib.contextmanager
def _output_not_captured(config: pytest.Config) -> Iterator[None]:
    capture_manager = config.pluginmanager.getplugin("capturemanager")
    if capture_manager is None:  # pytest run with -p no:capture
        yield
        return
    with capture_manager.global_and_fixture_disabled():
        yield
