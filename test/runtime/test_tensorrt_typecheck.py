"""The TensorRT backend cannot run here: mypy against the TensorRT 10 stubs is its check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _mypy(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "setup.cfg"), *paths],
                          capture_output=True, text=True, cwd=REPO)


def test_backend_and_builder_type_check_against_tensorrt_10() -> None:
    result = _mypy("mtl_perception/runtime/backends/tensorrt_backend.py",
                   "mtl_perception/runtime/backends/engine_builder.py")
    assert result.returncode == 0, result.stdout


def test_stubs_catch_removed_tensorrt_apis(tmp_path: Path) -> None:
    # TensorRT 8 calls removed in 10: the check must fail on them, or it checks nothing
    snippet = tmp_path / "old_api.py"
    snippet.write_text(
        "import tensorrt as trt\n"
        "def build(builder: trt.Builder, network: trt.INetworkDefinition, config: trt.IBuilderConfig) -> None:\n"
        "    builder.build_engine(network, config)\n"
        "def run(context: trt.IExecutionContext) -> None:\n"
        "    context.execute_async_v2([], 0)\n"
    )
    result = _mypy(str(snippet))
    assert result.returncode == 1
    assert '"Builder" has no attribute "build_engine"' in result.stdout
    assert '"IExecutionContext" has no attribute "execute_async_v2"' in result.stdout
