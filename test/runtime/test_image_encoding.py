"""Frames from every supported encoding; clear errors for everything else."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.runtime.image_encoding import ImageFormatError, compressed_to_bgr, raw_to_bgr

pytestmark = pytest.mark.jetson_python

BGR = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("bgr8", BGR),
        ("rgb8", BGR[..., ::-1]),
        ("bgra8", np.dstack([BGR, np.full((6, 5), 255, np.uint8)])),
        ("rgba8", np.dstack([BGR[..., ::-1], np.full((6, 5), 255, np.uint8)])),
    ],
)
def test_colour_encodings(encoding: str, raw: np.ndarray) -> None:
    out = raw_to_bgr(np.ascontiguousarray(raw).tobytes(), 6, 5, encoding, 5 * raw.shape[2])
    np.testing.assert_array_equal(out, BGR)


def test_mono8_becomes_grey_bgr() -> None:
    grey = BGR[..., 0]
    out = raw_to_bgr(grey.tobytes(), 6, 5, "mono8", 5)
    assert out.shape == (6, 5, 3) and (out == grey[..., None]).all()


def test_bgr8_is_zero_copy_and_respects_row_padding() -> None:
    padded = np.zeros((6, 5 * 3 + 4), np.uint8)
    padded[:, :15] = BGR.reshape(6, 15)
    data = bytearray(padded.tobytes())
    out = raw_to_bgr(data, 6, 5, "bgr8", 19)
    np.testing.assert_array_equal(out, BGR)
    assert np.shares_memory(out, np.frombuffer(data, np.uint8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoding": "yuv422"}, "'yuv422' is not supported; use one of bgr8, rgb8, bgra8, rgba8, mono8"),
        ({"encoding": "16UC1"}, "is not supported"),
        ({"step": 10}, "step 10 is smaller than width x channels = 5 x 3 = 15"),
        ({"data": BGR.tobytes()[:40]}, "truncated: 40 bytes"),
        ({"height": 0, "width": 0}, "empty image: 0x0"),
    ],
)
def test_bad_frames(kwargs: dict, message: str) -> None:
    args = {"data": BGR.tobytes(), "height": 6, "width": 5, "encoding": "bgr8", "step": 15, **kwargs}
    with pytest.raises(ImageFormatError, match=message.replace("(", r"\(")):
        raw_to_bgr(**args)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_compressed(ext: str) -> None:
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (255, 0, 0)
    ok, buf = cv2.imencode(ext, frame)
    assert ok
    out = compressed_to_bgr(buf.tobytes(), ext[1:])
    assert out.shape == (48, 64, 3)
    assert abs(int(out[24, 10, 0]) - 255) < 10 and int(out[24, 50, 0]) < 10


def test_corrupt_and_empty_compressed() -> None:
    with pytest.raises(ImageFormatError, match="could not be decoded"):
        compressed_to_bgr(b"\x00garbage" * 10, "jpeg")
    with pytest.raises(ImageFormatError, match="empty"):
        compressed_to_bgr(b"", "jpeg")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_compressed_size_is_read_from_the_header(ext: str) -> None:
    from mtl_perception.runtime.image_encoding import compressed_size

    ok, data = cv2.imencode(ext, np.zeros((37, 1234, 3), np.uint8))
    assert ok and compressed_size(data.tobytes()) == (1234, 37)
    assert compressed_size(b"not an image") is None


def test_pixel_limit_refuses_before_decoding() -> None:
    big = np.zeros((100, 200, 3), np.uint8)
    with pytest.raises(ImageFormatError, match=r"image is 200x100 = 0.0 M pixels, more than max_image_pixels"):
        raw_to_bgr(big.tobytes(), 100, 200, "bgr8", 600, max_pixels=10_000)
    assert raw_to_bgr(big.tobytes(), 100, 200, "bgr8", 600, max_pixels=20_000).shape == (100, 200, 3)
    png = cv2.imencode(".png", big)[1]
    with pytest.raises(ImageFormatError, match="more than max_image_pixels"):
        compressed_to_bgr(png.tobytes(), "png", max_pixels=10_000)
    # the header is read, not the pixels: a PNG that claims 16384x16384 is refused however small it is
    claims = bytearray(png.tobytes())
    claims[16:24] = (16384).to_bytes(4, "big") * 2
    with pytest.raises(ImageFormatError, match=r"16384x16384 = 268\.4 M pixels"):
        compressed_to_bgr(bytes(claims), "png", max_pixels=33_177_600)
    with pytest.raises(ImageFormatError, match="no readable jpeg/png header"):
        compressed_to_bgr(b"\x00" * 64, "png", max_pixels=10_000)


def test_jpeg_size_is_found_behind_large_icc_segments() -> None:
    """Two 64 KB APP2 (ICC profile) segments before the frame header: libjpeg, through OpenCV, decodes the
    file, so the pixel-limit check must find its size too."""
    from mtl_perception.runtime.image_encoding import compressed_size, compressed_to_bgr

    ok, encoded = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
    assert ok
    data = encoded.tobytes()
    app2 = b"\xff\xe2" + (65535).to_bytes(2, "big") + b"ICC_PROFILE\x00" + bytes(65535 - 2 - 12)
    padded = data[:2] + app2 + app2 + b"\xff\xff" + data[2:]  # and fill bytes before the next marker
    assert len(padded) > 128 * 1024
    assert cv2.imdecode(np.frombuffer(padded, np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)  # the reference
    assert compressed_size(padded) == (64, 48)
    assert compressed_size(np.frombuffer(padded, np.uint8)) == (64, 48)
    assert compressed_to_bgr(padded, "jpeg", max_pixels=64 * 48).shape == (48, 64, 3)
    assert compressed_size(padded[:70000]) is None  # cut inside the ICC segments: no size, refused


def test_a_jpeg_cut_short_is_told_apart_though_opencv_decodes_it() -> None:
    from mtl_perception.runtime.image_encoding import jpeg_truncated

    # OpenCV 4.5 (JetPack) decodes such a file with a warning; 5.0 refuses it: either way it is told here
    encoded = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))[1]
    data = encoded.tobytes()
    cut = data[: len(data) * 2 // 3]
    assert jpeg_truncated(cut) and not jpeg_truncated(data) and not jpeg_truncated(np.frombuffer(data, np.uint8))
    png = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    assert not jpeg_truncated(png)



def _jpeg(seed: int, *params: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image, list(params))[1].tobytes()


def test_intact_jpegs_of_every_layout_pass_the_damage_check() -> None:
    """libjpeg's own encodings (baseline, progressive: scans with tables between them, restart markers) and
    real dashcam files from ../shared are intact: the check must never call them damaged."""
    from mtl_perception.runtime.image_encoding import jpeg_damage

    assert jpeg_damage(_jpeg(0)) is None
    assert jpeg_damage(_jpeg(1, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)) is None
    assert jpeg_damage(_jpeg(2, cv2.IMWRITE_JPEG_RST_INTERVAL, 2)) is None
    real = sorted((Path(__file__).resolve().parents[3] / "shared" / "real-frames").glob("*.jpg"))
    assert real, "../shared/real-frames holds the real frames"
    for path in real:
        assert jpeg_damage(path.read_bytes()) is None, path.name
    assert jpeg_damage(cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()) is None


def test_damaged_jpegs_that_libjpeg_still_decodes_are_told() -> None:
    from mtl_perception.runtime.image_encoding import jpeg_damage

    first, second = _jpeg(3), _jpeg(4)
    glued = first[: len(first) // 2] + second  # a frame cut mid-scan and the next one after it
    assert cv2.imdecode(np.frombuffer(glued, np.uint8), cv2.IMREAD_COLOR) is not None  # passes for a frame
    assert jpeg_damage(glued).startswith("broken scan data: marker 0xFFD8")
    overwritten = bytearray(first)
    overwritten[len(first) // 2: len(first) // 2 + 2] = b"\xff\x02"  # a reserved marker where bytes were hit
    assert jpeg_damage(bytes(overwritten)).startswith("broken scan data: marker 0xFF02")
    assert jpeg_damage(first[: len(first) * 2 // 3]).startswith("cut short")
