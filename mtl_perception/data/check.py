"""Check a BDD100K-layout split before a long run: every file there, readable, and consistent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mtl_perception.data.bdd100k import (
    VALID_DRIVABLE_VALUES,
    VALID_LANE_VALUES,
    DatasetError,
    SplitPaths,
    box_problems,
    decode_drivable_mask,
    decode_lane_mask,
    describe_box_problem,
    load_det_json,
)
from mtl_perception.runtime.image_encoding import jpeg_damage


@dataclass
class CheckReport:
    images: int = 0
    per_image: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"images": self.images, "per_image": self.per_image, "problems": self.problems}


def _read(path: Path, flags: int, kind: str, problems: list[str]) -> np.ndarray | None:
    """The file decoded in full, or None with the problem. libjpeg decodes a JPEG cut short (its missing rows
    grey) or one whose scan data is damaged with a warning on stderr only, so those are asked for first."""
    if not path.is_file():
        problems.append(f"missing {kind}: {path}")
        return None
    encoded = np.fromfile(str(path), np.uint8)
    damage = jpeg_damage(encoded)
    if damage is not None:
        problems.append(f"corrupt {kind} ({damage}): {path}")
        return None
    data = cv2.imdecode(encoded, flags)
    if data is None:
        problems.append(f"corrupt {kind} (cannot decode): {path}")
    return data


def _check_mask(mask: np.ndarray, shape: tuple[int, ...], kind: str, name: str, problems: list[str]) -> bool:
    if mask.ndim != 2 or mask.shape != shape:
        problems.append(f"{kind} mask of {name} is {mask.shape}, its image is {shape}")
        return False
    values = np.unique(mask)
    # drivable: direct, alternative, background or ignore; lane: BDD100K's bit field (markings of any
    # category, style and direction), background or ignore
    valid = VALID_DRIVABLE_VALUES if kind == "drivable" else VALID_LANE_VALUES
    bad = values[~np.isin(values, sorted(valid))]
    if bad.size:
        problems.append(f"{kind} mask of {name} has invalid values {bad[:5].tolist()}")
        return False
    return True


def splits_in(root: Path) -> list[str]:
    """The splits a BDD100K-layout root holds (an image folder or a detection labels file), sorted."""
    images = root / "images" / "100k"
    found = {p.name for p in images.iterdir() if p.is_dir()} if images.is_dir() else set()
    labels = root / "labels" / "det_20"
    if labels.is_dir():
        found |= {p.stem[len("det_"):] for p in labels.glob("det_*.json") if ".shard-" not in p.name}
    return sorted(found)


def check_split(root: Path, split: str, progress: bool = True) -> CheckReport:
    """Per-image counts at the original resolution and a list of problems found."""
    paths = SplitPaths(root, split)
    report = CheckReport()
    if not paths.images.is_dir():
        report.problems.append(f"image folder {paths.images} does not exist")
    try:
        frames = load_det_json(paths.det_json, validate=False)  # every bad box is listed below
    except DatasetError as err:
        report.problems.append(str(err))
        frames = []
    labelled = {f.name for f in frames}
    if paths.images.is_dir():
        for image_path in sorted(paths.images.glob("*.jpg")):
            if image_path.name not in labelled:
                report.problems.append(f"image without labels: {image_path.name}")
    for frame in tqdm(frames, desc=f"check {split}", unit="image", disable=not progress):
        image = _read(paths.images / frame.name, cv2.IMREAD_COLOR, "image (labels without an image)",
                      report.problems)
        if image is None:
            continue
        report.images += 1
        h, w = image.shape[:2]
        b = frame.boxes
        bad = box_problems(b)
        report.problems += [describe_box_problem(paths.det_json, frame.name, b, i, problem) for i, problem in bad]
        finite = np.isfinite(b).all(axis=1) if len(b) else np.zeros(0, bool)
        fb = b[finite]
        if len(fb) and ((fb[:, 2] <= fb[:, 0]) | (fb[:, 3] <= fb[:, 1]) | (fb[:, 0] < -1) | (fb[:, 1] < -1)
                        | (fb[:, 2] > w + 1) | (fb[:, 3] > h + 1)).any() and not bad:
            report.problems.append(f"{frame.name}: boxes outside the {w}x{h} image or empty")
        # objects and ignore regions apart, as pseudo-label counts them ("13 boxes, 31 ignore regions")
        ignore = int(frame.ignore.sum())
        counts = {"boxes": len(b) - ignore, "ignore_regions": ignore, "drivable_px": 0, "lane_px": 0}
        mask_name = paths.mask_name(frame.name)
        drivable = _read(paths.drivable / mask_name, cv2.IMREAD_UNCHANGED, "drivable mask", report.problems)
        if drivable is not None and _check_mask(drivable, (h, w), "drivable", frame.name, report.problems):
            counts["drivable_px"] = int(decode_drivable_mask(drivable).sum())
        lane = _read(paths.lane / mask_name, cv2.IMREAD_UNCHANGED, "lane mask", report.problems)
        if lane is not None and _check_mask(lane, (h, w), "lane", frame.name, report.problems):
            counts["lane_px"] = int(decode_lane_mask(lane).sum())
        report.per_image[frame.name] = counts
    unknown = Counter(c for frame in frames for c in frame.unknown)
    if unknown:
        report.problems.append("categories that are not BDD100K det_20's (left out of training and evaluation): "
                               + ", ".join(f"{name!r} x{count}" for name, count in unknown.most_common()))
    if not frames and not report.problems:
        report.problems.append(f"{paths.det_json} lists no frames")
    return report
