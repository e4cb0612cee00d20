"""The checkpoint a released model ships with: `export --keep-checkpoint` writes it, `export` from it gives the
same model back, `train --init-from` fine-tunes it, and it carries its recipe (data, teachers, seeds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mtl_perception.cli import main
from mtl_perception.training.checkpoint import load_checkpoint
from mtl_perception.training.config import TrainConfig
from mtl_perception.training.dataset import DataConfig, DataSource
from mtl_perception.training.trainer import Trainer, train

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TEACHERS = SHARED / "teachers"
REAL = SHARED / "real-unlabeled"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_perception.cli", *args], capture_output=True, text=True,
                          timeout=600)


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """export in this process (the test's torch is already imported): exit code, stdout, stderr."""
    code = main(["export", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def teacher_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real frames labelled by the real teachers: a data source whose recipe names them."""
    if not TEACHERS.is_dir() or not REAL.is_dir():
        pytest.skip("../shared/teachers and ../shared/real-unlabeled are not beside this clone: pseudo-label needs "
                    "the real teacher models")
    out = tmp_path_factory.mktemp("teacher_set")
    frames = out / "frames"
    frames.mkdir()
    for path in sorted((REAL / "bdd100k-train-50").glob("*.jpg"))[:2]:
        (frames / path.name).write_bytes(path.read_bytes())
    labelled = _cli("pseudo-label", "--input", str(frames), "--out", str(out / "set"), "--no-progress", "--flip",
                    "--detector", f"yolox:{TEACHERS / 'yolox_nano_coco_416.onnx'}@640",
                    "--segmenter", f"twinlite:{TEACHERS / 'twinlitenetplus_nano_384x640.onnx'}")
    assert labelled.returncode == 0, labelled.stderr
    return out / "set"


@pytest.fixture(scope="module")
def run(tiny_set: Path, teacher_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(DataConfig(tiny_set, height=128, width=192), out, backbone_weights="none", batch=4, epochs=1,
                      seg_epochs=1, workers=0, lr=2e-3, seed=7, mix=(DataSource(teacher_set, 2.0),)), progress=False)
    return out


@pytest.fixture(scope="module")
def released(run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("released")
    exported = _cli("export", "--checkpoint", str(run / "best.pt"), "--out", str(out / "m.onnx"),
                    "--keep-checkpoint", str(out / "m.pt"))
    assert exported.returncode == 0, exported.stderr
    assert "the exported weights and their recipe" in exported.stdout
    return out / "m.onnx", out / "m.pt"


def _outputs(path: Path, frames: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: frames})


def test_export_from_the_released_checkpoint_gives_the_released_model_back(
        released: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx_file, kept = released
    code, _, err = _export(capsys, "--checkpoint", str(kept), "--out", str(tmp_path / "again.onnx"))
    assert code == 0, err
    frames = np.random.default_rng(0).integers(0, 256, (3, 128, 192, 3), dtype=np.uint8)
    for first, second in zip(_outputs(onnx_file, frames), _outputs(tmp_path / "again.onnx", frames), strict=True):
        np.testing.assert_array_equal(first, second)
    meta = [{p.key: p.value for p in onnx.load(str(f)).metadata_props} for f in (onnx_file, tmp_path / "again.onnx")]
    assert meta[0]["trained_on"] == meta[1]["trained_on"] and meta[0]["trained_on"].endswith("(best.pt)")


def test_the_released_checkpoint_is_the_weights_and_the_recipe(run: Path, released: tuple[Path, Path],
                                                               teacher_set: Path) -> None:
    kept = load_checkpoint(released[1])
    full = load_checkpoint(run / "best.pt")
    assert set(kept) >= {"model", "model_config", "train_config", "recipe", "trained_on"}
    assert "optimizer" not in kept and "ema" not in kept
    assert released[1].stat().st_size < 0.5 * (run / "best.pt").stat().st_size
    for key, value in full["ema"].items():  # what export exported: the EMA weights
        torch.testing.assert_close(kept["model"][key], value, rtol=0, atol=0, msg=key)
    recipe = kept["recipe"]
    assert recipe["seed"] == 7 and recipe["epochs_done"] == 1
    synthetic, real = recipe["data"]
    assert synthetic["synthetic"] == "synth0011" and synthetic["frames"] == 8  # tiny_set: synth --seed 11
    assert real["name"] == teacher_set.name and real["weight"] == 2.0
    labelling = real["pseudo_label"]
    assert labelling["flip"] is True and labelling["frames"] == 2
    assert labelling["detectors"] == ["yolox_nano_coco_416@640"]
    assert set(labelling["thresholds"]) >= {"box_keep", "box_ignore"}


def test_init_from_the_released_checkpoint_fine_tunes_it(tiny_set: Path, released: tuple[Path, Path],
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = load_checkpoint(released[1])
    trainer = Trainer.from_config(TrainConfig(DataConfig(tiny_set, height=128, width=192), tmp_path / "fine",
                                              backbone_weights="none", batch=4, epochs=1, seg_epochs=1, workers=0,
                                              lr=1e-3, init_from=str(released[1])), progress=False)
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(value, kept["model"][key], msg=key)
    trainer.fit()
    code, _, err = _export(capsys, "--checkpoint", str(tmp_path / "fine" / "best.pt"), "--out",
                           str(tmp_path / "f.onnx"), "--keep-checkpoint", str(tmp_path / "f.pt"))
    assert code == 0, err
    parent = load_checkpoint(tmp_path / "f.pt")["recipe"]["init_from"]
    assert parent["checkpoint"] == "m.pt" and parent["recipe"] == kept["recipe"]  # the history travels along


def test_keep_checkpoint_needs_a_checkpoint_and_keeps_an_existing_file(
        released: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _export(capsys, "--backbone", "mobilenetv2", "--out", str(tmp_path / "r.onnx"),
                           "--keep-checkpoint", str(tmp_path / "r.pt"))
    assert code == 2 and err.strip().startswith("error: --keep-checkpoint") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.onnx").exists() and not (tmp_path / "r.pt").exists()
    kept = released[1]
    before = kept.read_bytes()
    code, _, err = _export(capsys, "--checkpoint", str(kept), "--out", str(tmp_path / "new.onnx"),
                           "--keep-checkpoint", str(kept))
    assert code == 2 and "exists: pass --overwrite" in err and kept.read_bytes() == before


def test_trained_on_describes_the_model_and_travels_with_its_checkpoint(
        released: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    described = "a tiny synthetic set and two teacher-labelled frames, for this test"
    code, _, err = _export(capsys, "--checkpoint", str(released[1]), "--out", str(tmp_path / "d.onnx"),
                           "--keep-checkpoint", str(tmp_path / "d.pt"), "--trained-on", described)
    assert code == 0, err
    code, _, err = _export(capsys, "--checkpoint", str(tmp_path / "d.pt"), "--out", str(tmp_path / "again.onnx"))
    assert code == 0, err
    for path in (tmp_path / "d.onnx", tmp_path / "again.onnx"):
        assert {p.key: p.value for p in onnx.load(str(path)).metadata_props}["trained_on"] == described
    code, _, err = _export(capsys, "--backbone", "mobilenetv2", "--out", str(tmp_path / "r.onnx"),
                           "--trained-on", described)
    assert code == 2 and err.strip().startswith("error: --trained-on") and len(err.strip().splitlines()) == 1
