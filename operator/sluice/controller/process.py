"""``sluice operator``: kopf's watchers, the reconciler and (by default) the read-only API, in
one asyncio loop, stopped together on SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Collection
from typing import Any

import kopf
from kubernetes.client import Configuration

from sluice.api.server import embedded_server
from sluice.controller.kube import Kube, load_configuration
from sluice.controller.leadership import Leadership
from sluice.controller.operator import CONCURRENCY, Operator
from sluice.controller.runner import RunnerSettings
from sluice.model.resources import KINDS
from sluice.model.specs import API_GROUP
from sluice.store import Store

log = logging.getLogger("sluice.operator")

#: How long a stop waits for the watchers, a pass in progress and the API to end on their own.
STOP_SECONDS = 10.0


def registry(
    operator: Operator, configuration: Configuration, stop: asyncio.Event
) -> kopf.OperatorRegistry:
    """kopf's handlers: event handlers only (no finalizers, no annotations on user objects),
    each recording what it saw and waking the reconciler; and ``stop`` set when kopf stops."""
    handlers = kopf.OperatorRegistry()

    @kopf.on.login(registry=handlers)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(configuration)

    for kind in KINDS:

        def observed(event: kopf.RawEvent, body: kopf.Body, kind: str = kind, **_: Any) -> None:
            operator.observe(kind, event.get("type"), body)

        kopf.on.event(API_GROUP, "v1", kind.lower() + "s", registry=handlers, id=kind)(observed)

    @kopf.on.event(
        "batch", "v1", "jobs", labels={"app.kubernetes.io/managed-by": "sluice"}, registry=handlers
    )
    async def job_changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        if event.get("type") != "DELETED":
            await operator.observe_job(body)

    @kopf.on.cleanup(registry=handlers)
    async def stopping(**_: Any) -> None:
        # kopf takes SIGINT and SIGTERM over as it starts: when it stops on one, so does the
        # rest, before kopf cancels every task begun since it started (after 5 s).
        stop.set()

    @kopf.on.probe(registry=handlers, id="reconciled")
    def reconciled(**_: Any) -> bool:
        return operator.ready.is_set()

    return handlers


def connection_info(configuration: Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials, taken from the client's configuration: the operator loads them once.

    Not ``kopf.login_via_client``: it would load them a second time, into the client's global
    default configuration, which Sluice's requests do not use. The token is read through
    ``get_api_key_with_prefix``, which runs the client's refresh hook: when kopf logs in again
    after a 401, it gets the rotated service-account token the client itself now sends.
    """
    header = configuration.get_api_key_with_prefix("BearerToken")
    scheme, token = header.split(" ", 1) if header and " " in header else (None, header)
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        proxy_url=configuration.proxy,
    )


def settings() -> kopf.OperatorSettings:
    configured = kopf.OperatorSettings()
    # Every replica watches; leader election (a Lease) decides which one writes.
    configured.peering.standalone = True
    # kopf's own Events only for errors: ours say what changed.
    configured.posting.level = logging.WARNING
    return configured


async def run_operator(
    store_url: str,
    *,
    api_listen: str | None,
    admin_keys: Collection[str],
    runner: RunnerSettings,
    liveness: str | None = None,
    lease_namespace: str | None = None,
    namespaces: Collection[str] = (),
) -> None:
    """Run until SIGINT or SIGTERM. With ``lease_namespace``, replicas elect a leader through a
    Lease there, and only the leader writes. With ``namespaces``, only those are watched."""
    store = Store(store_url)
    # Bound before anything is watched: a busy address stops the operator at once.
    api = embedded_server(store, api_listen, admin_keys) if api_listen is not None else None
    configuration = load_configuration()
    # A thread per object reconciled at once, and one for the Lease.
    kube = Kube(configuration, threads=CONCURRENCY + 1, namespaces=namespaces or None)
    operator = Operator(store, kube, runner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Until kopf starts and handles them itself (see `registry`).
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    tasks = []
    if lease_namespace is not None:
        leadership = Leadership(kube, lease_namespace, replica_identity())
        operator.leading = leadership.leading  # before the reconciler first looks at it
        tasks.append(asyncio.create_task(leadership.run(stop), name="leadership"))
    tasks += [
        asyncio.create_task(
            kopf.operator(
                registry=registry(operator, configuration, stop),
                settings=settings(),
                clusterwide=not namespaces,
                namespaces=namespaces,
                stop_flag=stop,
                liveness_endpoint=liveness,
            ),
            name="kopf",
        ),
        asyncio.create_task(operator.run(stop), name="reconciler"),
    ]
    if api is not None:
        tasks.append(asyncio.create_task(api.serve(), name="api"))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not stop.is_set() and task.exception() is not None:
                log.error("%s stopped", task.get_name(), exc_info=task.exception())
    finally:
        stop.set()
        if api is not None:
            api.should_exit = True
        # A pass cut short is safe: the store was written in one transaction before it.
        await asyncio.wait(tasks, timeout=STOP_SECONDS)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=STOP_SECONDS)
        await kube.close()
        store.close()


def replica_identity() -> str:
    """The pod's name in a cluster (the Downward API's POD_NAME), else host and process."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
