"""The Dockerfile: its policy checked, and its build stage's steps run for real.

There is no Docker engine here, so the build stage is interpreted: COPY copies from the
repository into a scratch root, ENV and WORKDIR apply, each RUN runs in bash with absolute
paths moved under the scratch root. Then the final stage's entrypoint runs from the venv
those steps built, as the image would run it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_the_image_is_multi_stage_non_root_and_runs_kattle() -> None:
    _, final = _stages()
    final_words = [word for word, _ in final]
    assert ("USER", "65532:65532") in final
    assert ("ENTRYPOINT", '["kattle"]') in final
    assert "RUN" not in final_words, "the final stage installs nothing: it copies the venv"
    assert any(args.startswith("--from=build") for word, args in final if word == "COPY")
    labels = " ".join(args for word, args in final if word == "LABEL")
    for label in ("title", "source", "licenses", "version"):
        assert f"org.opencontainers.image.{label}" in labels
    assert not any(tool in " ".join(a for _, a in final) for tool in ("gcc", "build-essential"))


@pytest.mark.timeout(600)
def test_the_build_stage_steps_install_a_working_kattle(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build = _stages()[0]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    workdir = root

    def here(path: str) -> Path:
        return root / path.lstrip("/") if path.startswith("/") else workdir / path

    for word, args in build[1:]:
        if word == "ENV":
            for assignment in shlex.split(args):
                key, _, value = assignment.partition("=")
                env[key] = value
            # The image keeps no pip cache; the test reuses this machine's, to stay fast.
            env.pop("PIP_NO_CACHE_DIR", None)
        elif word == "WORKDIR":
            workdir = here(args)
            workdir.mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            *sources, target = shlex.split(args)
            for source in sources:
                origin = REPO / source
                destination = here(target)
                if origin.is_dir():  # a folder's contents go to the target folder
                    shutil.copytree(
                        origin,
                        destination,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"),
                    )
                else:
                    if target.endswith("/"):
                        destination.mkdir(parents=True, exist_ok=True)
                        destination = destination / origin.name
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(origin, destination)
        elif word == "RUN":
            command = re.sub(r"(?<![\w.])/(opt|tmp)/", lambda m: f"{root}/{m.group(1)}/", args)
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"RUN {args}\n{result.stdout}\n{result.stderr}"

    # The final stage: the venv and the samples, on PATH, `kattle` as the entrypoint.
    venv = root / "opt" / "kattle" / "venv" / "bin"
    for command in ("kattle", "kubectl-kattle"):
        result = subprocess.run(
            [str(venv / command), "--help"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "operator" in result.stdout
    operator_help = subprocess.run(
        [str(venv / "kattle"), "operator", "--help"], capture_output=True, text=True, check=True
    )
    assert "--http-address" in operator_help.stdout
    assert (root / "opt" / "kattle" / "samples" / "handlers" / "app.py").exists()
    wheel = next((root / "tmp" / "wheels").glob("kattle-*.whl"))
    names = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True
    ).stdout
    assert "kattle/py.typed" in names
    assert "tests/" not in names
