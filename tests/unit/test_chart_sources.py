"""The Helm chart's CRDs and samples are generated from crds/'s source and samples/."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import HACK


def test_chart_crds_and_samples_are_generated_from_their_sources() -> None:
    check = subprocess.run(
        [sys.executable, str(HACK / "generate_chart.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
