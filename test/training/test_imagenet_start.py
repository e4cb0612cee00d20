"""Training from a local ImageNet state_dict on a mix of datasets with ignore regions: the normalisation the
weights expect (checked against torchvision's own classifier with those weights), frozen BatchNorm, the mix
sampler, and ignore regions in every loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from mtl_perception.training.backbone import build_backbone
from mtl_perception.training.checkpoint import model_config_from_dict, model_config_to_dict
from mtl_perception.training.dataset import IGNORE_CLASS, IGNORE_INDEX, MixSampler
from mtl_perception.training.loss import MultiTaskLoss, dice_loss, masked_cross_entropy
from mtl_perception.training.model import InputNormalizer, build_model, default_config

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_imagenet_from_coral_tflite.pth"


def test_unit_normalisation_is_rgb_over_127_5_minus_1() -> None:
    bgr = torch.tensor([[[[0, 127, 255]]]], dtype=torch.uint8)  # one pixel: B=0, G=127, R=255
    out = InputNormalizer("unit")(bgr)[0, :, 0, 0]
    torch.testing.assert_close(out, torch.tensor([255 / 127.5 - 1, 127 / 127.5 - 1, -1.0]))


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="../shared/weights is not beside this clone")
def test_the_local_weights_load_into_the_trunk_and_agree_with_torchvision() -> None:
    """The backbone built from the shared file computes what torchvision's own mobilenet_v2 with that
    state_dict computes, frozen BatchNorm included (the weights' BN folds hold in eval mode only)."""
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    reference.eval()
    backbone = build_backbone("mobilenetv2", str(WEIGHTS), frozen_bn=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    x = InputNormalizer("unit")(torch.randint(0, 256, (1, 96, 128, 3), dtype=torch.uint8))
    backbone.train()  # frozen: train mode changes nothing
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)["c5"], reference.features[:18](x), rtol=1e-4, atol=1e-4)


def test_normalisation_and_frozen_bn_travel_with_the_checkpoint() -> None:
    config = default_config("mobilenetv2", ("car",), normalization="unit", frozen_backbone_bn=True)
    assert model_config_from_dict(model_config_to_dict(config)) == config
    old = model_config_to_dict(default_config("mobilenetv2", ("car",)))
    del old["normalization"], old["frozen_backbone_bn"]  # a checkpoint written before these keys
    assert model_config_from_dict(old).normalization == "imagenet"
    with pytest.raises(ValueError, match="unknown normalization"):
        default_config("mobilenetv2", ("car",), normalization="bgr")


def test_export_bakes_the_normalisation_into_the_graph(tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    from mtl_perception.training.export import export_onnx

    torch.manual_seed(0)
    model = build_model(default_config("mobilenetv2", ("car",), normalization="unit", frozen_backbone_bn=True),
                        backbone_weights=None).eval()
    path = tmp_path / "unit.onnx"
    export_onnx(model, path, 64, 96, "test")
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    boxes, scores = session.run(["boxes", "scores"], {"images": image})[:2]
    # the reference: the network fed RGB x/127.5 - 1 by hand
    rgb = torch.from_numpy(image[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        ref_boxes, ref_scores = model.decode(model(rgb))
    np.testing.assert_allclose(scores, ref_scores.numpy(), atol=1e-4)
    np.testing.assert_allclose(boxes, ref_boxes.numpy(), atol=1e-2)


def test_mix_sampler_draws_each_source_its_share_deterministically() -> None:
    sampler = MixSampler([1000, 100], [1.0, 1.0], seed=3)
    assert sampler.counts() == [550, 550]
    indices = list(sampler)
    assert len(indices) == 1100 and sum(i >= 1000 for i in indices) == 550
    assert len(set(i for i in indices if i < 1000)) == 550  # the large source without replacement
    assert list(sampler) == indices
    sampler.set_epoch(1)
    assert list(sampler) != indices
    ranks = [set(MixSampler([1000, 100], [1.0, 1.0], 3, r, 2)) for r in (0, 1)]
    assert len(MixSampler([1000, 100], [1.0, 1.0], 3, 0, 2)) == 550
    assert ranks[0] | ranks[1] <= set(range(1100))
    with pytest.raises(ValueError, match="positive sum"):
        MixSampler([10], [0.0])


def test_ignored_pixels_count_in_no_segmentation_loss() -> None:
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    target = torch.randint(0, 2, (1, 4, 4))
    target[0, :2] = IGNORE_INDEX
    loss = masked_cross_entropy(logits, target) + dice_loss(logits, target)
    loss.backward()
    assert logits.grad is not None
    assert torch.count_nonzero(logits.grad[0, :, :2]) == 0 and torch.count_nonzero(logits.grad[0, :, 2:]) > 0
    everything_ignored = masked_cross_entropy(logits, torch.full((1, 4, 4), IGNORE_INDEX))
    assert torch.isfinite(everything_ignored) and everything_ignored.item() == 0.0


def test_an_ignore_box_is_neither_object_nor_background() -> None:
    model = build_model(default_config("mobilenetv2", ("car",)), backbone_weights=None)
    criterion = MultiTaskLoss(model.anchors, 1)
    raw = [torch.zeros(1, 3, 64 // s, 64 // s, 6, requires_grad=True) for s in (8, 16, 32)]
    ignore = torch.tensor([[0, IGNORE_CLASS, 8.0, 8.0, 40.0, 40.0]])
    box, obj, cls = criterion.detection_losses(raw, ignore)
    (box + obj + cls).backward()
    grad = raw[0].grad
    assert grad is not None
    inside, outside = grad[0, :, 1:5, 1:5, 4], grad[0, :, 6:, 6:, 4]
    assert torch.count_nonzero(inside) == 0  # cells centred in the region: no push towards "no object"
    assert torch.count_nonzero(outside) == outside.numel()  # the rest is background as before
    assert box.item() == 0 and cls.item() == 0  # no anchor was assigned to it


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="../shared/weights is not beside this clone")
def test_the_shared_weights_used_without_their_convention_are_warned_about(tiny_set: Path, tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    """Issue 34 item 21: the shared weights with torchvision's mean/std and trainable BatchNorm gave no word;
    their convention is known by their hash (../shared/weights/README.md), or carried by the file."""
    from mtl_perception.training.backbone import weights_convention
    from mtl_perception.training.config import TrainConfig
    from mtl_perception.training.dataset import DataConfig
    from mtl_perception.training.trainer import Trainer

    convention = weights_convention(WEIGHTS)
    assert convention is not None and (convention.normalization, convention.frozen_bn) == ("unit", True)

    def start(weights: Path, **options: object) -> list[str]:
        caplog.clear()
        config = TrainConfig(DataConfig(tiny_set, height=128, width=192), tmp_path / f"run{len(list(tmp_path.iterdir()))}",
                             backbone_weights=str(weights), batch=4, epochs=1, workers=0, **options)
        with caplog.at_level("WARNING", logger="mtl_perception.training.trainer"):
            Trainer.from_config(config, progress=False)
        return [r.getMessage() for r in caplog.records if "starting weights" in r.getMessage()]

    warned = start(WEIGHTS)
    assert len(warned) == 2 and "expect --normalization unit, the run uses imagenet" in warned[0]
    assert "--frozen-backbone-bn" in warned[1]
    assert start(WEIGHTS, normalization="unit", frozen_backbone_bn=True) == []
    # a file that carries its convention beside the weights
    carried = tmp_path / "carried.pth"
    torch.save({"state_dict": torch.load(WEIGHTS, weights_only=True), "normalization": "unit", "frozen_bn": False},
               carried)
    assert weights_convention(carried) is not None
    assert [w for w in start(carried) if "normalization" in w] and not [w for w in start(carried) if "frozen" in w]
    backbone = build_backbone("mobilenetv2", str(carried))
    assert backbone.weights_used == "state_dict carried.pth"
