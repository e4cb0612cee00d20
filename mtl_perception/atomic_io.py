"""Atomic file writes: a temporary file beside the target, then a rename, so a crash never leaves half a file."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call write(tmp_path) for a temporary path in path's folder, then rename it to path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates 0600; the file gets the mode an ordinary open() would give it, so a service user or
        # a container can read the models, labels and reports the tools write
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    def write(tmp: str) -> None:
        Path(tmp).write_bytes(data)

    atomic_write(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@contextlib.contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yields a hidden staging folder beside out to fill; when the body completes it replaces out (an older
    out is removed only then), and when it fails or is interrupted it is removed: out is either the previous
    results or the whole new ones, never a mix. The caller refuses a non-empty out unless told to replace it."""
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # a leftover of an earlier crash
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)


def write_image(path: Path, image: object) -> None:
    """cv2.imwrite that raises: OpenCV returns False on a full disk or an unknown suffix and writes nothing."""
    import cv2

    if not cv2.imwrite(str(path), image):  # type: ignore[call-overload]
        raise OSError(28 if _disk_full(path.parent) else 5, "OpenCV could not write the image", str(path))


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def _umask() -> int:
    # os.umask can only be read by setting it: set and restore at once
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
