"""Unknown API keys counted per client address: an address that tries many is refused for a
while, so that guessing keys is slow, and each refusal is logged once, without the key.

Only *different* unknown keys count: a client retrying one wrong key (or a key not applied yet)
guesses nothing, and is not locked out by its retries.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: How much of a refused key's SHA-256 digest a log line shows: enough to tell one client's
#: repeated key from many keys, or to match it against a Secret's keys, and nothing to guess from.
LOGGED_DIGEST = 8
#: How much of it is remembered per address: 64 bits, so that two keys of one address cannot
#: be taken for one, in a fraction of the memory.
REMEMBERED_DIGEST = 16


@dataclass(frozen=True)
class FailureLimit:
    """Once an address has sent ``keys`` different unknown keys within ``seconds``, every request
    it sends to ``/v1`` is refused (429) for ``seconds``."""

    keys: int = 20
    seconds: float = 60.0
    #: Addresses remembered at most: the least recently refused is forgotten first.
    addresses: int = 4096


DEFAULT_FAILURE_LIMIT = FailureLimit()


@dataclass
class _Address:
    #: Digests of the unknown keys the address sent within the window, with when each was
    #: first sent (at most ``FailureLimit.keys``: reaching that clears them).
    keys: dict[str, float] = field(default_factory=dict)
    limited_until: float = 0.0


class FailedAuthentications:
    """Unknown keys by client address, in memory and bounded. Thread-safe: refusals are counted
    in the handlers' threads, limits checked on the event loop."""

    def __init__(self, limit: FailureLimit) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may send requests again, or None if it may now."""
        now = time.monotonic()
        with self._lock:
            known = self._addresses.get(address)
            if known is None or known.limited_until <= now:
                return None
            return math.ceil(known.limited_until - now)

    def refused(self, address: str, digest: str) -> None:
        """Count an unknown key (by its hex SHA-256 ``digest``) sent from ``address``."""
        now = time.monotonic()
        remembered = digest[:REMEMBERED_DIGEST]
        with self._lock:
            known = self._addresses.pop(address, None) or _Address()
            self._addresses[address] = known
            if len(self._addresses) > self._limit.addresses:
                self._addresses.popitem(last=False)
            horizon = now - self._limit.seconds
            known.keys = {key: first for key, first in known.keys.items() if first > horizon}
            if remembered in known.keys:
                return  # logged when first sent, within the window
            known.keys[remembered] = now
            limited = len(known.keys) >= self._limit.keys
            if limited:
                known.keys.clear()
                known.limited_until = now + self._limit.seconds
        log.warning(
            "refused an unknown API key from %s (SHA-256 digest %s…)",
            address,
            digest[:LOGGED_DIGEST],
        )
        if limited:
            log.warning(
                "refusing every request from %s for %g s: %d different unknown API keys "
                "within %g s",
                address,
                self._limit.seconds,
                self._limit.keys,
                self._limit.seconds,
            )
