"""Running kubectl against the test control plane, the way a user would."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one kubeconfig, with its own discovery cache."""

    binary: Path
    kubeconfig: Path
    cache_dir: Path

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                str(self.binary),
                f"--kubeconfig={self.kubeconfig}",
                f"--cache-dir={self.cache_dir}",
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def apply(
        self, manifest: str | dict[str, Any], *flags: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Server-side apply with strict field validation, as the docs tell users to."""
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.run(
            "apply",
            "--server-side",
            "--validate=strict",
            "-f",
            "-",
            *flags,
            stdin=text,
            check=check,
        )

    def get(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json").stdout)
