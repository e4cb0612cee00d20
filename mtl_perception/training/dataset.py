"""BDD100K (or the synthetic set) as a torch Dataset for the multi-task network."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Sampler

from mtl_perception.data.bdd100k import BDD100KSplit, ClassSet
from mtl_perception.runtime.presets import DRIVABLE_DEFINITION, includes_alternative
from mtl_perception.training.sample_cache import SampleCache
from mtl_perception.training.transforms import AugmentConfig, TrainSample, augment, letterbox_sample


@dataclass(frozen=True)
class DataConfig:
    root: Path
    class_set: str = "bdd10"  # or "vehicle", the peers' merged class
    # drivable = direct and alternative merged, as the peers count it (runtime/presets.py's DRIVABLE_DEFINITION)
    include_alternative: bool = includes_alternative(DRIVABLE_DEFINITION)
    lane_widen_px: int = 0  # dilate lane masks at the original resolution (peers draw 8 px lines)
    height: int = 384
    width: int = 640
    limit: int | None = None
    # decoded, letterboxed samples kept here between epochs (training/sample_cache.py); None: decoded every time
    cache_dir: Path | None = None


# A target class or mask value that no loss counts: ignore boxes (BDD100K's crowd boxes, the toolkit's ignored
# categories, uncertain pseudo-labels) carry IGNORE_CLASS, unlabelled pixels IGNORE_INDEX
IGNORE_CLASS = -1
IGNORE_INDEX = 255


@dataclass(frozen=True)
class DataSource:
    """One dataset of a training mix: its root and its share of each epoch's samples."""

    root: Path
    weight: float = 1.0


class MultiTaskDataset(Dataset):
    """Items: image uint8[H, W, 3] BGR, targets float32[N, 5] (class, x1, y1, x2, y2; class IGNORE_CLASS for
    ignore regions), drivable and lane uint8[H, W] (0, 1 or IGNORE_INDEX)."""

    def __init__(self, config: DataConfig, split: str, augment_cfg: AugmentConfig | None = None,
                 seed: int = 0) -> None:
        self.config = config
        self.split = BDD100KSplit(config.root, split, include_alternative=config.include_alternative,
                                  limit=config.limit)
        self.classes = ClassSet.named(config.class_set)
        self.augment_cfg = augment_cfg
        self.seed = seed
        self.epoch = 0
        self.cache = None
        if config.cache_dir is not None:
            settings = {"root": str(Path(config.root).resolve()), "split": split, "size": [config.height, config.width],
                        "class_set": config.class_set, "include_alternative": config.include_alternative,
                        "lane_widen_px": config.lane_widen_px}
            self.cache = SampleCache(Path(config.cache_dir), settings, [self.split.paths.det_json])

    def __len__(self) -> int:
        return len(self.split)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch  # a different augmentation per epoch, the same on resume

    def load(self, index: int) -> TrainSample:
        """The frame decoded and letterboxed to the input size (from the cache where it is there)."""
        if self.cache is None:
            return self._decode(index)
        paths, name = self.split.paths, self.split.frames[index].name
        files = [paths.images / name, paths.drivable / paths.mask_name(name), paths.lane / paths.mask_name(name)]
        sample = self.cache.load(files)
        if sample is None:
            sample = self._decode(index)
            self.cache.store(files, sample)
        return sample

    def _decode(self, index: int) -> TrainSample:
        raw = self.split[index]
        assert raw.drivable is not None and raw.lane is not None  # the split was opened requiring every task
        ids = self.classes.target_ids(raw.labels)
        # ignore regions stay, as boxes no loss may call background; boxes of classes outside the set go
        ids = [IGNORE_CLASS if ignore else i for i, ignore in zip(ids, raw.labels.ignore.tolist(), strict=True)]
        keep = np.array([i is not None for i in ids], dtype=bool)
        lane: np.ndarray = raw.lane.astype(np.uint8)
        if self.config.lane_widen_px > 1:
            kernel = np.ones((self.config.lane_widen_px, self.config.lane_widen_px), np.uint8)
            lane = cv2.dilate(lane, kernel)
        drivable = raw.drivable.astype(np.uint8)
        if raw.drivable_ignore is not None:
            drivable[raw.drivable_ignore] = IGNORE_INDEX
        if raw.lane_ignore is not None:
            lane[raw.lane_ignore & (lane == 0)] = IGNORE_INDEX
        sample = TrainSample(raw.image, raw.labels.boxes[keep],
                             np.array([i for i in ids if i is not None], dtype=np.int64), drivable, lane)
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


class MixedDataset(ConcatDataset):
    """Several MultiTaskDatasets as one (index = position in their concatenation), for MixSampler."""

    datasets: list[MultiTaskDataset]  # type: ignore[assignment]

    def __init__(self, parts: Sequence[MultiTaskDataset]) -> None:
        super().__init__(parts)
        self.classes = parts[0].classes
        if any(p.classes.names != self.classes.names for p in parts):
            raise ValueError("every dataset of a mix must use the same class set")

    def set_epoch(self, epoch: int) -> None:
        for part in self.datasets:
            part.set_epoch(epoch)


class MixSampler(Sampler[int]):
    """Each epoch draws len(dataset) samples, source i's share weights[i] / sum(weights) of them: without
    replacement while a source has frames enough, with replacement beyond. Seeded by (seed, epoch), so a
    resumed run draws what an uninterrupted one would; under DDP each rank takes every world-th sample."""

    def __init__(self, lengths: Sequence[int], weights: Sequence[float], seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if len(lengths) != len(weights) or not lengths:
            raise ValueError("one weight per dataset is needed")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"dataset weights must be >= 0 with a positive sum, got {list(weights)}")
        self.lengths, self.weights = list(lengths), [float(w) for w in weights]
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.total = sum(self.lengths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def counts(self) -> list[int]:
        """Samples per source in one epoch."""
        shares = np.array(self.weights) / sum(self.weights) * self.total
        counts = np.floor(shares).astype(int)
        counts[np.argsort(counts - shares)[: self.total - counts.sum()]] += 1  # largest remainders
        return counts.tolist()

    def _indices(self) -> list[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        out, offset = [], 0
        for length, count in zip(self.lengths, self.counts(), strict=True):
            whole, rest = divmod(count, length)
            picks = [rng.permutation(length) for _ in range(whole)] + [rng.permutation(length)[:rest]]
            out.append(np.concatenate(picks) + offset)
            offset += length
        order = np.concatenate(out)
        rng.shuffle(order)
        return order[self.rank::self.world_size].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        return len(range(self.rank, self.total, self.world_size))
