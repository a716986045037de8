"""A real Kubernetes control plane for tests and development: etcd, kube-apiserver and
kube-controller-manager on 127.0.0.1, with no kubelet (Pods stay Pending).

The binaries are built once from the Go module proxy, at pinned versions, into
`${SLUICE_CACHE:-~/.cache/sluice}/k8s/<version>/bin/` (`build()`). `start(state_dir)` runs a
private cluster whose certificates, etcd data, kubeconfig and logs live in `state_dir`, and
`Cluster.stop()` takes it down again. The pytest fixture in tests/e2e/conftest.py and
`python -m tests.cluster build|up|down|status` (`make cluster`, `make cluster-down`) both use this
module.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests import node

#: The pinned Kubernetes release. Its staging modules (k8s.io/api, k8s.io/client-go, ...) are
#: published as v0.<minor>.<patch>.
K8S_VERSION = "v1.37.2"
STAGING_VERSION = "v0.37.2"
#: The etcd release that Kubernetes v1.37.2's go.mod requires (go.etcd.io/etcd/client/v3).
ETCD_VERSION = "v3.7.0"

KUBERNETES_COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "kubelet",
    "kube-scheduler",
    "kube-proxy",
)
BINARIES = ("etcd", *KUBERNETES_COMMANDS)
#: The controllers this harness needs (names as `kube-controller-manager --help` lists them):
#: CronJobs and Jobs for pipeline runs, the garbage collector for owner references, and the
#: namespace controller so that deleted namespaces go away.
CONTROLLERS = (
    "cronjob-controller",
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
)
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
#: The first address of the service range: the `kubernetes` Service, and its names.
KUBERNETES_SERVICE_IP = "10.0.0.1"
KUBERNETES_SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LOOPBACK = "127.0.0.1"

#: Bounds, in seconds, on every wait.
GO_COMMAND_TIMEOUT = 3600.0
ETCD_READY_TIMEOUT = 30.0
APISERVER_READY_TIMEOUT = 90.0
CONTROLLER_MANAGER_READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
KUBECTL_TIMEOUT = 60.0
PROBE_TIMEOUT = 2.0
START_ATTEMPTS = 3
LOG_TAIL_LINES = 30

STATE_FILE = "cluster.json"
KUBECONFIG_FILE = "kubeconfig"
PKI_DIR = "pki"
ETCD_DATA_DIR = "etcd-data"


class ClusterError(RuntimeError):
    """The binaries could not be built, or the cluster could not be started or stopped."""


class KubectlError(subprocess.CalledProcessError):
    """A kubectl command failed; unlike its base class, the message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}".rstrip()


class Kubectl(Protocol):
    """Runs the cached kubectl against one cluster (`Cluster.kubectl`)."""

    def __call__(
        self,
        *args: str,
        check: bool = True,
        input_text: str | None = None,
        timeout: float = KUBECTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]: ...


# -- where things live -----------------------------------------------------------------------


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """`$SLUICE_CACHE`, else ~/.cache/sluice: outside the clone, so every clone shares it."""
    configured = (os.environ if environ is None else environ).get("SLUICE_CACHE", "")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sluice"


def bin_dir() -> Path:
    """Where `build()` puts the binaries of the pinned versions."""
    return cache_root() / "k8s" / K8S_VERSION / "bin"


def cli_state_dir() -> Path:
    """The state directory of the cluster that `python -m tests.cluster up` runs."""
    return cache_root() / "cluster"


def binaries_present() -> bool:
    return all(os.access(bin_dir() / name, os.X_OK) for name in BINARIES)


def find_go() -> Path | None:
    found = shutil.which("go")
    if found is not None:
        return Path(found)
    # The official tarball's place, often not on PATH in non-login shells.
    fallback = Path("/usr/local/go/bin/go")
    return fallback if os.access(fallback, os.X_OK) else None


def cluster_unavailable_reason() -> str | None:
    """Why no cluster can be had here (binaries neither cached nor buildable), or None."""
    if binaries_present() or find_go() is not None:
        return None
    return (
        f"Kubernetes binaries are not cached in {bin_dir()} and Go is not installed to build "
        "them (install Go 1.26 or newer, then run `make cluster`)"
    )


def running_under_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment says this is CI, where the cluster must be available."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in {"", "0", "false", "no", "off"}


# -- building --------------------------------------------------------------------------------


def build() -> Path:
    """Build the pinned binaries into the cache unless they are there; return their directory.

    Progress goes to stderr. Concurrent builds wait for each other (a file lock), and the
    binaries are moved into place only once all of them are built, so an interrupted build
    leaves nothing half-written behind.
    """
    target = bin_dir()

    def build_all(go: Path) -> None:
        version_dir = target.parent
        for leftover in version_dir.glob(".bin-*"):  # from a build that was killed
            shutil.rmtree(leftover, ignore_errors=True)
        progress(
            f"building Kubernetes {K8S_VERSION} ({', '.join(KUBERNETES_COMMANDS)}) and etcd "
            f"{ETCD_VERSION} with {go} into {target}; the first build downloads the modules "
            "and compiles for many minutes"
        )
        began = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=".bin-", dir=version_dir))
        try:
            _build_kubernetes(go, version_dir / "src" / "kubernetes", staging)
            _build_etcd(go, version_dir / "src" / "etcd", staging)
            target.mkdir(exist_ok=True)
            for name in BINARIES:
                os.replace(staging / name, target / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        progress(f"built in {_minutes(time.monotonic() - began)}: {target}")

    build_once(target.parent, binaries_present, build_all, missing=cluster_unavailable_reason)
    return target


def build_once(
    directory: Path,
    done: Callable[[], bool],
    make: Callable[[Path], None],
    *,
    missing: Callable[[], str | None],
) -> None:
    """Run `make(go)` in `directory` unless `done()`. Builds of the same thing wait for each
    other (a file lock in `directory`), and one that waited builds nothing."""
    if done():
        return
    go = find_go()
    if go is None:
        raise ClusterError(missing() or "Go is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(directory / ".build.lock"):
        if not done():  # another process may have built it while this one waited
            make(go)


def _build_kubernetes(go: Path, module_dir: Path, output_dir: Path) -> None:
    """Build the commands through a module of our own that requires k8s.io/kubernetes.

    k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with paths inside
    its repository, which a dependency's replaces cannot do; so this module replaces each one
    with its published version instead.
    """
    module_dir.mkdir(parents=True, exist_ok=True)
    download = run_go(
        go,
        ["mod", "download", "-json", f"k8s.io/kubernetes@{K8S_VERSION}"],
        cwd=module_dir.parent,
        capture=True,
    )
    kubernetes_go_mod = Path(json.loads(download)["GoMod"]).read_text(encoding="utf-8")
    staging_modules = re.findall(
        r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", kubernetes_go_mod, re.MULTILINE
    )
    if not staging_modules:
        raise ClusterError(f"k8s.io/kubernetes@{K8S_VERSION}'s go.mod names no staging module")
    tools = "".join(f"\tk8s.io/kubernetes/cmd/{command}\n" for command in KUBERNETES_COMMANDS)
    replaces = "".join(f"\t{name} => {name} {STAGING_VERSION}\n" for name in staging_modules)
    (module_dir / "go.mod").write_text(
        "// Generated by tests/cluster.py to build Kubernetes' commands; not part of Sluice.\n"
        "module sluice.local/kubernetes-binaries\n\n"
        f"go 1.26.0\n\nrequire k8s.io/kubernetes {K8S_VERSION}\n\n"
        f"tool (\n{tools})\n\nreplace (\n{replaces})\n",
        encoding="utf-8",
    )
    progress(f"resolving modules in {module_dir}")
    run_go(go, ["mod", "tidy"], cwd=module_dir)
    progress("compiling (go build -v lists each package as it is compiled)")
    packages = [f"k8s.io/kubernetes/cmd/{command}" for command in KUBERNETES_COMMANDS]
    run_go(
        go,
        [
            "build",
            "-v",
            "-trimpath",
            "-ldflags",
            _version_ldflags(),
            "-o",
            f"{output_dir}/",
            *packages,
        ],
        cwd=module_dir,
    )


def _version_ldflags() -> str:
    """Stamp the release into the binaries, as Kubernetes' own build does (`kubectl version`
    would say v0.0.0-master otherwise). The proxy does not say which commit, so none is named.
    """
    major, minor, _ = K8S_VERSION.removeprefix("v").split(".", 2)
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitVersion={K8S_VERSION}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.gitCommit=",
        ]
    return " ".join(flags)


def _build_etcd(go: Path, module_dir: Path, output_dir: Path) -> None:
    """go.etcd.io/etcd/server/v3's root package is the etcd server's main."""
    module_dir.mkdir(parents=True, exist_ok=True)
    (module_dir / "go.mod").write_text(
        "// Generated by tests/cluster.py to build the etcd server; not part of Sluice.\n"
        "module sluice.local/etcd-binary\n\n"
        f"go 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n\n"
        "tool go.etcd.io/etcd/server/v3\n",
        encoding="utf-8",
    )
    progress(f"building etcd {ETCD_VERSION} in {module_dir}")
    run_go(go, ["mod", "tidy"], cwd=module_dir)
    run_go(
        go,
        [
            "build",
            "-v",
            "-trimpath",
            "-ldflags",
            "-s -w",
            "-o",
            str(output_dir / "etcd"),
            "go.etcd.io/etcd/server/v3",
        ],
        cwd=module_dir,
    )


def run_go(go: Path, args: list[str], *, cwd: Path, capture: bool = False) -> str:
    """Run a go command; its output goes to stderr unless captured (and then is returned)."""
    env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off"}
    try:
        result = subprocess.run(
            # A build whose caller was killed must not go on writing into the cache.
            [*dies_with_this_process(), str(go), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else sys.stderr.fileno(),
            stderr=subprocess.PIPE if capture else sys.stderr.fileno(),
            text=True,
            timeout=GO_COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(
            f"`go {' '.join(args)}` did not finish within {_minutes(GO_COMMAND_TIMEOUT)}"
        ) from exc
    if result.returncode != 0:
        detail = f": {result.stderr.strip()}" if capture else " (its output is above)"
        raise ClusterError(
            f"`go {' '.join(args)}` in {cwd} failed with exit code {result.returncode}{detail}"
        )
    return result.stdout if capture else ""


def dies_with_this_process() -> list[str]:
    """A command prefix asking Linux to SIGKILL the command when this process dies, however it
    dies (setpriv, from util-linux; no prefix where it is missing).

    KILL, not TERM: a cluster's three processes would get it at once, and an API server whose
    etcd is gone hangs in its graceful shutdown.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig=KILL", "--"] if setpriv is not None else []


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- running ---------------------------------------------------------------------------------


@dataclass
class ClusterProcess:
    """One process of a cluster, as recorded in its state file."""

    name: str
    pid: int
    executable: str
    log_file: str
    command: list[str] = field(default_factory=list)
    """What it was started with, to start it again (empty in state files from before)."""


@dataclass
class Cluster:
    """A running control plane. Use `kubectl()` or the kubeconfig; `stop()` ends it."""

    state_dir: Path
    bin_dir: Path
    server: str
    """The API server's URL, https://127.0.0.1:<port>."""
    kubeconfig: Path
    """An admin kubeconfig (a client certificate in the system:masters group)."""
    processes: list[ClusterProcess] = field(default_factory=list)
    """In start order; stopped in reverse order."""
    host: node.HostState | None = None
    """With a node: the machine as it was before it (see tests/node.py)."""
    _children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input_text: str | None = None,
        timeout: float = KUBECTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run the cached kubectl with this cluster's kubeconfig; raise KubectlError if asked."""
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            argv, input=input_text, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def running(self) -> list[str]:
        """The names of its processes that are still running."""
        return [process.name for process in self.processes if self.alive(process)]

    def alive(self, process: ClusterProcess) -> bool:
        """Whether the process still runs (for processes started by another command: whether
        its pid still runs the recorded executable)."""
        child = self._children.get(process.pid)
        if child is not None:
            return child.poll() is None
        return _is_ours(process)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), and remove everything but the logs.

        With a node: the controllers stop first (nothing makes new pods), every pod is deleted
        and stopped by the kubelet, then the processes stop and the machine is restored."""
        if self.host is not None:
            for process in reversed(self.processes):
                if process.name in ("kube-controller-manager", "kube-scheduler"):
                    self._terminate(process)
            if "kubelet" in self.running() and "kube-apiserver" in self.running():
                node.drain(self)
        for process in reversed(self.processes):
            self._terminate(process)
        if self.host is not None:
            node.cleanup_kube_proxy(self)
            node.restore_host(self.host)
            self.host = None
        self.processes.clear()
        for name in (STATE_FILE, KUBECONFIG_FILE, "controller-manager.kubeconfig"):
            (self.state_dir / name).unlink(missing_ok=True)
        for name in (PKI_DIR, ETCD_DATA_DIR):
            shutil.rmtree(self.state_dir / name, ignore_errors=True)

    @contextlib.contextmanager
    def apiserver_stopped(self, *, crash: bool = False) -> Iterator[None]:
        """The API server stopped while the `with` body runs (SIGTERM, as in a rolling
        restart; with `crash`, SIGKILL at once), then started again with the same command, so
        on the same address, with the same certificates and etcd; it is ready (/readyz) when
        the `with` ends, even if the body raised. Its log goes on in the same file."""
        index, stopped = next(
            (index, process)
            for index, process in enumerate(self.processes)
            if process.name == "kube-apiserver"
        )
        if not stopped.command:
            raise ClusterError("this cluster's state file does not say how to start its processes")
        if crash and self.alive(stopped):
            os.kill(stopped.pid, signal.SIGKILL)
        self._terminate(stopped)
        try:
            yield
        finally:
            restarted = self._spawn(
                stopped.name, stopped.command, stopped.executable, append_log=True
            )
            self.processes[index] = restarted
            self.save()
            admin_tls = _admin_tls(self.state_dir / PKI_DIR)
            _wait_until(
                self,
                restarted,
                lambda: http_ok(f"{self.server}/readyz", admin_tls),
                APISERVER_READY_TIMEOUT,
                "ready again (/readyz)",
            )

    def save(self) -> None:
        """Record the processes in the state directory, for `load()` by a later command."""
        state = {
            "server": self.server,
            "bin_dir": str(self.bin_dir),
            "kubeconfig": str(self.kubeconfig),
            "processes": [asdict(process) for process in self.processes],
            "host": None if self.host is None else asdict(self.host),
        }
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, state_dir: Path) -> Cluster | None:
        """The cluster recorded in `state_dir` by `save()`, or None if there is none."""
        try:
            state = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(
            state_dir=state_dir,
            bin_dir=Path(state["bin_dir"]),
            server=state["server"],
            kubeconfig=Path(state["kubeconfig"]),
            processes=[ClusterProcess(**process) for process in state["processes"]],
            host=None if state.get("host") is None else node.HostState(**state["host"]),
        )

    def _launch(
        self, name: str, args: list[str], *, outlive_caller: bool, executable: str | None = None
    ) -> ClusterProcess:
        """Start one of the binaries (or `executable`), logging to `<state_dir>/<name>.log`."""
        executable = executable or str(self.bin_dir / name)
        tie_to_parent = [] if outlive_caller else dies_with_this_process()
        process = self._spawn(name, [*tie_to_parent, executable, *args], executable)
        self.processes.append(process)
        return process

    def _spawn(
        self, name: str, command: list[str], executable: str, *, append_log: bool = False
    ) -> ClusterProcess:
        log_file = self.state_dir / f"{name}.log"
        with log_file.open("ab" if append_log else "wb") as log:
            child = subprocess.Popen(
                command,
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C meant for `make` or pytest does not reach it.
                start_new_session=True,
            )
        self._children[child.pid] = child
        return ClusterProcess(name, child.pid, executable, str(log_file), command)

    def _terminate(self, process: ClusterProcess) -> None:
        child = self._children.pop(process.pid, None)
        if child is not None:
            # Our own child: Popen reaps it, so its pid cannot be reused meanwhile.
            child.terminate()
            try:
                child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(STOP_TIMEOUT)
            return
        if not _is_ours(process):  # gone already, or the pid now belongs to another program
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        if not _wait_until_gone(process.pid, STOP_TIMEOUT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            if not _wait_until_gone(process.pid, STOP_TIMEOUT):
                raise ClusterError(f"{process.name} (pid {process.pid}) did not stop")


def start(
    state_dir: Path,
    binaries: Path | None = None,
    *,
    outlive_caller: bool = False,
    with_node: bool = False,
    images: list[Path] | None = None,
) -> Cluster:
    """Start etcd, kube-apiserver and kube-controller-manager, and with `with_node` a node
    running `images` (OCI archives) too; return once all are ready.

    `binaries` defaults to `build()`. With `outlive_caller` false the processes are killed when
    the calling process dies, however it dies (with setpriv, which util-linux has).
    On failure everything started is stopped, and the error quotes the failing process's log.
    """
    binaries = build() if binaries is None else binaries
    state_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, START_ATTEMPTS + 1):
        cluster = Cluster(
            state_dir=state_dir,
            bin_dir=binaries,
            server="",
            kubeconfig=state_dir / KUBECONFIG_FILE,
        )
        try:
            if with_node:
                cluster.host = node.prepare_host(state_dir, SERVICE_CLUSTER_IP_RANGE)
            _start_processes(cluster, outlive_caller=outlive_caller, images=images or [])
        except _PortTakenError:
            # Another program took a port between our probe and the bind: try new ports.
            cluster.stop()
            if attempt == START_ATTEMPTS:
                raise
            continue
        except BaseException:
            cluster.stop()
            raise
        cluster.save()
        return cluster
    raise AssertionError("unreachable: the last attempt returns or raises")


class _PortTakenError(ClusterError):
    pass


def _start_processes(cluster: Cluster, *, outlive_caller: bool, images: list[Path]) -> None:
    state_dir = cluster.state_dir
    for stale in (PKI_DIR, ETCD_DATA_DIR):  # left by a cluster that was not stopped
        shutil.rmtree(state_dir / stale, ignore_errors=True)
    with_node = cluster.host is not None
    # With a node, the API server listens where pods reach it: the gateway of their bridge.
    address = node.GATEWAY if with_node else LOOPBACK
    pki = Pki(state_dir / PKI_DIR, server_ips=(LOOPBACK, address))
    etcd_port, etcd_peer_port, controller_manager_port = free_ports(3)
    (apiserver_port,) = free_ports(1, address)
    cluster.server = f"https://{address}:{apiserver_port}"
    write_kubeconfig(cluster.kubeconfig, cluster.server, pki.ca_cert, pki.admin_cert, pki.admin_key)
    controller_manager_kubeconfig = state_dir / "controller-manager.kubeconfig"
    write_kubeconfig(
        controller_manager_kubeconfig,
        cluster.server,
        pki.ca_cert,
        pki.controller_manager_client_cert,
        pki.controller_manager_client_key,
    )

    def launch(name: str, args: list[str], executable: str | None = None) -> ClusterProcess:
        return cluster._launch(name, args, outlive_caller=outlive_caller, executable=executable)

    admin_tls = _admin_tls(pki.directory)

    def wait_until(
        process: ClusterProcess, ready: Callable[[], bool], timeout: float, what: str
    ) -> None:
        _wait_until(cluster, process, ready, timeout, what)

    etcd_url = f"http://{LOOPBACK}:{etcd_port}"
    peer_url = f"http://{LOOPBACK}:{etcd_peer_port}"
    etcd = launch(
        "etcd",
        [
            "--name=default",
            f"--data-dir={state_dir / ETCD_DATA_DIR}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            # Throw-away data: skipping fsync makes every API write much faster.
            "--unsafe-no-fsync=true",
        ],
    )
    wait_until(etcd, lambda: http_ok(f"{etcd_url}/health", None), ETCD_READY_TIMEOUT, "healthy")

    if with_node:
        node_flags = [
            # Nodes are authorized as nodes, and may only touch their own pods.
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={pki.admin_cert}",
            f"--kubelet-client-key={pki.admin_key}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            # The node's address, not its name: there is no DNS (`kubectl logs` needs this).
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ]
    else:
        node_flags = [
            # The reconciler would publish the advertise address as the `kubernetes` Service's
            # endpoint and refuses a loopback one; without a node no Pod would call it.
            "--endpoint-reconciler-type=none",
            # RBAC, as in real clusters, so tests can check the operator's own RBAC rules with
            # `kubectl auth can-i --as=...`; the admin identity is in system:masters, which
            # RBAC always allows, so it costs the tests nothing.
            "--authorization-mode=RBAC",
            # Its admission plugin rejects Pods until a default ServiceAccount exists, which
            # only a controller this cluster does not run would create.
            "--disable-admission-plugins=ServiceAccount",
        ]
    apiserver = launch(
        "kube-apiserver",
        [
            f"--etcd-servers={etcd_url}",
            f"--bind-address={address}",
            f"--advertise-address={address}",
            f"--secure-port={apiserver_port}",
            f"--tls-cert-file={pki.apiserver_cert}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            # On SIGTERM, end open watches after 2 s: without it a client's watch holds the
            # graceful shutdown until STOP_TIMEOUT's SIGKILL (`apiserver_stopped`).
            "--shutdown-watch-termination-grace-period=2s",
            *node_flags,
        ],
    )
    wait_until(
        apiserver,
        lambda: http_ok(f"{cluster.server}/readyz", admin_tls),
        APISERVER_READY_TIMEOUT,
        "ready (/readyz)",
    )

    # With a node, every default controller: Deployments, ServiceAccounts, EndpointSlices and
    # the CA ConfigMap that pods' service-account volumes need.
    controllers = "*" if with_node else ",".join(CONTROLLERS)
    controller_manager = launch(
        "kube-controller-manager",
        [
            f"--kubeconfig={controller_manager_kubeconfig}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={controller_manager_port}",
            f"--tls-cert-file={pki.controller_manager_cert}",
            f"--tls-private-key-file={pki.controller_manager_key}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--controllers={controllers}",
            "--leader-elect=false",
        ],
    )
    wait_until(
        controller_manager,
        lambda: http_ok(f"https://{LOOPBACK}:{controller_manager_port}/healthz", admin_tls),
        CONTROLLER_MANAGER_READY_TIMEOUT,
        "healthy (/healthz)",
    )
    if with_node:
        node.start_node(
            cluster, pki, launch=launch, wait_until=wait_until, admin_tls=admin_tls, images=images
        )


def _wait_until(
    cluster: Cluster, process: ClusterProcess, ready: Callable[[], bool], timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if not cluster.alive(process):
            tail = _tail(Path(process.log_file))
            if "address already in use" in tail:
                raise _PortTakenError(f"{process.name}: a port was taken{_log_excerpt(process)}")
            raise ClusterError(f"{process.name} exited before it was {what}{_log_excerpt(process)}")
        if time.monotonic() >= deadline:
            raise ClusterError(
                f"{process.name} was not {what} within {timeout:.0f} s{_log_excerpt(process)}"
            )
        time.sleep(0.1)


def _is_ours(process: ClusterProcess) -> bool:
    """Whether the recorded process is still running that executable (pids get reused)."""
    try:
        command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{process.pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}:  # exited, not yet reaped
        return False
    return command_line.split(b"\0", 1)[0] == process.executable.encode()


def _wait_until_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ChildProcessError):  # reap it if it is our child
            os.waitpid(pid, os.WNOHANG)
        stat_file = Path(f"/proc/{pid}/stat")
        with contextlib.suppress(OSError):
            if stat_file.read_text(encoding="ascii").rsplit(")", 1)[-1].split()[0] in {"Z", "X"}:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Distinct free TCP ports of `host` (all bound at once, so none is returned twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _admin_tls(pki_dir: Path) -> ssl.SSLContext:
    """TLS as the admin, for probes, from the files `Pki` wrote into `pki_dir`."""
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    return context


def http_ok(url: str, tls: ssl.SSLContext | None) -> bool:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]  # loopback
    if tls is not None:
        handlers.append(urllib.request.HTTPSHandler(context=tls))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=PROBE_TIMEOUT) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _log_excerpt(process: ClusterProcess) -> str:
    return f"\n--- last lines of {process.log_file} ---\n{_tail(Path(process.log_file))}"


# -- certificates and kubeconfigs ------------------------------------------------------------


class Pki:
    """A throw-away CA and what it signs, written as PEM files in one folder. ECDSA P-256:
    instant to generate. `issue()` signs more certificates (a node's, for instance)."""

    def __init__(self, directory: Path, server_ips: tuple[str, ...] = (LOOPBACK,)) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sluice-test-ca")])
        self._now = datetime.datetime.now(datetime.UTC)
        ca_cert = (
            _certificate_builder(self._ca_name, self._ca_name, self._ca_key.public_key(), self._now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca_cert = directory / "ca.crt"
        self.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.apiserver_cert, self.apiserver_key = self.issue(
            "apiserver",
            "kube-apiserver",
            server_ips=[*server_ips, KUBERNETES_SERVICE_IP],
            server_names=["localhost", *KUBERNETES_SERVICE_NAMES],
        )
        self.controller_manager_cert, self.controller_manager_key = self.issue(
            "controller-manager", "kube-controller-manager", server_ips=[LOOPBACK]
        )
        # system:masters: the group that RBAC always allows everything.
        self.admin_cert, self.admin_key = self.issue(
            "admin", "sluice-admin", organization="system:masters"
        )
        self.controller_manager_client_cert, self.controller_manager_client_key = self.issue(
            "controller-manager-client",
            "system:kube-controller-manager",
            organization="system:masters",
        )
        service_account_key = ec.generate_private_key(ec.SECP256R1())
        self.service_account_key = directory / "service-account.key"
        _write_private_key(self.service_account_key, service_account_key)
        self.service_account_public_key = directory / "service-account.pub"
        self.service_account_public_key.write_bytes(
            service_account_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def issue(
        self,
        stem: str,
        common_name: str,
        *,
        organization: str | None = None,
        server_ips: list[str] | None = None,
        server_names: list[str] | None = None,
    ) -> tuple[Path, Path]:
        """A client certificate, or a serving one when addresses or names are given; returns
        the paths of the certificate and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization is not None:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        server = bool(server_ips or server_names)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _certificate_builder(x509.Name(attributes), self._ca_name, key.public_key(), self._now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [
                *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips or []),
                *(x509.DNSName(name) for name in server_names or []),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        cert_path, key_path = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private_key(key_path, key)
        return cert_path, key_path


def _certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Backdated a little: a client whose clock is slightly behind still accepts it.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def write_kubeconfig(path: Path, server: str, ca_cert: Path, cert: Path, key: Path) -> None:
    """A self-contained kubeconfig: the certificates are embedded, not referred to."""

    def embedded(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode("ascii")

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sluice-test",
                "cluster": {"server": server, "certificate-authority-data": embedded(ca_cert)},
            }
        ],
        "users": [
            {
                "name": "sluice-admin",
                "user": {
                    "client-certificate-data": embedded(cert),
                    "client-key-data": embedded(key),
                },
            }
        ],
        "contexts": [
            {"name": "sluice-test", "context": {"cluster": "sluice-test", "user": "sluice-admin"}}
        ],
        "current-context": "sluice-test",
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


# -- command line ----------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"


def _usage_hint(cluster: Cluster) -> str:
    return (
        f"  export KUBECONFIG={cluster.kubeconfig}\n"
        f"  {cluster.bin_dir / 'kubectl'} get ns\n"
        "Stop it with `make cluster-down` (python -m tests.cluster down)."
    )


def _command_up() -> int:
    state_dir = cli_state_dir()
    existing = Cluster.load(state_dir)
    if existing is not None:
        running = existing.running()
        if len(running) == len(existing.processes):
            print(f"The cluster is already up: {existing.server}\n{_usage_hint(existing)}")
            return 0
        progress(f"a previous cluster is half up (running: {running or 'none'}); restarting it")
        existing.stop()
    binaries = build()
    no_node = node.node_unavailable_reason()
    images = []
    if no_node is None:
        from image.build import build as build_image  # noqa: PLC0415 - only with a node

        images.append(build_image())
    else:
        progress(f"starting the control plane without a node: {no_node}")
    began = time.monotonic()
    cluster = start(
        state_dir, binaries, outlive_caller=True, with_node=no_node is None, images=images
    )
    with_node = f", and the node {node.NODE_NAME} running Sluice's image" if images else ""
    print(
        f"Kubernetes {K8S_VERSION} (etcd {ETCD_VERSION}) is up in "
        f"{time.monotonic() - began:.1f} s: {cluster.server}{with_node}; logs in {state_dir}\n"
        f"{_usage_hint(cluster)}"
    )
    return 0


def _command_down() -> int:
    cluster = Cluster.load(cli_state_dir())
    if cluster is None:
        print("No cluster is up.")
        return 0
    cluster.stop()
    print("The cluster is down.")
    return 0


def _command_status() -> int:
    cluster = Cluster.load(cli_state_dir())
    if cluster is None:
        print("No cluster is up.")
        return 1
    running = cluster.running()
    for process in cluster.processes:
        state = "running" if process.name in running else "NOT RUNNING"
        print(f"{process.name:<24} pid {process.pid:<8} {state}  (log: {process.log_file})")
    if len(running) != len(cluster.processes):
        print("The cluster is not fully up: run `make cluster-down`, then `make cluster`.")
        return 1
    print(f"The cluster is up: {cluster.server}\n{_usage_hint(cluster)}")
    return 0


def _command_build() -> int:
    print(build())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster",
        description=f"A local Kubernetes {K8S_VERSION} control plane built from source and cached "
        f"in {cache_root()} (set SLUICE_CACHE to move it).",
    )
    commands: dict[str, tuple[Callable[[], int], str]] = {
        "build": (_command_build, "build the binaries into the cache (if missing)"),
        "up": (_command_up, "build if needed, then start a cluster that outlives this command"),
        "down": (_command_down, "stop the cluster that `up` started"),
        "status": (_command_status, "say whether that cluster is up (exit 1 if not)"),
    }
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in commands.items():
        subcommands.add_parser(name, help=help_text)
    arguments = parser.parse_args(argv)
    try:
        return commands[arguments.command][0]()
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
