"""Drawing detections and masks onto frames, and the ground grid from above, for people to look at
(node overlay, infer, galleries, the demo's inset)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from mtl_perception.runtime.ego_lane import EgoLane
from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose, GridSpec, ground_to_pixels
from mtl_perception.runtime.lane_markings import GroundMarking
from mtl_perception.runtime.pipeline import FrameResult
from mtl_perception.runtime.postprocess import Detections

DRIVABLE_COLOUR = np.array([80, 200, 60], np.float32)  # BGR green
LANE_COLOUR = np.array([40, 40, 255], np.float32)  # BGR red
BOX_COLOUR = (255, 200, 0)


def detection_labels(class_names: Sequence[str], class_ids: np.ndarray, scores: np.ndarray,
                     track_ids: np.ndarray | None = None) -> list[str]:
    """The text drawn beside each box: "car 0.87", and "#12 car 0.87" for a box its track 12 holds."""
    tracks = track_ids.tolist() if track_ids is not None else [0] * len(scores)
    return [f"{f'#{t} ' if t else ''}{class_names[c]} {s:.2f}"
            for c, s, t in zip(class_ids.tolist(), scores.tolist(), tracks)]


def draw_overlay(image: np.ndarray, boxes: np.ndarray, labels: Sequence[str],
                 drivable: np.ndarray | None = None, lane: np.ndarray | None = None,
                 alpha: float = 0.45) -> np.ndarray:
    """A copy of a BGR image with masks blended in and labelled boxes drawn.

    boxes: float[N, 4] x1, y1, x2, y2 in image pixels; masks: bool or 0/255 arrays of the image's size.
    """
    out = image.copy()
    for mask, colour in ((drivable, DRIVABLE_COLOUR), (lane, LANE_COLOUR)):
        if mask is not None:
            on = mask.astype(bool)
            out[on] = ((1 - alpha) * out[on] + alpha * colour).astype(np.uint8)
    scale = max(image.shape[1] / 1280, 0.4)
    thickness = max(round(2 * scale), 1)
    for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels):
        p1, p2 = (round(x1), round(y1)), (round(x2) - 1, round(y2) - 1)
        cv2.rectangle(out, p1, p2, BOX_COLOUR, thickness)
        cv2.putText(out, label, (p1[0], max(p1[1] - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * scale, BOX_COLOUR, max(round(scale), 1), cv2.LINE_AA)
    return out


def draw_result(image: np.ndarray, detections: Detections, class_names: Sequence[str],
                drivable: np.ndarray | None = None, lane: np.ndarray | None = None,
                track_ids: np.ndarray | None = None, ego_lane: EgoLane | None = None,
                geometry: tuple[CameraIntrinsics, CameraPose] | None = None) -> np.ndarray:
    """The overlay every tool and the node draw: the masks blended in, each box with "#track class score", and,
    where the camera's geometry is known, the ego lane's boundaries on the road and its state in a corner."""
    labels = detection_labels(class_names, detections.class_ids, detections.scores, track_ids)
    out = draw_overlay(image, detections.boxes, labels, drivable, lane)
    if ego_lane is not None and geometry is not None:
        draw_ego_lane(out, ego_lane, *geometry)
    return out


EGO_LANE_COLOUR = (0, 220, 255)  # BGR amber
DEPARTURE_COLOUR = (0, 0, 255)


def draw_ego_lane(image: np.ndarray, lane: EgoLane, intrinsics: CameraIntrinsics, pose: CameraPose) -> None:
    """In place: each boundary of a found lane projected onto the road, and one line of its state (or why there
    is none) at the top left; red when the lane departure flag is up."""
    scale = max(image.shape[1] / 1280, 0.4)
    colour = DEPARTURE_COLOUR if lane.departure else EGO_LANE_COLOUR
    for boundary in (lane.left, lane.right):
        if boundary is None:
            continue
        points = boundary.points(0.5)
        ground = np.column_stack([points, np.zeros(len(points))])
        pixels, ahead = ground_to_pixels(ground, intrinsics, pose)
        if ahead.sum() >= 2:
            cv2.polylines(image, [np.round(pixels[ahead]).astype(np.int32)], False, colour,
                          max(round(3 * scale), 1), cv2.LINE_AA)
    if lane.valid:
        text = f"ego lane: offset {lane.offset_m:+.2f} m, width {lane.width_m:.2f} m"
        text += f", departing {lane.departure}" if lane.departure else ""
    else:
        text = f"no ego lane: {lane.reason}"
    cv2.putText(image, text, (8, round(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, colour,
                max(round(1.5 * scale), 1), cv2.LINE_AA)


def draw_frame(result: FrameResult, class_names: Sequence[str]) -> np.ndarray:
    """draw_result of what the frame pipeline made of one frame: its boxes with their tracks, its masks and, where
    its camera's geometry is known, its ego lane."""
    assert result.image is not None and result.detections is not None
    geometry = result.frame.geometry
    camera = None
    if geometry is not None and geometry.intrinsics is not None and geometry.pose is not None:
        camera = (geometry.intrinsics, geometry.pose)
    return draw_result(result.image, result.detections, class_names, result.drivable, result.lane,
                       result.tracks.track_ids if result.tracks is not None else None, result.ego_lane, camera)


GRID_COLOURS = {-1: (45, 45, 45), 0: (60, 160, 70), 100: (70, 70, 150)}  # BGR: unknown, drivable, not
MARKING_COLOUR = (235, 235, 235)


def draw_birdseye(occupancy: np.ndarray, spec: GridSpec, markings: Sequence[GroundMarking] = (),
                  height: int = 480) -> np.ndarray:
    """The grid seen from above, forward up and left to the left, with the markings drawn on it, range
    lines every 10 m and the camera's place at the bottom: a BGR image `height` pixels tall."""
    rows, cols = occupancy.shape
    top_view = occupancy.T[::-1, ::-1]  # rows: x from far to near; columns: y from left to right
    image = np.zeros((cols, rows, 3), np.uint8)
    for value, colour in GRID_COLOURS.items():
        image[top_view == value] = colour
    scale = height / cols
    image = np.asarray(cv2.resize(image, (max(round(rows * scale), 1), height), interpolation=cv2.INTER_NEAREST),
                       np.uint8)
    per_metre = scale / spec.resolution

    def to_pixel(x: float, y: float) -> tuple[int, int]:
        return round((spec.y_half - y) * per_metre), round((spec.x_max - x) * per_metre)

    for metres in range(10, int(spec.x_max - spec.x_min) + 1, 10):
        _, row = to_pixel(spec.x_min + metres, 0.0)
        cv2.line(image, (0, row), (image.shape[1] - 1, row), (110, 110, 110), 1)
        cv2.putText(image, f"{spec.x_min + metres:g} m", (3, max(row - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (200, 200, 200), 1, cv2.LINE_AA)
    for marking in markings:
        line = np.array([to_pixel(x, y) for x, y in marking.points.tolist()], np.int32)
        cv2.polylines(image, [line], False, MARKING_COLOUR, 2, cv2.LINE_AA)
    ego = to_pixel(max(spec.x_min, 0.0), 0.0)
    cv2.drawMarker(image, (ego[0], min(ego[1], height - 4)), (0, 200, 255), cv2.MARKER_TRIANGLE_UP, 14, 2)
    return image


def contact_sheet(tiles: Sequence[np.ndarray], columns: int = 3, tile_width: int = 640) -> np.ndarray:
    """Tiles resized to one width and laid out in a grid, left to right, top to bottom."""
    resized = [cv2.resize(t, (tile_width, round(t.shape[0] * tile_width / t.shape[1])),
                          interpolation=cv2.INTER_AREA) for t in tiles]
    tile_h = max(t.shape[0] for t in resized)
    rows = -(-len(resized) // columns)
    sheet = np.zeros((rows * tile_h, columns * tile_width, 3), np.uint8)
    for i, tile in enumerate(resized):
        r, c = divmod(i, columns)
        sheet[r * tile_h:r * tile_h + tile.shape[0], c * tile_width:(c + 1) * tile_width] = tile
    return sheet
