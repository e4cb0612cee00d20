"""Training throughput (issue 33 item 3): the sample cache gives back exactly the samples decoding gives, never
a stale one, and survives a half-written file; train --measure-steps prints frames per second and writes
nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from mtl_perception.training.dataset import DataConfig, MultiTaskDataset
from mtl_perception.training.transforms import AugmentConfig


def _same(a: object, b: object) -> None:
    for name in ("image", "boxes", "classes", "drivable", "lane"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == right.dtype and np.array_equal(left, right), name


def test_cached_samples_are_the_decoded_ones(tiny_set: Path, tmp_path: Path) -> None:
    config = DataConfig(tiny_set, height=256, width=384)
    plain = MultiTaskDataset(config, "train")
    cached = MultiTaskDataset(replace(config, cache_dir=tmp_path / "cache"), "train")
    for index in range(len(plain)):
        _same(cached.load(index), plain.load(index))  # the first read decodes and stores
        _same(cached.load(index), plain.load(index))  # the second reads the cache
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == len(plain)
    # augmentation comes after the cache: the same per-epoch draws either way
    augmented = [MultiTaskDataset(c, "train", AugmentConfig(), seed=3) for c in (config, cached.config)]
    for part in augmented:
        part.set_epoch(2)
    for a, b in zip(augmented[0][1].values(), augmented[1][1].values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy())


def test_a_changed_frame_or_setting_is_never_read_stale(tiny_set: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    config = DataConfig(tiny_set, height=256, width=384, cache_dir=cache)
    MultiTaskDataset(config, "train").load(0)
    # another input size or label option is another key
    other = MultiTaskDataset(replace(config, height=224, lane_widen_px=3), "train").load(0)
    assert other.image.shape[:2] == (224, 384)
    assert len({p.parent for p in cache.rglob("*.npz")}) == 2
    # a frame's image replaced: decoded again, not read from the old entry
    dataset = MultiTaskDataset(config, "train")
    image = dataset.split.paths.images / dataset.split.frames[0].name
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    dataset.load(0)
    assert len(list(cache.rglob("*.npz"))) == 3
    # an entry cut short (a crash while writing) is made again, not read
    for entry in cache.rglob("*.npz"):
        entry.write_bytes(entry.read_bytes()[:100])
    _same(dataset.load(0), MultiTaskDataset(replace(config, cache_dir=None), "train").load(0))


def test_measure_steps_prints_throughput_and_writes_nothing(tiny_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "train", "--data", str(tiny_set), "--out",
                             str(out), "--img-size", "128x192", "--batch", "2", "--workers", "0",
                             "--backbone-weights", "none", "--measure-steps", "2", "--cache", str(tmp_path / "c"),
                             "--no-channels-last", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("training throughput:") and "frames/s over 2 steps of 2" in line
    assert "1 torch threads, 0 loading processes, channels_last off, cache " in line
    assert not out.exists()
