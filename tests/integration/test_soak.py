"""`make soak`, briefly: the same command, for seconds rather than an hour, so `make test`
proves it runs and that its tally holds (no run lost, no transition written twice)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def test_a_short_soak_loses_nothing_and_repeats_nothing(bin_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "hack" / "soak.py"),
            "--seconds=25",
            "--objects=12",
            "--restart-every=6",
            "--drain=120",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tally = json.loads(out.read_text())
    assert tally["lost"] == 0
    assert tally["duplicated_transitions"] == 0
    assert tally["objects_left_mid_process"] == []
    assert tally["done"] > 20, tally
    assert tally["operator_kills"] + tally["operator_stops"] >= 1, tally
    assert sum(v for k, v in tally["handler_faults"].items() if k != "ok") > 0, tally
    assert "duplicated_transitions" in result.stdout
