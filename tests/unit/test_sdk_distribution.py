"""kattle-sdk, the slim SDK distribution (sdk/pyproject.toml, hack/build_sdk.py), without
building it: its modules import nothing outside themselves and its declared dependencies,
its dependencies are the operator's, and its image installs the operator image's versions.

tests/integration/test_sdk_distribution.py builds the wheel, installs it into a fresh venv
and serves the sample handlers from there.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.paths import REPO, load_hack_module

build_sdk = load_hack_module("build_sdk")
SOURCES = REPO / "operator"
# What the SDK must never pull in: the operator's own dependencies.
OPERATOR_ONLY = {"kopf", "kubernetes", "pydot", "prometheus-client"}


def _module_name(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _shipped() -> set[str]:
    """Dotted names of the wheel's modules and packages."""
    return {_module_name(path) for path in build_sdk.modules() if path.endswith(".py")}


def _first_party_target(node: ast.Import | ast.ImportFrom, shipped: set[str]) -> list[str]:
    """The kattle modules an import statement loads, packages included."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    # `from kattle.api import webhook` loads kattle.api.webhook when it is a module.
    found = [base]
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        if (SOURCES / (candidate.replace(".", "/") + ".py")).exists() or candidate in shipped:
            found.append(candidate)
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in a file, function bodies included."""
    found: list[tuple[int, str]] = []
    shipped = _shipped()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; write it absolute")
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.extend((node.lineno, name) for name in _first_party_target(node, shipped))
    return found


def _allowed_top_levels() -> set[str]:
    """Import names the declared dependencies provide (as installed in the test venv,
    which has the locked versions: tests/unit/test_lock.py)."""
    declared = {canonicalize_name(Requirement(r).name) for r in build_sdk.dependencies()}
    providers = metadata.packages_distributions()
    return {
        top
        for top, distributions in providers.items()
        if any(canonicalize_name(d) in declared for d in distributions)
    }


def test_every_module_imports_only_the_wheel_and_its_declared_dependencies() -> None:
    shipped = _shipped()
    allowed = _allowed_top_levels() | set(sys.stdlib_module_names) | {"__future__"}
    wrong = []
    for path in build_sdk.modules():
        if not path.endswith(".py"):
            continue
        for line, name in _imports(SOURCES / path):
            top = name.split(".")[0]
            parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)]
            missing = [p for p in parents if p not in shipped]
            if top == "kattle":
                if missing:
                    wrong.append(f"operator/{path}:{line} imports {name}: no {missing[0]}")
            elif top not in allowed:
                wrong.append(f"operator/{path}:{line} imports {name}: not a declared dependency")
    assert not wrong, (
        "kattle-sdk's modules must import only each other and sdk/pyproject.toml's "
        "dependencies; move what they need into a module the wheel ships, or list it in "
        "[tool.kattle-sdk] modules:\n" + "\n".join(sorted(set(wrong)))
    )


def test_the_listed_files_exist_and_their_packages_are_declared() -> None:
    listed = build_sdk.modules()
    assert all((SOURCES / path).is_file() for path in listed), listed
    project = tomllib.loads((REPO / "sdk" / "pyproject.toml").read_text())
    packages = set(project["tool"]["setuptools"]["packages"])
    assert packages == {_module_name(p) for p in listed if p.endswith("/__init__.py")}
    assert "kattle/sdk/__init__.py" in listed


def test_the_dependencies_are_the_operators_own_ranges() -> None:
    full = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    ranges = {canonicalize_name(Requirement(r).name): str(Requirement(r)) for r in full}
    for text in build_sdk.dependencies():
        requirement = Requirement(text)
        assert ranges.get(canonicalize_name(requirement.name)) == str(requirement), (
            f"sdk/pyproject.toml has {requirement}; pyproject.toml "
            f"{ranges.get(canonicalize_name(requirement.name))}: keep them the same"
        )


def _needed(names: set[str]) -> set[str]:
    """The installed distributions `names` need, themselves included, from their metadata."""
    environment = {k: str(v) for k, v in default_environment().items()}
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(
                {**environment, "extra": ""}
            ):
                todo.append(canonicalize_name(requirement.name))
    return seen


def test_the_image_gets_the_locks_entries_for_exactly_what_the_sdk_needs() -> None:
    text = build_sdk.locked_requirements((REPO / "requirements" / "image.txt").read_text())
    pinned = {
        canonicalize_name(line.split("==")[0])
        for line in text.splitlines()
        if line and not line[0].isspace() and not line.startswith("#")
    }
    declared = {canonicalize_name(Requirement(r).name) for r in build_sdk.dependencies()}
    assert pinned == _needed(declared)
    assert not pinned & OPERATOR_ONLY
    # Each entry with its hashes, as pip --require-hashes needs them.
    assert text.count("--hash=sha256:") >= len(pinned)


def test_the_sdk_takes_the_repositorys_version() -> None:
    assert build_sdk.version() == metadata.version("kattle")
