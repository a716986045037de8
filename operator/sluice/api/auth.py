"""Who is calling and which workspace (Kubernetes namespace) the request is about.

Two kinds of API keys, both sent as ``Authorization: Bearer api_<key>``:

* workspace keys, stored (hashed) in the store, see only their own workspace;
* admin keys, given to the server at start, see every workspace and pick one with the
  ``Sluice-Workspace: <workspace id>`` header.

Keys never appear in a message or a log line. Unknown keys are counted per client address
(:mod:`sluice.api.limits`): an address that sends too many is refused for a while.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from starlette.datastructures import Headers

from sluice.api.errors import forbidden, too_many_failures, unauthorized
from sluice.api.limits import FailedAuthentications, FailureLimit
from sluice.model.errors import bad_request, not_found
from sluice.model.ids import id_in_range
from sluice.store.store import key_digest

KEY_PREFIX = "api_"
WORKSPACE_HEADER = "Sluice-Workspace"

_BEARER = re.compile(r"Bearer +(?P<key>\S+) *\Z", re.IGNORECASE)
_WORKSPACE_ID = re.compile(r"[1-9][0-9]*\Z")


class KeyStore(Protocol):
    """What authentication needs from the store."""

    def workspace_for_key(self, key: str) -> tuple[int, str] | None: ...

    def workspace_namespace(self, workspace_id: int) -> str | None: ...


@dataclass(frozen=True)
class Credentials:
    """What a request presents: its API key (never shown), whether it is an admin key, the
    workspace headers it sends, and the client address it comes from."""

    key: str = field(repr=False)
    admin: bool
    workspace_headers: tuple[str, ...]
    address: str


class Authenticator:
    """Turns a request's headers into the namespace of the workspace it may read."""

    def __init__(
        self, store: KeyStore, admin_keys: Collection[str], failure_limit: FailureLimit
    ) -> None:
        for key in admin_keys:
            if not key.startswith(KEY_PREFIX) or key == KEY_PREFIX:
                raise ValueError(f"admin API keys must start with the {KEY_PREFIX} prefix")
        self._store = store
        # Digests, so that comparing takes the same time whatever the keys' lengths.
        self._admin_digests = [_digest(key) for key in admin_keys]
        self._recent_keys = _RecentLookups(KEY_CACHE_SECONDS, KEY_CACHE_ENTRIES)
        self._failures = FailedAuthentications(failure_limit)

    def credentials(self, headers: Headers, address: str) -> Credentials:
        """The key the request presents, checked for form only: no I/O, so it can run before
        anything else looks at the request. An address that sent too many unknown keys is
        refused first, whatever it sends: a right guess would otherwise still get through."""
        retry_after = self._failures.retry_after(address)
        if retry_after is not None:
            raise too_many_failures(retry_after)
        key = _api_key(headers)
        workspace_headers = tuple(headers.getlist(WORKSPACE_HEADER))
        return Credentials(key, self._is_admin(key), workspace_headers, address)

    def namespace(self, credentials: Credentials) -> str:
        """The namespace the credentials may read, looked up in the store."""
        if credentials.admin:
            return self._chosen_namespace(credentials.workspace_headers)
        found = self._recent_keys.get(credentials.key, self._store.workspace_for_key)
        if found is None:
            self._failures.refused(credentials.address, key_digest(credentials.key))
            raise unauthorized("API key in the Authorization header of the request does not exist")
        if credentials.workspace_headers:
            raise bad_request(
                f'"{WORKSPACE_HEADER}" header cannot be provided with a workspace restricted key'
            )
        return found[1]

    def _is_admin(self, key: str) -> bool:
        digest = _digest(key)
        # No early exit: every admin key is compared, so timing tells nothing about which.
        matches = [hmac.compare_digest(digest, admin) for admin in self._admin_digests]
        return any(matches)

    def _chosen_namespace(self, workspace_headers: tuple[str, ...]) -> str:
        if not workspace_headers:
            raise forbidden(
                f"{WORKSPACE_HEADER} header is missing; provide it in the format "
                f"'{WORKSPACE_HEADER}: <WORKSPACE_ID>'"
            )
        if len(workspace_headers) > 1:
            raise bad_request(f"request contains multiple {WORKSPACE_HEADER} headers")
        text = workspace_headers[0].strip()
        if not _WORKSPACE_ID.match(text):
            raise bad_request(
                f"{WORKSPACE_HEADER} header is invalid; provide it in the format "
                f"'{WORKSPACE_HEADER}: <WORKSPACE_ID>'"
            )
        workspace_id = id_in_range(text)
        namespace = None
        if workspace_id is not None:
            namespace = self._store.workspace_namespace(workspace_id)
        if namespace is None:
            raise not_found("workspace does not exist")
        return namespace


#: A workspace key's lookup is reused for this long: most requests then skip one store read,
#: and a key removed from its Secret (and re-applied) stops working within this delay.
KEY_CACHE_SECONDS = 5.0
KEY_CACHE_ENTRIES = 1024


class _RecentLookups:
    """Store lookups of keys, remembered briefly. Bounded: unknown keys sent in bulk cannot
    grow it past ``entries`` (it is emptied when full)."""

    def __init__(self, seconds: float, entries: int) -> None:
        self._seconds = seconds
        self._entries = entries
        self._found: dict[str, tuple[float, tuple[int, str] | None]] = {}

    def get(
        self, presented: str, lookup: Callable[[str], tuple[int, str] | None]
    ) -> tuple[int, str] | None:
        now = time.monotonic()
        key = hashlib.sha256(presented.encode("utf-8")).hexdigest()  # no key kept in memory
        remembered = self._found.get(key)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        found = lookup(presented)
        if len(self._found) >= self._entries:
            self._found.clear()
        self._found[key] = (now + self._seconds, found)
        return found


def _api_key(headers: Headers) -> str:
    values = headers.getlist("Authorization")
    if not values:
        raise unauthorized(
            "request is not authenticated; provide an API key in the format "
            "'Authorization: Bearer <YOUR_API_KEY>'"
        )
    if len(values) > 1:
        raise bad_request("request contains multiple Authorization headers")
    bearer = _BEARER.match(values[0])
    if bearer is None:
        raise bad_request(
            "Authorization header is invalid; it should be in the format "
            "'Authorization: Bearer <YOUR_API_KEY>'"
        )
    key = bearer.group("key")
    if not key.startswith(KEY_PREFIX):
        raise bad_request(f"API key is not valid; API keys start with the {KEY_PREFIX} prefix")
    return key


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()
