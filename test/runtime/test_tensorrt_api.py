"""The TensorRT API tables the fake of each version is limited to (test/runtime/fake_tensorrt.py).

The tables in tensorrt_api/ list what NVIDIA's Python bindings expose at the tags 8.5.3 (JetPack 5.1), v8.6.1
(JetPack 6.0) and v10.3.0 (JetPack 6.1/6.2), read from their pybind11 sources by .ci/tensorrt_api_tables.py.
test_tensorrt_backend.py drives the builder and the backend through a fake of each version that exposes only
its table's names, so a call outside a version's API fails there, on the path that makes it. What is checked
here: that the tables hold the facts of NVIDIA's sources the version branches rest on, so a wrong table
cannot make that check pass.
"""

from __future__ import annotations

import json
from pathlib import Path

TABLES = Path(__file__).resolve().parent / "tensorrt_api"
VERSIONS = ("8.5.3", "8.6.1", "10.3.0")


def load(version: str) -> dict:
    return json.loads((TABLES / f"{version}.json").read_text())


def members(table: dict, cls: str) -> set[str]:
    """A class's names with its bases', as Python sees them (pybind11 classes have __init__)."""
    entry = table["classes"][cls]
    names = set(entry["members"]) | {"__init__"} | {n.split(".", 1)[1] for n in table["classes"]
                                                   if n.startswith(cls + ".") and n.count(".") == 1}
    for base in entry["bases"]:
        names |= members(table, base)
    return names


def test_the_tables_know_the_differences_that_matter() -> None:
    """Facts of NVIDIA's sources the backend's branches rest on, so a wrong table cannot pass silently."""
    t85, t86, t103 = (load(v) for v in VERSIONS)
    assert "IProgressMonitor" not in t85["classes"] and "IProgressMonitor" not in t86["classes"]
    assert "progress_monitor" in members(t103, "IBuilderConfig")
    assert "progress_monitor" not in members(t86, "IBuilderConfig")
    for table in (t85, t86, t103):  # named tensors, execute_async_v3 and memory pools are already in 8.5
        assert {"execute_async_v3", "set_tensor_address"} <= members(table, "IExecutionContext")
        assert {"num_io_tensors", "get_tensor_name"} <= members(table, "ICudaEngine")
        assert {"IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator"} <= set(table["classes"])
    assert "execute_async_v2" in members(t86, "IExecutionContext")
    assert "execute_async_v2" not in members(t103, "IExecutionContext")  # removed in 10
    assert "build_engine" in members(t85, "Builder") and "build_engine" not in members(t103, "Builder")
    assert {t["source"]["tag"] for t in (t85, t86, t103)} == {"8.5.3", "v8.6.1", "v10.3.0"}
