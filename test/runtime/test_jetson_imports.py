"""Every module a Jetson runs beside the node imports on this interpreter: under JetPack 5's Python 3.8 a
`tuple[...]` or a `Sequence[...]` base evaluated at import fails, which no linter flags (make test runs this
under 3.8 and 3.10). What needs torch (training: Python 3.10+), rclpy (the ROS glue: the Jetson's apt) or a GPU
(TensorRT) is left out, each for the reason given."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.jetson_python

PACKAGE = Path(__file__).resolve().parents[2] / "mtl_perception"
LEFT_OUT = {
    "mtl_perception.training": "torch, which needs Python 3.10",
    "mtl_perception.ros": "rclpy and the message packages: Humble's apt on the Jetson, not pip",
    "mtl_perception.ros.bag_player": "rclpy",
    "mtl_perception.runtime.backends.tensorrt_backend": "tensorrt and pycuda at the top: a Jetson's GPU",
    "mtl_perception.runtime.backends.engine_builder": "tensorrt and pycuda at the top: a Jetson's GPU",
    # a command's module imports what the command needs at its top (its options are in commands/arguments/,
    # which are all tested here): these need torch or rclpy to run at all
    **{f"mtl_perception.commands.{name}": "torch: training, export and the paper's tables"
       for name in ("train", "export", "bench", "model_card")},
    **{f"mtl_perception.commands.{name}": "rclpy: the command drives a node"
       for name in ("bench_node", "demo", "play_bag")},
}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


JETSON_MODULES = sorted(m for m in map(_module, PACKAGE.rglob("*.py"))
                        if not any(m == out or m.startswith(out + ".") for out in LEFT_OUT))


@pytest.mark.parametrize("module", JETSON_MODULES)
def test_imports(module: str) -> None:
    importlib.import_module(module)


def test_left_out_modules_are_not_reached_at_import_by_the_jetson_commands() -> None:
    """The Jetson's own commands import neither training nor ROS at their top, so importing them here proves their
    top level; bench-node drives a node (rclpy at its top) but imports training only for a run without --model.
    This guards that the left-out list stays the short one."""
    tops = {}
    for command in ("eval_bag", "make_bag", "bench_node", "trt_check", "build_engine", "check_data", "eval", "infer"):
        tree = ast.parse((PACKAGE / "commands" / f"{command}.py").read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top for a in n.names] if top else []
        tops[command] = [n.module or "" for n in top if isinstance(n, ast.ImportFrom)] + names
    for command, modules in tops.items():
        forbidden = ("mtl_perception.training", "torch") if command == "bench_node" else \
            ("mtl_perception.training", "mtl_perception.ros", "torch", "rclpy")
        assert not [m for m in modules if m.startswith(forbidden)], command
