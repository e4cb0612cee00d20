"""The bundled model ships with the checkpoint it was exported from: exporting that checkpoint again gives the
bundled ONNX file's outputs and metadata exactly, and the checkpoint carries how its weights were made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from mtl_perception.cli import main
from mtl_perception.data.synthetic import render_scene
from mtl_perception.runtime.letterbox import letterbox_image
from mtl_perception.training.checkpoint import load_checkpoint


def _frames() -> np.ndarray:
    """Three rendered road scenes letterboxed to the model's input: uint8 [3, 384, 640, 3] BGR."""
    return np.stack([letterbox_image(render_scene(np.random.default_rng(seed)).image, 384, 640)[0]
                     for seed in range(3)])


def _outputs(path: Path, frames: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: frames}), strict=True))


def _metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_export_from_the_bundled_checkpoint_reproduces_the_bundled_model(
        bundled_model: Path, bundled_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    again = tmp_path / "again.onnx"
    code = main(["export", "--checkpoint", str(bundled_checkpoint), "--out", str(again)])
    assert code == 0, capsys.readouterr().err
    frames = _frames()
    bundled, exported = _outputs(bundled_model, frames), _outputs(again, frames)
    assert list(bundled) == list(exported) == ["boxes", "scores", "drivable", "lane"]
    for name, values in bundled.items():
        np.testing.assert_array_equal(values, exported[name], err_msg=name)
    assert _metadata(again) == _metadata(bundled_model)


def test_the_bundled_checkpoint_is_small_and_carries_its_recipe(bundled_model: Path, bundled_checkpoint: Path) -> None:
    assert bundled_checkpoint.stat().st_size < 15e6
    state = load_checkpoint(bundled_checkpoint)
    assert "optimizer" not in state and state["exported_as"] == _metadata(bundled_model)["trained_on"]
    stage = state["recipe"]
    seen = 0
    while stage is not None:  # the fine-tune, the network it started from, and so on to the first run
        seen += 1
        assert stage["seed"] is not None and stage["epochs_done"] >= 1
        synthetic, *real = stage["data"]
        assert synthetic["synthetic"] == "synth0001" and synthetic["frames"] == 1000  # synth --seed 1
        for source in real:
            labelling = source["pseudo_label"]
            assert labelling["detectors"] == ["yolox_nano_coco_416@960"] and labelling["flip"]
            assert labelling["segmenters"] == ["twinlitenet_360x640", "twinlitenetplus_small_384x640"]
        parent = stage.get("init_from")
        stage = parent["recipe"] if parent else None
    assert seen == 3
