"""A bag through the same runtime pipeline as the node: output bag, latency, and metrics when labelled."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from mtl_perception.bags import FRAMES_FILE, BagError, ResultBagWriter, read_image_frames
from mtl_perception.data.bdd100k import BDD100KSplit, DatasetError
from mtl_perception.data.ground_truth import FrameGround
from mtl_perception.evaluation.evaluator import Evaluator
from mtl_perception.evaluation.tracking_eval import box_track_frame
from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose, GridSpec
from mtl_perception.runtime.overlay import draw_frame
from mtl_perception.runtime.perception import Perception
from mtl_perception.runtime.pipeline import CameraGeometry, FramePipeline
from mtl_perception.runtime.presets import DRIVABLE_DEFINITION, deployed_tracking, includes_alternative
from mtl_perception.runtime.realtime import percentiles

BAD_FRAMES_LISTED = 5  # the first few bad frames are reported by index and stamp; all are counted
# in the result bag's folder: its frames' tracks in BDD100K's box_track layout (one video named after the input
# bag; each frame named by its stamp in ns, its index its place in the bag, its timestamp in ms)
TRACKS_FILE = "tracks.json"


@dataclass(frozen=True)
class LabelJoin:
    """Bag stamps -> frame indices of a labelled split, through the bag's frames.json."""

    split: BDD100KSplit
    by_stamp: dict[int, int]

    @classmethod
    def load(cls, bag: Path, labels: Path, split: str,
             include_alternative: bool = includes_alternative(DRIVABLE_DEFINITION)) -> LabelJoin:
        frames_file = bag / FRAMES_FILE
        if not frames_file.is_file():
            raise BagError(f"{bag} has no {FRAMES_FILE} (image name -> stamp): labels can only be joined to bags "
                           "written by `mtl-perception make-bag`")
        stamps = {name: int(stamp) for name, stamp in json.loads(frames_file.read_text()).items()}
        data = BDD100KSplit(labels, split, include_alternative=include_alternative, require=())
        by_stamp = {stamps[f.name]: i for i, f in enumerate(data.frames) if f.name in stamps}
        if not by_stamp:
            raise DatasetError(f"the labels of {labels} [{split}] match no frame of {bag}: the bag holds "
                               f"{', '.join(list(stamps)[:3])}..., the labels {data.frames[0].name}...; "
                               "was the bag made from this split's images?")
        return cls(data, by_stamp)


@dataclass
class GroundOutput:
    """What eval-bag needs to write drivable_grid and lane_marking_points: the camera of each frame, either
    one for the whole bag (its camera_info and a camera pose) or per frame (a synthetic split's ground
    truth, by stamp), and the grid. The frame pipeline puts the masks on the ground, as in the node."""

    frame_id: str
    spec: GridSpec
    camera: tuple[CameraIntrinsics, CameraPose] | None = None
    by_stamp: dict[int, FrameGround] = field(default_factory=dict)

    def geometry(self, stamp_ns: int) -> CameraGeometry | None:
        truth = self.by_stamp.get(stamp_ns)
        camera = (truth.intrinsics, truth.pose) if truth is not None else self.camera
        return None if camera is None else CameraGeometry(*camera)


def evaluate_bag(bag: Path, perception: Perception, out: Path, topic: str | None = None,
                 labels: LabelJoin | None = None, overlays: bool = False, storage: str | None = None,
                 progress: bool = True, ground: GroundOutput | None = None, namespace: str = "") -> dict:
    """Run every image of the bag; write out; return latency (and metrics with labels).

    The output bag is written under a partial name and renamed when every frame is done; on an error or an
    interruption it is removed, so a result bag is always a complete one.
    """
    writer = ResultBagWriter(out, namespace, storage=storage, overlays=overlays, ground=ground is not None)
    pipeline = FramePipeline(perception, ground.spec if ground is not None else GridSpec.from_node_defaults(),
                             deployed_tracking())
    grids = 0
    evaluator = Evaluator(perception.info.class_names, tasks=labels.split.tasks if labels else (),
                          skipped=labels.split.missing if labels else None)
    latencies: list[float] = []
    bad: list[dict[str, object]] = []
    tracked: list[dict] = []
    names = perception.info.class_names
    try:
        for index, frame in enumerate(tqdm(read_image_frames(bag, topic), desc="eval-bag", unit="frame",
                                           disable=not progress)):
            if frame.image is None:  # skipped and counted, as the node skips a bad frame
                bad.append({"index": index, "stamp_ns": frame.stamp_ns, "topic": frame.topic,
                            "problem": frame.problem})
                continue
            frame_result = pipeline.process(frame.image, frame.stamp_ns,
                                            ground.geometry(frame.stamp_ns) if ground is not None else None)
            result = frame_result.outputs
            latencies.append(result.timings["total"])
            overlay = None
            if overlays:
                overlay = draw_frame(frame_result, names)
            tracks = frame_result.tracks
            writer.write(frame, result, names, overlay, tracks.track_ids.tolist() if tracks is not None else None)
            if tracks is not None:
                detections = tracks.detections
                tracked.append(box_track_frame(f"{frame.stamp_ns}", bag.name, index, detections.boxes,
                                               detections.scores, [names[int(c)] for c in detections.class_ids],
                                               tracks.track_ids, frame.stamp_ns // 1_000_000))
            if ground is not None and frame_result.ground is not None:
                writer.write_ground(frame.stamp_ns, ground.frame_id, frame_result.ground, ground.spec)
                writer.write_scene(frame.stamp_ns, ground.frame_id, frame_result, names)
                grids += 1
            if labels is not None and frame.stamp_ns in labels.by_stamp:
                sample = labels.split[labels.by_stamp[frame.stamp_ns]]
                evaluator.add(result, sample.labels, sample.drivable, sample.lane)
        writer.add_file(TRACKS_FILE, json.dumps(tracked))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    summary: dict = {"frames": writer.count, "latency_ms": percentiles(latencies), "out": str(out),
                     "topics": writer.topics,
                     "bad_frames": {"count": len(bad), "first": bad[:BAD_FRAMES_LISTED]}}
    if labels is not None:
        summary["metrics"] = evaluator.summary()
    if ground is not None:
        summary["drivable_grids"] = grids
    return summary
