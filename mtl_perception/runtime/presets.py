"""The two detection operating points the package uses, each defined once.

deployed() is what a robot runs: perception_node's defaults, read from config/jetson.yaml (their one home);
PEER_EVALUATION is what YOLOP and HybridNets evaluate at, used by `eval`, `eval-bag` with labels, training
validation and the demo's metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtl_perception.runtime.backends.base import BackendOptions
from mtl_perception.runtime.tracking import TrackerSettings


@dataclass(frozen=True)
class DetectionSettings:
    score_threshold: float  # minimum objectness x class score
    iou_threshold: float  # class-aware NMS
    max_detections: int  # per frame


def deployed() -> DetectionSettings:
    """The node's thresholds as config/jetson.yaml sets them."""
    from mtl_perception.defaults import node_defaults

    values = node_defaults()
    return DetectionSettings(float(values["score_threshold"]), float(values["iou_threshold"]),
                             int(values["max_detections"]))


def deployed_backend(**changes: Any) -> BackendOptions:
    """perception_node's backend settings (its schema's defaults: backend, precision, threads, calibration
    algorithm), with a tool's changes (backend="onnxruntime", threads=2, max_batch=3, ...)."""
    from mtl_perception.defaults import node_defaults

    values = node_defaults()
    settings = {name: values[name] for name in ("backend", "precision", "threads", "calibration_algorithm")}
    return BackendOptions(**{**settings, **changes})


def deployed_tracking(**changes: Any) -> TrackerSettings:
    """perception_node's tracker thresholds (its schema's track_* defaults), with a caller's changes."""
    from mtl_perception.defaults import node_defaults

    values = node_defaults()
    return TrackerSettings(**{**{"high_score": float(values["track_high_score"]),
                                 "low_score": float(values["track_low_score"]),
                                 "new_track_score": float(values["track_new_score"]),
                                 "lost_seconds": float(values["track_lost_seconds"])}, **changes})


PEER_EVALUATION = DetectionSettings(score_threshold=0.001, iou_threshold=0.6, max_detections=300)


# What "drivable" means wherever the project trains or scores the drivable head: BDD100K's direct and alternative
# areas merged. It is the peers' definition (YOLOP's AutoDriveDataset, and HybridNets' dataset after it, read the
# drivable mask in grey and call every pixel above 1 drivable) and the one the BDD100K-trained teachers learnt
# (TwinLiteNet marks the lanes beside the ego lane too). "direct" (the ego lane alone) stays available.
DRIVABLE_DEFINITIONS: tuple[str, ...] = ("direct+alternative", "direct")
DRIVABLE_DEFINITION = DRIVABLE_DEFINITIONS[0]


def includes_alternative(definition: str) -> bool:
    if definition not in DRIVABLE_DEFINITIONS:
        raise ValueError(f"unknown drivable definition {definition!r}; use one of {', '.join(DRIVABLE_DEFINITIONS)}")
    return definition == "direct+alternative"
