"""A local single-node cluster: the local control plane plus what runs pods.

On top of hack/controlplane.py's etcd, kube-apiserver and kube-controller-manager, this
starts kube-scheduler, containerd (Debian's, with runc and the CNI plugins), a kubelet, a
bridge pod network, kube-proxy and CoreDNS, and loads the images hack/images.sh built, so
Kattle can be tested as its users run it: an image, pods, a Helm release, Services, DNS.

The host is left as it was found; what `up` changes, `down` undoes:
- a bridge (`kattle0`, 10.244.0.1/24) with forwarding on for that bridge only (the
  machine-wide ip_forward is never touched), and two filter rules that drop whatever pods
  send to anything but the bridge's network and address: pods reach each other, the API
  server and Services, and nothing else;
- kube-proxy's rules (removed with `kube-proxy --cleanup`); NodePorts only on the bridge;
- cgroups under `kattle-node` in each hierarchy (the host's cgroup mounts are never
  changed: kubelet runs on cgroup v1 with `failCgroupV1: false` where the host has it);
- containerd and the kubelet run in a private mount namespace in which the kernel settings
  kubelet insists on writing (vm.overcommit_memory, vm.panic_on_oom, kernel.panic,
  kernel.panic_on_oops, kernel.keys.root_maxkeys, kernel.keys.root_maxbytes) are files
  already holding its values, and in which the folders they write outside their
  state (/run/containerd, /var/lib/cni, /var/log/containers) are folders of this node's;
  so every mount they make goes with the namespace, and the host's settings never change;
- the mount points those folders need, created only where missing and removed again.

It needs root. Everything else it owns lives in its state folder, also the processes'
ids, so `down` stops exactly what `up` started.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import controlplane

HACK_DIR = Path(__file__).resolve().parent
NODE_NAME = "kattle-node"
BRIDGE = "kattle0"
POD_NETWORK = ipaddress.ip_network("10.244.0.0/24")
BRIDGE_ADDRESS = "10.244.0.1"
CLUSTER_DNS = "10.0.0.10"
CGROUP_ROOT = "kattle-node"
CNI_BIN_DIR = Path("/usr/lib/cni")
PROCESS_FILE = "node-processes.json"
CREATED_FILE = "created-paths.json"
READY_TIMEOUT_SECONDS = 180.0
COMMENT = "kattle-node: pods reach the bridge only"
# What kubelet sets at start, where it finds another value (relative to /proc/sys): every
# setting of its `setupKernelTunables` (pkg/kubelet/cm/container_manager_linux.go), with its
# values. Inside the node's mount namespace each is a file already holding that value.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
# The kernel settings a host snapshot compares: kubelet's, and those a node's network or
# kube-proxy could touch.
SNAPSHOT_SYSCTLS = (
    *KUBELET_SYSCTLS,
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/netfilter/nf_conntrack_max",
)
# Folders containerd, its shims and kubelet write to whatever their configuration says;
# inside the node's mount namespace each is a folder of the node's state.
PRIVATE_FOLDERS = ("/run/containerd", "/var/lib/cni", "/var/log/containers", "/var/lib/kubelet")
TOOLS = (
    "containerd",
    "containerd-shim-runc-v2",
    "runc",
    "ctr",
    "iptables",
    "iptables-save",
    "ip6tables-save",
    "nft",
    "ip",
    "unshare",
    "nsenter",
    "mount",
)
DEBIAN_PACKAGES = (
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "nftables",
    "conntrack",
    "buildah",
    "debootstrap",
    "iproute2",
    "util-linux",
)
FIREWALLS = {"iptables": "ip", "ip6tables": "ip6"}


class NodeError(RuntimeError):
    """The node could not be brought up or down; the message says why."""


def run(*args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NodeError(
            f"{' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}"
        )
    if not quiet and result.returncode != 0:
        print(f"node: {' '.join(args)}: {result.stderr.strip()}", file=sys.stderr)
    return result


def why_not_here() -> str | None:
    """One line saying why a node cannot run on this machine, or None if it can."""
    if os.geteuid() != 0:
        return "a node needs root (network, cgroups, mount namespaces): run as root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing or not (CNI_BIN_DIR / "bridge").is_file():
        return (
            f"missing {' '.join(missing) or 'the CNI plugins'}: "
            f"hack/node.sh deps (apt-get install {' '.join(DEBIAN_PACKAGES)})"
        )
    if not Path("/sys/fs/cgroup").is_dir():
        return "no cgroup file system at /sys/fs/cgroup"
    return None


def already_up() -> str | None:
    """One line naming the node that is up on this machine (there is room for one), or None."""
    if not _link_exists(BRIDGE):
        return None
    owner = _bridge_owner()
    return f"a node is up already (bridge {BRIDGE}, state {owner}): hack/node.sh down {owner}"


def node_binaries_dir() -> Path:
    result = subprocess.run(
        [str(HACK_DIR / "binaries.sh"), "path", "--node"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise NodeError(
            "the node's binaries are not built: run `hack/binaries.sh ensure --node`"
            f"\n{result.stderr.strip()}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def image_archives() -> list[Path]:
    folder = Path(run(str(HACK_DIR / "images.sh"), "dir").stdout.strip())
    archives = sorted(folder.glob("*.tar"))
    if not archives:
        raise NodeError("no images built: run `hack/images.sh` first")
    return archives


def cgroup_hierarchies() -> list[Path]:
    """Every mounted hierarchy, v1 controllers and the v2 (unified) one alike."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return [root]
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.is_symlink() and (p / "cgroup.procs").exists()
    )


@dataclass
class Node:
    """One node and the control plane it belongs to, living in `state_dir`."""

    state_dir: Path
    die_with_parent: bool = False

    @property
    def plane(self) -> controlplane.ControlPlane:
        return controlplane.ControlPlane(
            self.state_dir / "controlplane",
            controlplane.binaries_dir(),
            die_with_parent=self.die_with_parent,
            address=BRIDGE_ADDRESS,
            node=NODE_NAME,
            scheduler=node_binaries_dir() / "kube-scheduler",
        )

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "controlplane" / "kubeconfig"

    @property
    def socket(self) -> Path:
        return self.state_dir / "containerd" / "containerd.sock"

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    # -- up ---------------------------------------------------------------------------------

    def up(self) -> Path:
        reason = why_not_here() or already_up()
        if reason:
            raise NodeError(reason)
        bins = node_binaries_dir()
        archives = image_archives()
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self._network_up()
            plane = self.plane
            plane.up()
            self._namespace_up()
            self._containerd_up()
            self._load_images(archives)
            self._kubelet_up(bins, plane)
            self._kube_proxy_up(bins, plane)
            self._addons_up(plane)
        except BaseException:
            self.down(keep_state=True)
            raise
        return self.kubeconfig

    def _network_up(self) -> None:
        # What the firewall held before, so that `down` removes what the node added only.
        (self.state_dir / "firewall-before.json").write_text(json.dumps(_firewall()))
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        # The alias names the state folder, so a node whose folder was lost can be found.
        run("ip", "link", "set", BRIDGE, "alias", str(self.state_dir))
        run("ip", "addr", "add", f"{BRIDGE_ADDRESS}/{POD_NETWORK.prefixlen}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        # Per-interface settings: they go with the bridge.
        _write(Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/forwarding"), "1")
        _write(Path(f"/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6"), "1")
        for rule in _drop_rules():
            run("iptables", "-I", *rule)

    def _namespace_up(self) -> None:
        """A process holding a private mount namespace, prepared for containerd and kubelet."""
        script = ["set -e", *_held_sysctls(self.state_dir / "sysctls")]
        created: list[str] = []
        for folder in PRIVATE_FOLDERS:
            if not Path(folder).exists():
                Path(folder).mkdir(parents=True)
                created.append(folder)
            own = self.state_dir / "private" / folder.strip("/").replace("/", "-")
            own.mkdir(parents=True, exist_ok=True)
            script.append(f"mount --bind {own} {folder}")
        (self.state_dir / CREATED_FILE).write_text(json.dumps(created))
        ready = self.state_dir / "namespace.ready"
        script += [f"touch {ready}", "while :; do sleep 3600; done"]
        # The last word names the state folder on the holder's command line (see _owns).
        self._spawn(
            "namespace",
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                "\n".join(script),
                str(self.state_dir),
            ],
            private=False,
        )
        self._wait("the node's mount namespace", ready.exists, "namespace")

    def _containerd_up(self) -> None:
        config = self.state_dir / "containerd" / "config.toml"
        config.parent.mkdir(exist_ok=True)
        config.write_text(_containerd_config(self.state_dir))
        cni = self.state_dir / "cni" / "net.d"
        cni.mkdir(parents=True, exist_ok=True)
        (cni / "10-kattle.conflist").write_text(json.dumps(_cni_config(self.state_dir), indent=2))
        self._spawn("containerd", ["containerd", "--config", str(config)])
        self._wait(
            "containerd", lambda: self._ctr("version", check=False).returncode == 0, "containerd"
        )

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            "ctr",
            "--address",
            str(self.socket),
            "--namespace",
            "k8s.io",
            *args,
            check=check,
            quiet=not check,
        )

    def _load_images(self, archives: list[Path]) -> None:
        for archive in archives:
            self._ctr("images", "import", str(archive))

    def _kubelet_up(self, bins: Path, plane: controlplane.ControlPlane) -> None:
        for hierarchy in cgroup_hierarchies():
            (hierarchy / CGROUP_ROOT).mkdir(exist_ok=True)
        folder = self.state_dir / "kubelet"
        folder.mkdir(exist_ok=True)
        kubeconfig = folder / "kubeconfig"
        kubeconfig.write_text(
            controlplane.kubeconfig_text(
                plane.server, plane.pki, f"system:node:{NODE_NAME}", "kubelet"
            )
        )
        (folder / "resolv.conf").write_text("# pods resolve through CoreDNS only\n")
        port = controlplane.free_ports(1)[0]
        config = folder / "config.json"
        config.write_text(json.dumps(_kubelet_config(self.state_dir, plane.pki, port), indent=2))
        (self.state_dir / "kubelet.port").write_text(str(port))
        self._start_kubelet(bins)
        self._wait("the node to be Ready", self.node_ready, "kubelet")

    def _start_kubelet(self, bins: Path) -> None:
        folder = self.state_dir / "kubelet"
        self._spawn(
            "kubelet",
            [
                str(bins / "kubelet"),
                f"--config={folder / 'config.json'}",
                f"--kubeconfig={folder / 'kubeconfig'}",
                f"--root-dir={folder / 'root'}",
                f"--cert-dir={folder / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={BRIDGE_ADDRESS}",
                "--v=1",
            ],
        )

    def restart_kubelet(self) -> None:
        """Stops the kubelet and starts it again, as an upgrade or a crash would (fault tests)."""
        self._stop(["kubelet"])
        self._start_kubelet(node_binaries_dir())
        self._wait("the kubelet's health", self._kubelet_healthy, "kubelet")

    def _kubelet_healthy(self) -> bool:
        port = (self.state_dir / "kubelet.port").read_text().strip()
        url = f"http://127.0.0.1:{port}/healthz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.read().strip() == b"ok")
        return False

    def node_ready(self) -> bool:
        out = self.kubectl(
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False,
        )
        return out.returncode == 0 and out.stdout.strip() == "True"

    def _kube_proxy_up(self, bins: Path, plane: controlplane.ControlPlane) -> None:
        folder = self.state_dir / "kube-proxy"
        folder.mkdir(exist_ok=True)
        kubeconfig = folder / "kubeconfig"
        kubeconfig.write_text(
            controlplane.kubeconfig_text(plane.server, plane.pki, "system:kube-proxy", "kube-proxy")
        )
        config = folder / "config.json"
        config.write_text(json.dumps(_kube_proxy_config(kubeconfig), indent=2))
        self._spawn(
            "kube-proxy", [str(bins / "kube-proxy"), f"--config={config}", "--v=1"], private=False
        )

    def _addons_up(self, plane: controlplane.ControlPlane) -> None:
        self.kubectl("apply", "-f", str(HACK_DIR / "node" / "addons.yaml"))
        self.kubectl(
            "-n",
            "kube-system",
            "rollout",
            "status",
            "deployment/coredns",
            f"--timeout={READY_TIMEOUT_SECONDS:.0f}s",
        )

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kubectl = controlplane.binaries_dir() / "kubectl"
        return run(
            str(kubectl), f"--kubeconfig={self.kubeconfig}", *args, check=check, quiet=not check
        )

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], private: bool = True) -> None:
        if private:
            holder = self._processes()["namespace"]
            args = ["nsenter", f"--mount=/proc/{holder}/ns/mnt", "--", *args]
        with self.log_path(name).open("ab") as log:
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                start_new_session=True,
                preexec_fn=controlplane._die_with_parent if self.die_with_parent else None,
            )
        processes = self._processes()
        processes[name] = process.pid
        (self.state_dir / PROCESS_FILE).write_text(json.dumps(processes, indent=2))

    def _processes(self) -> dict[str, int]:
        try:
            return {
                str(k): int(v)
                for k, v in json.loads((self.state_dir / PROCESS_FILE).read_text()).items()
            }
        except (OSError, ValueError):
            return {}

    def _owns(self, pid: int) -> bool:
        try:
            return str(self.state_dir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    def _stop(self, names: list[str]) -> None:
        processes = self._processes()
        pids = [processes.pop(n) for n in names if n in processes]
        # Stopping needs no binaries: a control plane object for its process handling only.
        stopper = controlplane.ControlPlane(self.state_dir, self.state_dir)
        stopper._stop_pids([p for p in pids if self._owns(p)])
        (self.state_dir / PROCESS_FILE).write_text(json.dumps(processes, indent=2))

    def _wait(self, what: str, ready: Any, log: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            pid = self._processes().get(log)
            if pid is not None and not controlplane._alive(pid):
                raise NodeError(
                    f"{log} exited; last lines of {self.log_path(log)}:\n{self._tail(log)}"
                )
            if ready():
                return
            time.sleep(0.25)
        raise NodeError(
            f"timed out waiting for {what}; last lines of {self.log_path(log)}:\n{self._tail(log)}"
        )

    def _tail(self, name: str) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-25:])
        return "(no log)"

    # -- down -------------------------------------------------------------------------------

    def down(self, keep_state: bool = False) -> None:
        """Undoes `up`, step by step, whatever state `up` reached; never raises for a step
        that finds nothing to undo."""
        self._stop(["kube-proxy", "kubelet"])
        self._remove_pods()
        self._stop(["containerd"])
        self._kill_leftovers()
        self._stop(["namespace"])
        with contextlib.suppress(NodeError, controlplane.ControlPlaneError):
            run(str(node_binaries_dir() / "kube-proxy"), "--cleanup", check=False, quiet=True)
        for rule in _drop_rules():
            while run("iptables", "-D", *rule, check=False, quiet=True).returncode == 0:
                pass
        with contextlib.suppress(OSError, ValueError):
            _restore_firewall(json.loads((self.state_dir / "firewall-before.json").read_text()))
        self._remove_cgroups()
        if _link_exists(BRIDGE) and _bridge_owner() == str(self.state_dir):
            run("ip", "link", "del", BRIDGE, check=False)
        self._remove_created_paths()
        plane = self.state_dir / "controlplane"
        controlplane.ControlPlane(plane, plane).down(keep_state=True)
        if not keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _remove_pods(self) -> None:
        if not self.socket.exists():
            return
        with contextlib.suppress(NodeError, controlplane.ControlPlaneError):
            crictl = str(node_binaries_dir() / "crictl")
            # Stopping a sandbox is what runs CNI DEL: the veth and the IP lease go with it.
            run(
                crictl,
                f"--runtime-endpoint=unix://{self.socket}",
                "--timeout=60s",
                "rmp",
                "--all",
                "--force",
                check=False,
                quiet=True,
            )

    def _kill_leftovers(self) -> None:
        """Shims outlive containerd by design; they and their containers go here."""
        pids: set[int] = set()
        for hierarchy in cgroup_hierarchies():
            for procs in (hierarchy / CGROUP_ROOT).rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(p) for p in procs.read_text().split())
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._owns(int(entry.name)):
                pids.add(int(entry.name))
        pids.discard(os.getpid())
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(controlplane._alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _remove_cgroups(self) -> None:
        for hierarchy in cgroup_hierarchies():
            root = hierarchy / CGROUP_ROOT
            if not root.is_dir():
                continue
            # Deepest first: a cgroup goes only once its children have.
            for folder in sorted(
                (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            ):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            with contextlib.suppress(OSError):
                root.rmdir()

    def _remove_created_paths(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for folder in reversed(json.loads((self.state_dir / CREATED_FILE).read_text())):
                with contextlib.suppress(OSError):
                    Path(folder).rmdir()


def _held_sysctls(folder: Path) -> list[str]:
    """Writes a file holding kubelet's value for each setting it writes; returns the
    commands that mount each over its /proc/sys file (in the node's mount namespace)."""
    folder.mkdir(parents=True, exist_ok=True)
    commands = []
    for name, value in KUBELET_SYSCTLS.items():
        if not Path(f"/proc/sys/{name}").exists():
            continue  # not in this kernel: kubelet cannot write it either
        held = folder / name.replace("/", ".")
        held.write_text(value + "\n")
        commands.append(f"mount --bind {held} /proc/sys/{name}")
    return commands


def _write(path: Path, value: str) -> None:
    path.write_text(value + "\n")


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def _bridge_owner() -> str:
    with contextlib.suppress(OSError):
        return Path(f"/sys/class/net/{BRIDGE}/ifalias").read_text().strip()
    return ""


def _drop_rules() -> list[list[str]]:
    """Pods may send to the bridge's own network (each other, via the bridge) and to the
    bridge address (the API server, kubelet, NodePorts); anything else is dropped."""
    comment = ["-m", "comment", "--comment", COMMENT]
    return [
        ["FORWARD", "-i", BRIDGE, "!", "-o", BRIDGE, *comment, "-j", "DROP"],
        ["INPUT", "-i", BRIDGE, "!", "-d", BRIDGE_ADDRESS, *comment, "-j", "DROP"],
    ]


def _firewall() -> dict[str, dict[str, list[str]]]:
    """For iptables and ip6tables: each table's chains, as `iptables-save` lists them."""
    found: dict[str, dict[str, list[str]]] = {}
    for command in FIREWALLS:
        tables: dict[str, list[str]] = {}
        table = ""
        for line in run(f"{command}-save", check=False, quiet=True).stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
                tables[table] = []
            elif line.startswith(":"):
                tables[table].append(line[1:].split()[0])
        found[command] = tables
    return found


def _restore_firewall(before: dict[str, dict[str, list[str]]]) -> None:
    """Removes the chains the node's programs added (kubelet's KUBE-FIREWALL and hint chains;
    kube-proxy cleans its own first), the rules that jump to them, and the tables that did
    not exist before and are empty now (our own drop rules made the filter table)."""
    for command, tables in _firewall().items():
        for table, chains in tables.items():
            old = before.get(command, {}).get(table)
            added = [c for c in chains if c not in (old or []) and c.startswith("KUBE-")]
            for chain in added:
                _unhook(command, table, chain)
                run(command, "-t", table, "-F", chain, check=False, quiet=True)
            for chain in added:
                run(command, "-t", table, "-X", chain, check=False, quiet=True)
            rules = run(command, "-t", table, "-S", check=False, quiet=True).stdout
            if old is None and not any(line.startswith("-A") for line in rules.splitlines()):
                run("nft", "delete", "table", FIREWALLS[command], table, check=False, quiet=True)


def _unhook(command: str, table: str, chain: str) -> None:
    for line in run(command, "-t", table, "-S", check=False, quiet=True).stdout.splitlines():
        words = shlex.split(line)
        if words[:1] == ["-A"] and words[-2:] == ["-j", chain]:
            run(command, "-t", table, "-D", *words[1:], check=False, quiet=True)


def _containerd_config(state: Path) -> str:
    root = state / "containerd"
    cni = state / "cni"
    return f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
oom_score = 0
[grpc]
  address = "{root / "containerd.sock"}"
[ttrpc]
  address = "{root / "containerd.sock.ttrpc"}"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/kattle/pause:node"
  # root has no CAP_SYS_RESOURCE here: runc may only raise a process's oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni / "net.d"}"
    max_conf_num = 1
"""


def _cni_config(state: Path) -> dict[str, Any]:
    return {
        "cniVersion": "0.4.0",
        "name": "kattle",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                # Not the gateway: the plugin would then turn on the machine-wide ip_forward.
                "isGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(state / "cni" / "ipam"),
                    "ranges": [
                        [
                            {
                                "subnet": str(POD_NETWORK),
                                "gateway": BRIDGE_ADDRESS,
                                "rangeStart": str(POD_NETWORK[10]),
                            }
                        ]
                    ],
                    # Services only: there is no default route, so nothing else is routable.
                    "routes": [
                        {"dst": controlplane.SERVICE_CLUSTER_IP_RANGE, "gw": BRIDGE_ADDRESS}
                    ],
                },
            },
            {"type": "loopback"},
        ],
    }


def _kubelet_config(state: Path, pki: controlplane.Pki, healthz_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": BRIDGE_ADDRESS,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(pki.path("kubelet-serving.crt")),
        "tlsPrivateKeyFile": str(pki.path("kubelet-serving.key")),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.path("ca.crt"))},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{state / 'containerd' / 'containerd.sock'}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        # The host mounts cgroup v1 hierarchies; kubelet only warns about it with this.
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": "cluster.local",
        "resolvConf": str(state / "kubelet" / "resolv.conf"),
        "podLogsDir": str(state / "kubelet" / "pod-logs"),
        # Images are loaded, not pulled: none may be collected, none evicted for disk.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        "maxPods": 60,
        "shutdownGracePeriod": "0s",
    }


def _kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "bindAddress": BRIDGE_ADDRESS,
        "healthzBindAddress": f"127.0.0.1:{controlplane.free_ports(1)[0]}",
        "metricsBindAddress": f"127.0.0.1:{controlplane.free_ports(1)[0]}",
        "clusterCIDR": str(POD_NETWORK),
        "nodePortAddresses": [f"{BRIDGE_ADDRESS}/32"],
        # Replies come back through the host whatever the host's br_netfilter says.
        "iptables": {"masqueradeAll": True, "localhostNodePorts": False},
        # Zero: leave the host's conntrack settings alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def host_snapshot() -> dict[str, Any]:
    """What a node may change on the host, to compare before `up` and after `down`."""

    def lines(*args: str) -> list[str]:
        result = subprocess.run(list(args), capture_output=True, text=True, check=False)
        return sorted(
            line for line in result.stdout.splitlines() if line and not line.startswith("#")
        )

    def rules(command: str) -> list[str]:
        # Counters change by themselves; the rules and chains are what matters.
        return [line.split(" [")[0] if line.startswith(":") else line for line in lines(command)]

    sysctls = {}
    for name in SNAPSHOT_SYSCTLS:
        with contextlib.suppress(OSError):
            sysctls[name] = Path(f"/proc/sys/{name}").read_text().strip()
    node_programs = {
        "containerd",
        "kubelet",
        "kube-proxy",
        "kube-scheduler",
        "coredns",
        "containerd-shim-runc-v2",
        "pause",
    }
    processes = sorted(
        p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _comm(p) in node_programs
    )
    return {
        "links": lines("ip", "-o", "link", "show"),
        "addresses": lines("ip", "-o", "addr", "show"),
        "routes": lines("ip", "route", "show", "table", "all"),
        "iptables": rules("iptables-save"),
        "ip6tables": rules("ip6tables-save"),
        "mounts": sorted(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ),
        "cgroups": sorted(str(p) for h in cgroup_hierarchies() for p in h.iterdir() if p.is_dir()),
        "sysctls": sysctls,
        "paths": {
            p: Path(p).exists()
            for p in (
                *PRIVATE_FOLDERS,
                "/run/netns",
                "/var/lib/kubelet",
                "/var/log/pods",
                "/etc/cni/net.d",
                "/var/lib/containerd",
                "/opt/cni",
            )
        },
        "node processes": [_comm(Path(f"/proc/{p}")) for p in processes],
    }


def _comm(proc: Path) -> str:
    with contextlib.suppress(OSError):
        return (proc / "comm").read_text().strip()
    return ""


def snapshot_difference(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """A line for each thing that differs, empty when the host is as it was."""
    found = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list):
            found += [f"{key}: + {x}" for x in new if x not in old]
            found += [f"{key}: - {x}" for x in old if x not in new]
        else:
            found.append(f"{key}: {old} -> {new}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack/node.sh",
        description="A local single-node cluster (control plane, containerd, kubelet, pod "
        "network, kube-proxy, CoreDNS) running the images hack/images.sh built. Needs root.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start one; prints the kubeconfig path last")
    up.add_argument("--dir", help="state folder (default: a new folder under $TMPDIR)")
    down = commands.add_parser("down", help="stop one, undo what it changed on the host")
    down.add_argument(
        "target",
        nargs="?",
        help="its state folder or kubeconfig (default: the node the bridge names)",
    )
    down.add_argument("--keep", action="store_true", help="keep the state folder (logs)")
    check = commands.add_parser("check", help="say whether a node can run here (exit 1 if not)")
    check.add_argument(
        "--up", action="store_true", help="also whether one can start now (none is up already)"
    )
    commands.add_parser("packages", help="the Debian packages a node needs, one a line")
    commands.add_parser("snapshot", help="print what a node may change on the host, as JSON")
    restart = commands.add_parser("restart-kubelet", help="stop and start the node's kubelet")
    restart.add_argument("target", help="its state folder or kubeconfig")
    args = parser.parse_args(argv)
    try:
        return _command(args)
    except (NodeError, controlplane.ControlPlaneError) as error:
        print(f"node: {error}", file=sys.stderr)
        return 1


def _state_of(target: str | None) -> Path:
    if target is None:
        owner = _bridge_owner()
        if not owner:
            raise NodeError(f"no node is up (no bridge {BRIDGE}); name its state folder")
        return Path(owner)
    path = Path(target).resolve()
    if path.is_file():
        path = path.parent.parent if path.parent.name == "controlplane" else path.parent
    return path


def _command(args: argparse.Namespace) -> int:
    if args.command == "check":
        reason = why_not_here() or (already_up() if args.up else None)
        print(reason or "a node can run here")
        return 1 if reason else 0
    if args.command == "packages":
        print("\n".join(DEBIAN_PACKAGES))
        return 0
    if args.command == "snapshot":
        print(json.dumps(host_snapshot(), indent=2))
        return 0
    if args.command == "restart-kubelet":
        Node(_state_of(args.target)).restart_kubelet()
        return 0
    if args.command == "down":
        state = _state_of(args.target)
        Node(state).down(keep_state=args.keep)
        print(f"node in {state} stopped; the host is as it was", file=sys.stderr)
        return 0
    state = Path(args.dir).resolve() if args.dir else Path(tempfile.mkdtemp(prefix="kattle-node-"))
    print(f"starting a node in {state}", file=sys.stderr)
    kubeconfig = Node(state).up()
    print(
        f"ready: node {NODE_NAME}, pods on {POD_NETWORK}, logs in {state / 'logs'}", file=sys.stderr
    )
    print(f"stop it with: hack/node.sh down {state}", file=sys.stderr)
    print(kubeconfig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
