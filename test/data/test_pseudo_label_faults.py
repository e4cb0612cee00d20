"""pseudo-label's faults (issue 34, items 11-15): teachers of the wrong kind, interrupted runs, videos cut short,
shards that cannot merge, and a frame limit. The command runs with stand-in teachers where only the file
handling is under test (they say what they are), and with the real teacher files where the teacher's own
interface is."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.commands import pseudo_label
from mtl_perception.commands.arguments.pseudo_label import add_arguments
from mtl_perception.data.check import check_split
from mtl_perception.data.teachers import TeacherDetections, TeacherMasks
from mtl_perception.package_paths import bundled_model

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TEACHERS = SHARED / "teachers"
needs_teachers = pytest.mark.skipif(not TEACHERS.is_dir(), reason="../shared/teachers is not beside this clone: "
                                                                  "the real teacher files are inputs, never shipped")


class StandInDetector:
    """Not a teacher: one fixed car box per frame, so that the file handling can be tested without a model."""

    name = "stand-in detector"

    def detect(self, frame: np.ndarray) -> TeacherDetections:
        return TeacherDetections(np.array([[10, 10, 60, 50]], np.float32), np.array([0.9], np.float32), ("car",))


class StandInSegmenter:
    """Not a teacher: the lower half drivable, no lane; raises KeyboardInterrupt on frame `interrupt_at`
    (a Ctrl-C in the middle of a run)."""

    name = "stand-in segmenter"

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.calls, self.interrupt_at = 0, interrupt_at

    def segment(self, frame: np.ndarray) -> TeacherMasks:
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        drivable = np.zeros(frame.shape[:2], np.float32)
        drivable[frame.shape[0] // 2:] = 1.0
        return TeacherMasks(drivable, np.zeros(frame.shape[:2], np.float32))


def _frames(folder: Path, count: int, size: tuple[int, int] = (96, 64)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = np.full((size[1], size[0], 3), 40 * i % 255, np.uint8)
        cv2.imwrite(str(folder / f"frame{i:02d}.jpg"), image)
    return folder


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args([*argv, "--detector", "stand-in:x", "--segmenter", "stand-in:y", "--no-progress"])


def _run(monkeypatch: pytest.MonkeyPatch, segmenter: StandInSegmenter, *argv: str) -> int:
    def stand_in(spec: str, threads: int = 2, role: str | None = None) -> object:
        return StandInDetector() if role == "detector" else segmenter

    monkeypatch.setattr(pseudo_label, "load_teacher", stand_in)
    return pseudo_label.run(_args(*argv))


def _split_files(out: Path) -> dict[str, list[str]]:
    return {key: sorted(p.name for p in (out / rel).glob("*")) for key, rel in
            (("images", "images/100k/train"), ("drivable", "labels/drivable/masks/train"))}


def test_ctrl_c_during_overwrite_leaves_the_previous_split_whole(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    frames, out = _frames(tmp_path / "frames", 4), tmp_path / "labelled"
    assert _run(monkeypatch, StandInSegmenter(), "--input", str(frames), "--out", str(out)) == 0
    before = (out / "labels/det_20/det_train.json").read_text()
    files = _split_files(out)
    # the second run resizes every frame; Ctrl-C on its third
    rc = _run(monkeypatch, StandInSegmenter(interrupt_at=3), "--input", str(frames), "--out", str(out),
              "--overwrite", "--resize", "48x32")
    assert rc == 130
    assert (out / "labels/det_20/det_train.json").read_text() == before and _split_files(out) == files
    assert all(cv2.imread(str(p)).shape[:2] == (64, 96) for p in (out / "images/100k/train").glob("*.jpg"))
    assert not check_split(out, "train", progress=False).problems
    assert not list(out.glob(".*")), "the interrupted run's staging folder is left behind"


def test_ctrl_c_into_a_new_folder_leaves_no_images_behind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    frames, out = _frames(tmp_path / "frames", 4), tmp_path / "labelled"
    assert _run(monkeypatch, StandInSegmenter(interrupt_at=3), "--input", str(frames), "--out", str(out)) == 130
    assert not [p for p in out.rglob("*") if p.is_file()]
    # the next run into the same --out holds its own frames alone
    assert _run(monkeypatch, StandInSegmenter(), "--input", str(frames), "--out", str(out), "--max-frames", "2") == 0
    assert _split_files(out)["images"] == ["frame00.jpg", "frame01.jpg"]


def test_an_overwrite_replaces_the_split_whole(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    frames, out = _frames(tmp_path / "frames", 4), tmp_path / "labelled"
    assert _run(monkeypatch, StandInSegmenter(), "--input", str(frames), "--out", str(out)) == 0
    assert _run(monkeypatch, StandInSegmenter(), "--input", str(frames), "--out", str(out), "--overwrite",
                "--max-frames", "3") == 0
    assert _split_files(out)["images"] == ["frame00.jpg", "frame01.jpg", "frame02.jpg"]
    assert len(json.loads((out / "labels/det_20/det_train.json").read_text())) == 3


def test_an_empty_shard_is_written_and_the_merge_completes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    frames, out = _frames(tmp_path / "frames", 1), tmp_path / "labelled"
    for k in (1, 2, 3):
        assert _run(monkeypatch, StandInSegmenter(), "--input", str(frames), "--out", str(out),
                    "--shard", f"{k}/3") == 0
    assert json.loads((out / "labels/pseudo_label_train.shard-2-of-3.json").read_text())["frames"] == 0
    assert _run(monkeypatch, StandInSegmenter(), "--out", str(out), "--merge") == 0
    assert [r["name"] for r in json.loads((out / "labels/det_20/det_train.json").read_text())] == ["frame00.jpg"]


def test_shards_of_different_inputs_are_not_merged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _frames(tmp_path / "a", 2), _frames(tmp_path / "b", 2)
    out = tmp_path / "labelled"
    assert _run(monkeypatch, StandInSegmenter(), "--input", str(first), "--out", str(out), "--shard", "1/2") == 0
    assert _run(monkeypatch, StandInSegmenter(), "--input", str(second), "--out", str(out), "--shard", "2/2") == 0
    capsys.readouterr()
    assert _run(monkeypatch, StandInSegmenter(), "--out", str(out), "--merge") == 2
    err = capsys.readouterr().err
    assert "shards [2] of 2 were labelled with another inputs" in err and err.count("\n") == 1
    assert not (out / "labels/det_20/det_train.json").exists()


def test_a_video_cut_short_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    rng = np.random.default_rng(0)
    for _ in range(38):
        writer.write(rng.integers(0, 255, (64, 96, 3), np.uint8))
    writer.release()
    whole = cv2.VideoCapture(str(video))
    announced = int(whole.get(cv2.CAP_PROP_FRAME_COUNT))
    whole.release()
    data = video.read_bytes()
    video.write_bytes(data[:len(data) // 4])  # the header still announces 38 frames
    out = tmp_path / "labelled"
    assert _run(monkeypatch, StandInSegmenter(), "--input", str(video), "--out", str(out)) == 0
    manifest = json.loads((out / "labels/pseudo_label_train.json").read_text())
    [short] = manifest["short_videos"]
    assert announced == 38 and short["announced"] == 38 and 0 < short["decoded"] == manifest["frames"] < 38
    assert f"announces 38 frames, {short['decoded']} decoded" in capsys.readouterr().err


def test_max_frames_and_a_single_image(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    frames, out = _frames(tmp_path / "frames", 4), tmp_path / "labelled"
    single = _frames(tmp_path / "single", 1) / "frame00.jpg"
    single = single.rename(single.with_name("extra.jpg"))
    assert _run(monkeypatch, StandInSegmenter(), "--input", str(single), "--input", str(frames),
                "--out", str(out), "--max-frames", "2") == 0
    assert _split_files(out)["images"] == ["extra.jpg", "frame00.jpg"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert "an image (.jpg" in parser.format_help()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_perception.cli", "pseudo-label", *args],
                          capture_output=True, text=True, timeout=300)


@needs_teachers
@pytest.mark.parametrize("detector, segmenter, expected", [
    ("yolox:{model}", "twinlite:{twinlite}", "is not a YOLOX model: expected YOLOX's export"),
    ("nanodet:{yolox}", "twinlite:{twinlite}", "is not a NanoDet model: expected NanoDet-m's export"),
    ("twinlite:{twinlite}", "twinlite:{twinlite}", "a twinlite model cannot be a detector"),
    ("yolox:{twinlite}", "twinlite:{twinlite}", "is not a YOLOX model"),
    ("yolox:{yolox}@0", "twinlite:{twinlite}", "multiple of 32 from 32"),
    ("yolox:{text}", "twinlite:{twinlite}", "is not an ONNX model"),
    ("yolox:{yolox}", "twinlite:{yolox}", "is not a TwinLiteNet model: expected TwinLiteNet's export"),
], ids=["ours-as-yolox", "yolox-as-nanodet", "twinlite-as-detector", "twinlite-as-yolox", "size-0", "text-file",
        "yolox-as-twinlite"])
def test_a_teacher_of_the_wrong_kind_is_one_line(tmp_path: Path, detector: str, segmenter: str,
                                                 expected: str) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("not a model\n")
    files = {"model": bundled_model(), "yolox": TEACHERS / "yolox_nano_coco_416.onnx",
             "twinlite": TEACHERS / "twinlitenetplus_nano_384x640.onnx", "text": text}
    frames, out = _frames(tmp_path / "frames", 1), tmp_path / "labelled"
    result = _cli("--input", str(frames), "--out", str(out), "--detector", detector.format(**files),
                  "--segmenter", segmenter.format(**files), "--no-progress")
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not out.exists(), "an output folder was made before the teachers were checked"


def test_a_resize_beyond_reason_is_one_line(tmp_path: Path) -> None:
    frames, out = _frames(tmp_path / "frames", 1), tmp_path / "labelled"
    result = _cli("--input", str(frames), "--out", str(out), "--resize", "100000x100000",
                  "--detector", "yolox:x.onnx", "--segmenter", "twinlite:y.onnx")
    assert result.returncode == 2 and "--resize '100000x100000': width and height must lie in 1..8192" in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()
