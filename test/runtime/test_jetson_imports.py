"""Every module the Jetson runs without ROS imports on this interpreter: under JetPack 5's Python 3.8 a
`tuple[...]` evaluated at import time fails, which no linter flags (make test runs this under 3.8 and 3.10)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.jetson_python

PACKAGE = Path(__file__).resolve().parents[2] / "mtl_perception"
NEEDS_GPU = {"mtl_perception.runtime.backends.tensorrt_backend"}  # imports tensorrt and pycuda at the top
JETSON_MODULES = sorted(
    {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts) for p in (PACKAGE / "runtime").rglob("*.py")}
    - NEEDS_GPU
    | {"mtl_perception.cli", "mtl_perception.commands.infer", "mtl_perception.commands.trt_check",
       "mtl_perception.commands.common", "mtl_perception.package_paths", "mtl_perception.stamps",
       "mtl_perception.atomic_io"})


@pytest.mark.parametrize("module", JETSON_MODULES)
def test_imports(module: str) -> None:
    importlib.import_module(module)
