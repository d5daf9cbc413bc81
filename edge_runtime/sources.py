"""Where frames come from: video files, image files and folders, cameras and stream URLs.

Files are read in order and nothing is dropped. Live sources (camera, stream) are read on their
own thread that keeps only the newest frame, so a slow model never falls behind the scene.
"""

from __future__ import annotations

import contextlib
import functools
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from edge_runtime.errors import SourceError
from edge_runtime.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
FILE_URL_PREFIXES = ("http://", "https://")  # URLs that may name a finite file rather than a live stream
MAX_CAMERA = 99  # OpenCV reads an index of 100 or more as a backend number plus an index: another camera
MAX_SKIP_LINES = 10  # unreadable images named one by one; the rest are only counted
MAX_IMAGE_PIXELS = 1 << 27  # about 134 megapixels; a larger image would take gigabytes once converted for a model


@dataclass
class Frame:
    """One frame and where it came from."""

    image: np.ndarray
    index: int
    time: float  # seconds from the start of the file, or since the live source opened
    name: str | None = None  # file name, for image sources
    captured: float | None = None  # time.monotonic() when a live source read it (for latency)
    alpha: np.ndarray | None = None  # an image's alpha channel (H x W), kept apart so ``image`` stays BGR or grey


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
        # What went wrong with the input without stopping the read (an image skipped, a video that ended
        # before its announced length): one line each, for the user, once the source is read.
        self.problems: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def interrupt(self) -> None:
        """Ask a waiting iteration to end soon; sources that never wait long ignore it."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LOG_LOCK = threading.Lock()
_quiet_users = 0
_saved_level = 0


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines for a call whose failure edge-ae reports itself, in one line.

    The level is process-wide: it is lowered while any thread is inside, and restored by the last one out.
    """
    global _quiet_users, _saved_level
    with _LOG_LOCK:
        if _quiet_users == 0:
            _saved_level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _quiet_users += 1
    try:
        yield
    finally:
        with _LOG_LOCK:
            _quiet_users -= 1
            if _quiet_users == 0:
                cv2.utils.logging.setLogLevel(_saved_level)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_damage(data: bytes) -> str | None:
    """What is wrong with a PNG file's chunk structure (cut short, a bad checksum), or None when it is whole.

    Checked before decoding because libpng prints its own complaint about such files straight to stderr.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return None  # not a PNG at all: the decoder says so (quietly)
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return f"the file is cut short (it ends inside its {kind.decode('latin-1')!r} chunk)"
        if zlib.crc32(data[pos + 4 : end - 4]) != struct.unpack(">I", data[end - 4 : end])[0]:
            return f"the file is damaged (checksum mismatch in its {kind.decode('latin-1')!r} chunk)"
        if kind == b"IEND":
            return None
        pos = end
    return "the file is cut short (no end chunk)"


def decode_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an 8-bit image as (BGR or grey image, alpha channel or None)."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    if data is not None and data.size:
        head = data[:24].tobytes()
        if head.startswith(_PNG_SIGNATURE):
            damage = png_damage(data.tobytes())
            if damage is not None:
                msg = f"{path}: not a readable image: {damage}"
                raise SourceError(msg)
            # A few kilobytes of PNG can claim gigabytes of pixels: refuse them before decoding.
            w, h = struct.unpack(">II", head[16:24]) if head[12:16] == b"IHDR" else (0, 0)
            if w * h > MAX_IMAGE_PIXELS:
                limit = f"at most {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
                msg = f"{path}: {w}x{h} pixels is more than edge-ae reads ({limit})"
                raise SourceError(msg)
    with quiet_opencv():
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
    if img is None:
        msg = f"{path}: not a readable image"
        raise SourceError(msg)
    if img.dtype != np.uint8:
        msg = f"{path}: {img.dtype} images are not supported; expected 8-bit"
        raise SourceError(msg)
    alpha = None
    if img.ndim == 3 and img.shape[2] == 4:
        img, alpha = img[:, :, :3], np.ascontiguousarray(img[:, :, 3])
    elif img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    return np.ascontiguousarray(img), alpha


def read_image(path: Path) -> np.ndarray:
    """Read an 8-bit image keeping its colour mode (grey stays H x W; alpha is dropped with BGR kept)."""
    return decode_image(path)[0]


class ImageSource(Source):
    """One image file or every image directly inside a folder, in name order.

    An image of a folder that cannot be read is skipped: ``on_event`` hears of it (the first
    ``MAX_SKIP_LINES``) and ``problems`` says how many, once the folder is read.
    """

    kind = "images"

    def __init__(self, path: Path, on_event: Callable[[str], None] | None = None) -> None:
        super().__init__(str(path))
        self.path = path
        self.on_event = on_event
        self.skipped: list[str] = []
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
        self.skipped, self.problems = [], []
        index = 0
        for f in self.files:
            try:
                image, alpha = decode_image(f)
            except SourceError as e:
                self.skipped.append(f.name)
                if self.on_event is not None and len(self.skipped) <= MAX_SKIP_LINES:
                    more = "" if len(self.skipped) < MAX_SKIP_LINES else " (further unreadable images are only counted)"
                    self.on_event(f"{e}; skipped{more}")
                continue
            yield Frame(image, index, float(index), f.name, alpha=alpha)
            index += 1
        if self.skipped:
            names = ", ".join(self.skipped[:3]) + (", ..." if len(self.skipped) > 3 else "")
            self.problems.append(f"{self.path}: {len(self.skipped)} of {len(self.files)} images could not be read "
                                 f"and were skipped ({names})")


class VideoSource(Source):
    """A video file (or the URL of one), decoded in order; every frame is delivered.

    When the decoder stops well short of the frame count the container announced (a cut-off download,
    a damaged file), ``problems`` says so once the video is read.
    """

    kind = "video"

    def __init__(self, path: Path | str, cap: cv2.VideoCapture | None = None) -> None:
        super().__init__(str(path))
        self.path = path if isinstance(path, Path) else None
        cap = cv2.VideoCapture(str(path)) if cap is None else cap
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
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.length = int(n) if np.isfinite(n) and n > 0 else None

    def __iter__(self) -> Iterator[Frame]:
        cap, first = self._cap, self._first
        if cap is None or first is None:
            msg = f"{self.description}: a video source can be read once"
            raise SourceError(msg)
        self._first = None
        fps = self.fps or 25.0
        i, frame = 0, first
        while True:
            yield Frame(frame, i, i / fps)
            i += 1
            ok, frame = cap.read()
            if not ok or frame is None:
                self._check_length(i)
                return

    def _check_length(self, decoded: int) -> None:
        # Some containers (MKV, WebM) announce an estimate from the duration: allow it a little slack.
        announced = self.length
        if announced is not None and announced - decoded > max(2, announced // 50):
            self.problems.append(f"{self.description}: the input ended early: {decoded} of the {announced} frames "
                                 "its container announced could be decoded (a cut-off or damaged file)")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _open_capture(target: int | str, open_timeout: float, read_timeout: float) -> cv2.VideoCapture | None:
    """An opened capture of a camera index or URL, or None; OpenCV's own complaints are kept quiet."""
    with quiet_opencv():
        if isinstance(target, int):
            cap = cv2.VideoCapture(target)
        else:
            # Timeouts make a stalled stream fail a read instead of hanging the reader for ever.
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout * 1000)]
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
    return cap


def check_camera(index: int) -> None:
    """Refuse a camera index OpenCV cannot take as one (negative: a crash inside OpenCV; 100 or more: read as
    a backend number plus an index, so another camera would open)."""
    if not 0 <= index <= MAX_CAMERA:
        msg = f"camera {index}: not a camera index; cameras are numbered 0 to {MAX_CAMERA}"
        raise SourceError(msg)


class LiveSource(Source):
    """A camera or network stream read on its own thread; only the newest frame is kept.

    When the source stops delivering (stream server restarted, camera unplugged) and ``reconnect``
    is on, the reader reopens it with back-off (0.25 s doubling to 2 s before every try) until frames
    flow again or ``give_up`` seconds have passed without a frame; ``on_event`` hears about each
    loss and recovery, and ``events`` keeps them. The back-off carries over from one loss to the next
    unless frames flowed for ``STEADY`` seconds in between, so a source that opens and soon ends again
    is retried at most every 2 s, not hammered.
    A stream that is not up yet when opened is waited for the same way (a camera that cannot be opened
    fails at once).
    """

    live = True
    BACKOFF_FIRST = 0.25
    BACKOFF_MAX = 2.0
    STEADY = 10.0

    def __init__(self, target: int | str, open_timeout: float = 10.0, reconnect: bool = True,
                 give_up: float | None = 60.0, on_event: Callable[[str], None] | None = None,
                 read_timeout: float = 5.0, cap: cv2.VideoCapture | None = None) -> None:
        self.kind = "camera" if isinstance(target, int) else "stream"
        super().__init__(f"camera {target}" if isinstance(target, int) else str(target))
        if isinstance(target, int):
            check_camera(target)
        self.target = target
        self.reconnect = reconnect
        self.give_up = give_up
        self.on_event = on_event
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.events: list[str] = []
        self.reconnects = 0  # times frames came back after a loss
        self.received = 0  # frames read from the device, delivered or not
        self._cap = cap if cap is not None else self._open()
        if self._cap is None and self.kind == "stream" and reconnect:
            self._cap = self._wait_for_start()
        if self._cap is None:
            what = f"camera {target}" if isinstance(target, int) else f"stream {target}"
            tried = f" (tried for {give_up:g} s)" if self.kind == "stream" and reconnect and give_up is not None else ""
            msg = f"{what}: cannot be opened{tried}"
            raise SourceError(msg)
        self._opened_at = time.monotonic()
        self._backoff = self.BACKOFF_FIRST
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and 0 < fps < 1000 else None
        self._cond = threading.Condition()
        self._latest: np.ndarray | None = None
        self._latest_at = 0.0  # time.monotonic() when the newest frame was read
        self._seq = 0  # frames received
        self._ended = False
        self._stop = threading.Event()
        self._interrupted = threading.Event()
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

    def _open(self) -> cv2.VideoCapture | None:
        return _open_capture(self.target, self.open_timeout, self.read_timeout)

    def _wait_for_start(self) -> cv2.VideoCapture | None:
        """Retry opening a stream that is not up yet, with back-off, until it opens or ``give_up`` passes."""
        start = time.monotonic()
        limit = f"gives up after {self.give_up:g} s" if self.give_up is not None else "never gives up"
        self._event(f"{self.description}: not up yet; retrying (--give-up: {limit})")
        wait = self.BACKOFF_FIRST
        while self.give_up is None or time.monotonic() - start + wait <= self.give_up:
            time.sleep(wait)
            cap = self._open()
            if cap is not None:
                self._event(f"{self.description}: up after {time.monotonic() - start:.1f} s")
                return cap
            wait = min(wait * 2, self.BACKOFF_MAX)
        return None

    def _event(self, message: str) -> None:
        self.events.append(message)
        if self.on_event is not None:
            self.on_event(message)

    def _read(self) -> None:
        cap = self._cap
        while not self._stop.is_set():
            ok, frame = cap.read() if cap is not None else (False, None)
            if ok and frame is not None:
                with self._cond:
                    self._latest = frame
                    self._latest_at = time.monotonic()
                    self._seq += 1
                    self.received += 1
                    self._cond.notify_all()
                continue
            if self._stop.is_set():
                break
            if cap is not None:
                cap.release()
            self._cap = cap = None
            if not self.reconnect:
                self._event(f"{self.description}: stopped sending frames; not reconnecting (--no-reconnect)")
                break
            cap = self._reopen()
            if cap is None:
                break
            self._cap = cap
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def _reopen(self) -> cv2.VideoCapture | None:
        """Reopen with back-off (a wait before every try) until the source opens again, ``give_up`` passes,
        or ``close``."""
        lost = time.monotonic()
        self._event(f"{self.description}: stopped sending frames; reconnecting")
        wait = self.BACKOFF_FIRST if lost - self._opened_at >= self.STEADY else self._backoff
        tries = 0
        while not self._stop.is_set():
            if self.give_up is not None and time.monotonic() - lost + wait > self.give_up:
                self._event(f"{self.description}: gave up after {time.monotonic() - lost:.0f} s without frames")
                return None
            if self._stop.wait(wait):
                break
            wait = min(wait * 2, self.BACKOFF_MAX)
            tries += 1
            cap = self._open()
            if cap is not None:
                self.reconnects += 1
                self._opened_at, self._backoff = time.monotonic(), wait
                self._event(f"{self.description}: reconnected after {time.monotonic() - lost:.1f} s ({tries} tries)")
                return cap
        return None

    def __iter__(self) -> Iterator[Frame]:
        taken = 0  # sequence number of the last frame handed out
        index = 0
        while True:
            with self._cond:
                # Wake now and then so interrupt() (Ctrl-C during an outage) is seen promptly.
                while not self._cond.wait_for(functools.partial(self._newer_than, taken), 0.1):
                    if self._interrupted.is_set():
                        return
                if self._seq == taken:  # ended and nothing new
                    return
                self.dropped += self._seq - taken - 1
                taken = self._seq
                frame, at = self._latest, self._latest_at
            assert frame is not None
            yield Frame(frame, index, at - self._start, captured=at)
            index += 1

    def _newer_than(self, taken: int) -> bool:
        return self._seq > taken or self._ended

    def interrupt(self) -> None:
        """Make a waiting iteration end soon (safe to call from a signal handler)."""
        self._interrupted.set()

    @property
    def ended(self) -> bool:
        """True once the reader stopped for good (source ended, gave up, or closed)."""
        return self._ended

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            # A read blocked in the driver ends within read_timeout; the thread is a daemon either way.
            self._thread.join(timeout=self.read_timeout + 1.0)
        if self._cap is not None and not self._thread.is_alive():
            self._cap.release()
            self._cap = None


def camera_device(spec: str | int | Path) -> int | None:
    """The camera index of a Linux V4L2 device path (``/dev/video2`` -> 2), else None."""
    m = re.fullmatch(r"/dev/video(\d+)", str(spec))
    return int(m.group(1)) if m else None


def open_source(spec: str | int | Path, reconnect: bool = True, give_up: float | None = 60.0,
                on_event: Callable[[str], None] | None = None) -> Source:
    """Open a camera index, a stream URL, a video file, an image file or a folder of images.

    An http(s) URL whose container announces a frame count is a file, read as one (every frame, in
    order, no reconnecting). ``reconnect`` and ``give_up`` (seconds without frames, None = never)
    apply to live sources only; ``on_event`` hears of their losses and of unreadable images skipped.
    """
    if isinstance(spec, int) or camera_device(spec) is not None:  # a camera (/dev/videoN is camera N)
        index = spec if isinstance(spec, int) else camera_device(spec)
        assert index is not None
        return LiveSource(index, reconnect=reconnect, give_up=give_up, on_event=on_event)
    text = str(spec)
    if text.lower().startswith(FILE_URL_PREFIXES):
        cap = _open_capture(text, 10.0, 5.0)
        if cap is None:
            if Path(urlsplit(text).path).suffix.lower() in VIDEO_SUFFIXES:  # a video file's URL: missing, not late
                msg = f"stream {text}: cannot be opened"
                raise SourceError(msg)
            # not up (yet): a live stream, waited for under ``give_up``
            return LiveSource(text, reconnect=reconnect, give_up=give_up, on_event=on_event)
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        if np.isfinite(n) and n > 0:
            return VideoSource(text, cap)
        return LiveSource(text, reconnect=reconnect, give_up=give_up, on_event=on_event, cap=cap)
    if text.lower().startswith(STREAM_PREFIXES):
        return LiveSource(text, reconnect=reconnect, give_up=give_up, on_event=on_event)
    path = Path(text)
    if not path.exists():
        msg = f"{path}: no such file or folder"
        raise SourceError(msg)
    if not path.is_dir() and not path.is_file():
        msg = f"{path}: not a file or a folder (a device, pipe or socket cannot be read as a video or image)"
        raise SourceError(msg)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path, on_event)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path)
    msg = (f"{path}: unknown input type '{path.suffix}'; expected a video ({', '.join(VIDEO_SUFFIXES)}), "
           "an image or a folder")
    raise SourceError(msg)
