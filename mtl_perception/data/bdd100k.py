"""BDD100K's official layout and label encodings, read without torch.

Layout (relative to the dataset root)::

    images/100k/{train,val}/NAME.jpg
    labels/det_20/det_{train,val}.json
    labels/drivable/masks/{train,val}/NAME.png   uint8: 0 direct, 1 alternative, 2 background
    labels/lane/masks/{train,val}/NAME.png       uint8 bit field, see LANE_* below

Boxes are continuous pixel coordinates: pixel column i spans [i, i + 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    Sequence as SequenceBase,  # a base class subscripted at import: collections.abc's is not, under 3.8
)

import cv2
import numpy as np

from mtl_perception.compat import zip_strict
from mtl_perception.errors import UserFacingError
from mtl_perception.runtime.presets import DRIVABLE_DEFINITION, includes_alternative

DETECTION_CLASSES: tuple[str, ...] = (
    "pedestrian", "rider", "car", "truck", "bus",
    "train", "motorcycle", "bicycle", "traffic light", "traffic sign",
)
# YOLOP and HybridNets evaluate one merged class; we follow them for peer-comparable figures.
VEHICLE_CLASSES: frozenset[str] = frozenset({"car", "truck", "bus", "train"})
# The BDD100K toolkit's category handling (bdd100k/label/to_scalabel.py): names of older label files,
# and det_20's three categories that evaluation treats as ignored regions of a class (like crowd
# boxes: a detection on one counts neither as true nor as false positive).
NAME_MAPPING: dict[str, str] = {"bike": "bicycle", "caravan": "car", "motor": "motorcycle", "person": "pedestrian",
                                "van": "car"}
IGNORE_MAPPING: dict[str, str] = {"other person": "pedestrian", "other vehicle": "car", "trailer": "truck"}
DET20_CATEGORIES: tuple[str, ...] = (*DETECTION_CLASSES, *IGNORE_MAPPING)

DRIVABLE_DIRECT, DRIVABLE_ALTERNATIVE, DRIVABLE_BACKGROUND = 0, 1, 2
# Pixels no label claims (pseudo-labels where the teachers are unsure): training leaves them out of every
# loss. 255 is the BDD100K toolkit's ignore label in its segmentation masks; the lane value keeps the
# background bit set, so a reader that knows nothing of it sees background.
DRIVABLE_IGNORE = 255
LANE_IGNORE = 254

# The lane bit field, as the BDD100K toolkit writes and reads it (bdd100k/label/to_mask.py,
# bdd100k/eval/lane.py: value = category + (style << 4) + (direction << 5)): bits 0-2 category,
# bit 3 background (a pixel is a marking only where it is clear), bit 4 style, bit 5 direction.
# Background pixels are 255. This is the one definition: the reader, the writer, check-data and
# the synthetic generator use it (test/evaluation/test_official_toolkit.py reads it back with the toolkit's
# own bit functions); a category is the index into LANE_CATEGORIES, held in bits 0-2.
LANE_BACKGROUND_BIT = 0b0000_1000
LANE_STYLE_BIT = 0b0001_0000  # 0 solid, 1 dashed
LANE_DIRECTION_BIT = 0b0010_0000  # 0 parallel, 1 vertical (crosswalks, stop lines)
LANE_BACKGROUND = 255
LANE_CATEGORIES: tuple[str, ...] = (
    "crosswalk", "double other", "double white", "double yellow",
    "road curb", "single other", "single white", "single yellow",
)


class DatasetError(RuntimeError, UserFacingError):
    """A BDD100K folder that cannot be read: the message names the file and the fix."""


def encode_lane(category: str, *, dashed: bool = False, vertical: bool = False) -> int:
    """The lane-mask value of one marking pixel."""
    value = LANE_CATEGORIES.index(category)
    if dashed:
        value |= LANE_STYLE_BIT
    if vertical:
        value |= LANE_DIRECTION_BIT
    return value


# every value a valid mask may hold: the markings (any category, style and direction) and background
VALID_LANE_VALUES: frozenset[int] = frozenset(
    [c | s | d for c in range(len(LANE_CATEGORIES)) for s in (0, LANE_STYLE_BIT) for d in (0, LANE_DIRECTION_BIT)]
    + [LANE_BACKGROUND, LANE_IGNORE])
VALID_DRIVABLE_VALUES: frozenset[int] = frozenset(
    {DRIVABLE_DIRECT, DRIVABLE_ALTERNATIVE, DRIVABLE_BACKGROUND, DRIVABLE_IGNORE})


def decode_lane_mask(mask: np.ndarray) -> np.ndarray:
    """Lane pixels as a bool array: those whose background bit is clear.

    Note that 0 is a lane pixel (a solid parallel crosswalk); "non-zero means lane" is exactly wrong.
    """
    return (mask & LANE_BACKGROUND_BIT) == 0


def decode_drivable_mask(mask: np.ndarray, *, include_alternative: bool = False) -> np.ndarray:
    """Drivable pixels as a bool array: direct area, or direct and alternative."""
    if include_alternative:
        return mask <= DRIVABLE_ALTERNATIVE
    return mask == DRIVABLE_DIRECT


@dataclass(frozen=True)
class ClassSet:
    """How BDD100K categories map to the model's class ids."""

    names: tuple[str, ...]
    mapping: dict[str, int] = field(hash=False, compare=False)

    @classmethod
    def named(cls, name: str) -> ClassSet:
        if name == "bdd10":
            return cls(DETECTION_CLASSES, {c: i for i, c in enumerate(DETECTION_CLASSES)})
        if name == "vehicle":
            return cls(("vehicle",), dict.fromkeys(sorted(VEHICLE_CLASSES), 0))
        raise ValueError(f"unknown class set {name!r}; use 'bdd10' (all 10 BDD100K classes) or 'vehicle'")

    def class_id(self, category: str) -> int | None:
        return self.mapping.get(category)

    def target_ids(self, labels: FrameLabels) -> list[int | None]:
        """Each box's class id as a training target; None for boxes outside the class set and for the
        ignored regions (crowd boxes, IGNORE_MAPPING's categories), which are no one object."""
        return [None if ignore else self.class_id(c)
                for c, ignore in zip_strict(labels.categories, labels.ignore.tolist())]


@dataclass(frozen=True)
class SplitPaths:
    root: Path
    split: str

    @property
    def images(self) -> Path:
        return self.root / "images" / "100k" / self.split

    @property
    def det_json(self) -> Path:
        return self.root / "labels" / "det_20" / f"det_{self.split}.json"

    @property
    def box_track(self) -> Path:
        """BDD100K's tracking labels: one JSON file of frames per video."""
        return self.root / "labels" / "box_track_20" / self.split

    @property
    def drivable(self) -> Path:
        return self.root / "labels" / "drivable" / "masks" / self.split

    @property
    def lane(self) -> Path:
        return self.root / "labels" / "lane" / "masks" / self.split

    def mask_name(self, image_name: str) -> str:
        return Path(image_name).with_suffix(".png").name


@dataclass(frozen=True)
class FrameLabels:
    """One frame's annotations.

    boxes: float32[N, 4] x1, y1, x2, y2; categories: N names, each one of DETECTION_CLASSES (older
    names mapped, IGNORE_MAPPING's categories to their class); crowd, ignored, occluded, truncated:
    bool[N] (ignored: one of IGNORE_MAPPING's categories); unknown: categories of boxes that are not
    det_20's, left out of every array.
    """

    name: str
    boxes: np.ndarray
    categories: tuple[str, ...]
    attributes: dict[str, str]
    crowd: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    ignored: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    occluded: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    truncated: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    unknown: tuple[str, ...] = ()

    @property
    def ignore(self) -> np.ndarray:
        """bool[N]: boxes the toolkit evaluates as ignored regions (crowd, or an ignored category);
        training leaves them out too."""
        return self.crowd | self.ignored


def _frame_labels(frame: dict) -> FrameLabels:
    boxes, categories, flags, unknown = [], [], [], []
    for label in frame.get("labels") or []:
        if "box2d" not in label:
            continue  # det_20 frames also list poly2d labels for other tasks
        name = NAME_MAPPING.get(label["category"], label["category"])
        ignored = name in IGNORE_MAPPING
        name = IGNORE_MAPPING.get(name, name)
        if name not in DETECTION_CLASSES:
            unknown.append(label["category"])
            continue
        attributes = label.get("attributes") or {}
        boxes.append([label["box2d"][k] for k in ("x1", "y1", "x2", "y2")])
        categories.append(name)
        flags.append((bool(attributes.get("crowd", False)), ignored, bool(attributes.get("occluded", False)),
                      bool(attributes.get("truncated", False))))
    columns = [np.array(col, bool) for col in zip_strict(*flags)] if flags else [np.zeros(0, bool)] * 4
    crowd, ignored_flags, occluded, truncated = columns
    return FrameLabels(frame["name"], np.array(boxes, np.float32).reshape(-1, 4), tuple(categories),
                       dict(frame.get("attributes") or {}), crowd, ignored_flags, occluded, truncated,
                       tuple(unknown))


def read_frame_list(path: Path, what: str) -> list:
    """The frames of a BDD100K/scalabel JSON file: a list of frames, or scalabel's {"frames": [...]}."""
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path}")
    try:
        frames = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path} is not valid JSON ({err}); re-download or regenerate it") from err
    if isinstance(frames, dict) and isinstance(frames.get("frames"), list):
        frames = frames["frames"]
    if not isinstance(frames, list):
        raise DatasetError(f"{path}: expected a list of frames, got {type(frames).__name__}")
    return frames


def box_problems(boxes: np.ndarray) -> list[tuple[int, str]]:
    """(index, what is wrong) for each box x1, y1, x2, y2 that no metric can score: a coordinate that is
    NaN or infinite, or x2 < x1 or y2 < y1 (NaN passes every comparison, so it must be asked for)."""
    out = []
    for i, box in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        if not np.isfinite(box).all():
            out.append((i, "has a coordinate that is not a finite number"))
        elif box[2] < box[0] or box[3] < box[1]:
            out.append((i, "is inverted (x2 < x1 or y2 < y1)"))
    return out


def describe_box_problem(path: Path, frame: str, boxes: np.ndarray, index: int, problem: str) -> str:
    box = ", ".join(f"{v:g}" for v in np.asarray(boxes, np.float64)[index])
    return f"{path}: frame {frame!r}: box {index} [{box}] {problem}"


def load_frames(path: Path, what: str = "detection labels", validate: bool = True) -> list[FrameLabels]:
    """Labelled frames of a BDD100K/scalabel detection file. With validate, DatasetError for the first box
    box_problems refuses, naming the file, the frame and the box (check-data lists them all)."""
    out = []
    for index, frame in enumerate(read_frame_list(path, what)):
        try:
            labels = _frame_labels(frame)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise DatasetError(f"{path}: frame {index} is malformed ({type(err).__name__}: {err}); each frame "
                               "needs 'name' and labels with 'category' and 'box2d' (x1, y1, x2, y2 numbers)") from err
        if validate:
            for i, problem in box_problems(labels.boxes)[:1]:
                raise DatasetError(describe_box_problem(path, labels.name, labels.boxes, i, problem)
                                   + ": fix or drop it (check-data lists every such box)")
        out.append(labels)
    return out


def load_det_json(path: Path, validate: bool = True) -> list[FrameLabels]:
    """Read labels/det_20/det_SPLIT.json into FrameLabels, one per frame."""
    if not path.is_file():
        raise DatasetError(f"detection labels not found: {path} (expected BDD100K's labels/det_20/det_SPLIT.json)")
    return load_frames(path, validate=validate)


def read_image(path: Path) -> np.ndarray:
    """A BGR uint8 image, or DatasetError naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        reason = "missing" if not path.exists() else "unreadable or corrupt"
        raise DatasetError(f"image {path} is {reason}")
    return image


def read_mask(path: Path) -> np.ndarray:
    """A single-channel uint8 label mask, or DatasetError naming the file."""
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        reason = "missing" if not path.exists() else "unreadable or corrupt"
        raise DatasetError(f"mask {path} is {reason}")
    if mask.ndim == 3:
        mask = mask[..., 0]  # some tools save label maps as RGB with equal channels
    return mask


TASKS = ("detection", "drivable", "lane")


@dataclass(frozen=True)
class Sample:
    """One frame, decoded. drivable and lane are bool[H, W], or None where the split has no such labels;
    labels.boxes in image pixels (no boxes where the split has no detection labels); drivable_ignore and
    lane_ignore are bool[H, W] of the pixels labelled DRIVABLE_IGNORE / LANE_IGNORE (None: none)."""

    image: np.ndarray
    labels: FrameLabels
    drivable: np.ndarray | None
    lane: np.ndarray | None
    drivable_ignore: np.ndarray | None = None
    lane_ignore: np.ndarray | None = None


def _unlabelled(name: str) -> FrameLabels:
    return FrameLabels(name, np.zeros((0, 4), np.float32), (), {})


def _ignored(mask: np.ndarray | None, value: int) -> np.ndarray | None:
    if mask is None:
        return None
    ignored = mask == value
    return ignored if ignored.any() else None


class BDD100KSplit(SequenceBase[Sample]):
    """A split of a BDD100K folder, with whichever of BDD100K's separate label downloads it has.

    `tasks` are the label kinds present (detection: labels/det_20/det_SPLIT.json; drivable and lane:
    their mask folders); `require` names those the caller cannot do without (training needs all
    three, evaluation any). Frames come from det_SPLIT.json, or from the image folder when the split
    has no detection labels; `limit` keeps the first n.
    """

    def __init__(self, root: Path | str, split: str, *,
                 include_alternative: bool = includes_alternative(DRIVABLE_DEFINITION),
                 limit: int | None = None, require: Sequence[str] = TASKS) -> None:
        self.paths = SplitPaths(Path(root), split)
        if not self.paths.root.is_dir():
            raise DatasetError(f"dataset folder {self.paths.root} does not exist; pass --data with the "
                               "folder that holds images/ and labels/ (or make one: mtl-perception synth)")
        self.include_alternative = include_alternative
        where = {"detection": self.paths.det_json, "drivable": self.paths.drivable, "lane": self.paths.lane}
        self.tasks = tuple(t for t in TASKS if where[t].exists())
        self.missing = {t: f"{where[t]} not found" for t in TASKS if t not in self.tasks}
        lacking = [t for t in require if t not in self.tasks]
        if lacking:
            raise DatasetError(f"{self.paths.root} [{split}] has no {' and no '.join(lacking)} labels "
                               f"({'; '.join(self.missing[t] for t in lacking)}); BDD100K's label kinds are "
                               "separate downloads")
        if not self.tasks:
            raise DatasetError(f"{self.paths.root} [{split}] has no labels at all: expected "
                               f"{self.paths.det_json}, {self.paths.drivable} or {self.paths.lane}")
        if "detection" in self.tasks:
            frames = load_det_json(self.paths.det_json)
            source = self.paths.det_json
        else:
            names = sorted(p.name for p in self.paths.images.glob("*.jpg")) if self.paths.images.is_dir() else []
            frames, source = [_unlabelled(name) for name in names], self.paths.images
        if limit is not None:
            frames = frames[:limit]
        if not frames:
            raise DatasetError(f"{source} lists no frames: the {split} split is empty")
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def _mask(self, kind: str, folder: Path, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
        if kind not in self.tasks:
            return None
        mask = read_mask(folder / self.paths.mask_name(name))
        if mask.shape != shape:
            raise DatasetError(f"{kind} mask for {name} is {mask.shape[1]}x{mask.shape[0]}, "
                               f"its image {shape[1]}x{shape[0]}")
        return mask

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        labels = self.frames[index]
        image = read_image(self.paths.images / labels.name)
        drivable = self._mask("drivable", self.paths.drivable, labels.name, image.shape[:2])
        lane = self._mask("lane", self.paths.lane, labels.name, image.shape[:2])
        return Sample(image, labels,
                      None if drivable is None else decode_drivable_mask(
                          drivable, include_alternative=self.include_alternative),
                      None if lane is None else decode_lane_mask(lane),
                      _ignored(drivable, DRIVABLE_IGNORE), _ignored(lane, LANE_IGNORE))

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]
