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
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from sluice.controller.kube import Kube

log = logging.getLogger("sluice.operator")

LEASE_NAME = "sluice-operator"
LEASE_SECONDS = 15
RENEW_SECONDS = 5.0
LEASE_API = "coordination.k8s.io/v1"


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
        kube: Kube,
        namespace: str,
        identity: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self.identity = identity
        self._clock = clock
        self.leading = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    held = await self._try_to_hold()
                except (ApiException, HTTPError) as error:  # HTTPError: the server unreachable
                    log.warning("lease %s: %s", LEASE_NAME, _reason(error))
                    held = False
                if held != self.leading.is_set():
                    log.info("%s the lease %s", "holding" if held else "lost", LEASE_NAME)
                    (self.leading.set if held else self.leading.clear)()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RENEW_SECONDS)
        finally:
            if self.leading.is_set():
                self.leading.clear()
                with contextlib.suppress(ApiException, HTTPError):
                    await self._release()

    async def _try_to_hold(self) -> bool:
        now = self._clock()
        lease = await self._read()
        if lease is None:
            try:
                await self._kube.create(self._lease(now, acquired=now))
            except ApiException as error:
                if error.status == 409:  # another replica created it first
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        state = LeaseState(
            holder, _moment(spec.get("renewTime")), spec.get("leaseDurationSeconds") or 0
        )
        if not may_take(state, self.identity, now):
            return False
        acquired = _moment(spec.get("acquireTime")) if holder == self.identity else now
        renewed = self._lease(now, acquired=acquired)
        renewed["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
        try:
            await self._kube.replace(renewed)
        except ApiException as error:
            if error.status == 409:  # another replica wrote first
                return False
            raise
        return True

    async def _release(self) -> None:
        lease = await self._read()
        spec = (lease or {}).get("spec") or {}
        if lease is None or spec.get("holderIdentity") != self.identity:
            return
        spec.pop("holderIdentity")
        spec.pop("renewTime", None)
        await self._kube.replace(lease)

    async def _read(self) -> dict[str, Any] | None:
        return await self._kube.read(LEASE_API, "Lease", self._namespace, LEASE_NAME)

    def _lease(self, now: datetime, acquired: datetime | None) -> dict[str, Any]:
        return {
            "apiVersion": LEASE_API,
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": self._namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": _micro_time(acquired) if acquired is not None else None,
                "renewTime": _micro_time(now),
            },
        }


def _micro_time(moment: datetime) -> str:
    """A Lease's MicroTime: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _reason(error: ApiException | HTTPError) -> str:
    if isinstance(error, ApiException):
        return f"{error.status} {error.reason}"
    return str(error)
