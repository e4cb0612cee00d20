"""Latest frame wins, and the numbers that show how well a node keeps up."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypedDict, TypeVar

import numpy as np

T = TypeVar("T")
K = TypeVar("K")
STATS_WINDOW_S = 10.0  # what /diagnostics rates and percentiles summarise


class LatestPerKey(Generic[K, T]):
    """A one-item mailbox per key (per camera): put() replaces what is pending under its key, so a producer
    that outpaces the consumer loses old items, never queues them (put() returns True when it replaced one,
    so the caller can count drops). take_all() waits until any key has an item and takes every pending one
    at once, in the order the keys first appeared; a key whose producer is slow or silent holds nobody up."""

    def __init__(self) -> None:
        self._items: dict[K, T] = {}
        self._order: dict[K, int] = {}
        self._closed = False
        self._cond = threading.Condition()

    def put(self, key: K, item: T) -> bool:
        with self._cond:
            replaced = key in self._items
            self._items[key] = item
            self._order.setdefault(key, len(self._order))
            self._cond.notify()
        return replaced

    def take_all(self, timeout: float | None = None) -> list[tuple[K, T]]:
        """Every pending (key, item), or [] on timeout or once closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout) or not self._items:
                return []
            items, self._items = self._items, {}
        return sorted(items.items(), key=lambda pair: self._order[pair[0]])

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class StampGaps:
    """Frames lost before they reached the node, estimated from the gaps between the header stamps it
    received: the camera's period is a low percentile of the recent gaps (the gaps between frames that did
    arrive back to back), and a gap of k periods hides k - 1 frames. What DDS drops (a best-effort camera
    whose 1280x720 frames cross as fragmented UDP) the node never sees; this is how it can still tell. A
    loss so regular that no two frames ever arrive back to back cannot be told from a slower camera.

    A gap of PAUSE_PERIODS periods or more, and at least PAUSE_MIN_S, is a pause, not a loss: a camera
    restarted, a node deactivated for a while, a bag paused. DDS losing that many frames in a row, while
    the frames around them arrive, is not how it fails."""

    MAX_GAPS = 500  # gaps the period is estimated from
    PERIOD_PERCENTILE = 5
    PAUSE_PERIODS = 10
    PAUSE_MIN_S = 1.0

    def __init__(self) -> None:
        self._gaps: deque[int] = deque(maxlen=self.MAX_GAPS)
        self._last: int | None = None

    def lost(self, stamp_ns: int) -> int:
        """Frames missing between the previous stamp and this one (0 for the first, or out of order)."""
        last, self._last = self._last, stamp_ns
        if last is None or stamp_ns <= last:
            return 0  # the first frame, a replay restarting, or stamps out of order: no gap to read
        gap = stamp_ns - last
        period = float(np.percentile(self._gaps, self.PERIOD_PERCENTILE)) if len(self._gaps) >= 5 else None
        self._gaps.append(gap)
        if period is None or gap < 1.5 * period:
            return 0
        if gap >= self.PAUSE_PERIODS * period and gap >= self.PAUSE_MIN_S * 1e9:
            return 0
        return max(round(gap / period) - 1, 0)


class RollingStats:
    """Event rates and latency percentiles over the last `window` seconds (thread-safe)."""

    def __init__(self, window: float = STATS_WINDOW_S, max_samples: int = 2000) -> None:
        self.window = window
        self._received: deque[float] = deque(maxlen=max_samples)
        self._processed: deque[tuple[float, float, float]] = deque(maxlen=max_samples)
        # when frames were dropped, bad or failed: the health of the last `window` seconds, not of the run
        self._events: dict[str, deque[float]] = {k: deque(maxlen=max_samples)
                                                 for k in ("dropped", "bad", "error", "damaged")}
        # (when, frames lost before the node, source) and (when, source) of each frame received
        self._lost: deque[tuple[float, int, str]] = deque(maxlen=max_samples)
        self._received_from: deque[tuple[float, str]] = deque(maxlen=max_samples)
        self._gaps: dict[str, StampGaps] = {}  # per source (camera): their stamps interleave
        self.lost_total = 0
        self._lock = threading.Lock()
        self.received_total = 0
        self.processed_total = 0
        self.dropped_total = 0
        self.bad_total = 0
        self.error_total = 0
        self.damaged_total = 0

    def on_received(self, dropped_pending: bool, now: float | None = None, stamp_ns: int | None = None,
                    source: str = "") -> None:
        """A frame arrived; stamp_ns (its header's) lets the gaps between `source`'s stamps tell how many of
        its frames were lost before the node."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if stamp_ns is not None:
                lost = self._gaps.setdefault(source, StampGaps()).lost(stamp_ns)
                if lost:
                    self._lost.append((now, lost, source))
                    self.lost_total += lost
            self._received.append(now)
            self._received_from.append((now, source))
            self.received_total += 1
            self.dropped_total += int(dropped_pending)
            if dropped_pending:
                self._events["dropped"].append(now)

    def on_bad_frame(self, now: float | None = None) -> None:
        with self._lock:
            self.bad_total += 1
            self._events["bad"].append(time.monotonic() if now is None else now)

    def on_damaged(self, now: float | None = None) -> None:
        """A frame answered although it came damaged (a JPEG cut short, or with broken scan data, which libjpeg
        decodes with a warning on stderr only): counted, not skipped."""
        with self._lock:
            self.damaged_total += 1
            self._events["damaged"].append(time.monotonic() if now is None else now)

    def on_error(self, now: float | None = None) -> None:
        with self._lock:
            self.error_total += 1
            self._events["error"].append(time.monotonic() if now is None else now)

    def on_processed(self, latency_ms: float, inference_ms: float = 0.0, now: float | None = None) -> None:
        """latency_ms: frame received -> outputs published; inference_ms: the backend's part of it."""
        with self._lock:
            self._processed.append((time.monotonic() if now is None else now, latency_ms, inference_ms))
            self.processed_total += 1

    def snapshot(self, now: float | None = None) -> StatsSnapshot:
        now = time.monotonic() if now is None else now
        with self._lock:
            received = [t for t in self._received if now - t <= self.window]
            processed = [p for p in self._processed if now - p[0] <= self.window]
            totals = (self.received_total, self.processed_total, self.dropped_total, self.bad_total,
                      self.error_total)
            recent = {k: sum(1 for t in times if now - t <= self.window) for k, times in self._events.items()}
            recent_lost = sum(n for t, n, _ in self._lost if now - t <= self.window)
            lost_total = self.lost_total
        latency = percentiles([p[1] for p in processed])
        inference = float(np.median([p[2] for p in processed])) if processed else 0.0
        return {"input_rate_hz": _rate(received), "processed_rate_hz": _rate([p[0] for p in processed]),
                "latency_p50_ms": latency["p50"], "latency_p90_ms": latency["p90"], "latency_p99_ms": latency["p99"],
                "inference_p50_ms": inference,
                "received": totals[0], "processed": totals[1], "dropped": totals[2], "bad_frames": totals[3],
                "errors": totals[4], "recent_received": len(received), "recent_dropped": recent["dropped"],
                "recent_bad_frames": recent["bad"], "recent_errors": recent["error"],
                "damaged_frames": self.damaged_total, "recent_damaged_frames": recent["damaged"],
                "lost_before_node": lost_total, "recent_lost_before_node": recent_lost,
                "recent_loss_before_node": recent_lost / (recent_lost + len(received)) if received else 0.0}


    def recent_loss_by_source(self, now: float | None = None) -> dict[str, float]:
        """Per source (camera): the share of its frames sent in the last window that never arrived. Judged per
        camera: one camera losing a quarter of its frames beside two that lose none is a fault, which a
        pooled ratio would dilute below the warning."""
        now = time.monotonic() if now is None else now
        with self._lock:
            received: dict[str, int] = {}
            for t, source in self._received_from:
                if now - t <= self.window:
                    received[source] = received.get(source, 0) + 1
            lost: dict[str, int] = {}
            for t, n, source in self._lost:
                if now - t <= self.window:
                    lost[source] = lost.get(source, 0) + n
        return {source: lost.get(source, 0) / (lost.get(source, 0) + count) for source, count in received.items()}


class StatsSnapshot(TypedDict):
    """The node's rolling statistics (RollingStats.snapshot), as /diagnostics reports them."""

    input_rate_hz: float
    processed_rate_hz: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    inference_p50_ms: float
    received: int
    processed: int
    dropped: int
    bad_frames: int
    errors: int
    recent_received: int  # the same four over the last `window` seconds only
    recent_dropped: int
    recent_bad_frames: int
    recent_errors: int
    damaged_frames: int  # answered although damaged (image_encoding.jpeg_damage: cut short or broken scan data)
    recent_damaged_frames: int
    lost_before_node: int  # frames the header stamps say were sent but never arrived (StampGaps)
    recent_lost_before_node: int
    recent_loss_before_node: float  # of the frames sent in the window, the share that never arrived


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90 and p99 of latencies (0 for none): the figures every report of this package gives."""
    if not len(values):
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0}
    p50, p90, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99)}


def _rate(times: list[float]) -> float:
    if len(times) < 2:
        return 0.0
    span = times[-1] - times[0]
    return (len(times) - 1) / span if span > 0 else 0.0
