"""Where frames go: video files (encoded with PyAV under a temporary name, moved into place when complete),
folders of images (each written atomically), and an on-screen window."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from edge_runtime.encoder import AVWriter, NoEncoderError
from edge_runtime.errors import OutputError
from edge_runtime.files import Partial, atomic_path, claim, remove_stale_partials
from edge_runtime.media import Encoding
from edge_runtime.outputs import check_video_output, frame_output
from edge_runtime.sources import Frame, Source, quiet_opencv

# OpenCV's writer, used only where PyAV is missing: container -> FOURCC its wheels can always write.
_FOURCC = {".avi": "MJPG"}
_DEFAULT_FOURCC = "mp4v"
NO_PYAV = ("warning: PyAV (the 'av' package) is not installed, so this video was written by OpenCV's MPEG-4 Part 2 "
           "writer (lower quality, larger files, no audio); install it with: pip install av")
NO_H264 = ("warning: this PyAV has no H.264 encoder, so this video was written by OpenCV's MPEG-4 Part 2 writer "
           "(lower quality, larger files, no audio); install the PyAV wheel: pip install --force-reinstall av")


class VideoSink:
    """A video file; readers never see a half-written file under ``path``.

    Frames go to a hidden, locked temporary file beside ``path`` (see ``edge_runtime.files.claim``):
    ``close`` moves it into place, ``abort`` deletes it; any failure (disk full, I/O error, encoder error)
    raises ``OutputError`` naming ``path`` and leaves an existing ``path`` untouched. The encoding follows
    the video file ``like`` (codec family, pixel format, colour description, rotation; see
    ``edge_runtime.encoder``) and ``encoding``; ``audio_from``'s audio and subtitle streams are copied in.
    With ``timestamps``, ``write`` takes each frame's capture time and the file plays in real time (variable
    frame rate; with OpenCV's writer, frames repeated at ``fps``).
    ``overwrite=False`` refuses an existing ``path``, also one that appears while writing. ``notes``: one
    line each on what happened to the audio and anything else worth saying.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], audio_from: Path | None = None,
                 like: Path | str | None = None, encoding: Encoding | None = None, timestamps: bool = False,
                 overwrite: bool = True) -> None:
        from edge_runtime.media import probe

        self.path = Path(path)
        self.audio_from = audio_from
        self.notes: list[str] = []
        self.fps, self.size = fps, size
        self.timestamps = timestamps
        self._t0: float | None = None
        self.overwrite = overwrite
        self.frames = 0  # frames given to write
        suffix = self.path.suffix.lower()
        check_video_output(self.path)
        self._part: Partial | None = claim(self.path, f".partial{suffix}", overwrite)
        self.tmp = self._part.tmp
        self._av: AVWriter | None = None
        self._cv: cv2.VideoWriter | None = None
        self._cv_frames = 0
        try:
            import av  # noqa: F401  (a base dependency; OpenCV's writer is the fallback for installs without it)
        except ImportError:
            self._open_opencv(suffix, NO_PYAV)
            return
        encoding = encoding or Encoding()
        try:
            follow = like or audio_from
            info = probe(follow) if follow is not None else None
            self._av = AVWriter(self.tmp, suffix, fps, size, encoding, info, audio_from, timestamps, name=self.path)
        except NoEncoderError:
            if encoding.codec != "auto":
                self._part.discard()
                raise
            self._open_opencv(suffix, NO_H264)
        except BaseException:
            self._part.discard()
            raise

    def _open_opencv(self, suffix: str, warning: str) -> None:
        assert self._part is not None
        code = _FOURCC.get(suffix, _DEFAULT_FOURCC)
        self._cv = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter.fourcc(*code), self.fps, self.size)
        if not self._cv.isOpened():
            self._part.discard()
            msg = f"{self.path}: OpenCV cannot open a video writer for this file"
            raise OutputError(msg)
        self.notes.append(warning)

    def write(self, frame: np.ndarray, t: float | None = None) -> None:
        """Add one frame; ``t``: its capture time in seconds (any clock; the first frame's time is the start)."""
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self._part is None:
            msg = f"{self.path}: the video is already closed"
            raise OutputError(msg)
        if (frame.shape[1], frame.shape[0]) != self.size:
            w, h = self.size
            msg = f"{self.path}: frame of size {frame.shape[1]}x{frame.shape[0]} in a {w}x{h} video"
            raise OutputError(msg)
        if t is not None and self.timestamps:
            self._t0 = t if self._t0 is None else self._t0
            t -= self._t0
        if self._av is not None:
            self._av.write(frame, t)
        elif self._cv is not None:
            # OpenCV writes a fixed rate: repeat the frame until the file's clock reaches its capture time.
            due = round(t * self.fps) + 1 if self.timestamps and t is not None else self._cv_frames + 1
            for _ in range(max(1, due - self._cv_frames)):
                self._cv.write(frame)
                self._cv_frames += 1
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place (a video with no frames is removed instead)."""
        part = self._part
        if part is None:
            return
        self._part = None
        try:
            if self._av is not None:
                if self.frames == 0:
                    self._av.abort()
                else:
                    self.notes.extend(self._av.close())
            if self._cv is not None:
                self._cv.release()
                if self.frames:
                    self._check_opencv_file()
            if self.frames == 0:
                part.discard()
                return
            part.commit(self.overwrite)
        except BaseException:
            part.discard()
            raise

    def _check_opencv_file(self) -> None:
        # OpenCV's writer reports no errors: read the file back to know that every frame reached the disk.
        cap = cv2.VideoCapture(str(self.tmp))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        if n < self._cv_frames:
            msg = (f"{self.path}: could not be written (only {n} of {self._cv_frames} frames reached the file); "
                   "nothing was replaced")
            raise OutputError(msg)

    def abort(self) -> None:
        if self._av is not None:
            self._av.abort()
        if self._cv is not None:
            self._cv.release()
        if self._part is not None:
            self._part.discard()
            self._part = None


def write_image_atomic(path: Path, image: np.ndarray, jpeg_quality: int = 95, overwrite: bool = True,
                       scan: bool = True) -> None:
    """Encode by the file's extension (PNG lossless) and move into place (refusing an existing file unless
    ``overwrite``); a failed write (disk full) raises ``OutputError`` and leaves ``path`` as it was."""
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
    with atomic_path(path, overwrite=overwrite, scan=scan) as tmp:
        tmp.write_bytes(buf.tobytes())


class ImageFolderSink:
    """Images written into a folder under the names they came with.

    Unless ``overwrite``, existing images among ``names`` (those the run will write) are refused up front,
    and any that appear meanwhile are not replaced.
    """

    def __init__(self, folder: str | Path, overwrite: bool = True, names: list[str] | None = None) -> None:
        self.folder = Path(folder)
        self.overwrite = overwrite
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
        if not overwrite and names:
            there = [n for n in names if (self.folder / n).exists()]
            if there:
                shown = ", ".join(there[:3]) + (", ..." if len(there) > 3 else "")
                msg = (f"{self.folder}: {len(there)} of the {len(names)} images to write already exist there "
                       f"({shown}); use -y (--overwrite) to replace them")
                raise OutputError(msg)
        remove_stale_partials(self.folder)
        self.frames = 0

    def write(self, frame: np.ndarray, name: str) -> None:
        write_image_atomic(self.folder / name, frame, overwrite=self.overwrite, scan=False)  # the folder: cleaned once
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
    nothing is written. A video follows a video file input's format (see ``VideoSink``) unless ``encoding``
    says otherwise; ``audio``: copy its audio and subtitle streams. A live source's video is written at the
    frames' capture times. ``overwrite=False`` refuses existing outputs (every image of a folder output).
    """

    def __init__(self, source: Source, output: Path | None, audio: bool = True, encoding: Encoding | None = None,
                 overwrite: bool = True) -> None:
        self.source = source
        self.output = output
        self.encoding = encoding
        self.overwrite = overwrite
        self.audio_from = source.path if source.kind == "video" and audio else None
        # the input's format is followed also for the URL of a video file (probed from the URL)
        self.like: Path | str | None = (source.path or source.description) if source.kind == "video" else None
        self.video: VideoSink | None = None
        self.folder: ImageFolderSink | None = None
        self.notes: list[str] = []
        self.kind: Literal["folder", "image", "video"] | None = None
        if output is None:
            return
        self.kind = frame_output(source, output)
        if self.kind == "folder":
            names = [f.name for f in getattr(source, "files", [])]
            self.folder = ImageFolderSink(output, overwrite, names)
        elif not overwrite and output.exists():
            msg = f"{output}: already exists; use -y (--overwrite) to replace it"
            raise OutputError(msg)
        # A video writer is created with the first frame, when the size is certain.

    def prepare(self, frame: Frame, result: np.ndarray) -> None:
        """Create the video writer for frames like ``result`` (so a bad output fails before any progress)."""
        if self.output is not None and self.kind == "video" and self.video is None:
            fps = self.source.fps or 30.0
            self.video = VideoSink(self.output, fps, (result.shape[1], result.shape[0]), audio_from=self.audio_from,
                                   like=self.like, encoding=self.encoding, timestamps=self.source.live,
                                   overwrite=self.overwrite)

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
            write_image_atomic(self.output, result, overwrite=self.overwrite)
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
            self.video.write(result, frame.captured)

    def finish(self) -> list[str]:
        """Finish the video (and its audio); the outputs written."""
        done = []
        if self.video is not None:
            self.video.close()
            self.notes.extend(self.video.notes)
            if self.video.frames:
                done.append(str(self.video.path))
        if self.output is not None and self.kind in ("folder", "image"):
            done.append(str(self.output))
        return done

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()
