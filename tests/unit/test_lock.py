"""The image's lock (requirements/image.txt) agrees with pyproject.toml and with the
environment the tests run in, so what is tested is what the image installs."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.paths import REPO

LOCK = REPO / "requirements" / "image.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def _locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    found: dict[str, tuple[str, int]] = {}
    current = ""
    for line in LOCK.read_text().splitlines():
        if pin := PIN.match(line):
            current = canonicalize_name(pin.group(1))
            found[current] = (pin.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_every_runtime_dependency_is_pinned_within_its_range_and_hashed() -> None:
    locked = _locked()
    assert locked, f"{LOCK} pins nothing"
    for requirement in _runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in {LOCK.name}: run `make lock`"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCK.name} pins {name}=={version}, outside pyproject's {requirement}: "
            "run `make lock`"
        )
    unhashed = sorted(name for name, (_, hashes) in locked.items() if hashes == 0)
    assert not unhashed, f"pinned without a hash: {unhashed}"


def test_the_tests_run_the_locked_versions() -> None:
    different = {}
    for name, (version, _) in _locked().items():
        installed = metadata.version(name)
        if installed != version:
            different[name] = f"{installed} installed, {version} locked"
    assert not different, f"{different}: `make setup` installs the locked versions"
