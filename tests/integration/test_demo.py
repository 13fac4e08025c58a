"""`make demo` works as the README says: it is run here, on a control plane of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.paths import HACK


def test_the_demo_runs_end_to_end(tmp_path: Path, bin_dir: Path) -> None:
    result = subprocess.run(
        ["bash", str(HACK / "demo.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KATTLE_DEMO_STATE": str(tmp_path / "demo")},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for line in [
        "handler instance-allocate-ip: Succeeded allocated 10.42.",
        "  state: stopped -> starting",
        "  pre instance-validate (attempt 1): Succeeded: image nginx:1.27 is allowed",
        "  state: restarting -> running",
        "Failed (OnError): image forbidden/miner is not allowed to start",
        "volumes: volume.activate on db-1-data, Succeeded (Done)",
        "nic: nic.activate on db-1-eth0, Succeeded (Done)",
        "db-1-huge.activate-",
        "ended Failed: no room for volume db-1-huge of 5000 GiB (at most 1000)",
        "instance.remove: stopped -> removing",
        "instance.purge: removed -> purging -> purged",
        "Stopped the operator, the handler service and the control plane.",
    ]:
        assert line in out, f"{line!r} not in the demo's output"
    assert not (tmp_path / "demo").exists()
