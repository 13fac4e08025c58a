"""The `kattle` command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kattle.cli.main import main


def test_crds_prints_every_crd_and_the_run_access_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["crds"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["spec"]["names"]["kind"] for d in docs if "names" in d["spec"]] == [
        "ResourceDefinition",
        "ProcessDefinition",
        "ProcessHandler",
        "ProcessInstance",
        "ClusterKopfPeering",
        "KopfPeering",
    ]
    assert [(d["kind"], d["metadata"]["name"]) for d in docs if "names" not in d["spec"]] == [
        ("ValidatingAdmissionPolicy", "run-access.kattle.dev"),
        ("ValidatingAdmissionPolicyBinding", "run-access.kattle.dev"),
        ("ValidatingAdmissionPolicy", "run-records.kattle.dev"),
        ("ValidatingAdmissionPolicyBinding", "run-records.kattle.dev"),
    ]


def test_crds_write_replaces_stale_files(tmp_path: Path) -> None:
    (tmp_path / "kattle.dev_oldkinds.yaml").write_text("stale")
    (tmp_path / "keep.txt").write_text("not ours")
    assert main(["crds", "--write", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kattle.dev_processdefinitions.yaml",
        "kattle.dev_processhandlers.yaml",
        "kattle.dev_processinstances.yaml",
        "kattle.dev_resourcedefinitions.yaml",
        "kattle.dev_run-access-policy.yaml",
        "keep.txt",
        "kopf.dev_clusterkopfpeerings.yaml",
        "kopf.dev_kopfpeerings.yaml",
    ]


def test_console_script_runs() -> None:
    kattle = Path(sys.executable).parent / "kattle"
    out = subprocess.run([str(kattle), "--help"], capture_output=True, text=True, check=True)
    assert "crds" in out.stdout
    bad = subprocess.run([str(kattle), "nonsense"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "invalid choice" in bad.stderr
