"""Shapes, budgets and hand-computed pieces of the network."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torchvision import models

from mtl_perception.data.bdd100k import DETECTION_CLASSES
from mtl_perception.training.anchors import anchor_fitness, fit_anchors
from mtl_perception.training.backbone import BackboneWeightsError, build_backbone
from mtl_perception.training.complexity import PAPER_TABLE_II, count_flops
from mtl_perception.training.heads import decode_detections
from mtl_perception.training.model import InputNormalizer, build_model, default_config
from mtl_perception.training.neck import WeightedFusion


@pytest.mark.parametrize("backbone", ["mobilenetv2", "resnet50"])
def test_outputs_and_budget(backbone: str) -> None:
    model = build_model(default_config(backbone, DETECTION_CLASSES)).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 128, 192))
    assert [tuple(t.shape) for t in out["det"]] == [(1, 3, 16, 24, 15), (1, 3, 8, 12, 15), (1, 3, 4, 6, 15)]
    assert out["drivable"].shape == out["lane"].shape == (1, 2, 128, 192)
    boxes, scores = model.decode(out)
    assert boxes.shape == (1, 3 * (16 * 24 + 8 * 12 + 4 * 6), 4) and scores.shape[-1] == 10
    params = sum(p.numel() for p in model.parameters())
    gflops = count_flops(model, 384, 640) / 1e9
    budget = PAPER_TABLE_II[backbone]
    assert params < budget["params"] and gflops < budget["gflops"]
    if backbone == "mobilenetv2":  # "aim well below": the fast model must stay small
        assert params < 0.5 * budget["params"] and gflops < 0.25 * budget["gflops"]


def test_backbone_strides() -> None:
    features = build_backbone("mobilenetv2")(torch.zeros(1, 3, 64, 96))
    assert {k: tuple(v.shape[-2:]) for k, v in features.items()} == {
        "c2": (16, 24), "c3": (8, 12), "c4": (4, 6), "c5": (2, 3)}


def test_random_weights_asked_for_are_random() -> None:
    backbone = build_backbone("mobilenetv2", "none")
    assert backbone.weights_used == "none (random initialisation)"


def test_imagenet_that_cannot_be_fetched_is_refused_with_what_to_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 34 item 21: offline, 'imagenet' warned and trained from random weights with exit 0."""
    monkeypatch.setattr(models, "mobilenet_v2", _offline_first(models.mobilenet_v2))
    with pytest.raises(BackboneWeightsError, match=r"could not be fetched \(no network\): pass --backbone-weights "
                                                   r"PATH .* or --backbone-weights none"):
        build_backbone("mobilenetv2", "imagenet")


def _offline_first(real: Any) -> Any:
    """torchvision's mobilenet_v2 as it behaves offline: asked for weights, the download fails."""
    def build(weights: Any = None) -> Any:
        if weights is not None:
            raise OSError("no network")
        return real(weights=None)
    return build


def test_unknown_backbone() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        default_config("vgg16", DETECTION_CLASSES)


def test_missing_backbone_weights_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        build_backbone("mobilenetv2", str(tmp_path / "nope.pth"))


def test_fast_normalised_fusion_hand_computed() -> None:
    fusion = WeightedFusion(2, eps=0.0)
    with torch.no_grad():
        fusion.weights.copy_(torch.tensor([3.0, -1.0]))  # relu -> (3, 0): the second input is ignored
        out = fusion([torch.full((1,), 2.0), torch.full((1,), 100.0)])
        assert out.item() == pytest.approx(2.0)
        fusion.weights.copy_(torch.tensor([1.0, 3.0]))
        assert fusion([torch.full((1,), 4.0), torch.full((1,), 8.0)]).item() == pytest.approx(7.0)


def test_decode_hand_computed() -> None:
    # one level, stride 8, 1 anchor (10 x 20), a 1 x 2 grid; raw zeros give sigmoid 0.5:
    # xy = (0.5 * 2 - 0.5 + grid) * 8 = (grid + 0.5) * 8, wh = (0.5 * 2)^2 * anchor = anchor
    raw = torch.zeros(1, 1, 1, 2, 5 + 2)
    raw[0, 0, 0, 1, 5] = 10.0  # class 0 almost certain in the second cell
    boxes, scores = decode_detections([raw], torch.tensor([[[10.0, 20.0]]]), (8,))
    expected = torch.tensor([[4 - 5, 4 - 10, 4 + 5, 4 + 10], [12 - 5, 4 - 10, 12 + 5, 4 + 10]], dtype=torch.float32)
    torch.testing.assert_close(boxes[0], expected)
    torch.testing.assert_close(scores[0, 1], torch.tensor([0.5 * torch.sigmoid(torch.tensor(10.0)).item(), 0.25]))


def test_input_normalizer_matches_imagenet_rgb() -> None:
    bgr = torch.tensor([[[[10, 20, 30]]]], dtype=torch.uint8)  # one pixel, B=10 G=20 R=30
    out = InputNormalizer()(bgr)[0, :, 0, 0]
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (np.array([30, 20, 10]) / 255.0 - mean) / std
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5)


def test_kmeans_anchors_find_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[4, 8], [10, 10], [8, 24], [20, 15], [30, 40], [16, 60], [60, 50], [90, 120], [150, 90]])
    wh = np.concatenate([c * rng.uniform(0.95, 1.05, (50, 2)) for c in centres])
    anchors = fit_anchors(wh)
    flat = np.array([a for level in anchors for a in level])
    assert len(anchors) == 3 and all(len(level) == 3 for level in anchors)
    assert np.all(np.diff(flat.prod(axis=1)) >= 0)  # small to large: fine levels get small anchors
    assert anchor_fitness(wh, anchors) > 0.85
    with pytest.raises(ValueError, match="at least 9 boxes"):
        fit_anchors(wh[:5])


def test_one_backbone_registry() -> None:
    """Adding a backbone is one BACKBONES entry; the bundled-model names of the launch file are its keys."""
    from mtl_perception.package_paths import BUNDLED_BACKBONES
    from mtl_perception.training.backbone import BACKBONES, backbone_spec
    from mtl_perception.training.model import default_config

    assert tuple(BACKBONES) == BUNDLED_BACKBONES
    for name, spec in BACKBONES.items():
        # the entry's channels and strides are what torchvision's trunk really puts out at c2..c5
        features = build_backbone(name)(torch.zeros(1, 3, 64, 96))
        assert [(f.shape[1], 64 // f.shape[2]) for f in features.values()] == list(zip(spec.channels, (4, 8, 16, 32), strict=True))
        model = build_model(default_config(name, ("car",)))  # and the network built on it runs
        assert set(model(torch.zeros(1, 3, 64, 96))) == {"det", "drivable", "lane"}
    with pytest.raises(ValueError, match="unknown backbone 'vgg'; use one of mobilenetv2, resnet50"):
        backbone_spec("vgg")


def test_stride4_heads_keep_the_contract_and_cost_less() -> None:
    """seg_head "stride4" (issue 33 item 1, a cheaper head of the same design): the same outputs, the exported
    margins still the logits' difference, fewer FLOPs than the default stride-2 heads; the choice
    travels in the checkpoint, and a checkpoint from before it reads as stride2."""
    from mtl_perception.training.checkpoint import model_config_from_dict, model_config_to_dict

    torch.manual_seed(0)
    config = default_config("mobilenetv2", DETECTION_CLASSES, seg_head="stride4")
    model = build_model(config).eval()
    images = torch.randn(1, 3, 128, 192)
    with torch.no_grad():
        logits, margins = model(images), model.forward_margins(images)
    assert logits["drivable"].shape == logits["lane"].shape == (1, 2, 128, 192)
    for task in ("drivable", "lane"):
        np.testing.assert_allclose(margins[task][:, 0], logits[task][:, 1] - logits[task][:, 0], atol=1e-4)
    stride2 = build_model(default_config("mobilenetv2", DETECTION_CLASSES)).eval()
    assert count_flops(model, 384, 640) < count_flops(stride2, 384, 640)  # the time: bench --peer yolop
    assert model_config_from_dict(model_config_to_dict(config)) == config
    old = {k: v for k, v in model_config_to_dict(config).items() if k != "seg_head"}
    assert model_config_from_dict(old).seg_head == "stride2"
    with pytest.raises(ValueError, match="unknown seg_head"):
        default_config("mobilenetv2", DETECTION_CLASSES, seg_head="stride8")
