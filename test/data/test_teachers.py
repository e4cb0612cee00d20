"""The teacher adapters against the real ONNX files in ../shared/teachers, on real dashcam frames.

Each adapter is checked against an outside reference rather than against itself: YOLOX against the literal
decoding its repository's demo documents (square canvas, ../shared/teachers/README.md), and every detector and
segmenter against an independent model of its task on the same real frame (two decodings written from two
repositories' demos agree only where both are right)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.data.teachers import (
    COCO_CLASSES,
    NanoDetTeacher,
    TeacherError,
    TwinLiteTeacher,
    YoloxTeacher,
    flipped_detections,
    load_teacher,
)
from mtl_perception.runtime.nms import box_iou, nms

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TEACHERS = SHARED / "teachers"
FRAME = SHARED / "real-unlabeled" / "bdd100k-train-50" / "00a04f65-8c891f94.jpg"
BUSY_FRAME = SHARED / "real-unlabeled" / "udacity" / "vehicle-detection" / "test1.jpg"

pytestmark = pytest.mark.skipif(not TEACHERS.is_dir() or not FRAME.is_file(),
                                reason="../shared/teachers and ../shared/real-unlabeled are not beside this clone: "
                                       "the teacher models are inputs, never shipped with the project")

VEHICLES = ("car", "bus", "truck")


def _frame(path: Path = FRAME) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None
    return image


def _yolox_as_documented(frame: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The README's YOLOX decoding, literally: 416x416 canvas of 114, image top-left, demo_postprocess."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    r = min(416 / frame.shape[0], 416 / frame.shape[1])
    canvas = np.full((416, 416, 3), 114, np.uint8)
    resized = cv2.resize(frame, (int(frame.shape[1] * r), int(frame.shape[0] * r)))
    canvas[:resized.shape[0], :resized.shape[1]] = resized
    out = session.run(None, {"images": canvas.transpose(2, 0, 1)[None].astype(np.float32)})[0][0]
    grids, strides = [], []
    for stride in (8, 16, 32):
        side = 416 // stride
        xv, yv = np.meshgrid(np.arange(side), np.arange(side))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((side * side, 1), stride))
    grid, stride_col = np.concatenate(grids), np.concatenate(strides)
    xy = (out[:, :2] + grid) * stride_col
    wh = np.exp(out[:, 2:4]) * stride_col
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1) / r
    scores = out[:, 4:5] * out[:, 5:]
    classes, best = scores.argmax(1), scores.max(1)
    keep = best > 0.3
    boxes, best, classes = boxes[keep], best[keep], classes[keep]
    order = nms(boxes, best, 0.45)
    return boxes[order], best[order], classes[order]


def _confident(det, names=VEHICLES, threshold=0.3):
    keep = np.array([n in names and s >= threshold for n, s in zip(det.labels, det.scores, strict=False)], bool)
    return det.boxes[keep]


def test_yolox_adapter_matches_the_documented_decoding_at_the_files_size() -> None:
    frame = _frame(BUSY_FRAME)
    path = TEACHERS / "yolox_nano_coco_416.onnx"
    ref_boxes, ref_scores, ref_classes = _yolox_as_documented(frame, path)
    assert len(ref_boxes) >= 2, "the reference decoding found nothing: the frame is not a useful test"
    det = YoloxTeacher(path, 416).detect(frame)
    # the adapter trims the square canvas's empty rows: boxes move by a fraction of a pixel, not more
    iou = box_iou(ref_boxes, det.boxes)
    best = iou.argmax(axis=1)
    assert (iou.max(axis=1) > 0.9).all()
    assert [COCO_CLASSES[c] for c in ref_classes] == [det.labels[j] for j in best]
    np.testing.assert_allclose(ref_scores, det.scores[best], atol=0.05)


def test_yolox_runs_at_other_sizes_and_finds_more_there() -> None:
    frame = _frame()
    path = TEACHERS / "yolox_nano_coco_416.onnx"
    small, large = YoloxTeacher(path, 416).detect(frame), YoloxTeacher(path, 960).detect(frame)
    assert len(_confident(large, (*VEHICLES, "traffic light"))) >= len(_confident(small, (*VEHICLES, "traffic light")))
    with pytest.raises(TeacherError, match="multiple of 32"):
        YoloxTeacher(path, 500)


def test_the_two_coco_detectors_agree_on_a_real_frame() -> None:
    frame = _frame(BUSY_FRAME)
    yolox = YoloxTeacher(TEACHERS / "yolox_nano_coco_416.onnx", 640).detect(frame)
    nanodet = NanoDetTeacher(TEACHERS / "nanodet_m_coco_416.onnx").detect(frame)
    a, b = _confident(yolox), _confident(nanodet)
    assert len(a) and len(b), "both detectors should see the cars of Udacity's test1.jpg"
    # every confident NanoDet vehicle is one YOLOX sees too, at the same place
    assert (box_iou(b, a).max(axis=1) > 0.6).mean() >= 0.75


def test_flipped_pass_finds_the_same_vehicles() -> None:
    frame = _frame(BUSY_FRAME)
    teacher = YoloxTeacher(TEACHERS / "yolox_nano_coco_416.onnx", 640)
    # what the direct pass is sure of, the mirrored pass finds at the same place (mirrored back), if less surely
    direct = _confident(teacher.detect(frame), threshold=0.5)
    mirrored = _confident(flipped_detections(teacher, frame), threshold=0.2)
    assert len(direct) >= 2
    assert (box_iou(direct, mirrored).max(axis=1) > 0.7).all()


def test_twinlitenet_and_its_successor_agree_on_the_road() -> None:
    frame = _frame()
    plain = TwinLiteTeacher(TEACHERS / "twinlitenet_360x640.onnx").segment(frame)
    plus = TwinLiteTeacher(TEACHERS / "twinlitenetplus_small_384x640.onnx").segment(frame)
    assert plain.drivable is not None and plus.drivable is not None
    assert plain.drivable.shape == frame.shape[:2] and plus.lane is not None and plus.lane.shape == frame.shape[:2]
    a, b = plain.drivable >= 0.5, plus.drivable >= 0.5
    assert (a & b).sum() / (a | b).sum() > 0.7  # a letterbox offset of 12 px would not survive this
    assert a[: frame.shape[0] // 3].mean() < 0.01  # no road in the sky
    assert 0.0 <= plain.drivable.min() and plain.drivable.max() <= 1.0


def test_contract_teacher_speaks_bdd100k(bundled_model: Path) -> None:
    teacher = load_teacher(f"contract:{bundled_model}")
    det = teacher.detect(_frame())
    masks = teacher.segment(_frame())
    assert set(det.labels) <= {"pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
                               "traffic light", "traffic sign"}
    assert masks.drivable is not None and set(np.unique(masks.drivable)) <= {0.0, 1.0}


def test_teacher_specs_are_checked() -> None:
    with pytest.raises(TeacherError, match="KIND:PATH"):
        load_teacher("yolox_nano.onnx")
    with pytest.raises(TeacherError, match="only yolox takes @SIZE"):
        load_teacher(f"nanodet:{TEACHERS / 'nanodet_m_coco_416.onnx'}@640")
    with pytest.raises(TeacherError, match="not found"):
        load_teacher("twinlite:/nonexistent.onnx")
