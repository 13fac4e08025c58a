"""The Dockerfiles: their policy, and that the build context holds what they copy.

The images themselves are built for real, as written, by hack/images.sh (buildah) and run
in pods by the cluster tests (tests/cluster): that is where a build that fails, or an image
that does not start, is caught.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from tests.support.paths import REPO

DOCKERFILE = REPO / "Dockerfile"
HANDLER_PYTHON = REPO / "samples" / "handlers" / "Dockerfile"


def _instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _stages(dockerfile: Path = DOCKERFILE) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(dockerfile):
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
    assert not any("samples" in args for word, args in final if word == "COPY"), (
        "the sample handlers have their own image (samples/handlers/Dockerfile)"
    )


def test_the_python_handler_image_runs_the_sample_on_the_slim_sdk() -> None:
    build, final = _stages(HANDLER_PYTHON)
    steps = " ".join(args for word, args in build if word == "RUN")
    # The SDK's share of the lock, hash-checked, then its wheel: never the operator's lock.
    assert "hack/build_sdk.py requirements" in steps
    assert "--require-hashes" in steps
    assert "hack/build_sdk.py wheel" in steps
    assert "kattle_sdk-*.whl" in steps
    assert "pip check" in steps
    assert "-r requirements/image.txt" not in steps
    final_words = [word for word, _ in final]
    assert ("USER", "65532:65532") in final
    assert "RUN" not in final_words, "the final stage installs nothing: it copies the venv"
    assert ("ENTRYPOINT", '["python", "/opt/kattle/handlers/app.py"]') in final
    assert build[0] == ("FROM", "${PYTHON_IMAGE} AS build")
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in _instructions(HANDLER_PYTHON)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's patterns leave `path` out: the last pattern that matches the
    path or one of its parent folders decides, `!` lets in again."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes)
        if hit:
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    ("dockerfile", "context"),
    [
        (DOCKERFILE, REPO),
        # Built from the repository's root: it builds the SDK's wheel from operator/.
        (HANDLER_PYTHON, REPO),
        (REPO / "samples/handlers/node/Dockerfile", REPO / "samples/handlers/node"),
    ],
    ids=["repo", "handler-python", "handler-node"],
)
def test_the_build_context_holds_every_file_the_dockerfile_copies(
    dockerfile: Path, context: Path
) -> None:
    ignore = context / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore.read_text().splitlines() if ignore.exists() else [])
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        args.split()[:-1]
        for word, args in _instructions(dockerfile)
        if word == "COPY" and "--from=" not in args
    ]
    for sources in copied:
        for source in sources:
            assert (context / source).exists(), f"{dockerfile.name} copies {source}: missing"
            assert not _ignored(source, patterns), (
                f"{ignore} leaves out {source}, which {dockerfile} copies"
            )
