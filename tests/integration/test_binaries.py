"""hack/binaries.sh: reuse of existing binaries, and clear errors when they are missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.paths import HACK

NAMES = ["etcd", "helm", "kube-apiserver", "kube-controller-manager", "kubectl"]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HACK / "binaries.sh"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def test_binaries_of_the_pinned_version_are_adopted_not_rebuilt(
    bin_dir: Path, tmp_path: Path
) -> None:
    """With KUBEBUILDER_ASSETS holding the pinned versions, nothing is built (no Go needed)."""
    env = {
        "KATTLE_CACHE": str(tmp_path / "cache"),
        "KUBEBUILDER_ASSETS": str(bin_dir),
        "PATH": "/usr/bin:/bin",
    }
    result = _run("ensure", env=env)
    assert result.returncode == 0, result.stderr
    adopted = Path(result.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in adopted.iterdir()) == NAMES
    for name in NAMES:
        assert (adopted / name).resolve() == (bin_dir / name).resolve()
    assert "building" not in result.stderr


def test_missing_binaries_fail_clearly_with_the_build_command(tmp_path: Path) -> None:
    result = _run("path", env={"KATTLE_CACHE": str(tmp_path)})
    assert result.returncode == 1
    assert "missing: kube-apiserver kube-controller-manager kubectl etcd helm" in result.stderr
    assert "run: hack/binaries.sh" in result.stderr
    listing = _run("list", env={"KATTLE_CACHE": str(tmp_path)})
    assert "kube-apiserver MISSING" in listing.stdout
