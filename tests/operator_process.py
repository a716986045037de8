"""`sluice operator` run as users run it, for the e2e tests and the operator benchmark."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.cluster import Cluster
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
WAIT_SECONDS = 60.0


def eventually(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """The first truthy result of ``check``, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def install_crds(cluster: Cluster) -> None:
    """Sluice's CRDs applied (as `kubectl apply -f crds/` users do), and Established."""
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


@contextlib.contextmanager
def running_operator(cluster: Cluster, folder: Path, *options: str) -> Iterator[OperatorProcess]:
    """Sluice's CRDs installed, and `sluice operator OPTIONS` running on a store in ``folder``
    until the `with` ends."""
    install_crds(cluster)
    running = OperatorProcess(cluster, folder, *options)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def write_seed_copies(folder: Path, count: int, namespace: str) -> Path:
    """The examples' Workspace and Connection (`workspace.yaml`, `hubspot-connection.yaml`) in
    ``folder``, and one file of ``count`` copies of the seed pipeline (`export-customers-<n>`),
    all in ``namespace``; returns the pipelines' file."""
    examples = ROOT / "examples"

    def in_namespace(text: str) -> str:
        return text.replace("namespace: marketing", f"namespace: {namespace}")

    for name in ("workspace.yaml", "hubspot-connection.yaml"):
        (folder / name).write_text(in_namespace((examples / name).read_text()))
    seed = in_namespace((examples / "seed-pipeline.yaml").read_text())
    pipelines = folder / "pipelines.yaml"
    pipelines.write_text(
        "\n---\n".join(
            seed.replace("name: export-customers", f"name: export-customers-{n}", 1)
            for n in range(count)
        )
    )
    return pipelines


class OperatorProcess:
    """`sluice operator` as users run it, on a SQLite store, with the API on a free port."""

    def __init__(
        self, cluster: Cluster, folder: Path, *options: str, name: str = "operator"
    ) -> None:
        self.cluster = cluster
        self.options = options
        self.store = f"sqlite:///{folder / 'store.db'}"
        self.log = folder / f"{name}.log"
        self.api = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        environment = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "sluice"),
                    "operator",
                    "--store",
                    self.store,
                    "--api-listen",
                    self.api.removeprefix("http://"),
                    *self.options,
                ],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        eventually(self._api_up, "the operator's API")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError("the operator did not stop within 30 s of SIGTERM") from None
        finally:
            self.process = None
        if code != 0:
            raise AssertionError(f"the operator exited with {code} on SIGTERM:\n{self._log_tail()}")

    def kill(self) -> None:
        """SIGKILL: the operator gets no chance to finish anything."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def _api_up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the operator exited:\n{self._log_tail()}")
        try:
            return httpx.get(f"{self.api}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def _log_tail(self) -> str:
        return self.log.read_text()[-3000:]
