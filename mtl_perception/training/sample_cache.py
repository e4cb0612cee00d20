"""Decoded, letterboxed training samples kept on disk between epochs.

On a CPU most of a sample's cost before augmentation is decoding its 1280x720 JPEG and two PNG masks and
letterboxing the three, and that work is the same every epoch (augmentation comes after it, drawn per epoch).
The cache stores each sample as it leaves MultiTaskDataset.load (uint8 image and masks at the input size, boxes
and classes) in one uncompressed .npz, read back in about a millisecond.

A cached sample is keyed by everything it depends on: the dataset's settings that shape a sample (input size,
class set, drivable definition, lane widening) and its split's label file, and the frame's own files, its image
and its masks (name, size, modification time). A changed label file, image or mask gives a new key, so a stale
sample is never read. Files are written atomically; a cache folder may be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from mtl_perception.training.transforms import TrainSample

FIELDS = ("image", "boxes", "classes", "drivable", "lane")


def _stat(path: Path) -> list[object]:
    """What changes when a file is replaced: its size and modification time (absent: nothing)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return [str(path), None]
    return [str(path.resolve()), status.st_size, status.st_mtime_ns]


class SampleCache:
    """One dataset split's cached samples, under folder/<settings key>/."""

    def __init__(self, folder: Path, settings: dict[str, object], label_files: list[Path]) -> None:
        key = json.dumps({"settings": settings, "labels": [_stat(p) for p in label_files]}, sort_keys=True,
                         default=str)
        self.folder = folder / hashlib.sha1(key.encode()).hexdigest()[:16]

    def _path(self, files: list[Path]) -> Path:
        frame = hashlib.sha1(json.dumps([_stat(f) for f in files], default=str).encode()).hexdigest()[:20]
        return self.folder / f"{files[0].stem[:60]}-{frame}.npz"

    def load(self, files: list[Path]) -> TrainSample | None:
        """The sample made from files (its image first, then its masks), if it is cached."""
        path = self._path(files)
        try:
            with np.load(path) as stored:
                return TrainSample(*(stored[name] for name in FIELDS))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # not cached yet, or a file cut short by a crash: made again

    def store(self, files: list[Path], sample: TrainSample) -> None:
        path = self._path(files)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".npz.partial")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, **{name: getattr(sample, name) for name in FIELDS})
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
