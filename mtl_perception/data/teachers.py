"""Teacher models for pseudo-labels: public ONNX detectors and segmenters, each with its own decoding.

Every adapter reproduces its repository's demo pre- and post-processing (../shared/teachers/README.md):

- YOLOX (Megvii YOLOX >= 0.2 `preproc` / `demo_postprocess`): BGR 0-255, aspect kept, top-left on a 114
  canvas; anchor-free points at strides 8, 16, 32; score = objectness x class; class-agnostic NMS 0.45.
  The graph takes any multiple of 32 once its input dims are symbolic, so it runs at the size that serves
  it best (`size`: the canvas's long side).
- NanoDet (RangiLyu NanoDet-m, GFL heads): BGR mean/std, aspect kept (INTER_AREA), centred on black;
  each side a softmax over 8 bins from the point (x*s + (s-1)/2, y*s + (s-1)/2); NMS 0.6.
- TwinLiteNet / TwinLiteNetPlus (BDD100K drivable area and lane lines): RGB / 255; the first resizes the
  frame to 640x360, the second letterboxes it to 384x640 with 114; logits upsampled to the frame.
- This project's contract (runtime/contract.py): any model `mtl-perception export` wrote, e.g. a user's
  ResNet50 trained on BDD100K as the teacher of their MobileNetV2.

Detections come in frame pixels with the teacher's own class ids; segmentation as foreground
probabilities float32[H, W] at the frame's size. No torch: ONNX Runtime and OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from mtl_perception.compat import zip_strict
from mtl_perception.errors import UserFacingError
from mtl_perception.runtime.letterbox import letterbox_image
from mtl_perception.runtime.nms import nms

# COCO's 80 class names in the order of the detectors' outputs (0-based ids)
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)


class TeacherError(RuntimeError, UserFacingError):
    """A teacher file that cannot be used: the message names the file and the fix."""


@dataclass(frozen=True)
class TeacherDetections:
    """boxes float32[N, 4] x1, y1, x2, y2 in frame pixels; scores float32[N]; labels: names, one per box."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]

    @staticmethod
    def empty() -> TeacherDetections:
        return TeacherDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), ())


@dataclass(frozen=True)
class TeacherMasks:
    """Foreground probabilities float32[H, W] at the frame's size; None where the teacher has no such head."""

    drivable: np.ndarray | None
    lane: np.ndarray | None


class Detector(Protocol):
    name: str

    def detect(self, frame: np.ndarray) -> TeacherDetections: ...


class Segmenter(Protocol):
    name: str

    def segment(self, frame: np.ndarray) -> TeacherMasks: ...


def _session(model: Any, threads: int) -> Any:
    """An ONNX Runtime session on the CPU; model is a path or serialized bytes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # NanoDet's file lists its initializers as inputs: one warning each
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types, not exported in its stubs
        where = model if isinstance(model, (str, Path)) else "the model"
        raise TeacherError(f"teacher {where} cannot be loaded by ONNX Runtime ({err})") from err


def _require(path: Path) -> Path:
    if not path.is_file():
        raise TeacherError(f"teacher model {path} not found (the teachers are in ../shared/teachers/)")
    return path


@dataclass(frozen=True)
class TensorSpec:
    """What a teacher's tensor must be: its ONNX Runtime type and, per dimension, a size or None (any)."""

    type: str
    shape: tuple[int | None, ...]

    def matches(self, arg: Any) -> bool:
        shape = tuple(arg.shape)
        return arg.type == self.type and len(shape) == len(self.shape) and all(
            want is None or have == want for want, have in zip_strict(self.shape, shape))


def _check_interface(session: Any, path: Path, kind: str, inputs: tuple[TensorSpec, ...],
                     outputs: tuple[TensorSpec, ...], expected: str) -> None:
    """TeacherError, naming what the kind expects, unless the session's first inputs and its outputs match
    (in any order): a file of another kind fails here in one line, not deep in its decoding."""
    have_inputs = session.get_inputs()[:len(inputs)]
    have_outputs = list(session.get_outputs())
    ok = len(have_inputs) == len(inputs) and all(spec.matches(a) for spec, a in zip_strict(inputs, have_inputs))
    ok = ok and len(have_outputs) == len(outputs)
    for spec in outputs:  # each output spec met by a distinct output
        match = next((o for o in have_outputs if spec.matches(o)), None)
        if match is None:
            ok = False
            break
        have_outputs.remove(match)

    def described(args: Any) -> str:
        return ", ".join(f"{a.type.replace('tensor(', '').rstrip(')')}{list(a.shape)}" for a in args)

    if not ok:
        raise TeacherError(f"{path} is not a {kind} model: expected {expected}; it has inputs "
                           f"{described(session.get_inputs())} and outputs {described(session.get_outputs())}")


def with_symbolic_spatial_dims(path: Path, expected: str) -> bytes:
    """The graph with its input's height and width (and every output dim but the last) made symbolic, so a
    fully convolutional file exported at one size runs at another; TeacherError (saying what was expected)
    for a file that is no ONNX model or has no 4-D input."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf's DecodeError and kin: a text file, a cut-short download
        raise TeacherError(f"teacher {path} is not an ONNX model ({type(err).__name__}): expected {expected}") \
            from err
    if not model.graph.input or len(model.graph.input[0].type.tensor_type.shape.dim) != 4:
        raise TeacherError(f"teacher {path} does not look like the model named: expected {expected}")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in model.graph.output:
        for i, dim in enumerate(output.type.tensor_type.shape.dim):
            if 0 < i < len(output.type.tensor_type.shape.dim) - 1:
                dim.dim_param = f"{output.name}_{i}"
    return model.SerializeToString()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _class_agnostic(boxes: np.ndarray, class_scores: np.ndarray, score_threshold: float, iou: float,
                    names: tuple[str, ...]) -> TeacherDetections:
    """Best class per box, threshold, one NMS over all classes (YOLOX's demo `multiclass_nms`)."""
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(classes)), classes]
    keep = scores >= score_threshold
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    order = nms(boxes, scores, iou)
    return TeacherDetections(boxes[order].astype(np.float32), scores[order].astype(np.float32),
                             tuple(names[c] for c in classes[order]))


class YoloxTeacher:
    """YOLOX's exported ONNX (`images` [1, 3, S, S] -> `output` [1, N, 85]) at any multiple of 32."""

    EXPECTED = "YOLOX's export: input float [1, 3, S, S] (BGR 0-255), one output float [1, N, 85] (80 COCO classes)"
    MAX_SIZE = 2048  # YOLOX-Nano's best was 960 (../shared/teachers/README.md); larger only costs memory

    def __init__(self, path: Path, size: int = 640, score_threshold: float = 0.05, nms_iou: float = 0.45,
                 threads: int = 2) -> None:
        if size % 32 or not 32 <= size <= self.MAX_SIZE:
            raise TeacherError(f"YOLOX size must be a multiple of 32 from 32 to {self.MAX_SIZE}, got {size}")
        self.size, self.score_threshold, self.nms_iou = size, score_threshold, nms_iou
        self.session = _session(with_symbolic_spatial_dims(_require(path), self.EXPECTED), threads)
        _check_interface(self.session, path, "YOLOX", (TensorSpec("tensor(float)", (1, 3, None, None)),),
                         (TensorSpec("tensor(float)", (1, None, 5 + len(COCO_CLASSES))),), self.EXPECTED)
        self.input = self.session.get_inputs()[0].name
        self.name = f"{path.stem}@{size}"

    def detect(self, frame: np.ndarray) -> TeacherDetections:
        h, w = frame.shape[:2]
        r = min(self.size / h, self.size / w)
        new_w, new_h = int(w * r), int(h * r)
        # a canvas just large enough (multiples of 32), the image at its top-left: YOLOX's preproc, without
        # the square's empty rows
        canvas_h, canvas_w = -(-new_h // 32) * 32, -(-new_w // 32) * 32
        canvas = np.full((canvas_h, canvas_w, 3), 114, np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        raw = self.session.run(None, {self.input: blob})[0][0]
        grids, strides = [], []
        for stride in (8, 16, 32):
            ys, xs = np.meshgrid(np.arange(canvas_h // stride), np.arange(canvas_w // stride), indexing="ij")
            grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
            strides.append(np.full((grids[-1].shape[0], 1), stride))
        grid, stride_col = np.concatenate(grids), np.concatenate(strides)
        xy = (raw[:, :2] + grid) * stride_col
        wh = np.exp(raw[:, 2:4]) * stride_col
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / r
        class_scores = raw[:, 4:5] * raw[:, 5:]
        return _class_agnostic(boxes, class_scores, self.score_threshold, self.nms_iou, COCO_CLASSES)


class NanoDetTeacher:
    """NanoDet-m's ONNX (input [1, 3, 416, 416]; per stride 8, 16, 32: class scores [1, HW, 80] and box bins
    [1, HW, 32])."""

    MEAN = np.array([103.53, 116.28, 123.675], np.float32)
    STD = np.array([57.375, 57.12, 58.395], np.float32)
    BINS = 8

    EXPECTED = ("NanoDet-m's export: input float [1, 3, S, S], and per stride 8, 16, 32 class scores float "
                "[1, HW, 80] and box bins float [1, HW, 32]")

    def __init__(self, path: Path, score_threshold: float = 0.05, nms_iou: float = 0.6, threads: int = 2) -> None:
        self.score_threshold, self.nms_iou = score_threshold, nms_iou
        self.session = _session(str(_require(path)), threads)
        heads = tuple(TensorSpec("tensor(float)", (1, None, n)) for n in (80, 32) for _ in range(3))
        _check_interface(self.session, path, "NanoDet", (TensorSpec("tensor(float)", (1, 3, None, None)),), heads,
                         self.EXPECTED)
        shape = self.session.get_inputs()[0].shape
        self.input = self.session.get_inputs()[0].name
        self.size = int(shape[2])
        self.name = f"{path.stem}@{self.size}"
        outputs = self.session.get_outputs()
        by_points: dict[int, dict[int, str]] = {}
        for out in outputs:
            by_points.setdefault(int(out.shape[1]), {})[int(out.shape[2])] = out.name
        # largest grid first: strides 8, 16, 32
        self.levels = [(self.size // round(np.sqrt(n)), names[80], names[4 * self.BINS])
                       for n, names in sorted(by_points.items(), reverse=True)]

    def detect(self, frame: np.ndarray) -> TeacherDetections:
        h, w = frame.shape[:2]
        r = min(self.size / h, self.size / w)
        new_w, new_h = round(w * r), round(h * r)
        left, top = (self.size - new_w) // 2, (self.size - new_h) // 2
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        canvas[top:top + new_h, left:left + new_w] = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA)
        blob = ((canvas.astype(np.float32) - self.MEAN) / self.STD).transpose(2, 0, 1)[None]
        results = dict(zip_strict([o.name for o in self.session.get_outputs()],
                           self.session.run(None, {self.input: blob})))
        all_boxes, all_scores = [], []
        bins = np.arange(self.BINS, dtype=np.float32)
        for stride, cls_name, reg_name in self.levels:
            side = self.size // stride
            ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
            cx = (xs.reshape(-1) * stride + (stride - 1) / 2).astype(np.float32)
            cy = (ys.reshape(-1) * stride + (stride - 1) / 2).astype(np.float32)
            reg = results[reg_name][0].reshape(-1, 4, self.BINS)
            reg = np.exp(reg - reg.max(axis=2, keepdims=True))
            dist = (reg / reg.sum(axis=2, keepdims=True) * bins).sum(axis=2) * stride  # l, t, r, b
            all_boxes.append(np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], 1))
            all_scores.append(results[cls_name][0])
        boxes = np.concatenate(all_boxes)
        boxes[:, 0::2] = (boxes[:, 0::2] - left) / r
        boxes[:, 1::2] = (boxes[:, 1::2] - top) / r
        return _class_agnostic(boxes, np.concatenate(all_scores), self.score_threshold, self.nms_iou, COCO_CLASSES)


class TwinLiteTeacher:
    """TwinLiteNet (input 360x640, frame resized) or TwinLiteNetPlus (384x640, frame letterboxed with 114):
    outputs `da` and `ll`, [1, 2, H, W] logits each."""

    EXPECTED = "TwinLiteNet's export: input float [1, 3, H, W] (RGB / 255), outputs da and ll float [1, 2, H, W]"

    def __init__(self, path: Path, threads: int = 2) -> None:
        self.session = _session(str(_require(path)), threads)
        logits = TensorSpec("tensor(float)", (1, 2, None, None))
        _check_interface(self.session, path, "TwinLiteNet", (TensorSpec("tensor(float)", (1, 3, None, None)),),
                         (logits, logits), self.EXPECTED)
        names = [o.name for o in self.session.get_outputs()]
        if not {"da", "ll"} <= set(names):
            raise TeacherError(f"{path} is not a TwinLiteNet model: expected {self.EXPECTED}; its outputs are {names}")
        self.input = self.session.get_inputs()[0].name
        shape = self.session.get_inputs()[0].shape
        self.height, self.width = int(shape[2]), int(shape[3])
        self.letterbox = self.height != 360  # TwinLiteNet's own loader resizes; the Plus letterboxes
        self.name = f"{path.stem}"

    def segment(self, frame: np.ndarray) -> TeacherMasks:
        h, w = frame.shape[:2]
        if self.letterbox:
            image, lb = letterbox_image(frame, self.height, self.width, 114)
            crop = (slice(lb.pad_y, lb.pad_y + lb.new_h), slice(lb.pad_x, lb.pad_x + lb.new_w))
        else:
            image = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            crop = (slice(None), slice(None))
        blob = (image[..., ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        da, ll = self.session.run(["da", "ll"], {self.input: np.ascontiguousarray(blob)})
        return TeacherMasks(*(self._probability(out[0], crop, h, w) for out in (da, ll)))

    @staticmethod
    def _probability(logits: np.ndarray, crop: tuple[slice, slice], h: int, w: int) -> np.ndarray:
        # upsampling is linear, so the logit difference upsampled and through a sigmoid gives the argmax of
        # the upsampled logits at 0.5, and a probability besides
        diff = np.ascontiguousarray(logits[1][crop] - logits[0][crop])
        return _sigmoid(cv2.resize(diff, (w, h), interpolation=cv2.INTER_LINEAR))


class ContractTeacher:
    """A model of this project's contract (any `mtl-perception export` file): detections with its own class
    names, masks as 0/1 probabilities."""

    def __init__(self, path: Path, score_threshold: float = 0.05, threads: int = 2) -> None:
        from mtl_perception.runtime.backends.base import ModelLoadError
        from mtl_perception.runtime.contract import ModelContractError
        from mtl_perception.runtime.perception import Perception, PerceptionConfig
        from mtl_perception.runtime.presets import deployed, deployed_backend

        config = PerceptionConfig(_require(path), deployed_backend(backend="onnxruntime", threads=threads),
                                  score_threshold, deployed().iou_threshold, 300)  # NMS IoU: the node's
        try:
            self.perception = Perception(config)
        except (ModelLoadError, ModelContractError) as err:
            raise TeacherError(f"{path} is not a model of this project's contract (input images uint8 "
                               f"[batch, H, W, 3]; outputs boxes, scores, drivable, lane): {err}") from err
        self.name = path.stem
        self._last: tuple[np.ndarray, Any] | None = None

    def _result(self, frame: np.ndarray) -> Any:
        # detect() and segment() of one frame share one inference
        if self._last is None or self._last[0] is not frame:
            self._last = (frame, self.perception.process(frame))
        return self._last[1]

    def detect(self, frame: np.ndarray) -> TeacherDetections:
        det = self._result(frame).detections
        return TeacherDetections(det.boxes.astype(np.float32), det.scores.astype(np.float32),
                                 tuple(self.perception.class_name(int(c)) for c in det.class_ids))

    def segment(self, frame: np.ndarray) -> TeacherMasks:
        result = self._result(frame)
        return TeacherMasks((result.drivable > 0).astype(np.float32), (result.lane > 0).astype(np.float32))


def flipped_detections(detector: Detector, frame: np.ndarray) -> TeacherDetections:
    """The detector on the mirrored frame, its boxes mirrored back: test-time flip augmentation."""
    det = detector.detect(np.ascontiguousarray(frame[:, ::-1]))
    boxes = det.boxes.copy()
    boxes[:, [0, 2]] = frame.shape[1] - det.boxes[:, [2, 0]]
    return TeacherDetections(boxes, det.scores, det.labels)


def flipped_masks(segmenter: Segmenter, frame: np.ndarray) -> TeacherMasks:
    masks = segmenter.segment(np.ascontiguousarray(frame[:, ::-1]))
    return TeacherMasks(*(None if m is None else np.ascontiguousarray(m[:, ::-1]) for m in (masks.drivable, masks.lane)))


# which kinds can serve as which teacher (the contract's models do both)
KINDS_BY_ROLE: dict[str, tuple[str, ...]] = {"detector": ("yolox", "nanodet", "contract"),
                                             "segmenter": ("twinlite", "contract")}


def load_teacher(spec: str, threads: int = 2, role: str | None = None) -> Any:
    """A teacher from KIND:PATH[@SIZE]: yolox, nanodet, twinlite or contract (this project's model); role
    ('detector' or 'segmenter') refuses a kind that cannot serve it."""
    kind, sep, rest = spec.partition(":")
    if not sep:
        raise TeacherError(f"teacher {spec!r}: expected KIND:PATH[@SIZE] with KIND yolox, nanodet, twinlite or "
                           "contract, e.g. yolox:../shared/teachers/yolox_nano_coco_416.onnx@960")
    if role is not None and kind in sum(KINDS_BY_ROLE.values(), ()) and kind not in KINDS_BY_ROLE[role]:
        raise TeacherError(f"teacher {spec!r}: a {kind} model cannot be a {role}; a {role} is one of "
                           f"{', '.join(KINDS_BY_ROLE[role])}")
    path_text, _, size_text = rest.partition("@")
    path = Path(path_text)
    if kind == "yolox":
        try:
            size = int(size_text or 640)
        except ValueError:
            raise TeacherError(f"teacher {spec!r}: @SIZE must be a whole number (a multiple of 32)") from None
        return YoloxTeacher(path, size, threads=threads)
    if size_text:
        raise TeacherError(f"teacher {spec!r}: only yolox takes @SIZE (the others' graphs fix their input)")
    if kind == "nanodet":
        return NanoDetTeacher(path, threads=threads)
    if kind == "twinlite":
        return TwinLiteTeacher(path, threads=threads)
    if kind == "contract":
        return ContractTeacher(path, threads=threads)
    raise TeacherError(f"teacher kind {kind!r} unknown; use yolox, nanodet, twinlite or contract")
