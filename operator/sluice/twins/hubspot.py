"""The HubSpot twin: a loopback server that speaks HubSpot's CRM v3 contacts API.

Tests, benchmarks and the demo point the HubSpot connector at it instead of
``https://api.hubapi.com``::

    twin = HubSpotTwin(token="pat-test")
    with serve(twin) as base_url:
        ...  # requests to f"{base_url}/crm/v3/objects/contacts/batch/create"

or, in a process of its own (so that it does not share the exporter's GIL)::

    python -m sluice.twins.hubspot --listen 127.0.0.1:0 --token TOKEN [--no-rate-limit]
        [--state FILE]

which prints ``listening on http://127.0.0.1:PORT`` once it accepts connections. What it
implements, and which documented HubSpot behaviour each part follows, is in
``docs/hubspot-twin.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from sluice.twins.common import TwinControls
from sluice.twins.hubspot_app import create_app
from sluice.twins.hubspot_control import RateLimiter
from sluice.twins.hubspot_properties import PropertyDefinition
from sluice.twins.hubspot_state import ContactStore, decode_state
from sluice.twins.serving import SAVE_SECONDS, parse_listen, run_process, serve

#: Free and Starter accounts' private apps: 100 requests per 10 s, 250,000 per day.
DEFAULT_BURST = 100
DEFAULT_DAILY = 250_000
#: The account (HubSpot's "portal", or Hub ID) a twin is, unless told another.
DEFAULT_PORTAL_ID = 62515

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_DAILY",
    "DEFAULT_PORTAL_ID",
    "SAVE_SECONDS",
    "HubSpotTwin",
    "PropertyDefinition",
    "TwinStateError",
    "main",
    "serve",
]


class TwinStateError(Exception):
    """The state file exists but does not hold a twin's state, or cannot be read."""


class HubSpotTwin(TwinControls[RateLimiter]):
    """One HubSpot account with its contacts, reached with one private-app token.

    ``custom_properties`` adds contact properties, each a :class:`PropertyDefinition` or a dict
    in the shape of HubSpot's property API (``{"name": "customer_id", "type": "string",
    "fieldType": "text", "hasUniqueValue": true}``). ``rate_limit`` False turns every limit
    off (benchmarks); ``burst`` is the requests allowed per rolling 10 s, ``daily`` per day.
    ``portal_id`` is the account's id, as ``GET /account-info/v3/details`` gives it.
    The state is guarded by one lock, so the Python API may be used from any thread while the
    server runs.

    ``state_path`` keeps the contacts in a file: when it exists, its contacts, id counter and
    custom properties are loaded here (``custom_properties`` replace saved ones of the same
    name) and :class:`TwinStateError` says when it cannot be; :meth:`save_state` writes it, and
    :func:`serve` and the command save it periodically and when they stop.
    """

    def __init__(
        self,
        token: str,
        *,
        custom_properties: Iterable[PropertyDefinition | Mapping[str, Any]] = (),
        rate_limit: bool = True,
        burst: int = DEFAULT_BURST,
        daily: int = DEFAULT_DAILY,
        state_path: str | Path | None = None,
        portal_id: int = DEFAULT_PORTAL_ID,
    ) -> None:
        definitions = [
            p if isinstance(p, PropertyDefinition) else PropertyDefinition.from_json(p)
            for p in custom_properties
        ]
        self.portal_id = portal_id
        self.state_path = None if state_path is None else Path(state_path)
        if self.state_path is not None and self.state_path.exists():
            self.store = _load_store(self.state_path, definitions)
        else:
            self.store = ContactStore(definitions)
        super().__init__(token, self.store.lock)
        self.limiter = RateLimiter(enabled=rate_limit, burst=burst, daily=daily)
        # Held through a whole save, so that an older snapshot never replaces a newer one.
        self._save_lock = threading.Lock()
        self._saved_revision = self.store.revision

    # -- rate limits ----------------------------------------------------------------------

    # -- inspection -------------------------------------------------------------------------

    def add_contacts(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Create contacts directly (no rate limit, not counted): each row is a properties
        dict checked as a batch create checks it. Answers the new ids."""
        with self.lock:
            return self.store.seed(rows)

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact as HubSpot returns it, with all its properties, in id order."""
        with self.lock:
            return [self.store.contacts[i].to_json() for i in self.store.ids]

    def contact_count(self) -> int:
        with self.lock:
            return len(self.store.contacts)

    def stats(self) -> dict[str, Any]:
        """``{"requests": {"POST /crm/v3/objects/contacts/batch/create": {"201": 3}}, ...}``."""
        with self.lock:
            return {
                "requests": self._stats.to_json(),
                "creates": self.store.creates,
                "updates": self.store.updates,
                "contacts": len(self.store.contacts),
            }

    # -- persistence (--state) ------------------------------------------------------------------

    def save_state(self) -> None:
        """Write the contacts to :attr:`state_path` as JSON, atomically: a temporary file in the
        same folder renamed over it, so a twin killed meanwhile leaves the previous file."""
        if self.state_path is None:
            return
        with self._save_lock:
            with self.lock:
                revision = self.store.revision
                content = self.store.encode_state()
            folder = self.state_path.parent
            descriptor, partial = tempfile.mkstemp(
                prefix=f".{self.state_path.name}.", suffix=".partial", dir=folder
            )
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(content)
                os.replace(partial, self.state_path)
            except BaseException:
                Path(partial).unlink(missing_ok=True)
                raise
            self._saved_revision = revision

    def save_state_if_changed(self) -> bool:
        """:meth:`save_state` when the contacts changed since they were loaded or last saved;
        answers whether it wrote."""
        with self.lock:
            changed = self.store.revision != self._saved_revision
        if changed:
            self.save_state()
        return changed

    def reset(self) -> None:
        """Forget every contact, fault, statistic and rate-limit window; restore the token. The
        state file, if any, is emptied by the next save."""
        with self.lock:
            self.store.clear()
            self.limiter.reset()
        self.reset_controls()

    def app(self) -> Starlette:
        return create_app(self)


def _load_store(path: Path, custom_properties: list[PropertyDefinition]) -> ContactStore:
    try:
        saved = decode_state(path.read_bytes())
        store = ContactStore([*saved.custom_properties, *custom_properties])
        store.load_state(saved)
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TwinStateError(f"the twin's state file {path} cannot be read: {reason}") from None
    return store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluice.twins.hubspot",
        description="A loopback server speaking HubSpot's CRM v3 contacts API.",
    )
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0))
    parser.add_argument("--token", required=True, help="the one valid private-app token")
    parser.add_argument("--no-rate-limit", action="store_true", help="turn every limit off")
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST, help="requests per 10 s")
    parser.add_argument("--daily", type=int, default=DEFAULT_DAILY, help="requests per day")
    parser.add_argument("--state", metavar="FILE", help="keep the contacts in FILE across runs")
    parser.add_argument(
        "--portal-id", type=int, default=DEFAULT_PORTAL_ID, help="the account's id (Hub ID)"
    )
    args = parser.parse_args(argv)
    try:
        twin = HubSpotTwin(
            args.token,
            rate_limit=not args.no_rate_limit,
            burst=args.burst,
            daily=args.daily,
            state_path=args.state,
            portal_id=args.portal_id,
        )
    except TwinStateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run_process(twin, *args.listen)


if __name__ == "__main__":
    sys.exit(main())
