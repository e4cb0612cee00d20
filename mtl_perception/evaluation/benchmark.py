"""Latency of a model on a backend at batch 1: warm-up excluded, median and p90, as the paper's Table III."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mtl_perception.compat import zip_strict
from mtl_perception.runtime.backends import Backend, BackendOptions, load_backend

# the paper's Jetson Xavier NX latencies (ms, TensorRT) at 256x384 / 384x640 / 768x1280
PAPER_TABLE_III = {
    "resnet50": {"256x384": 68.0, "384x640": 140.0, "768x1280": 474.0},
    "mobilenetv2": {"256x384": 46.0, "384x640": 98.0, "768x1280": 302.0},
}


@dataclass(frozen=True)
class Latency:
    backbone: str
    size: str
    backend: str
    median_ms: float
    p90_ms: float
    fps: float
    gflops: float | None  # None: an ONNX file timed alone
    runs: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure(model: Path, backbone: str, size: str, gflops: float | None, options: BackendOptions, runs: int = 20,
            warmup: int = 3, max_seconds: float = 60.0) -> Latency:
    """Time backend.infer alone on a random frame; stops early after max_seconds (at least 3 runs)."""
    backend = load_backend(model, options)
    times = time_interleaved({"model": _contract_call(backend)}, runs, warmup, max_seconds)["model"]
    return _latency(times, backbone, size, backend.name, gflops)


@dataclass(frozen=True)
class PeerComparison:
    """Our model and a peer's, timed in turn in the same rounds."""

    ours: Latency
    peer: Latency

    @property
    def speedup(self) -> float:
        return self.peer.median_ms / self.ours.median_ms

    def line(self) -> str:
        verdict = f"{self.speedup:.2f}x faster" if self.speedup >= 1 else f"{1 / self.speedup:.2f}x slower"
        return (f"{self.ours.size}: {self.peer.backbone} {self.peer.median_ms:.1f} ms, ours ({self.ours.backbone}) "
                f"{self.ours.median_ms:.1f} ms: ours {verdict} (interleaved, {self.ours.runs} runs each)")

    def as_dict(self) -> dict:
        return {"ours": self.ours.as_dict(), "peer": self.peer.as_dict(), "speedup": self.speedup}


def measure_against_peer(model: Path, backbone: str, size: str, gflops: float | None, peer: Path, peer_name: str,
                         peer_gflops: float | None, options: BackendOptions, runs: int = 20, warmup: int = 3,
                         max_seconds: float = 120.0) -> PeerComparison:
    """Our model through its backend and the peer's file through ONNX Runtime with the same session options,
    one run of each per round: what slows the machine for a while (other work, clocks) slows both alike, so
    the ratio holds where the absolute figures drift. The peer takes its own float input, normalised on the
    host, which is not timed; ours normalises in its graph, which is."""
    import onnxruntime as ort

    from mtl_perception.runtime.backends.onnxruntime_backend import PROVIDER_PREFERENCE, session_options_for

    if options.backend != "onnxruntime":
        raise ValueError(f"a peer runs with ONNX Runtime only: time ours with --backend onnxruntime too, not "
                         f"{options.backend}")
    backend = load_backend(model, options)
    providers = [p for p in PROVIDER_PREFERENCE if p in ort.get_available_providers()]
    session = ort.InferenceSession(str(peer), session_options_for(options), providers=providers)
    peer_input = session.get_inputs()[0]
    shape = [1 if not isinstance(dim, int) else dim for dim in peer_input.shape]
    feed = {peer_input.name: np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
    times = time_interleaved({"ours": _contract_call(backend), "peer": lambda: session.run(None, feed)}, runs, warmup,
                         max_seconds)
    return PeerComparison(_latency(times["ours"], backbone, size, backend.name, gflops),
                          _latency(times["peer"], peer_name, size, f"onnxruntime ({session.get_providers()[0]})",
                                   peer_gflops))


def _contract_call(backend: Backend) -> Callable[[], object]:
    info = backend.info
    frame = np.random.default_rng(0).integers(0, 256, (1, info.input_height, info.input_width, 3), dtype=np.uint8)
    return lambda: backend.infer(frame)


def time_interleaved(calls: Mapping[str, Callable[[], object]], runs: int, warmup: int,
                 max_seconds: float) -> dict[str, list[float]]:
    """Milliseconds per run of each call, one run of each per round; stops early after max_seconds (at least 3
    rounds)."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    start = time.perf_counter()
    rounds = 0
    while rounds < runs and (rounds < 3 or time.perf_counter() - start < max_seconds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[name].append(1e3 * (time.perf_counter() - t0))
        rounds += 1
    return times


def _latency(times: list[float], backbone: str, size: str, backend: str, gflops: float | None) -> Latency:
    median, p90 = (float(v) for v in np.percentile(times, [50, 90]))
    return Latency(backbone, size, backend, median, p90, 1e3 / median, gflops, len(times))


def markdown_table(latency: list[dict]) -> str:
    lines = ["| backbone | size | backend | median ms | p90 ms | FPS | GFLOPs | paper Xavier NX ms |",
             "|---|---|---|---|---|---|---|---|"]
    for row in latency:
        paper = PAPER_TABLE_III.get(row["backbone"], {}).get(row["size"])
        lines.append(f"| {row['backbone']} | {row['size']} | {row['backend']} | {row['median_ms']:.1f} | "
                     f"{row['p90_ms']:.1f} | {row['fps']:.1f} | "
                     f"{'n/a' if row['gflops'] is None else format(row['gflops'], '.1f')} | "
                     f"{f'{paper:.0f}' if paper else '-'} |")
    return "\n".join(lines)


def speed_ratios(latency: list[dict]) -> list[str]:
    """ResNet50 / MobileNetV2 latency beside their FLOPs ratio, per size (the paper's 1.5x-for-5x point)."""
    by_key = {(r["backbone"], r["size"]): r for r in latency}
    out = []
    for size in sorted({r["size"] for r in latency}, key=lambda s: int(s.split("x")[0]) * int(s.split("x")[1])):
        mobile, resnet = by_key.get(("mobilenetv2", size)), by_key.get(("resnet50", size))
        if mobile and resnet:
            out.append(f"{size}: ResNet50 is {resnet['median_ms'] / mobile['median_ms']:.2f}x slower for "
                       f"{resnet['gflops'] / mobile['gflops']:.1f}x the FLOPs")
    return out


def plot_latency(latency: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mtl_perception.atomic_io import atomic_write

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for backbone in sorted({r["backbone"] for r in latency}):
        rows = sorted((r for r in latency if r["backbone"] == backbone),
                      key=lambda r: int(r["size"].split("x")[0]) * int(r["size"].split("x")[1]))
        pixels = [int(r["size"].split("x")[0]) * int(r["size"].split("x")[1]) / 1e3 for r in rows]
        ax.plot(pixels, [r["median_ms"] for r in rows], marker="o", label=f"{backbone} (this CPU)")
        paper = PAPER_TABLE_III.get(backbone, {})
        points = [(int(s.split("x")[0]) * int(s.split("x")[1]) / 1e3, v) for s, v in paper.items()]
        if points:
            ax.plot(*zip_strict(*sorted(points)), linestyle="--", marker="x",
                    label=f"{backbone} (paper, Xavier NX)")
    ax.set(xlabel="input size (kilopixels)", ylabel="latency, median (ms)", title="latency against resolution")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def measure_ground(height: int, width: int, runs: int = 50) -> dict[str, float | str]:
    """What drivable_grid and the lane markings cost the node per frame at a camera size: the lookup tables
    built once, then each frame's grid and markings, timed apart, on a synthetic frame's own masks seen
    through its own camera (the node's work between the masks and publishing)."""
    from mtl_perception.data.bdd100k import decode_lane_mask
    from mtl_perception.data.randomisation import Randomisation
    from mtl_perception.data.synthetic import render_scene
    from mtl_perception.runtime.ground import GridSpec
    from mtl_perception.runtime.lane_markings import RoadProjection

    scene = render_scene(np.random.default_rng(0), height, width, Randomisation.plain())
    drivable = np.where(scene.drivable <= 1, 255, 0).astype(np.uint8)
    lane = np.where(decode_lane_mask(scene.lane), 255, 0).astype(np.uint8)
    start = time.perf_counter()
    road = RoadProjection(scene.ground.intrinsics, scene.ground.pose, GridSpec.from_node_defaults())
    build_ms = 1e3 * (time.perf_counter() - start)
    grid_ms, markings_ms = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        road.grid.occupancy(drivable)
        t1 = time.perf_counter()
        road.extractor.markings(lane)
        grid_ms.append(1e3 * (t1 - t0))
        markings_ms.append(1e3 * (time.perf_counter() - t1))
    return {"frame": f"{width}x{height}", "tables_built_once_ms": build_ms, "grid_p50_ms": float(np.median(grid_ms)),
            "markings_p50_ms": float(np.median(markings_ms)), "grid": str(GridSpec.from_node_defaults())}
