#!/usr/bin/env python3
"""Builds kattle-sdk, the slim distribution of the handler SDK, from operator/kattle itself.

sdk/pyproject.toml lists the modules the wheel holds; they are copied, as they are, into a
build folder next to that pyproject.toml and built there with `pip wheel`, so the SDK has one
source (the operator's) and the `kattle` distribution's own build is left alone.

    hack/build_sdk.py wheel [--out dist]   # dist/kattle_sdk-<version>-py3-none-any.whl
    hack/build_sdk.py requirements         # the SDK's share of requirements/image.txt

`requirements` prints the entries of the operator image's lock (versions and hashes) that
the SDK's dependencies need, followed through the lock's `# via` notes, so the sample
handler image installs exactly the operator image's versions with every hash checked, and
`make lock` needs no second lock to keep in step.

Standard library only (tomllib: Python 3.11+); `wheel` needs pip.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SDK = REPO / "sdk"
SOURCES = REPO / "operator"
LOCK = REPO / "requirements" / "image.txt"


def _sdk_project() -> dict[str, Any]:
    with (SDK / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def modules() -> list[str]:
    """The wheel's files, as paths under operator/ (e.g. `kattle/sdk/app.py`)."""
    listed: list[str] = _sdk_project()["tool"]["kattle-sdk"]["modules"]
    return listed


def dependencies() -> list[str]:
    """The SDK's requirements, as sdk/pyproject.toml declares them."""
    declared: list[str] = _sdk_project()["project"]["dependencies"]
    return declared


def version() -> str:
    """The repository's version: the SDK is released with the operator."""
    with (REPO / "pyproject.toml").open("rb") as file:
        found: str = tomllib.load(file)["project"]["version"]
    return found


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return normalized(match.group(0))


def assemble(folder: Path) -> None:
    """The build folder: sdk/'s pyproject.toml and README, the listed modules, the version."""
    shutil.copy2(SDK / "pyproject.toml", folder / "pyproject.toml")
    shutil.copy2(SDK / "README.md", folder / "README.md")
    (folder / "VERSION").write_text(version() + "\n")
    for module in modules():
        source = SOURCES / module
        if not source.is_file():
            raise SystemExit(f"sdk/pyproject.toml lists {module}, which operator/ does not have")
        target = folder / module
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def build_wheel(out: Path) -> Path:
    """Builds the wheel into `out` (replacing any other kattle-sdk wheel there); its path."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("kattle_sdk-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="kattle-sdk-build-") as build:
        assemble(Path(build))
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        result = subprocess.run(
            [*command, "--wheel-dir", str(out), build], capture_output=True, text=True
        )
    if result.returncode != 0:
        raise SystemExit(f"pip wheel failed:\n{result.stdout}{result.stderr}")
    (wheel,) = out.glob("kattle_sdk-*.whl")
    return wheel


def _lock_entries(text: str) -> dict[str, tuple[list[str], set[str]]]:
    """Each locked distribution: its lines (requirement and hashes) and what needs it."""
    entries: dict[str, tuple[list[str], set[str]]] = {}
    current: tuple[list[str], set[str]] | None = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line[0].isspace():
            current = ([line], set())
            entries[requirement_name(line)] = current
        elif current is not None and line.strip().startswith("#"):
            note = line.strip().lstrip("#").strip().removeprefix("via").strip()
            if note:
                current[1].add(requirement_name(note))
        elif current is not None:
            current[0].append(line)
    return entries


def locked_requirements(lock_text: str) -> str:
    """The lock's entries for the SDK's dependencies and everything they need, with hashes."""
    entries = _lock_entries(lock_text)
    wanted = {requirement_name(r) for r in dependencies()}
    missing = wanted - entries.keys()
    if missing:
        raise SystemExit(f"{LOCK.name} does not lock {', '.join(sorted(missing))}: run make lock")
    # A distribution is needed when something needed needs it; repeat until nothing changes.
    while True:
        more = {name for name, (_, via) in entries.items() if via & wanted} - wanted
        if not more:
            break
        wanted |= more
    lines = [f"# kattle-sdk's share of {LOCK.relative_to(REPO)} (hack/build_sdk.py requirements)"]
    for name in sorted(wanted):
        lines.extend(entries[name][0])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    wheel = commands.add_parser("wheel", help="build the wheel")
    wheel.add_argument("--out", type=Path, default=REPO / "dist", help="default: dist/")
    requirements = commands.add_parser("requirements", help="print the SDK's locked share")
    requirements.add_argument("--lock", type=Path, default=LOCK)
    args = parser.parse_args()
    if args.command == "wheel":
        print(build_wheel(args.out.resolve()))
    else:
        print(locked_requirements(args.lock.read_text()), end="")


if __name__ == "__main__":
    main()
