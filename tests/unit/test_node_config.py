"""The local node's configuration keeps pods contained (docs/cluster.md): these are the
settings that make it so, checked without starting anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.paths import HACK, load_hack_module

node = load_hack_module("node")


def test_the_pod_network_has_no_default_route_and_never_turns_on_ip_forward() -> None:
    bridge = node._cni_config(Path("/state"))["plugins"][0]
    assert bridge["type"] == "bridge"
    assert bridge["isGateway"] is False
    assert bridge["ipMasq"] is False
    routes = bridge["ipam"]["routes"]
    assert [r["dst"] for r in routes] == ["10.0.0.0/24"], "Services only, no 0.0.0.0/0"
    assert bridge["ipam"]["dataDir"].startswith("/state/"), "IP leases stay in the state"


def test_pods_may_reach_the_bridge_and_its_network_only() -> None:
    rules = [" ".join(rule) for rule in node._drop_rules()]
    assert rules == [
        f"FORWARD -i kattle0 ! -o kattle0 -m comment --comment {node.COMMENT} -j DROP",
        f"INPUT -i kattle0 ! -d 10.244.0.1 -m comment --comment {node.COMMENT} -j DROP",
    ]


def test_kube_proxy_listens_on_the_bridge_only_and_leaves_conntrack_alone() -> None:
    config = node._kube_proxy_config(Path("/state/kubeconfig"))
    assert config["nodePortAddresses"] == ["10.244.0.1/32"]
    assert config["iptables"]["localhostNodePorts"] is False
    assert set(config["conntrack"].values()) <= {0, "0s"}
    for key in ("healthzBindAddress", "metricsBindAddress"):
        assert config[key].startswith("127.0.0.1:")


def test_the_kubelet_resolves_nothing_outside_the_cluster_and_keeps_its_images() -> None:
    config = node._kubelet_config(Path("/state"), node.controlplane.Pki(Path("/pki")), 1)
    assert config["resolvConf"] == "/state/kubelet/resolv.conf"
    assert config["clusterDNS"] == ["10.0.0.10"]
    assert config["imageGCHighThresholdPercent"] == 100
    assert config["failCgroupV1"] is False
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["readOnlyPort"] == 0


def test_coredns_has_no_forward_plugin() -> None:
    docs = list(yaml.safe_load_all((HACK / "node" / "addons.yaml").read_text()))
    corefile = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["Corefile"]
    assert "forward" not in corefile
    source = (HACK / "images" / "coredns" / "main.go").read_text()
    assert "plugin/forward" not in source, "not even built in"


def test_a_snapshot_difference_names_what_was_added_and_removed() -> None:
    before = {"links": ["lo", "eth0"], "sysctls": {"kernel/panic": "0"}}
    after = {"links": ["lo", "eth0", "kattle0"], "sysctls": {"kernel/panic": "10"}}
    assert node.snapshot_difference(before, after) == [
        "links: + kattle0",
        "sysctls: {'kernel/panic': '0'} -> {'kernel/panic': '10'}",
    ]
    assert node.snapshot_difference(before, before) == []


# kubelet's setupKernelTunables (pkg/kubelet/cm/container_manager_linux.go): what it sets
# where the kernel holds another value (unless protectKernelDefaults), with its values.
KUBELET_WRITES = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


def test_every_kernel_setting_kubelet_writes_is_held_in_the_node_and_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert node.KUBELET_SYSCTLS == KUBELET_WRITES
    here = [name for name in KUBELET_WRITES if Path(f"/proc/sys/{name}").exists()]
    commands = node._held_sysctls(tmp_path)
    assert commands == [
        f"mount --bind {tmp_path / name.replace('/', '.')} /proc/sys/{name}" for name in here
    ]
    for name in here:
        assert (tmp_path / name.replace("/", ".")).read_text() == KUBELET_WRITES[name] + "\n"
    # The host snapshot the cluster tests compare before `up` and after `down` reads them all.
    assert set(KUBELET_WRITES) <= set(node.SNAPSHOT_SYSCTLS)
    monkeypatch.setattr(
        node.subprocess,
        "run",
        lambda args, **_: subprocess.CompletedProcess(args, 0, stdout="", stderr=""),
    )
    assert set(here) <= set(node.host_snapshot()["sysctls"])


def test_check_up_says_a_node_is_up_already_before_anything_is_built(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(node, "why_not_here", lambda: None)
    monkeypatch.setattr(node, "_link_exists", lambda name: name == "kattle0")
    monkeypatch.setattr(node, "_bridge_owner", lambda: "/tmp/kattle-node-x")
    assert node.main(["check"]) == 0
    assert node.main(["check", "--up"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (
        "a node is up already (bridge kattle0, state /tmp/kattle-node-x): "
        "hack/node.sh down /tmp/kattle-node-x"
    )
    monkeypatch.setattr(node, "_link_exists", lambda name: False)
    assert node.main(["check", "--up"]) == 0
