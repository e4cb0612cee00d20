"""The import rules of docs/architecture.md, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _loaded_after(import_stmt: str, modules: tuple[str, ...]) -> set[str]:
    code = (
        f"import sys\n{import_stmt}\n"
        f"print(','.join(m for m in {modules!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {m for m in out.stdout.strip().split(",") if m}


@pytest.mark.parametrize(
    ("import_stmt", "forbidden"),
    [
        ("import mtl_perception.runtime.perception", ("torch", "torchvision", "rclpy")),
        ("import mtl_perception.runtime.backends", ("torch", "torchvision", "rclpy", "tensorrt")),
        ("import mtl_perception.ros.node", ("torch", "torchvision")),
        ("import mtl_perception.training.model", ("rclpy",)),
        ("import mtl_perception.data.synthetic", ("torch", "rclpy")),
        ("import mtl_perception.cli; mtl_perception.cli.build_parser()", ("torch", "rclpy")),
        # infer is what a Jetson without ROS runs: no YAML, no ROS interfaces, no onnx
        ("import mtl_perception.cli; mtl_perception.cli.build_parser('infer')",
         ("torch", "rclpy", "rcl_interfaces", "yaml", "onnx")),
        ("import mtl_perception.cli; mtl_perception.cli.build_parser('trt-check')", ("torch", "rclpy", "onnx")),
    ],
)
def test_forbidden_imports(import_stmt: str, forbidden: tuple[str, ...]) -> None:
    assert _loaded_after(import_stmt, forbidden) == set()


def test_training_really_imports_torch() -> None:
    # guards the test above against passing because nothing was imported at all
    assert _loaded_after("import mtl_perception.training.model", ("torch",)) == {"torch"}


def test_the_import_contracts_hold() -> None:
    """The rules as declarative contracts (.importlinter): runtime/ imports neither torch nor ROS nor the parts
    above it, ros/ is glue, torch stays in training/, and the package's layers. import-linter reads every import
    in the source, lazy ones inside functions too, where the checks above see what one import loads."""
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.is_file():
        pytest.fail(f"{lint} is missing: make setup installs import-linter (setup.py's dev extras)")
    result = subprocess.run([str(lint), "--config", str(REPO / ".importlinter"), "--no-cache"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Contracts: 4 kept, 0 broken." in result.stdout
