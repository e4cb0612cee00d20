"""BDD100K (or the synthetic set) as a torch Dataset for the multi-task network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mtl_perception.data.bdd100k import BDD100KSplit, ClassSet
from mtl_perception.training.transforms import AugmentConfig, TrainSample, augment, letterbox_sample


@dataclass(frozen=True)
class DataConfig:
    root: Path
    class_set: str = "bdd10"  # or "vehicle", the peers' merged class
    include_alternative: bool = False  # drivable = direct only, as the peers count it
    lane_widen_px: int = 0  # dilate lane masks at the original resolution (peers draw 8 px lines)
    height: int = 384
    width: int = 640
    limit: int | None = None


class MultiTaskDataset(Dataset):
    """Items: image uint8[H, W, 3] BGR, targets float32[N, 5] (class, x1, y1, x2, y2), drivable and lane uint8[H, W]."""

    def __init__(self, config: DataConfig, split: str, augment_cfg: AugmentConfig | None = None,
                 seed: int = 0) -> None:
        self.config = config
        self.split = BDD100KSplit(config.root, split, include_alternative=config.include_alternative,
                                  limit=config.limit)
        self.classes = ClassSet.named(config.class_set)
        self.augment_cfg = augment_cfg
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.split)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch  # a different augmentation per epoch, the same on resume

    def load(self, index: int) -> TrainSample:
        raw = self.split[index]
        assert raw.drivable is not None and raw.lane is not None  # the split was opened requiring every task
        ids = self.classes.target_ids(raw.labels)
        keep = np.array([i is not None for i in ids], dtype=bool)
        lane: np.ndarray = raw.lane.astype(np.uint8)
        if self.config.lane_widen_px > 1:
            kernel = np.ones((self.config.lane_widen_px, self.config.lane_widen_px), np.uint8)
            lane = cv2.dilate(lane, kernel)
        sample = TrainSample(raw.image, raw.labels.boxes[keep],
                             np.array([i for i in ids if i is not None], dtype=np.int64),
                             raw.drivable.astype(np.uint8), lane)
        return letterbox_sample(sample, self.config.height, self.config.width)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.load(index)
        if self.augment_cfg is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            sample = augment(sample, rng, self.augment_cfg)
        targets = np.concatenate([sample.classes[:, None].astype(np.float32), sample.boxes], axis=1)
        return {
            "image": torch.from_numpy(sample.image),
            "targets": torch.from_numpy(targets.reshape(-1, 5)),
            "drivable": torch.from_numpy(sample.drivable),
            "lane": torch.from_numpy(sample.lane),
        }


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stacks images and masks; targets become float32[M, 6] (batch index, class, x1, y1, x2, y2)."""
    targets = [torch.cat([torch.full((len(it["targets"]), 1), float(i)), it["targets"]], dim=1)
               for i, it in enumerate(items)]
    return {
        "image": torch.stack([it["image"] for it in items]),
        "targets": torch.cat(targets) if targets else torch.zeros(0, 6),
        "drivable": torch.stack([it["drivable"] for it in items]).long(),
        "lane": torch.stack([it["lane"] for it in items]).long(),
    }
