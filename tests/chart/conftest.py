"""The chart's tests need Helm: built once into the cache (see tests/helm.py)."""

from __future__ import annotations

import contextlib

import pytest

from tests.chart.rendering import require_helm


@pytest.fixture(scope="session")
def helm_ready(pytestconfig: pytest.Config) -> None:
    """Helm is in the cache: built on first use, its progress shown despite output capture;
    skipped without Go to build it, except under CI."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        require_helm()
