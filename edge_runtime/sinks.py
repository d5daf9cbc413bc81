"""Where frames go: video files (written under a temporary name, renamed when complete),
folders of images (each written atomically), and an on-screen window."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from edge_runtime.errors import OutputError
from edge_runtime.files import atomic_path, move_into_place, temp_beside
from edge_runtime.outputs import check_video_output, frame_output
from edge_runtime.sources import Frame, Source, quiet_opencv

# Container -> FOURCC that the OpenCV wheels can always write (every suffix of VIDEO_OUT_SUFFIXES).
_FOURCC = {".avi": "MJPG"}
_DEFAULT_FOURCC = "mp4v"


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
        check_video_output(self.path)
        self.fps, self.size = fps, size
        self.tmp = temp_beside(self.path, f".partial{suffix}")
        code = fourcc or _FOURCC.get(suffix, _DEFAULT_FOURCC)
        self._writer: cv2.VideoWriter | None = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter.fourcc(*code), fps, size)
        if not self._writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            msg = f"{self.path}: OpenCV cannot open a video writer for this file"
            raise OutputError(msg)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self._writer is None:
            msg = f"{self.path}: the video is already closed"
            raise OutputError(msg)
        if (frame.shape[1], frame.shape[0]) != self.size:
            w, h = self.size
            msg = f"{self.path}: frame of size {frame.shape[1]}x{frame.shape[0]} in a {w}x{h} video"
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
        move_into_place(self.tmp, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self.tmp.unlink(missing_ok=True)


def write_image_atomic(path: Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Encode by the file's extension (PNG lossless) and rename into place."""
    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in (".jpg", ".jpeg") else []
    try:
        with quiet_opencv():
            ok, buf = cv2.imencode(suffix, image, params)
    except cv2.error:  # e.g. a colour image as .pgm, which holds grey only
        ok = False
    if not ok:
        mode = "grey" if image.ndim == 2 else f"{image.shape[2]}-channel"
        msg = f"{path}: OpenCV cannot encode this {mode} image as '{suffix}'; choose another image format"
        raise OutputError(msg)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


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
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)


class FrameSink:
    """The output of a run whose results are frames, chosen from the output path and the source: a video
    (written as the frames come), an image (for an image input), or a folder (for a folder of images).

    The path is judged when the sink is made, so a bad output fails before any work; with no path,
    nothing is written. ``audio``: remux a video file input's audio track into the output video.
    """

    def __init__(self, source: Source, output: Path | None, audio: bool = True) -> None:
        self.source = source
        self.output = output
        self.audio_from = source.path if audio and source.kind == "video" else None
        self.video: VideoSink | None = None
        self.folder: ImageFolderSink | None = None
        self.notes: list[str] = []
        self.kind: Literal["folder", "image", "video"] | None = None
        if output is None:
            return
        self.kind = frame_output(source, output)
        if self.kind == "folder":
            self.folder = ImageFolderSink(output)
        # A video writer is created with the first frame, when the size is certain.

    def prepare(self, frame: Frame, result: np.ndarray) -> None:
        """Create the video writer for frames like ``result`` (so a bad output fails before any progress)."""
        if self.output is not None and self.kind == "video" and self.video is None:
            fps = self.source.fps or 30.0
            self.video = VideoSink(self.output, fps, (result.shape[1], result.shape[0]), audio_from=self.audio_from)

    def write(self, frame: Frame, result: np.ndarray) -> None:
        if self.output is None:
            return
        if frame.alpha is not None and self.kind in ("folder", "image") and result.shape[:2] == frame.alpha.shape:
            # An image's transparency is passed through: the model sees and returns the colour only.
            colour = cv2.cvtColor(result, cv2.COLOR_GRAY2BGR) if result.ndim == 2 else result
            result = np.dstack([colour, frame.alpha])
        if self.folder is not None:
            self.folder.write(result, frame.name or "frame.png")
        elif self.kind == "image":
            write_image_atomic(self.output, result)
        else:
            self.prepare(frame, result)
            assert self.video is not None
            size = self.video.size
            if self.source.live and (result.shape[1], result.shape[0]) != size:
                # A camera or stream that came back at another size: keep one playable video.
                if not any(n.startswith("resized") for n in self.notes):
                    self.notes.append(f"resized frames of {result.shape[1]}x{result.shape[0]} to the video's "
                                      f"{size[0]}x{size[1]} after the source changed size")
                result = cv2.resize(result, size, interpolation=cv2.INTER_AREA)
            self.video.write(result)

    def finish(self) -> list[str]:
        """Finish the video (and its audio); the outputs written."""
        done = []
        if self.video is not None:
            self.video.close()
            if self.video.note:
                self.notes.append(self.video.note)
            if self.video.frames:
                done.append(str(self.video.path))
        if self.output is not None and self.kind in ("folder", "image"):
            done.append(str(self.output))
        return done

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()
