"""Where frames come from: video files, image files and folders, cameras and stream URLs.

Files are read in order and nothing is dropped. Live sources (camera, stream) are read on their
own thread that keeps only the newest frame, so a slow model never falls behind the scene.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import SourceError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass
class Frame:
    """One frame and where it came from."""

    image: np.ndarray
    index: int
    time: float  # seconds from the start of the file, or since the live source opened
    name: str | None = None  # file name, for image sources


class Source:
    """Base of every source: iterate it for frames; close it (or use ``with``) when done."""

    kind = "source"
    live = False
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height) when known up front
    length: int | None = None  # frame count when known (an estimate for some video containers)
    path: Path | None = None
    dropped = 0  # frames a live source skipped because a newer one arrived first

    def __init__(self, description: str) -> None:
        self.description = description

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_image(path: Path) -> np.ndarray:
    """Read an 8-bit image keeping its colour mode (grey stays H x W; alpha is dropped with BGR kept)."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
    if img is None:
        msg = f"{path}: not a readable image"
        raise SourceError(msg)
    if img.dtype != np.uint8:
        msg = f"{path}: {img.dtype} images are not supported; expected 8-bit"
        raise SourceError(msg)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    elif img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    return np.ascontiguousarray(img)


class ImageSource(Source):
    """One image file or every image directly inside a folder, in name order."""

    kind = "images"

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
        if path.is_dir():
            self.files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                msg = f"{path}: folder has no images ({', '.join(IMAGE_SUFFIXES)})"
                raise SourceError(msg)
        else:
            self.files = [path]
            read_image(path)  # fail now, with the file named, rather than mid-run
        self.length = len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for i, f in enumerate(self.files):
            yield Frame(read_image(f), i, float(i), f.name)


class VideoSource(Source):
    """A video file, decoded in order; every frame is delivered."""

    kind = "video"

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
        cap = cv2.VideoCapture(str(path))
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok or first is None:
            cap.release()
            msg = f"{path}: cannot be decoded as a video (not a video file, or an unsupported codec)"
            raise SourceError(msg)
        self._cap: cv2.VideoCapture | None = cap
        self._first: np.ndarray | None = first
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and 0 < fps < 1000 else 25.0
        self.size = (first.shape[1], first.shape[0])
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.length = n if n > 0 else None

    def __iter__(self) -> Iterator[Frame]:
        cap, first = self._cap, self._first
        if cap is None or first is None:
            msg = f"{self.path}: a video source can be read once"
            raise SourceError(msg)
        self._first = None
        i, frame = 0, first
        while frame is not None:
            yield Frame(frame, i, i / self.fps)
            i += 1
            ok, frame = cap.read()
            if not ok:
                frame = None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class LiveSource(Source):
    """A camera or network stream read on its own thread; only the newest frame is kept."""

    live = True

    def __init__(self, target: int | str, open_timeout: float = 10.0) -> None:
        self.kind = "camera" if isinstance(target, int) else "stream"
        super().__init__(f"camera {target}" if isinstance(target, int) else str(target))
        self.target = target
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            what = f"camera {target}" if isinstance(target, int) else f"stream {target}"
            msg = f"{what}: cannot be opened"
            raise SourceError(msg)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and 0 < fps < 1000 else None
        self._cond = threading.Condition()
        self._latest: np.ndarray | None = None
        self._seq = 0  # frames received
        self._ended = False
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._read, name=f"edge-ae reader {self.description}", daemon=True)
        self._thread.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._latest is not None or self._ended, open_timeout):
                self.close()
                msg = f"{self.description}: opened but sent no frame within {open_timeout:g} s"
                raise SourceError(msg)
        if self._latest is None:
            self.close()
            msg = f"{self.description}: opened but sent no frame"
            raise SourceError(msg)
        self.size = (self._latest.shape[1], self._latest.shape[0])

    def _read(self) -> None:
        while not self._stop.is_set():
            ok, frame = self._cap.read()
            with self._cond:
                if not ok:
                    self._ended = True
                    self._cond.notify_all()
                    return
                self._latest = frame
                self._seq += 1
                self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        taken = 0  # sequence number of the last frame handed out
        index = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._seq > taken or self._ended)
                if self._seq == taken:  # ended and nothing new
                    return
                self.dropped += self._seq - taken - 1
                taken = self._seq
                frame = self._latest
            assert frame is not None
            yield Frame(frame, index, time.monotonic() - self._start)
            index += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._cap.release()


def open_source(spec: str | int | Path) -> Source:
    """Open a camera index, a stream URL, a video file, an image file or a folder of images."""
    if isinstance(spec, int):
        return LiveSource(spec)
    text = str(spec)
    if text.lower().startswith(STREAM_PREFIXES):
        return LiveSource(text)
    path = Path(text)
    if not path.exists():
        msg = f"{path}: no such file or folder"
        raise SourceError(msg)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path)
    msg = f"{path}: unknown input type '{path.suffix}'; expected a video ({', '.join(VIDEO_SUFFIXES)}), an image or a folder"
    raise SourceError(msg)
