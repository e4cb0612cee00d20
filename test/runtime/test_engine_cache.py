"""The pure parts of the TensorRT backend: engine names and calibration batches."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.runtime.backends import BackendChoice, choose_backend
from mtl_perception.runtime.calibration import calibration_batches, calibration_digest, calibration_images
from mtl_perception.runtime.engine_cache import (
    GpuIdentity,
    calibration_cache_path,
    engine_file_name,
    file_digest,
    timing_cache_path,
)

pytestmark = pytest.mark.jetson_python


ORIN = GpuIdentity("Orin (nvgpu)", (8, 7), 16, 15_389 << 20)
# Xavier NX 8 GB and 16 GB: the same name and compute capability; NVIDIA asks for separate engines
XAVIER_NX_8GB = GpuIdentity("Xavier", (7, 2), 6, 6_854 << 20)
XAVIER_NX_16GB = GpuIdentity("Xavier", (7, 2), 6, 14_910 << 20)


def test_engine_name_depends_on_everything_it_must(tmp_path: Path) -> None:
    model = tmp_path / "mtl_mobilenetv2_384x640.onnx"
    model.write_bytes(b"model one")
    digest = file_digest(model)
    name = engine_file_name(model, digest, "fp16", "10.3.0", ORIN)
    assert name.startswith("mtl_mobilenetv2_384x640-") and name.endswith(".engine")
    assert name == engine_file_name(model, digest, "fp16", "10.3.0", ORIN)  # the same build: the same file
    others = {
        engine_file_name(model, digest, "int8", "10.3.0", ORIN, "a" * 64, "entropy2"),
        engine_file_name(model, digest, "int8", "10.3.0", ORIN, "a" * 64, "minmax"),
        engine_file_name(model, digest, "int8", "10.3.0", ORIN, "b" * 64, "entropy2"),
        engine_file_name(model, digest, "fp16", "10.7.0", ORIN),
        engine_file_name(model, digest, "fp16", "10.3.0", XAVIER_NX_8GB),
        engine_file_name(model, digest, "fp16", "10.3.0", XAVIER_NX_16GB),
        engine_file_name(model, digest, "fp16", "10.3.0", GpuIdentity("Orin (nvgpu)", (8, 7), 8, 7_620 << 20)),
    }
    model.write_bytes(b"model two")
    others.add(engine_file_name(model, file_digest(model), "fp16", "10.3.0", ORIN))
    assert name not in others and len(others) == 8
    assert all("/" not in n and " " not in n for n in others)  # one file name each, on any file system
    assert calibration_cache_path(tmp_path / name).suffix == ".calib"
    timing = {timing_cache_path(tmp_path, "10.3.0", gpu) for gpu in (ORIN, XAVIER_NX_8GB, XAVIER_NX_16GB)}
    assert len(timing) == 3 and all(p.parent == tmp_path for p in timing)


def test_calibration_batches(tmp_path: Path) -> None:
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), np.full((72, 128, 3), 40 * i, np.uint8))
    (tmp_path / "9.png").write_bytes(b"not an image")  # skipped, not fatal
    (tmp_path / "notes.txt").write_text("ignored")
    files = calibration_images(tmp_path)
    assert [f.name for f in files] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg", "4.jpg", "9.png"]
    batches = list(calibration_batches(files, 64, 96, pad_value=114, batch_size=2))
    assert len(batches) == 2  # 5 readable images: two full batches, the fifth dropped
    assert batches[0].shape == (2, 64, 96, 3) and batches[0].dtype == np.uint8
    # 72x128 -> 54x96 letterboxed into 64x96: 5 rows of padding top and bottom
    assert (batches[0][0, :5] == 114).all() and abs(int(batches[0][1, 32, 48, 0]) - 40) <= 1


def test_calibration_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        calibration_images(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="holds no images"):
        calibration_images(tmp_path)


def test_int8_engine_name_follows_the_calibration_set(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    first, second = tmp_path / "day", tmp_path / "night"
    for folder, value in ((first, 40), (second, 200)):
        folder.mkdir()
        cv2.imwrite(str(folder / "0.png"), np.full((8, 8, 3), value, np.uint8))

    def name(folder: Path) -> str:
        digest = calibration_digest(calibration_images(folder))
        return engine_file_name(model, file_digest(model), "int8", "8.5.2", XAVIER_NX_8GB, digest, "entropy2")

    assert name(first) == name(first)  # reproducible
    assert name(first) != name(second)  # a new folder never reuses the old engine
    before = name(first)
    cv2.imwrite(str(first / "0.png"), np.full((8, 8, 3), 41, np.uint8))  # same file names, new pixels
    assert name(first) != before
    assert "-cal" not in engine_file_name(model, file_digest(model), "fp16", "8.5.2", XAVIER_NX_8GB)


def test_auto_backend_says_why_it_is_not_tensorrt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each module TensorRT needs, missing in turn (a file-less stand-in in sys.modules imports as missing,
    as a stubs-only folder does): auto falls back to ONNX Runtime and names that module and how to install
    it; with stand-ins for all three, auto takes TensorRT."""
    import types

    names = ("tensorrt", "pycuda.driver", "onnx")
    for absent in names:
        for name in names:
            module = types.ModuleType(name)
            if name != absent:
                module.__file__ = str(tmp_path / f"{name}.py")  # says it is a real module: a stand-in
            monkeypatch.setitem(sys.modules, name, module)
        choice = choose_backend("auto")
        package = absent.split(".")[0]
        assert choice.name == "onnxruntime" and f"install {package}`" in choice.reason, choice
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(__file__=str(tmp_path / f"{name}.py")))
    assert choose_backend("auto").name == "tensorrt"
    assert choose_backend("onnxruntime") == BackendChoice("onnxruntime", "as set")
    with pytest.raises(ValueError, match="unknown backend 'openvino'; use one of auto, tensorrt, onnxruntime"):
        choose_backend("openvino")
