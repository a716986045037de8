"""Leader election on a coordination.k8s.io Lease, so replicas of the operator never fight.

Every replica watches (cheap, and ready to take over at once); only the holder of the Lease
reconciles and records runs. The holder renews the Lease every few seconds; when it stops
renewing (crashed, partitioned), another replica takes the Lease once it has expired. A
replica that stops cleanly gives the Lease up, so the next one takes over without waiting.
Writes use the Lease's resourceVersion, so two replicas cannot both win a race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

log = logging.getLogger("sluice.operator")

LEASE_NAME = "sluice-operator"
LEASE_SECONDS = 15
RENEW_SECONDS = 5.0


@dataclass(frozen=True)
class LeaseState:
    holder: str | None
    renewed: datetime | None
    seconds: int


def may_take(state: LeaseState | None, identity: str, now: datetime) -> bool:
    """Whether ``identity`` may hold the Lease now: it is free, ours, or expired."""
    if state is None or state.holder in (None, "", identity):
        return True
    if state.renewed is None:
        return True
    return now >= state.renewed + timedelta(seconds=state.seconds)


class Leadership:
    """Holds the Lease while ``run`` runs; ``leading`` is set while it is held."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        identity: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._namespace = namespace
        self.identity = identity
        self._clock = clock
        self.leading = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    held = await self._try_to_hold()
                except ApiError as error:
                    log.warning("lease %s: %s", LEASE_NAME, error.status.message)
                    held = False
                if held != self.leading.is_set():
                    log.info("%s the lease %s", "holding" if held else "lost", LEASE_NAME)
                    (self.leading.set if held else self.leading.clear)()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RENEW_SECONDS)
        finally:
            if self.leading.is_set():
                self.leading.clear()
                with contextlib.suppress(ApiError, OSError):
                    await self._release()

    async def _try_to_hold(self) -> bool:
        now = self._clock()
        try:
            lease = await self._client.get(Lease, LEASE_NAME, namespace=self._namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
            await self._client.create(self._lease(now, acquired=now))
            return True
        spec = lease.spec or LeaseSpec()
        state = LeaseState(spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds or 0)
        if not may_take(state, self.identity, now):
            return False
        acquired = spec.acquireTime if spec.holderIdentity == self.identity else now
        renewed = self._lease(now, acquired=acquired)
        assert lease.metadata is not None and renewed.metadata is not None
        renewed.metadata.resourceVersion = lease.metadata.resourceVersion
        try:
            await self._client.replace(renewed)
        except ApiError as error:
            if error.status.code == 409:  # another replica wrote first
                return False
            raise
        return True

    async def _release(self) -> None:
        lease = await self._client.get(Lease, LEASE_NAME, namespace=self._namespace)
        if lease.spec is None or lease.spec.holderIdentity != self.identity:
            return
        lease.spec.holderIdentity = None
        lease.spec.renewTime = None
        await self._client.replace(lease)

    def _lease(self, now: datetime, acquired: datetime | None) -> Lease:
        return Lease(
            metadata=ObjectMeta(name=LEASE_NAME, namespace=self._namespace),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=LEASE_SECONDS,
                acquireTime=acquired,
                renewTime=now,
            ),
        )
