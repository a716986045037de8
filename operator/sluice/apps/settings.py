"""What every connector checks of its Connection before any call: settings holding only the keys
it knows, a base URL for the API, and the credentials' keys. The messages are one line each,
naming the application and the key."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from sluice.apps.connector import ConnectorError

_URL = re.compile(r"https?://[^/\s]+")


def check_setting_names(app: str, settings: Mapping[str, Any], names: Collection[str]) -> None:
    """Refuse a setting the connector does not know (a typo would otherwise be ignored)."""
    for key in settings:
        if key not in names:
            quoted = [f'"{name}"' for name in names]
            known = (
                f"the only setting is {quoted[0]}"
                if len(quoted) == 1
                else f"the settings are {', '.join(quoted[:-1])} and {quoted[-1]}"
            )
            raise ConnectorError(f'{app} connection settings cannot hold "{key}": {known}')


def base_url(app: str, settings: Mapping[str, Any], default: str) -> str:
    """The ``baseUrl`` setting (tests point it at a twin), else the application's own URL."""
    url = settings.get("baseUrl", default)
    if not isinstance(url, str) or not _URL.match(url):
        raise ConnectorError(f'{app} setting "baseUrl" must be an http or https URL')
    return url.rstrip("/")


def only_base_url(app: str, settings: Mapping[str, Any], default: str) -> str:
    """The base URL of a connector whose only setting is ``baseUrl``."""
    check_setting_names(app, settings, ("baseUrl",))
    return base_url(app, settings, default)


def credential(app: str, credentials: Mapping[str, str], key: str) -> str:
    """The value of one key of the Connection's Secret."""
    value = credentials.get(key)
    if value is None:
        raise ConnectorError(f'the {app} credentials have no "{key}"')
    return value
