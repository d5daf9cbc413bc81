"""File helpers shared by the runtime and export: what counts as an image or a video, whether two
paths are one file, whether an output can be written, and writing a file atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edge_runtime.errors import OutputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")


def _umask() -> int:
    # Read it where the kernel shows it (Linux 4.7+): setting and restoring the umask would change it,
    # for a moment, for every thread of the host process.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files are created private (0600); finished outputs get the usual mode for new files.
FILE_MODE = 0o666 & ~_umask()


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (also through links); False when either cannot be resolved."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_writable(path: Path) -> None:
    """Fail early, naming the path, when ``path`` cannot be created or replaced."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        msg = f"{path}: folder {parent} does not exist"
        raise OutputError(msg)
    if not parent.is_dir():
        msg = f"{path}: {parent} is not a folder"
        raise OutputError(msg)
    if not os.access(parent, os.W_OK | os.X_OK):
        msg = f"{path}: folder {parent} is not writable"
        raise OutputError(msg)
    if path.is_dir():
        msg = f"{path}: is a folder, expected a file name"
        raise OutputError(msg)


def temp_beside(path: Path, suffix: str = ".partial") -> Path:
    """Create an empty private (0600) hidden file beside ``path`` and return its name.

    Used to write an output under a name no reader mistakes for the finished file; see ``move_into_place``.
    """
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=parent)
    except OSError as e:
        msg = f"{path}: cannot write in folder {parent} ({e.strerror})"
        raise OutputError(msg) from None
    os.close(fd)
    return Path(name)


def move_into_place(tmp: Path, path: Path, mode: int | None = None) -> None:
    """Give the finished ``tmp`` the usual mode for new files (or ``mode``) and rename it onto ``path``."""
    os.chmod(tmp, FILE_MODE if mode is None else mode)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".partial", mode: int | None = None) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path``; on success it is renamed onto ``path``.

    On any error the temporary file is removed and ``path`` is left as it was. An ``OSError``
    (disk full, I/O error) becomes an ``OutputError`` naming ``path`` and the cause. The finished
    file gets ``mode``, by default the usual mode for new files.
    """
    path = Path(path)
    tmp = temp_beside(path, suffix)
    try:
        yield tmp
        move_into_place(tmp, path, mode)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        msg = f"{path}: could not be written ({e.strerror or e}); nothing was replaced"
        raise OutputError(msg) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
