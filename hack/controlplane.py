"""A local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager.

Kattle is tested against the real API server, never a mock. This module starts one on free
loopback ports inside a state folder, the way controller-runtime's envtest does, plus
kube-controller-manager so that garbage collection, namespace cleanup and service-account
tokens work as in a real cluster. Several control planes can run side by side: everything
one of them owns (certificates, data, logs, process ids) lives in its own folder.

It is used by `hack/controlplane.sh` (people, `make demo`) and by the pytest fixture
(`tests/integration/conftest.py`), so it only needs the standard library and `openssl`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import json
import os
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HACK_DIR = Path(__file__).resolve().parent
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 10.0
PROCESS_FILE = "processes.json"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or stopped; the message says why."""


def binaries_dir() -> Path:
    """The folder holding the pinned binaries, or a clear error naming the build command."""
    result = subprocess.run(
        [str(HACK_DIR / "binaries.sh"), "path"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError(
            "the control-plane binaries are not built: run `hack/binaries.sh` "
            f"(or `make binaries`) first.\n{result.stderr.strip()}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now; all held at once so they are distinct."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def advertise_address() -> str | None:
    """A non-loopback IPv4 address when the host has no default route, else None.

    kube-apiserver derives its advertise address from the default route and exits with
    "Unable to find suitable network address" without one; loopback is refused.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 2 and fields[1] == "00000000":
                return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["hostname", "-I"], capture_output=True, text=True, check=True, timeout=5
        ).stdout
        for address in out.split():
            if "." in address and not address.startswith("127."):
                return address
    raise ControlPlaneError(
        "kube-apiserver needs a non-loopback IPv4 address and this host has none"
    )


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"openssl {args[0]} failed: {result.stderr.strip()}")


@dataclass
class Pki:
    """Certificates for one control plane, made with the openssl command line."""

    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    def create(self, address: str = "127.0.0.1", node: str | None = None) -> None:
        """The CA, the API server's serving certificate (also for `address`) and the clients'
        certificates; with `node`, also those a node's kubelet, kube-proxy and
        kube-scheduler use, each under the user name the bootstrap RBAC policy expects."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        _openssl(
            "req",
            "-x509",
            *ec,
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=kattle-local-ca",
            cwd=self.folder,
        )
        sans = (
            "DNS:localhost,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1"
        )
        if address != "127.0.0.1":
            sans += f",IP:{address}"
        self._issue(
            "apiserver",
            "/CN=kube-apiserver",
            f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n",
        )
        # system:masters bypasses RBAC: this is the cluster admin, like kind's kubeconfig.
        self._issue("admin", "/O=system:masters/CN=kattle-admin", "extendedKeyUsage=clientAuth\n")
        # The bootstrap RBAC policy grants this user what kube-controller-manager needs.
        self._issue(
            "controller-manager",
            "/CN=system:kube-controller-manager",
            "extendedKeyUsage=clientAuth\n",
        )
        # Service-account tokens are signed with RSA, which every client verifies.
        _openssl("genrsa", "-out", "sa.key", "2048", cwd=self.folder)
        _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=self.folder)
        if node:
            self._issue_node(address, node)

    def _issue_node(self, address: str, node: str) -> None:
        client = "extendedKeyUsage=clientAuth\n"
        # The Node authorizer knows a kubelet by this name and group.
        self._issue("kubelet", f"/O=system:nodes/CN=system:node:{node}", client)
        self._issue(
            "kubelet-serving",
            f"/CN={node}",
            f"subjectAltName=IP:{address}\nextendedKeyUsage=serverAuth\n",
        )
        # The API server calling kubelets (logs, exec); bound to system:kubelet-api-admin.
        self._issue("apiserver-kubelet-client", "/CN=kube-apiserver-kubelet-client", client)
        self._issue("scheduler", "/CN=system:kube-scheduler", client)
        self._issue("kube-proxy", "/CN=system:kube-proxy", client)

    def _issue(self, name: str, subject: str, extensions: str) -> None:
        (self.folder / f"{name}.ext").write_text(extensions)
        _openssl(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            subject,
            cwd=self.folder,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-out",
            f"{name}.crt",
            "-extfile",
            f"{name}.ext",
            cwd=self.folder,
        )


def kubeconfig_text(server: str, pki: Pki, user: str, cert: str) -> str:
    """A self-contained kubeconfig (certificates inlined), so it can be copied anywhere."""

    def b64(name: str) -> str:
        return base64.b64encode(pki.path(name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kattle-local",
                "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(f"{cert}.crt"),
                    "client-key-data": b64(f"{cert}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "kattle-local", "context": {"cluster": "kattle-local", "user": user}}
        ],
        "current-context": "kattle-local",
    }
    # JSON is valid YAML, and needs no YAML library here.
    return json.dumps(config, indent=2) + "\n"


# One line per request, when its response is sent: enough to tell who did what, and whether
# it was allowed, without the bodies.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
"""


@dataclass
class ControlPlane:
    """One local control plane living in `state_dir`."""

    state_dir: Path
    bin_dir: Path
    controller_manager: bool = True
    # For test fixtures: the processes die with the process that started them, so a test
    # run killed hard leaves nothing behind. `hack/controlplane.sh up` must not use it.
    die_with_parent: bool = False
    # Record every request in `audit_log` (who, verb, resource, response code): how the
    # tests prove the Helm chart's RBAC rules are all needed and enough.
    audit: bool = False
    # Where kube-apiserver listens and what it advertises (the `kubernetes` Service's
    # endpoint): loopback, or a node's bridge address so that pods reach it.
    address: str = "127.0.0.1"
    # With a node's name: its certificates, the Node authorizer and NodeRestriction, and the
    # API server's client certificate for kubelets (hack/node.py).
    node: str | None = None
    # kube-scheduler's binary, to start it too (pods of a node need it).
    scheduler: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "logs" / "audit.log"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.ports['apiserver']}"

    @property
    def pki(self) -> Pki:
        return Pki(self.state_dir / "pki")

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    # -- starting ---------------------------------------------------------------------------

    def up(self) -> Path:
        """Starts everything, waits until it serves, returns the admin kubeconfig's path."""
        for name in ("etcd", "kube-apiserver", "kubectl") + (
            ("kube-controller-manager",) if self.controller_manager else ()
        ):
            if not (self.bin_dir / name).is_file():
                raise ControlPlaneError(f"{self.bin_dir / name} is missing: run `hack/binaries.sh`")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        self.pki.create(self.address, self.node)
        try:
            for attempt in range(3):
                try:
                    self._start_all()
                    break
                except _PortTakenError:
                    # Another process took a port between our probe and the bind: retry.
                    self._stop_processes()
                    if attempt == 2:
                        raise ControlPlaneError("could not bind free ports after 3 tries") from None
        except BaseException:
            self._stop_processes()
            raise
        return self.kubeconfig

    def _start_all(self) -> None:
        names = ["etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler"]
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self._start_etcd()
        self._start_apiserver()
        self.kubeconfig.write_text(kubeconfig_text(self.server, self.pki, "kattle-admin", "admin"))
        self._wait_for_apiserver()
        if self.controller_manager:
            self._start_controller_manager()
        if self.scheduler:
            self._start_scheduler(self.scheduler)
        (self.state_dir / "env").write_text(
            f"KUBECONFIG={self.kubeconfig}\nKATTLE_BIN_DIR={self.bin_dir}\n"
        )

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name",
                "kattle",
                "--data-dir",
                str(self.state_dir / "etcd-data"),
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"kattle={peer}",
                "--listen-metrics-urls",
                "",
                # Test data need not survive a power cut; fsync is most of etcd's latency.
                "--unsafe-no-fsync=true",
                "--log-level",
                "warn",
            ],
        )
        self._wait_http("etcd", f"{client}/health", lambda body: b'"health":"true"' in body)

    def _start_apiserver(self) -> None:
        pki = self.pki
        args = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            f"--bind-address={self.address}",
            f"--secure-port={self.ports['apiserver']}",
            f"--cert-dir={self.state_dir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.path('apiserver.crt')}",
            f"--tls-private-key-file={pki.path('apiserver.key')}",
            f"--client-ca-file={pki.path('ca.crt')}",
            *(() if self.node else ("--authorization-mode=RBAC",)),
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.path('sa.pub')}",
            f"--service-account-signing-key-file={pki.path('sa.key')}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ]
        address = self.address if self.node else advertise_address()
        if address:
            args.append(f"--advertise-address={address}")
        if self.node:
            args += [
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--kubelet-client-certificate={pki.path('apiserver-kubelet-client.crt')}",
                f"--kubelet-client-key={pki.path('apiserver-kubelet-client.key')}",
                # Else `kubectl logs` looks the node's hostname up in the host's DNS.
                "--kubelet-preferred-address-types=InternalIP",
            ]
        if self.audit:
            policy = self.state_dir / "audit-policy.yaml"
            policy.write_text(AUDIT_POLICY)
            args += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
            ]
        self._spawn("kube-apiserver", args)

    def _start_controller_manager(self) -> None:
        kubeconfig = self.state_dir / "controller-manager.kubeconfig"
        kubeconfig.write_text(
            kubeconfig_text(
                self.server, self.pki, "system:kube-controller-manager", "controller-manager"
            )
        )
        pki = self.pki
        self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['controller-manager']}",
                f"--cert-dir={self.state_dir / 'controller-manager-certs'}",
                "--leader-elect=false",
                f"--service-account-private-key-file={pki.path('sa.key')}",
                f"--root-ca-file={pki.path('ca.crt')}",
                "--use-service-account-credentials=true",
                f"--cluster-signing-cert-file={pki.path('ca.crt')}",
                f"--cluster-signing-key-file={pki.path('ca.key')}",
                "--v=1",
            ],
        )
        url = f"https://127.0.0.1:{self.ports['controller-manager']}/healthz"
        self._wait_http(
            "kube-controller-manager",
            url,
            lambda body: body.strip() == b"ok",
            context=_insecure_context(),
        )

    def _start_scheduler(self, binary: Path) -> None:
        kubeconfig = self.state_dir / "scheduler.kubeconfig"
        kubeconfig.write_text(
            kubeconfig_text(self.server, self.pki, "system:kube-scheduler", "scheduler")
        )
        self._spawn(
            "kube-scheduler",
            [
                str(binary),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['scheduler']}",
                "--leader-elect=false",
                "--v=1",
            ],
        )
        self._wait_http(
            "kube-scheduler",
            f"https://127.0.0.1:{self.ports['scheduler']}/healthz",
            lambda body: body.strip() == b"ok",
            context=_insecure_context(),
        )

    def _wait_for_apiserver(self) -> None:
        context = ssl.create_default_context(cafile=str(self.pki.path("ca.crt")))
        context.load_cert_chain(str(self.pki.path("admin.crt")), str(self.pki.path("admin.key")))
        self._wait_http(
            "kube-apiserver",
            f"{self.server}/readyz",
            lambda body: body.strip() == b"ok",
            context=context,
        )
        self._wait_http(
            "kube-apiserver",
            f"{self.server}/api/v1/namespaces/default",
            lambda body: b'"name":"default"' in body,
            context=context,
        )

    def _wait_http(
        self,
        name: str,
        url: str,
        ready: Callable[[bytes], bool],
        context: ssl.SSLContext | None = None,
    ) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last = "no answer yet"
        while time.monotonic() < deadline:
            self._check_alive(name)
            try:
                with urllib.request.urlopen(url, timeout=5, context=context) as response:
                    body = response.read()
                    if ready(body):
                        return
                    last = body.decode(errors="replace")[:200]
            except (urllib.error.URLError, OSError) as error:
                last = str(error)
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{name} was not ready after {START_TIMEOUT_SECONDS:.0f}s ({url}: {last})\n"
            f"last lines of {self.log_path(name)}:\n{self._log_tail(name)}"
        )

    def _check_alive(self, name: str) -> None:
        pid = self._processes().get(name)
        if pid is None:
            return
        try:
            finished, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not our child (another process started it); it is checked by its URL
        if finished:
            tail = self._log_tail(name)
            if "address already in use" in tail:
                raise _PortTakenError(name)
            raise ControlPlaneError(
                f"{name} exited with status {os.waitstatus_to_exitcode(status)}; "
                f"last lines of {self.log_path(name)}:\n{tail}"
            )

    def _log_tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _spawn(self, name: str, args: list[str]) -> None:
        with self.log_path(name).open("ab") as log:
            # A session of its own: Ctrl-C in the caller's terminal does not reach it, and
            # `down` can stop it (and anything it forked) by process group.
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        processes = self._processes()
        processes[name] = process.pid
        (self.state_dir / PROCESS_FILE).write_text(json.dumps(processes, indent=2))

    # -- stopping ---------------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """The running processes by name (etcd, kube-apiserver, ...)."""
        return self._processes()

    def _processes(self) -> dict[str, int]:
        try:
            data = json.loads((self.state_dir / PROCESS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()}

    def _owns(self, pid: int) -> bool:
        """True if `pid` is still a process this control plane started (not a reused pid)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        # Every process we start names a path inside the state folder on its command line.
        return str(self.state_dir).encode() in cmdline

    def stop(self, name: str) -> None:
        """Stops one component (`etcd`, `kube-apiserver`) as an outage would; `start` brings
        it back on the same ports and data. For fault tests."""
        processes = self._processes()
        pid = processes.pop(name, None)
        if pid is None or not self._owns(pid):
            raise ControlPlaneError(f"{name} is not running")
        self._stop_pids([pid])
        (self.state_dir / PROCESS_FILE).write_text(json.dumps(processes, indent=2))

    def start(self, name: str) -> None:
        if name in self._processes():
            raise ControlPlaneError(f"{name} is running already")
        if name == "etcd":
            self._start_etcd()
        elif name == "kube-apiserver":
            self._start_apiserver()
            self._wait_for_apiserver()
        else:
            raise ControlPlaneError(f"cannot start {name} alone: etcd or kube-apiserver")

    def _stop_processes(self) -> None:
        # Reverse start order: clients before the servers they talk to.
        running = [p for _, p in reversed(self._processes().items()) if self._owns(p)]
        self._stop_pids(running)
        with contextlib.suppress(OSError):
            (self.state_dir / PROCESS_FILE).unlink()

    def _stop_pids(self, running: list[int]) -> None:
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for pid in running:
            # Wait on the process itself, not on its command line: a process tearing down
            # already shows an empty cmdline while it still holds its ports and files.
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                killed = time.monotonic()
                while _alive(pid) and time.monotonic() - killed < STOP_TIMEOUT_SECONDS:
                    time.sleep(0.05)

    def down(self, keep_state: bool = False) -> None:
        """Stops exactly the processes this control plane started and removes its folder."""
        self._stop_processes()
        if not keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)


class _PortTakenError(ControlPlaneError):
    pass


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    """True until `pid` has exited: gone, or a zombie (reaped here if it is our child)."""
    _reap(pid)
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _insecure_context() -> ssl.SSLContext:
    # kube-controller-manager serves /healthz with a self-signed certificate it makes itself.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def state_dir_of(target: str) -> Path:
    """Accepts a state folder or the kubeconfig inside one (what `up` printed)."""
    path = Path(target).resolve()
    if path.is_file():
        path = path.parent
    if not (path / "pki").is_dir():
        raise ControlPlaneError(f"{target} is not a control plane started by this script")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack/controlplane.sh",
        description="Run a local Kubernetes control plane (etcd, kube-apiserver, "
        "kube-controller-manager) on free loopback ports.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start one; prints the kubeconfig path last")
    up.add_argument("--dir", help="state folder (default: a new folder under $TMPDIR)")
    up.add_argument(
        "--no-controller-manager", action="store_true", help="run etcd and kube-apiserver only"
    )
    down = commands.add_parser("down", help="stop one and remove its state folder")
    down.add_argument("target", help="the state folder or the kubeconfig `up` printed")
    down.add_argument("--keep", action="store_true", help="keep the state folder (logs)")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            if args.dir:
                state = Path(args.dir).resolve()
                if (state / PROCESS_FILE).exists():
                    raise ControlPlaneError(
                        f"{state} already holds a running control plane: "
                        f"hack/controlplane.sh down {state}"
                    )
            else:
                state = Path(tempfile.mkdtemp(prefix="kattle-controlplane-"))
            plane = ControlPlane(
                state, binaries_dir(), controller_manager=not args.no_controller_manager
            )
            print(f"starting a control plane in {state}", file=sys.stderr)
            kubeconfig = plane.up()
            print(f"ready: {plane.server} (logs in {state / 'logs'})", file=sys.stderr)
            print(f"stop it with: hack/controlplane.sh down {kubeconfig}", file=sys.stderr)
            print(kubeconfig)
        else:
            state = state_dir_of(args.target)
            ControlPlane(state, state).down(keep_state=args.keep)
            print(f"stopped and {'kept' if args.keep else 'removed'} {state}", file=sys.stderr)
    except ControlPlaneError as error:
        print(f"controlplane: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
