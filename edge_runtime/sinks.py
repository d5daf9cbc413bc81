"""Where frames go: video files (written under a temporary name, renamed when complete),
folders of images (each written atomically), and an on-screen window."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import OutputError

# Container -> FOURCC that the OpenCV wheels can always write.
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
VIDEO_OUT_SUFFIXES = tuple(_FOURCC)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files are created private (0600); finished outputs get the usual mode for new files.
_FILE_MODE = 0o666 & ~_umask()


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


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


class VideoSink:
    """A video file with a fixed fps and size; readers never see a half-written file under ``path``.

    Frames go to a hidden temporary file beside ``path``; ``close`` renames it into place,
    ``abort`` deletes it. With ``audio_from``, ``close`` first remuxes that file's audio track
    into the video (see ``edge_runtime.audio``) and leaves a one-line ``note`` on what happened.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], fourcc: str | None = None,
                 audio_from: Path | None = None) -> None:
        self.path = Path(path)
        self.audio_from = audio_from
        self.note: str | None = None
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            msg = f"{self.path}: cannot write '{suffix}' videos; use one of {', '.join(VIDEO_OUT_SUFFIXES)}"
            raise OutputError(msg)
        check_writable(self.path)
        self.fps, self.size = fps, size
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".partial{suffix}", dir=self.path.parent)
        except OSError as e:
            msg = f"{self.path}: cannot write in folder {self.path.parent} ({e.strerror})"
            raise OutputError(msg) from None
        os.close(fd)
        self.tmp = Path(tmp)
        self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*(fourcc or _FOURCC[suffix])), fps, size)
        if not self._writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            msg = f"{self.path}: OpenCV cannot open a video writer for this file"
            raise OutputError(msg)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if (frame.shape[1], frame.shape[0]) != self.size:
            msg = f"{self.path}: frame of size {frame.shape[1]}x{frame.shape[0]} in a {self.size[0]}x{self.size[1]} video"
            raise OutputError(msg)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place (a video with no frames is removed instead)."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if self.frames == 0:
            self.tmp.unlink(missing_ok=True)
            return
        if self.audio_from is not None:
            from edge_runtime.audio import remux_audio

            try:
                self.note = remux_audio(self.tmp, self.audio_from, duration=self.frames / self.fps)
            except BaseException:
                self.tmp.unlink(missing_ok=True)
                raise
        os.chmod(self.tmp, _FILE_MODE)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self.tmp.unlink(missing_ok=True)


def write_image_atomic(path: Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Encode by the file's extension (PNG lossless) and rename into place."""
    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, image, params)
    if not ok:
        msg = f"{path}: OpenCV cannot encode '{suffix}' images"
        raise OutputError(msg)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ImageFolderSink:
    """Images written into a folder under the names they came with."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            msg = f"{self.folder}: exists and is not a folder"
            raise OutputError(msg)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            msg = f"{self.folder}: cannot create the output folder ({e.strerror})"
            raise OutputError(msg) from None
        if not os.access(self.folder, os.W_OK | os.X_OK):
            msg = f"{self.folder}: folder is not writable"
            raise OutputError(msg)
        self.frames = 0

    def write(self, frame: np.ndarray, name: str) -> None:
        write_image_atomic(self.folder / name, frame)
        self.frames += 1

    def close(self) -> None:
        """Nothing to finish: each image is complete when written."""

    abort = close


class WindowSink:
    """An on-screen window showing the input and output side by side; ``q`` or Esc closes it."""

    def __init__(self, title: str = "edge-ae") -> None:
        self.title = title
        self.closed = False

    def show(self, before: np.ndarray, after: np.ndarray) -> bool:
        """Show one pair; returns False once the user asked to quit."""
        pair = np.hstack([before, after]) if before.shape == after.shape else after
        try:
            cv2.imshow(self.title, pair)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error:
            msg = ("--show: this OpenCV cannot open windows (a headless build, or no screen); "
                   "install opencv-python rather than opencv-python-headless, or leave out --show")
            raise OutputError(msg) from None
        if key in (ord("q"), 27):
            self.closed = True
        return not self.closed

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
