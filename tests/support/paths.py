"""Where things are in the repository, for tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
SAMPLES = REPO / "samples"
HACK = REPO / "hack"


def load_hack_module(name: str) -> ModuleType:
    """Imports a stdlib-only script from hack/ (it is not part of the kattle package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HACK / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
