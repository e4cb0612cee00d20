"""mtl-perception pseudo-label: teacher models in, BDD100K-layout labels out, for unlabelled footage.

Inputs are image folders, videos (and GIFs) and rosbag2 bags (raw or compressed images); the output is a
dataset root that `train --data` reads and `check-data` checks:

    OUT/images/100k/SPLIT/NAME.jpg
    OUT/labels/det_20/det_SPLIT.json            boxes, each with its fused score and teachers
    OUT/labels/drivable/masks/SPLIT/NAME.png    0 drivable (direct+alternative), 2 background, 255 ignore
    OUT/labels/lane/masks/SPLIT/NAME.png        lane lines ("single other"), 255 background, 254 ignore
    OUT/labels/pseudo_label_SPLIT.json          teachers, thresholds, class mapping, inputs, frames

With --shard K/N a job labels every N-th frame (from the K-th) and writes det_SPLIT.shard-K-of-N.json and
its manifest beside the others; `--merge` joins the N shards into det_SPLIT.json once all are there, so a
cluster's batch jobs can label a fleet's footage in parallel.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from mtl_perception.atomic_io import atomic_write_bytes, atomic_write_text
from mtl_perception.bags import read_image_frames
from mtl_perception.data.pseudo_label import (
    COCO_TO_BDD100K,
    DRIVABLE_DEFINITION,
    UNSEEN_BY_COCO_TEACHERS,
    Labeller,
    Thresholds,
    frame_record,
)
from mtl_perception.data.teachers import TeacherError, load_teacher

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".gif")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            k, n = (int(v) for v in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard {text!r}: expected K/N, e.g. 3/8") from None
        if not 1 <= k <= n:
            raise ValueError(f"--shard {text!r}: need 1 <= K <= N")
        return cls(k, n)

    def takes(self, position: int) -> bool:
        return position % self.count == self.index - 1

    @property
    def suffix(self) -> str:
        return "" if self.count == 1 else f".shard-{self.index}-of-{self.count}"


@dataclass(frozen=True)
class SourceFrame:
    name: str  # the image file name in the dataset
    source: str  # where it came from, for the labels' record
    load: Any  # () -> BGR image or None


def _is_bag(path: Path) -> bool:
    return (path.is_dir() and (path / "metadata.yaml").exists()) or path.suffix in (".mcap", ".db3")


@dataclass(frozen=True)
class ShortVideo:
    """A video that decoded fewer frames than its header announces (cut short, or damaged on the way)."""

    video: str
    announced: int
    decoded: int

    def as_dict(self) -> dict[str, Any]:
        return {"video": self.video, "announced": self.announced, "decoded": self.decoded}


def list_frames(inputs: list[Path], every: int, short_videos: list[ShortVideo] | None = None) -> list[SourceFrame]:
    """Every frame of the inputs, in order, named uniquely; nothing is decoded yet for folders. A video that
    decodes fewer frames than its header announces is added to short_videos."""
    frames: list[SourceFrame] = []
    for path in inputs:
        if not path.exists():
            raise FileNotFoundError(f"input {path} does not exist")
        if _is_bag(path):
            frames += _bag_frames(path, every)
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}), and is no bag")
            frames += [SourceFrame(f"{p.stem}.jpg", str(p), _image_loader(p)) for p in files]
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            frames += _video_frames(path, every, short_videos)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            frames.append(SourceFrame(f"{path.stem}.jpg", str(path), _image_loader(path)))
        else:
            raise ValueError(f"input {path}: not an image folder, an image, a video ({', '.join(VIDEO_SUFFIXES)}) "
                             "or a rosbag2 bag")
    seen: dict[str, str] = {}
    for frame in frames:
        if frame.name in seen:
            raise ValueError(f"two inputs give the frame name {frame.name} ({seen[frame.name]} and {frame.source}); "
                             "label them into different --out folders or rename one")
        seen[frame.name] = frame.source
    return frames


def _image_loader(path: Path) -> Any:
    def load() -> Any:
        return cv2.imread(str(path), cv2.IMREAD_COLOR)
    return load


def _video_frames(path: Path, every: int, short_videos: list[ShortVideo] | None) -> list[SourceFrame]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"video {path} cannot be opened (corrupt, or a codec this OpenCV lacks)")
    # what the container's header says; 0 or less where it does not say (a GIF, a stream)
    announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames, index = [], 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if index % every == 0:
                frames.append(SourceFrame(f"{path.stem}_{index:05d}.jpg", f"{path}#{index}",
                                          (lambda im=image: im)))
            index += 1
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"video {path} has no frames that OpenCV can decode")
    if short_videos is not None and index < announced:
        short_videos.append(ShortVideo(str(path), announced, index))
    return frames


def _bag_frames(path: Path, every: int) -> list[SourceFrame]:
    frames = []
    for index, frame in enumerate(read_image_frames(path)):
        if index % every or frame.image is None:
            continue
        topic = frame.topic.strip("/").replace("/", "_")
        frames.append(SourceFrame(f"{path.stem}_{topic}_{index:05d}.jpg", f"{path}:{frame.topic}@{frame.stamp_ns}",
                                  (lambda im=frame.image: im)))
    if not frames:
        raise ValueError(f"bag {path} has no image message that decodes")
    return frames


def _paths(out: Path, split: str, suffix: str = "") -> dict[str, Path]:
    return {"images": out / "images" / "100k" / split,
            "det": out / "labels" / "det_20" / f"det_{split}{suffix}.json",
            "drivable": out / "labels" / "drivable" / "masks" / split,
            "lane": out / "labels" / "lane" / "masks" / split,
            "manifest": out / "labels" / f"pseudo_label_{split}{suffix}.json"}


def _write_image(path: Path, image: Any, params: list[int] | None = None) -> None:
    ok, encoded = cv2.imencode(path.suffix, image, params or [])
    if not ok:
        raise OSError(f"cannot encode {path}")
    atomic_write_bytes(path, encoded.tobytes())


MAX_RESIZE_SIDE = 8192  # --resize beyond this is a typo, and would exhaust memory before the first frame


def _resize(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--resize {text!r}: expected WxH, e.g. 1280x720") from None
    if not (0 < width <= MAX_RESIZE_SIDE and 0 < height <= MAX_RESIZE_SIDE):
        raise ValueError(f"--resize {text!r}: width and height must lie in 1..{MAX_RESIZE_SIDE}")
    return width, height


def label_split(args: argparse.Namespace, shard: Shard) -> dict[str, Any]:
    """Labels the split (or the shard's share of it) into a staging folder, then swaps it in whole; an
    interrupted or failed run leaves the previous labels as they were, and no images of its own."""
    thresholds = Thresholds(args.box_keep, args.box_ignore, args.wbf_iou, args.drivable_margin, args.lane_margin)
    if not args.detector or not args.segmenter:
        raise ValueError("give at least one --detector and one --segmenter: training needs every task's labels")
    size = _resize(args.resize)
    if args.every < 1:
        raise ValueError(f"--every must be >= 1, got {args.every}")
    paths = _paths(args.out, args.split, shard.suffix)
    if paths["det"].exists() and not args.overwrite:
        raise FileExistsError(f"{paths['det']} exists: pass --overwrite to label split {args.split} again, "
                              "or choose another --out or --split")
    labeller = Labeller([load_teacher(s, args.threads, "detector") for s in args.detector],
                        [load_teacher(s, args.threads, "segmenter") for s in args.segmenter], args.flip, thresholds)
    short_videos: list[ShortVideo] = []
    every_frame = list_frames(args.input, args.every, short_videos)[:args.max_frames]
    frames = [f for i, f in enumerate(every_frame) if shard.takes(i)]
    for short in short_videos:
        print(f"warning: video {short.video} announces {short.announced} frames, {short.decoded} decoded (cut short "
              "or damaged?): only those are labelled", file=sys.stderr)
    staging = _staging_root(args.out, args.split, shard)
    try:
        manifest = _label_frames(args, frames, labeller, size, _paths(staging, args.split, shard.suffix))
        manifest.update({"shard": f"{shard.index}/{shard.count}", "thresholds": thresholds.as_dict(),
                         "short_videos": [v.as_dict() for v in short_videos],
                         "frames_in_input": len(every_frame)})
        if not frames:  # an empty shard (more shards than frames) is written, so that --merge can complete
            print(f"note: shard {shard.index}/{shard.count} has no frame ({len(every_frame)} in the input)",
                  file=sys.stderr)
        elif not manifest["frames"]:
            raise ValueError("no frame could be decoded: nothing was labelled")
        _swap_in(staging, args.out, args.split, shard, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _staging_root(out: Path, split: str, shard: Shard) -> Path:
    """A hidden dataset root inside out where one run writes its split (or shard) before it is swapped in; a
    leftover of an interrupted run is cleared first."""
    staging = out / f".pseudo-label-{split}{shard.suffix}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _label_frames(args: argparse.Namespace, frames: list[SourceFrame], labeller: Labeller,
                  size: tuple[int, int] | None, paths: dict[str, Path]) -> dict[str, Any]:
    for key in ("images", "drivable", "lane"):
        paths[key].mkdir(parents=True, exist_ok=True)
    records, skipped, counts = [], [], {"labels": 0, "ignore_regions": 0}
    for frame in tqdm(frames, desc=f"pseudo-label {args.split}", disable=args.no_progress):
        image = frame.load()
        if image is None:
            skipped.append(frame.source)
            continue
        if size is not None and (image.shape[1], image.shape[0]) != size:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        fused, drivable, lane = labeller.label(image)
        _write_image(paths["images"] / frame.name, image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        mask_name = Path(frame.name).with_suffix(".png").name
        _write_image(paths["drivable"] / mask_name, drivable)
        _write_image(paths["lane"] / mask_name, lane)
        records.append(frame_record(frame.name, fused, frame.source, labeller.detection_teachers))
        counts["ignore_regions"] += int(fused.ignore.sum())
        counts["labels"] += int((~fused.ignore).sum())
    atomic_write_text(paths["det"], json.dumps(records))
    return {
        "split": args.split, "frames": len(records), "skipped_unreadable": skipped, **counts,
        "detectors": [d.name for d in labeller.detectors], "segmenters": [s.name for s in labeller.segmenters],
        "flip": args.flip, "coco_to_bdd100k": COCO_TO_BDD100K,
        "unseen_classes": UNSEEN_BY_COCO_TEACHERS, "drivable_definition": DRIVABLE_DEFINITION,
        "inputs": [str(p) for p in args.input], "every": args.every, "resize": args.resize,
        "max_frames": args.max_frames,
    }


def _swap_in(staging: Path, out: Path, split: str, shard: Shard, manifest: dict[str, Any]) -> None:
    """The staged split into out. The old labels file goes first (its presence says a split is complete, so
    an interruption from here on leaves an incomplete split, never a mix that passes for one); then the whole
    split's folders are replaced (a shard's files join its siblings'), the manifest, and the labels last."""
    final, staged = _paths(out, split, shard.suffix), _paths(staging, split, shard.suffix)
    final["det"].unlink(missing_ok=True)
    for key in ("images", "drivable", "lane"):
        final[key].parent.mkdir(parents=True, exist_ok=True)
        if shard.count == 1:
            old = final[key].with_name(f".{final[key].name}.old")
            shutil.rmtree(old, ignore_errors=True)
            if final[key].exists():
                os.replace(final[key], old)
            os.replace(staged[key], final[key])
            shutil.rmtree(old, ignore_errors=True)
        else:
            final[key].mkdir(parents=True, exist_ok=True)
            for file in staged[key].iterdir():
                os.replace(file, final[key] / file.name)
    atomic_write_text(final["manifest"], json.dumps(manifest, indent=2))
    final["det"].parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged["det"], final["det"])


# what shards of one split must agree on to be merged: one labelling of one input, split N ways
SHARD_AGREEMENT = ("split", "inputs", "every", "resize", "max_frames", "detectors", "segmenters", "flip",
                   "thresholds", "drivable_definition")


def merge_shards(out: Path, split: str, overwrite: bool) -> dict[str, Any]:
    folder = out / "labels" / "det_20"
    shards = sorted(folder.glob(f"det_{split}.shard-*-of-*.json"))
    if not shards:
        raise FileNotFoundError(f"no shards of split {split} in {folder} (det_{split}.shard-K-of-N.json)")
    counts = {int(p.name.rsplit("-of-", 1)[1][: -len(".json")]) for p in shards}
    if len(counts) != 1:
        raise ValueError(f"{folder} holds shards of different N ({sorted(counts)}): remove the stale ones")
    n = counts.pop()
    have = {int(p.name.split(".shard-")[1].split("-of-")[0]) for p in shards}
    missing = sorted(set(range(1, n + 1)) - have)
    if missing:
        raise ValueError(f"shards {missing} of {n} are not written yet: merge when every job has finished")
    target = folder / f"det_{split}.json"
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists: pass --overwrite to merge again")
    records: list[Any] = []
    manifests = []
    for k in range(1, n + 1):
        records += json.loads((folder / f"det_{split}.shard-{k}-of-{n}.json").read_text())
        manifests.append(json.loads((out / "labels" / f"pseudo_label_{split}.shard-{k}-of-{n}.json").read_text()))
    for key in SHARD_AGREEMENT:
        values = [m.get(key) for m in manifests]
        differing = [k + 1 for k, v in enumerate(values) if v != values[0]]
        if differing:
            raise ValueError(f"shards {differing} of {n} were labelled with another {key} than shard 1 "
                             f"({values[differing[0] - 1]!r} against {values[0]!r}): label them again with one "
                             "command line, or merge only shards of one run")
    records.sort(key=lambda r: r["name"])
    merged = {**manifests[0], "shard": f"merged {n}", "frames": len(records),
              "labels": sum(m["labels"] for m in manifests),
              "ignore_regions": sum(m["ignore_regions"] for m in manifests),
              "skipped_unreadable": [s for m in manifests for s in m["skipped_unreadable"]],
              "short_videos": manifests[0].get("short_videos", [])}
    atomic_write_text(out / "labels" / f"pseudo_label_{split}.json", json.dumps(merged, indent=2))
    atomic_write_text(target, json.dumps(records))
    return merged


def run(args: argparse.Namespace) -> int:
    try:
        shard = Shard.parse(args.shard)
        if args.merge:
            summary = merge_shards(args.out, args.split, args.overwrite)
        else:
            if not args.input:
                raise ValueError("give at least one --input (a folder, a video or a bag)")
            summary = label_split(args, shard)
    except (ValueError, FileNotFoundError, FileExistsError, TeacherError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: split {args.split} of {args.out} was not completed (no det_{args.split}.json written)",
              file=sys.stderr)
        return 130
    print(f"{summary['frames']} frames of split {args.split} labelled into {args.out}: {summary['labels']} boxes, "
          f"{summary['ignore_regions']} ignore regions ({', '.join(summary['detectors'])}; "
          f"{', '.join(summary['segmenters'])})")
    return 0
