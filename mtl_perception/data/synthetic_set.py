"""Write a synthetic data set in BDD100K's layout, one split at a time, never half-visible.

Frames are rendered into a staging folder beside the output; only when a split
is complete are its folders moved into place, and its det_SPLIT.json, the file
every reader starts from, is written last and atomically. Beside the labels,
labels/ground/ground_SPLIT.json holds each frame's camera and road in metres.

With drive_frames, a split is a run of drives (data/drive.py) rather than of unrelated scenes: each
drive_frames consecutive frames are one drive at rate_hz, and labels/box_track_20/SPLIT/VIDEO.json holds
each drive's frames in BDD100K's tracking layout, with the road users' places in the ground file.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mtl_perception.atomic_io import atomic_write_text
from mtl_perception.compat import zip_strict
from mtl_perception.data.bdd100k import SplitPaths
from mtl_perception.data.drive import Drive, DriveSettings, plan_drive, render_drive_frame, track_record
from mtl_perception.data.ground_truth import ground_json
from mtl_perception.data.randomisation import Randomisation
from mtl_perception.data.synthetic import frame_record, render_scene

SPLIT_IDS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class SynthConfig:
    out: Path
    train: int = 200
    val: int = 50
    seed: int = 0
    height: int = 720
    width: int = 1280
    workers: int = 1
    randomisation: Randomisation = field(default_factory=Randomisation)
    drive_frames: int = 0  # 0: every frame a scene of its own; n: drives of n frames each
    rate_hz: float = 10.0  # a drive's frame rate

    def __post_init__(self) -> None:
        if self.train < 0 or self.val < 0:
            raise ValueError(f"frame counts must be >= 0, got --train {self.train} --val {self.val}")
        if self.train + self.val == 0:
            raise ValueError("nothing to generate: --train and --val are both 0")
        if not (64 <= self.height <= 4096 and 64 <= self.width <= 4096):
            raise ValueError(f"image size {self.height}x{self.width} is out of range: use HxW between 64 and 4096")
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.drive_frames < 0:
            raise ValueError(f"--drive-frames must be >= 0 (0: unrelated scenes), got {self.drive_frames}")
        if self.drive_frames:
            DriveSettings(self.drive_frames, self.rate_hz)  # checks the rate


def frame_name(seed: int, split: str, index: int) -> str:
    return f"synth{seed:04d}-{split}-{index:06d}.jpg"


def video_name(seed: int, split: str, drive: int) -> str:
    return f"synth{seed:04d}-{split}-drive{drive:04d}"


@functools.lru_cache(maxsize=4)  # a worker renders a drive's frames in turn: plan it once
def _drive(config: SynthConfig, split: str, drive: int) -> Drive:
    return plan_drive((config.seed, SPLIT_IDS[split], drive), DriveSettings(config.drive_frames, config.rate_hz),
                      config.height, config.width, config.randomisation)


def _render_and_write(job: tuple[SynthConfig, str, int, Path]) -> tuple[dict, dict, dict | None]:
    config, split, index, stage = job
    rng = np.random.default_rng([config.seed, SPLIT_IDS[split], index])
    track = None
    if config.drive_frames:
        drive, frame = divmod(index, config.drive_frames)
        video = video_name(config.seed, split, drive)
        name = f"{video}-{frame:06d}.jpg"
        scene = render_drive_frame(_drive(config, split, drive), frame)
        track = track_record(name, video, frame, round(1000 * frame / config.rate_hz), scene)
    else:
        scene = render_scene(rng, config.height, config.width, config.randomisation)
        name = frame_name(config.seed, split, index)
    stem = Path(name).stem
    quality = int(rng.integers(60, 96))  # JPEG artefacts of varying strength
    ok = cv2.imwrite(str(stage / "images" / name), scene.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    ok &= cv2.imwrite(str(stage / "drivable" / f"{stem}.png"), scene.drivable)
    ok &= cv2.imwrite(str(stage / "lane" / f"{stem}.png"), scene.lane)
    if not ok:
        raise OSError(f"could not write frame {name} under {stage}")
    return frame_record(name, scene), scene.ground.to_record(name), track


def _records(config: SynthConfig, split: str, count: int, stage: Path) -> Iterator[tuple[dict, dict, dict | None]]:
    jobs = [(config, split, i, stage) for i in range(count)]
    if config.workers == 1:
        yield from map(_render_and_write, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(config.workers) as pool:
        yield from pool.imap(_render_and_write, jobs, chunksize=4)


def write_split(config: SynthConfig, split: str, count: int, progress: bool = True) -> SplitPaths:
    paths = SplitPaths(config.out, split)
    stage = Path(tempfile.mkdtemp(dir=config.out, prefix=f".synth-{split}-"))
    try:
        for sub in ("images", "drivable", "lane"):
            (stage / sub).mkdir()
        records, ground, tracks = zip_strict(*tqdm(_records(config, split, count, stage), total=count,
                                                    desc=f"synth {split}", unit="frame", disable=not progress))
        _stage_tracks(stage, [t for t in tracks if t is not None])
        paths.det_json.unlink(missing_ok=True)  # from here until the end the split is visibly incomplete
        for sub, final in (("images", paths.images), ("drivable", paths.drivable), ("lane", paths.lane),
                           ("box_track", paths.box_track)):
            shutil.rmtree(final, ignore_errors=True)
            if (stage / sub).is_dir():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(stage / sub, final)
        atomic_write_text(ground_json(paths), json.dumps(ground))
        atomic_write_text(paths.det_json, json.dumps(records))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return paths


def _stage_tracks(stage: Path, tracks: list[dict]) -> None:
    """Each drive's frames, in order, as one box_track file in stage/box_track (none without drives)."""
    videos: dict[str, list[dict]] = {}
    for frame in tracks:
        videos.setdefault(frame["videoName"], []).append(frame)
    if not videos:
        return
    (stage / "box_track").mkdir()
    for video, frames in videos.items():
        (stage / "box_track" / f"{video}.json").write_text(json.dumps(frames))


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise PermissionError(f"cannot write to {folder}: {err.strerror or err}; choose another --out") from err


def write_dataset(config: SynthConfig, progress: bool = True) -> list[SplitPaths]:
    check_writable(config.out)
    return [write_split(config, split, count, progress)
            for split, count in (("train", config.train), ("val", config.val)) if count > 0]
