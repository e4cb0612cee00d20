"""The exported ONNX file honours the contract and matches PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mtl_perception.data.bdd100k import DETECTION_CLASSES
from mtl_perception.training.export import check_parity, export_onnx
from mtl_perception.training.model import build_model, default_config


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    model = build_model(default_config("mobilenetv2", DETECTION_CLASSES)).eval()
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    export_onnx(model, path, 256, 384, "random weights")
    return path, model


def test_contract_inputs_outputs(exported: tuple[Path, object]) -> None:
    path, _ = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.type, inp.shape) == ("images", "tensor(uint8)", ["batch", 256, 384, 3])
    outs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    anchors = 3 * (32 * 48 + 16 * 24 + 8 * 12)
    assert outs == {
        "boxes": ("tensor(float)", ["batch", anchors, 4]),
        "scores": ("tensor(float)", ["batch", anchors, 10]),
        "drivable": ("tensor(uint8)", ["batch", 256, 384]),
        "lane": ("tensor(uint8)", ["batch", 256, 384]),
    }
    frame = np.random.default_rng(1).integers(0, 256, (1, 256, 384, 3), dtype=np.uint8)
    _, scores, drivable, lane = session.run(None, {"images": frame})
    assert set(np.unique(drivable)) <= {0, 1} and set(np.unique(lane)) <= {0, 1}
    assert ((scores >= 0) & (scores <= 1)).all()


def test_a_batch_gives_each_frame_what_it_gives_alone(exported: tuple[Path, object]) -> None:
    path, _ = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    frames = np.random.default_rng(2).integers(0, 256, (3, 256, 384, 3), dtype=np.uint8)
    together = session.run(None, {"images": frames})
    for row in range(3):
        alone = session.run(None, {"images": frames[row:row + 1]})
        for name, batch_out, single in zip(("boxes", "scores", "drivable", "lane"), together, alone, strict=True):
            assert batch_out.shape[0] == 3
            if single.dtype == np.uint8:  # a mask pixel may flip only where its margin is float noise
                assert (batch_out[row] == single[0]).mean() >= 0.9999, name
            else:
                np.testing.assert_allclose(batch_out[row], single[0], atol=1e-4, err_msg=name)


def test_margin_sign_is_the_argmax_of_the_two_logits() -> None:
    # the exported masks come from one difference channel (SegmentationHead.margin): the same decision as
    # training's two-logit argmax, up to float rounding at near-ties
    torch.manual_seed(0)
    model = build_model(default_config("mobilenetv2", DETECTION_CLASSES)).eval()
    images = torch.randn(2, 3, 128, 192)
    with torch.no_grad():
        logits, margins = model(images), model.forward_margins(images)
    for task in ("drivable", "lane"):
        argmax = logits[task].argmax(1)
        sign = (margins[task][:, 0] > 0).long()
        assert margins[task].shape == (2, 1, 128, 192)
        assert (argmax == sign).float().mean() >= 0.9999, task
        np.testing.assert_allclose(margins[task][:, 0], logits[task][:, 1] - logits[task][:, 0], atol=1e-4)


def test_both_masks_come_from_one_resize_of_the_stacked_margins(exported: tuple[Path, object]) -> None:
    # ONNX Runtime's NCHWc layout pads a one-channel tensor to 16 channels: a resize per mask did 16 channels'
    # work at full resolution (MultiTaskNet.forward_margins); ONNX Runtime's own optimised graph shows it
    import onnxruntime as ort

    path, _ = exported
    proto = onnx.load(str(path))
    producer = {name: node for node in proto.graph.node for name in node.output}
    resizes = set()
    for output in ("drivable", "lane"):
        node = producer[output]
        while node.op_type != "Resize":
            node = producer[node.input[0]]
        resizes.add(node.output[0])
        assert producer[node.input[0]].op_type == "Concat"
    assert len(resizes) == 1
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(path.with_suffix(".optimised.onnx"))
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    optimised = onnx.load(options.optimized_model_filepath)
    full_size = [node for node in optimised.graph.node if node.op_type in ("Resize", "Upsample")
                 and node.output[0] == next(iter(resizes))]
    assert [node.domain for node in full_size] == [""]  # plain NCHW, not com.microsoft.nchwc


def test_metadata_and_opset(exported: tuple[Path, object]) -> None:
    path, _ = exported
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["class_names"]) == list(DETECTION_CLASSES)
    assert meta["input_size"] == "256x384" and meta["pad_value"] == "114"
    assert meta["backbone"] == "mobilenetv2" and meta["contract_version"] == "2"
    assert meta["trained_on"] == "random weights"


def test_parity_with_pytorch(exported: tuple[Path, object]) -> None:
    path, model = exported
    frame = np.random.default_rng(2).integers(0, 256, (256, 384, 3), dtype=np.uint8)
    parity = check_parity(model, path, frame)
    assert parity.ok, parity


def test_cli_export_random_weights(tmp_path: Path) -> None:
    out = tmp_path / "r.onnx"
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "export", "--backbone", "mobilenetv2",
                             "--img-size", "256x384", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "-> OK" in result.stdout
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert "random weights" in meta["trained_on"]
    # an existing --out is kept unless --overwrite says otherwise, as every other tool does
    written = out.read_bytes()
    again = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "export", "--backbone", "mobilenetv2",
                            "--img-size", "256x512", "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "exists: pass --overwrite" in again.stderr and out.read_bytes() == written
    replaced = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "export", "--backbone", "mobilenetv2",
                               "--img-size", "256x512", "--out", str(out), "--overwrite"], capture_output=True, text=True)
    assert replaced.returncode == 0 and {p.key: p.value for p in onnx.load(str(out)).metadata_props}[
        "input_size"] == "256x512"


def test_cli_export_rejects_size_not_divisible_by_32(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "export", "--backbone", "mobilenetv2",
                             "--img-size", "250x384", "--out", str(tmp_path / "x.onnx")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "not divisible by 32" in result.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_model_card_json() -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "model-card", "--json",
                             "--backbones", "mobilenetv2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (card,) = json.loads(result.stdout)
    assert set(card) == {"backbone", "params", "gflops", "macs", "onnx_mb", "img_size", "source"}
    assert card["img_size"] == "384x640" and card["gflops"] == pytest.approx(2 * card["macs"])
    assert card["params"] < 5.4e6 and card["gflops"] < 33.8 and 0 < card["onnx_mb"] < 24


def test_one_network_has_one_parameter_count(tmp_path: Path) -> None:
    """Issue 34 item 23: model-card gave 1.88 M (a checkpoint with frozen BatchNorm, whose affine torch holds
    as buffers), 1.90 M (the ONNX file's initializers, BatchNorm folded) and 1.91 M (the built-in network)."""
    import torchvision

    from mtl_perception.data.bdd100k import DETECTION_CLASSES
    from mtl_perception.training.complexity import model_card, onnx_card
    from mtl_perception.training.model import build_model, build_untrained, default_config, parameter_count

    plain = build_untrained("mobilenetv2")
    frozen = build_model(default_config("mobilenetv2", DETECTION_CLASSES, frozen_backbone_bn=True)).eval()
    assert sum(p.numel() for p in frozen.parameters()) < parameter_count(frozen)  # the 1.88 M of before
    # anchored outside: the backbone counts what torchvision's own trunk counts, BatchNorm affine included
    trunk = torchvision.models.mobilenet_v2().features[:18]
    assert parameter_count(frozen.backbone) == parameter_count(plain.backbone) == \
        sum(p.numel() for p in trunk.parameters())
    out = tmp_path / "frozen.onnx"
    export_onnx(frozen, out, 256, 384, "test")
    assert onnx_card(out).params == model_card("mobilenetv2", 256, 384, frozen).params == \
        model_card("mobilenetv2", 256, 384).params == parameter_count(plain)
