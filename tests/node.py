"""A real node beside the test control plane: containerd and runc (Debian's packages), the
CNI bridge, and the kubelet, kube-scheduler and kube-proxy built with the control plane
(tests/cluster.py). Pods really run, from images imported without a registry.

Everything a node changes on the machine is recorded before it is changed (`HostState`) and put
back by `restore_host()`, even after a harness that was killed: its iptables and ip6tables
chains, its bridge, the sysctls the kubelet and the bridge plugin set, the folders it creates
outside the state directory, its cgroups and its mounts. Only one node runs on a machine at a
time (a lock in the cache).

Network: pods live on the harness's own bridge, `BRIDGE`, in `POD_SUBNET`; the host is the
bridge's gateway, `GATEWAY`, where the API server and every host-side server pods use (the
PostgreSQL of the tests, the twins) listen. Pods reach nothing else: no masquerading, no DNS.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from tests.cluster import Cluster, ClusterProcess, Pki

NODE_NAME = "sluice-node"
BRIDGE = "sluice0"
POD_SUBNET = "10.88.0.0/24"
GATEWAY = "10.88.0.1"
CNI_NETWORK = "sluice-pods"
CNI_BIN_DIR = Path("/usr/lib/cni")
SOCKET_DIR = Path("/run/sluice-node")
#: The sandbox image, built here: registry.k8s.io's pause cannot be pulled.
PAUSE_IMAGE = "sluice.local/pause:1"

#: Debian's packages a node needs (`scripts/ensure-packages.sh` installs them).
NODE_COMMANDS = ("containerd", "ctr", "runc", "iptables", "ip6tables", "ip")

NODE_READY_TIMEOUT = 120.0
CONTAINERD_READY_TIMEOUT = 30.0
DRAIN_TIMEOUT = 90.0
STALE_EXIT_TIMEOUT = 15.0
COMMAND_TIMEOUT = 120.0

#: Sysctls that the kubelet (protectKernelDefaults off) and the CNI bridge plugin set.
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
#: Places the kubelet, containerd and the CNI plugins use whatever they are told.
FIXED_PATHS = (
    "/var/lib/cni",
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/kubelet",
    "/run/containerd",
    "/run/sluice-node",
    "/etc/cni",
    "/opt/cni",
)
#: Cgroups the kubelet (cgroupfs driver) and containerd create under each hierarchy.
CGROUP_NAMES = ("kubepods", "kubepods.slice", "k8s.io", "default")
CGROUP_ROOT = Path("/sys/fs/cgroup")
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")
CHAIN_PREFIXES = ("KUBE-", "CNI-", "SLUICE-")
#: Drops whatever pods send off the bridge: they reach the host and each other, nothing else.
ISOLATION_CHAIN = "SLUICE-NODE-ISOLATION"

PAUSE_SOURCE = """\
// The pod sandbox's process: it holds the pod's namespaces, reaps orphans and stops on a signal.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for received := range signals {
		if received != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
"""


class NodeError(RuntimeError):
    """The node could not be prepared, started or taken down."""


def node_unavailable_reason() -> str | None:
    """Why no node can run here (not root, or Debian's packages missing), or None."""
    if os.geteuid() != 0:
        return "a node needs root (containerd, runc, iptables, the CNI bridge)"
    missing = [command for command in NODE_COMMANDS if shutil.which(command) is None]
    if not (CNI_BIN_DIR / "bridge").exists():
        missing.append(f"{CNI_BIN_DIR}/bridge")
    if missing:
        return (
            f"a node needs {', '.join(missing)}: run scripts/ensure-packages.sh (Debian's "
            "containerd, runc, containernetworking-plugins, iptables and iproute2)"
        )
    return None


# -- what the machine looked like before -----------------------------------------------------


@dataclass
class HostState:
    """The machine as it was before the node: what `restore_host()` puts back."""

    sysctls: dict[str, str] = field(default_factory=dict)
    existing_paths: list[str] = field(default_factory=list)
    existing_cgroups: list[str] = field(default_factory=list)
    #: By command (iptables, ip6tables), then table: the chains that existed.
    existing_chains: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    bridge_existed: bool = False
    state_dir: str = ""


def host_state_file() -> Path:
    from tests.cluster import cache_root  # noqa: PLC0415 - cluster imports this module

    return cache_root() / "node-host.json"


def prepare_host(state_dir: Path, service_range: str) -> HostState:
    """Record the machine, then create the bridge with the gateway address (the API server
    binds to it before any pod exists). A node left by a killed harness is cleaned first."""
    restore_after_killed_harness()
    state = HostState(
        sysctls={name: _read_sysctl(name) for name in SYSCTLS if _sysctl_path(name).exists()},
        existing_paths=[path for path in FIXED_PATHS if Path(path).exists()],
        existing_cgroups=[str(path) for path in _cgroups()],
        existing_chains={command: _chains(command) for command in ("iptables", "ip6tables")},
        bridge_existed=Path(f"/sys/class/net/{BRIDGE}").exists(),
        state_dir=str(state_dir),
    )
    if state.bridge_existed:
        raise NodeError(
            f"the network interface {BRIDGE} exists already: another node is running, or one "
            f"was left behind (remove it with `ip link delete {BRIDGE}`)"
        )
    host_state_file().parent.mkdir(parents=True, exist_ok=True)
    host_state_file().write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{GATEWAY}/{POD_SUBNET.split('/')[1]}", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    # Service addresses stay on the bridge even before kube-proxy translates them.
    _run("ip", "route", "add", service_range, "dev", BRIDGE)
    _run("iptables", "-w", "-N", ISOLATION_CHAIN)
    _run("iptables", "-w", "-A", ISOLATION_CHAIN, "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP")
    _run("iptables", "-w", "-I", "FORWARD", "-j", ISOLATION_CHAIN)
    return state


def restore_after_killed_harness() -> None:
    """Put the machine back as it was before a node whose harness was killed (its state is
    still recorded); refuse while that node's processes still run (`make cluster` up)."""
    stale = _load_host_state()
    if stale is None:
        return
    # A harness killed a moment ago: its processes get their SIGKILL from the kernel, but need
    # a moment to be gone.
    deadline = time.monotonic() + STALE_EXIT_TIMEOUT
    while _still_running(stale) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _still_running(stale):
        raise NodeError(
            f"a node is running already (state in {stale.state_dir}); stop it first "
            "(`make cluster-down`)"
        )
    restore_host(stale)


def restore_host(state: HostState) -> None:
    """Undo what a node did to the machine: mounts under its state directory, its chains, its
    bridge, its cgroups and folders, and the sysctls it changed. Safe to run twice."""
    if state.state_dir:
        _kill_processes_mentioning(state.state_dir)
    for cgroup in _cgroups():
        if str(cgroup) not in state.existing_cgroups:
            _kill_cgroup_members(cgroup)
    if state.state_dir:
        _unmount_under(Path(state.state_dir))
    for command, tables in state.existing_chains.items():
        _remove_new_chains(command, tables)
    if not state.bridge_existed:
        with contextlib.suppress(NodeError):
            _run("ip", "link", "delete", BRIDGE)
    for cgroup in sorted(_cgroups(), key=lambda path: -len(path.parts)):
        if str(cgroup) not in state.existing_cgroups:
            _remove_cgroup(cgroup)
    for path in FIXED_PATHS:
        if path not in state.existing_paths:
            _unmount_under(Path(path))
            shutil.rmtree(path, ignore_errors=True)
    for name, value in state.sysctls.items():
        if _read_sysctl(name) != value:
            _sysctl_path(name).write_text(value, encoding="ascii")
    host_state_file().unlink(missing_ok=True)


def machine_snapshot() -> dict[str, object]:
    """What a node may change on the machine, as it is now: to compare before and after."""
    chains = {
        command: {
            table: sorted(c for c in names if c.startswith(CHAIN_PREFIXES))
            for table, names in _chains(command).items()
        }
        for command in ("iptables", "ip6tables")
    }
    return {
        "sysctls": {name: _read_sysctl(name) for name in SYSCTLS if _sysctl_path(name).exists()},
        "paths": [path for path in FIXED_PATHS if Path(path).exists()],
        "cgroups": sorted(str(path) for path in _cgroups()),
        "chains": chains,
        "bridge": Path(f"/sys/class/net/{BRIDGE}").exists(),
        "host state recorded": host_state_file().exists(),
    }


def _still_running(state: HostState) -> bool:
    from tests.cluster import Cluster  # noqa: PLC0415

    recorded = Cluster.load(Path(state.state_dir)) if state.state_dir else None
    return recorded is not None and bool(recorded.running())


def _load_host_state() -> HostState | None:
    try:
        recorded = json.loads(host_state_file().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return HostState(**recorded)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name


def _read_sysctl(name: str) -> str:
    return _sysctl_path(name).read_text(encoding="ascii").strip()


def _cgroups() -> list[Path]:
    """The node's cgroup folders that exist now, in every hierarchy (v1 controllers and v2)."""
    found: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return found
    hierarchies = [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir())]
    for hierarchy in hierarchies:
        found += [hierarchy / name for name in CGROUP_NAMES if (hierarchy / name).is_dir()]
    return found


def _kill_processes_mentioning(text: str) -> None:
    """SIGKILL the processes whose command line names `text`: containerd's shims, which
    outlive containerd, name its socket in the state directory."""
    needle = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


def _kill_cgroup_members(cgroup: Path) -> None:
    """SIGKILL every process left in a cgroup tree (containers of a node that was killed)."""
    for procs in cgroup.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            for pid in procs.read_text(encoding="ascii").split():
                os.kill(int(pid), signal.SIGKILL)


def _remove_cgroup(cgroup: Path) -> None:
    """rmdir a cgroup tree, children first (a cgroup folder only goes with rmdir)."""
    if not cgroup.is_dir():
        return
    children = sorted(
        (path for path in cgroup.rglob("*") if path.is_dir()), key=lambda p: -len(p.parts)
    )
    for folder in [*children, cgroup]:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _chains(command: str) -> dict[str, list[str]]:
    chains: dict[str, list[str]] = {}
    for table in IPTABLES_TABLES:
        listed = _run(command, "-w", "-t", table, "-S", check=False)
        chains[table] = [
            line.split()[1] for line in listed.splitlines() if line.startswith(("-N ", "-P "))
        ]
    return chains


def _remove_new_chains(command: str, before: dict[str, list[str]]) -> None:
    """Remove the KUBE-/CNI- chains that were not there before, and every rule jumping to them."""
    for table in IPTABLES_TABLES:
        rules = _run(command, "-w", "-t", table, "-S", check=False).splitlines()
        new = {
            line.split()[1]
            for line in rules
            if line.startswith("-N ")
            and line.split()[1].startswith(CHAIN_PREFIXES)
            and line.split()[1] not in before.get(table, [])
        }
        if not new:
            continue
        for rule in rules:
            words = rule.split()
            if words[0] == "-A" and "-j" in words and words[words.index("-j") + 1] in new:
                _run(command, "-w", "-t", table, "-D", *words[1:], check=False)
        for chain in new:
            _run(command, "-w", "-t", table, "-F", chain, check=False)
        for chain in new:
            _run(command, "-w", "-t", table, "-X", chain, check=False)


def _unmount_under(folder: Path) -> None:
    """Unmount everything mounted at or below `folder`, deepest first (lazily: a mount still
    busy goes when its last user does)."""
    prefix = str(folder.resolve()) if folder.exists() else str(folder)
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                mounts.append(point)
    for point in sorted(set(mounts), key=lambda p: -p.count("/")):
        _run("umount", "-l", point, check=False)


def _succeeds(*argv: str) -> bool:
    """Whether a command exits 0 (its output is not needed)."""
    done = subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT, check=False)
    return done.returncode == 0


def _run(*argv: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise NodeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return result.stdout


# -- the pause image -----------------------------------------------------------------------


def pause_archive() -> Path:
    """The sandbox image as an OCI archive, built once into the cache."""
    from image.oci import ImageConfig, write_oci_archive  # noqa: PLC0415

    from tests.cluster import bin_dir, build_once, run_go  # noqa: PLC0415

    folder = bin_dir().parent / "pause"
    archive = folder / "pause.oci.tar"

    def build_it(go: Path) -> None:
        source = folder / "src"
        source.mkdir(exist_ok=True)
        (source / "go.mod").write_text("module sluice.local/pause\n\ngo 1.26.0\n", "utf-8")
        (source / "main.go").write_text(PAUSE_SOURCE, encoding="utf-8")
        root = folder / "root"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        output = str(root / "pause")
        run_go(go, ["build", "-trimpath", "-ldflags", "-s -w", "-o", output, "."], cwd=source)
        partial = archive.with_suffix(".partial")
        write_oci_archive(
            root,
            partial,
            reference=PAUSE_IMAGE,
            config=ImageConfig(entrypoint=["/pause"], user="65535:65535"),
        )
        os.replace(partial, archive)

    build_once(folder, archive.exists, build_it, missing=lambda: "Go is needed for the pause image")
    return archive


# -- starting --------------------------------------------------------------------------------


@dataclass
class NodeFiles:
    """Where a node's configuration and runtime state live, inside the cluster's state dir."""

    root: Path

    @property
    def containerd_dir(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        # Not in the state directory: a socket's path must stay under 108 bytes, and pytest's
        # temporary folders can be long. One node per machine, so one fixed place does.
        return SOCKET_DIR / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def kubelet_dir(self) -> Path:
        # Beside the socket, for the same reason: the kubelet makes sockets of its own in its
        # root (pod-resources/<10 digits>), which a long pytest folder took past 108 bytes.
        return SOCKET_DIR / "kubelet"


def start_node(
    cluster: Cluster,
    pki: Pki,
    *,
    launch: Callable[..., ClusterProcess],
    wait_until: Callable[[ClusterProcess, Callable[[], bool], float, str], None],
    admin_tls: ssl.SSLContext,
    images: list[Path],
) -> None:
    """Start containerd, import `images` (and the pause image), then the scheduler, the kubelet
    and kube-proxy; return once the node is Ready."""
    from tests.cluster import free_ports, http_ok, write_kubeconfig  # noqa: PLC0415

    files = NodeFiles(cluster.state_dir / "node")
    files.root.mkdir(parents=True, exist_ok=True)
    scheduler_port, kubelet_port, kubelet_health_port, proxy_health_port, proxy_metrics_port = (
        free_ports(5)
    )

    scheduler_cert, scheduler_key = pki.issue("scheduler", "system:kube-scheduler")
    scheduler_serving_cert, scheduler_serving_key = pki.issue(
        "scheduler-serving", "kube-scheduler", server_ips=["127.0.0.1"]
    )
    scheduler_kubeconfig = files.root / "scheduler.kubeconfig"
    write_kubeconfig(
        scheduler_kubeconfig, cluster.server, pki.ca_cert, scheduler_cert, scheduler_key
    )
    scheduler = launch(
        "kube-scheduler",
        [
            f"--kubeconfig={scheduler_kubeconfig}",
            f"--authentication-kubeconfig={scheduler_kubeconfig}",
            f"--authorization-kubeconfig={scheduler_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={scheduler_port}",
            f"--tls-cert-file={scheduler_serving_cert}",
            f"--tls-private-key-file={scheduler_serving_key}",
            "--leader-elect=false",
        ],
    )
    wait_until(
        scheduler,
        lambda: http_ok(f"https://127.0.0.1:{scheduler_port}/healthz", admin_tls),
        60.0,
        "healthy (/healthz)",
    )

    _write_cni_config(files)
    files.containerd_dir.mkdir(parents=True, exist_ok=True)
    SOCKET_DIR.mkdir(parents=True, exist_ok=True)
    config = files.containerd_dir / "config.toml"
    config.write_text(_containerd_config(files), encoding="utf-8")
    containerd = launch(
        "containerd", ["--config", str(config)], executable=shutil.which("containerd")
    )
    wait_until(
        containerd,
        lambda: _succeeds("ctr", "--address", str(files.containerd_socket), "version"),
        CONTAINERD_READY_TIMEOUT,
        "serving",
    )
    for archive in [pause_archive(), *images]:
        _run(
            "ctr",
            "--address",
            str(files.containerd_socket),
            "--namespace",
            "k8s.io",
            "images",
            "import",
            str(archive),
            timeout=600,
        )

    kubelet_cert, kubelet_key = pki.issue(
        "kubelet-client", f"system:node:{NODE_NAME}", organization="system:nodes"
    )
    serving_cert, serving_key = pki.issue(
        "kubelet", NODE_NAME, server_names=[NODE_NAME], server_ips=[GATEWAY]
    )
    kubelet_kubeconfig = files.root / "kubelet.kubeconfig"
    write_kubeconfig(kubelet_kubeconfig, cluster.server, pki.ca_cert, kubelet_cert, kubelet_key)
    kubelet_config = files.root / "kubelet.yaml"
    kubelet_config.write_text(
        yaml.safe_dump(
            _kubelet_config(
                files,
                pki,
                cert=serving_cert,
                key=serving_key,
                port=kubelet_port,
                health_port=kubelet_health_port,
            )
        ),
        encoding="utf-8",
    )
    kubelet = launch(
        "kubelet",
        [
            f"--config={kubelet_config}",
            f"--kubeconfig={kubelet_kubeconfig}",
            f"--root-dir={files.kubelet_dir}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={GATEWAY}",
        ],
    )

    proxy_cert, proxy_key = pki.issue("kube-proxy", "system:kube-proxy")
    proxy_kubeconfig = files.root / "kube-proxy.kubeconfig"
    write_kubeconfig(proxy_kubeconfig, cluster.server, pki.ca_cert, proxy_cert, proxy_key)
    proxy = launch(
        "kube-proxy",
        [
            f"--kubeconfig={proxy_kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            "--proxy-mode=iptables",
            f"--cluster-cidr={POD_SUBNET}",
            f"--nodeport-addresses={GATEWAY}/32",
            f"--healthz-bind-address=127.0.0.1:{proxy_health_port}",
            f"--metrics-bind-address=127.0.0.1:{proxy_metrics_port}",
            # Leave the machine's conntrack settings as they are.
            "--conntrack-max-per-core=0",
            "--conntrack-min=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
        ],
    )
    wait_until(kubelet, lambda: _node_ready(cluster), NODE_READY_TIMEOUT, "Ready (Node)")
    wait_until(
        proxy,
        lambda: http_ok(f"http://127.0.0.1:{proxy_health_port}/healthz", None),
        60.0,
        "healthy (/healthz)",
    )


def _node_ready(cluster: Cluster) -> bool:
    found = cluster.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
    if found.returncode != 0:
        return False
    conditions = json.loads(found.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _write_cni_config(files: NodeFiles) -> None:
    files.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    network = {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # Pods talk to the host and to each other only: nothing to masquerade.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(files.root / "cni" / "ipam"),
                },
            }
        ],
    }
    (files.cni_conf_dir / "10-sluice.conflist").write_text(json.dumps(network), encoding="utf-8")


def _containerd_config(files: NodeFiles) -> str:
    directory = files.containerd_dir
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = "{directory / "root"}"
state = "{directory / "state"}"

[grpc]
  address = "{files.containerd_socket}"

[ttrpc]
  address = "{files.containerd_socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{directory / "opt"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # This machine does not grant lowering a process's OOM score: without this, every sandbox
  # fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{directory / "runc"}"

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{files.cni_conf_dir}"
"""


def _kubelet_config(
    files: NodeFiles, pki: Pki, *, cert: Path, key: Path, port: int, health_port: int
) -> dict[str, object]:
    endpoint = f"unix://{files.containerd_socket}"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": GATEWAY,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": health_port,
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": endpoint,
        "imageServiceEndpoint": endpoint,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        # 1.37 refuses cgroup v1 by default; this machine has the hybrid v1 layout.
        "failCgroupV1": False,
        "enforceNodeAllocatable": [],
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        # Imported images cannot be pulled again: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "podLogsDir": str(files.root / "pod-logs"),
        "serializeImagePulls": False,
        "registerNode": True,
    }


# -- stopping --------------------------------------------------------------------------------


def drain(cluster: Cluster) -> None:
    """Delete every pod and wait until the kubelet has stopped them (their sandboxes' networks
    released through CNI), so that stopping the node leaves no container behind."""
    with contextlib.suppress(Exception):
        cluster.kubectl(
            "delete",
            "pods",
            "--all",
            "--all-namespaces",
            "--grace-period=1",
            "--wait=false",
            check=False,
        )
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        listed = cluster.kubectl("get", "pods", "--all-namespaces", "-o", "name", check=False)
        if listed.returncode != 0 or not listed.stdout.strip():
            return
        time.sleep(0.5)


def cleanup_kube_proxy(cluster: Cluster) -> None:
    """kube-proxy's own cleanup of its iptables rules."""
    _run(str(cluster.bin_dir / "kube-proxy"), "--cleanup", check=False)
