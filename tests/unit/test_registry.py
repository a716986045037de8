"""The connectors this installation has: every one of the API's catalog, each a module."""

from __future__ import annotations

import pytest

from sluice.apps.catalog import CONNECTORS
from sluice.apps.registry import connector_factory
from sluice.installation import INSTALLED


@pytest.mark.parametrize("code", sorted(CONNECTORS))
def test_every_connector_of_the_catalog_is_installed_and_builds(code: str) -> None:
    assert code in INSTALLED.connectors
    factory = connector_factory(code)
    assert factory.__module__ == f"sluice.apps.{code}"


def test_an_unknown_connector_is_named_with_the_known_ones() -> None:
    with pytest.raises(
        KeyError, match='there is no connector "nope" \\(connectors: "brevo", "hubspot"'
    ):
        connector_factory("nope")
