"""The operator's writes and reads against the Kubernetes API (kopf does the watching).

A thin layer over the official client's ``ApiClient``: objects go in and out as plain dicts, as
the pure builders make them. The client's typed API classes are not used: they validate every
body into pydantic models and answer with snake_case models, where Sluice wants the API's own
JSON both ways. Children are server-side applied with one field manager, so a manual edit of a
generated CronJob is reverted on the next reconcile and an identical apply changes nothing.

The client blocks: every request runs on a thread pool of this class's own, never on the
event loop that kopf, the reconciler and the API share.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import secrets
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException, load_incluster_config, load_kube_config

from sluice.fastjson import decode_json
from sluice.model.specs import API_GROUP

FIELD_MANAGER = "sluice"
#: Server-side apply's content type; JSON is YAML, so the body goes as JSON.
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
#: A request the API server has not answered in this time fails: no thread waits forever.
REQUEST_SECONDS = 30.0
#: Objects per page of a list, so a large cluster is never one huge answer.
LIST_PAGE = 500


class ClusterConfigurationError(ValueError):
    """Neither an in-cluster service account nor a usable kubeconfig."""


def load_configuration() -> Configuration:
    """In-cluster service account when present, else ``$KUBECONFIG`` or ``~/.kube/config``."""
    configuration = Configuration()
    try:
        load_incluster_config(client_configuration=configuration)
    except ConfigException:
        try:
            load_kube_config(client_configuration=configuration)
        except (ConfigException, OSError) as error:
            raise ClusterConfigurationError(
                "no Kubernetes cluster to talk to: not running in a pod, and no usable kubeconfig "
                f"($KUBECONFIG or ~/.kube/config: {error})"
            ) from None
    return configuration


class Kube:
    """The Kubernetes API as the operator uses it.

    ``namespaces`` limits the lists to those namespaces (None: every namespace), so a
    namespaced operator needs no cluster-wide permission for them.
    """

    def __init__(
        self,
        configuration: Configuration,
        *,
        threads: int,
        namespaces: Collection[str] | None = None,
    ) -> None:
        # urllib3 keeps at most this many connections open per host: one per thread.
        configuration.connection_pool_maxsize = threads
        self.namespaces = sorted(namespaces) if namespaces is not None else None
        self._client = ApiClient(configuration)
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="kube")

    async def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._client.close)

    async def list_objects(self, kind: str) -> list[dict[str, Any]]:
        """Every object of one of our kinds, in the namespaces watched."""
        plural = _plural(kind)
        scopes: Iterable[str | None] = self.namespaces if self.namespaces is not None else [None]
        found = []
        for namespace in scopes:
            found += await self._list(_collection(f"{API_GROUP}/v1", plural, namespace))
        return found

    async def apply(self, obj: Mapping[str, Any]) -> None:
        await self._call(
            "PATCH",
            _path(obj),
            body=dict(obj),
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type=APPLY_PATCH,
        )

    async def create_job(self, job: Mapping[str, Any]) -> bool:
        """Create a Job; False when one of that name exists already (a token seen before)."""
        try:
            await self.create(job)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> bool:
        """Merge ``status`` into one of our objects' status; False when the object is gone."""
        path = _collection(f"{API_GROUP}/v1", _plural(kind), namespace) + f"/{name}/status"
        try:
            await self._call("PATCH", path, body={"status": dict(status)}, content_type=MERGE_PATCH)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One value of a Secret, decoded; None when the Secret or the key is missing."""
        secret = await self.read("v1", "Secret", namespace, name, missing=(403, 404))
        data = (secret or {}).get("data") or {}
        if key not in data:
            return None
        return base64.b64decode(data[key]).decode("utf-8", errors="replace")

    async def job_pod(self, namespace: str, job_name: str) -> dict[str, Any] | None:
        """The newest pod of a Job, if any."""
        pods = await self._list(
            _collection("v1", "pods", namespace), {"labelSelector": f"job-name={job_name}"}
        )
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
        await self.create(event)

    # -- plain operations on any namespaced object, by apiVersion and kind -----------------------

    async def read(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        missing: Collection[int] = (404,),
    ) -> dict[str, Any] | None:
        """One object; None when the API answers one of the ``missing`` statuses."""
        path = _collection(api_version, _plural(kind), namespace) + f"/{name}"
        try:
            found: dict[str, Any] = await self._call("GET", path)
        except ApiException as error:
            if error.status in missing:
                return None
            raise
        return found

    async def create(self, obj: Mapping[str, Any]) -> None:
        await self._call("POST", _collection_of(obj), body=dict(obj))

    async def replace(self, obj: Mapping[str, Any]) -> None:
        """Replace an object; with ``metadata.resourceVersion`` set, the API answers 409 when
        someone wrote it since that version."""
        await self._call("PUT", _path(obj), body=dict(obj))

    # -- requests ---------------------------------------------------------------------------------

    async def _list(
        self, collection: str, query: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page: dict[str, str] = {**(query or {}), "limit": str(LIST_PAGE)}
        while True:
            answer = await self._call("GET", collection, query=page)
            items += answer["items"]
            token = answer["metadata"].get("continue")
            if not token:
                return items
            page["continue"] = token

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        request = functools.partial(self._request, method, path, body, query, content_type)
        return await asyncio.get_running_loop().run_in_executor(self._threads, request)

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        query: Mapping[str, str] | None,
        content_type: str,
    ) -> Any:
        """One request through the client (its TLS, credentials and connection pool); the
        answer's JSON, or ``ApiException`` for a status other than 2xx."""
        serialized = self._client.param_serialize(
            method,
            path,
            query_params=list(query.items()) if query else None,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._client.call_api(*serialized, _request_timeout=REQUEST_SECONDS)
        response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return decode_json(response.data)


def _plural(kind: str) -> str:
    """The resource name of a kind: every kind the operator touches has a regular plural."""
    return kind.lower() + "s"


def _collection(api_version: str, plural: str, namespace: str | None) -> str:
    group_path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    scope = f"/namespaces/{namespace}" if namespace is not None else ""
    return f"{group_path}{scope}/{plural}"


def _collection_of(obj: Mapping[str, Any]) -> str:
    return _collection(obj["apiVersion"], _plural(obj["kind"]), obj["metadata"]["namespace"])


def _path(obj: Mapping[str, Any]) -> str:
    return f"{_collection_of(obj)}/{obj['metadata']['name']}"
