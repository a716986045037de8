"""The operator's writes and reads against the Kubernetes API (kopf does the watching).

A thin layer over lightkube's async client: objects go in and out as plain dicts, as the pure
builders make them. Children are server-side applied with one field manager, so a manual edit
of a generated CronJob is reverted on the next reconcile and an identical apply changes nothing.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.codecs import from_dict
from lightkube.config.kubeconfig import KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Pod, Secret
from lightkube.types import PatchType

from sluice.model.specs import API_GROUP

FIELD_MANAGER = "sluice"

ExportPipelineResource = create_namespaced_resource(
    API_GROUP, "v1", "ExportPipeline", "exportpipelines"
)
WorkspaceResource = create_namespaced_resource(API_GROUP, "v1", "Workspace", "workspaces")
ConnectionResource = create_namespaced_resource(API_GROUP, "v1", "Connection", "connections")
RESOURCES = {
    "Workspace": WorkspaceResource,
    "Connection": ConnectionResource,
    "ExportPipeline": ExportPipelineResource,
}


class Kube:
    """The Kubernetes API as the operator uses it."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster credentials when present, else ``KUBECONFIG`` or ``~/.kube/config``."""
        return cls(AsyncClient(KubeConfig.from_env(), field_manager=FIELD_MANAGER))

    async def close(self) -> None:
        await self.client.close()

    async def list_objects(self, kind: str) -> list[dict[str, Any]]:
        """Every object of one of our kinds, in every namespace."""
        found = []
        async for item in self.client.list(RESOURCES[kind], namespace="*"):
            found.append(_as_dict(item))
        return found

    async def apply(self, obj: Mapping[str, Any]) -> None:
        await self.client.apply(from_dict(dict(obj)), field_manager=FIELD_MANAGER, force=True)

    async def create_job(self, job: Mapping[str, Any]) -> bool:
        """Create a Job; False when one of that name exists already (a token seen before)."""
        try:
            await self.client.create(from_dict(dict(job)))
        except ApiError as error:
            if error.status.code == 409:
                return False
            raise
        return True

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> bool:
        """Merge ``status`` into one of our objects' status; False when the object is gone."""
        try:
            await self.client.patch(
                RESOURCES[kind].Status,
                name,
                {"status": dict(status)},
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
        except ApiError as error:
            if error.status.code == 404:
                return False
            raise
        return True

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One value of a Secret, decoded; None when the Secret or the key is missing."""
        try:
            secret = await self.client.get(Secret, name, namespace=namespace)
        except ApiError as error:
            if error.status.code in (403, 404):
                return None
            raise
        data = secret.data or {}
        if key not in data:
            return None
        return base64.b64decode(data[key]).decode("utf-8", errors="replace")

    async def job_pod(self, namespace: str, job_name: str) -> dict[str, Any] | None:
        """The newest pod of a Job, if any."""
        pods = [
            _as_dict(pod)
            async for pod in self.client.list(
                Pod, namespace=namespace, labels={"job-name": job_name}
            )
        ]
        pods.sort(key=lambda pod: pod["metadata"].get("creationTimestamp") or "")
        return pods[-1] if pods else None

    async def post_event(
        self, involved: Mapping[str, Any], kind: str, reason: str, message: str
    ) -> None:
        """A core/v1 Event about one of our objects (``kubectl events --for`` shows it)."""
        metadata = involved["metadata"]
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{metadata['name']}.{secrets.token_hex(8)}",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", f"{API_GROUP}/v1"),
                "kind": involved.get("kind", "ExportPipeline"),
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
            },
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "sluice-operator"},
            "reportingComponent": "sluice-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self.client.create(from_dict(event))


def _as_dict(obj: Any) -> dict[str, Any]:
    found: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return found
