"""Writing video files with PyAV (FFmpeg's libraries, in process): H.264 (libx264) or another real encoder at a
constant quality, in the input's pixel format and colour description, with the input's audio and subtitle
streams copied in, at the input's frame rate or at the capture times of live frames.

``AVWriter`` writes to the path it is given and raises ``OutputError`` naming the output on any failure;
``edge_runtime.sinks.VideoSink`` gives it a temporary file and moves the result into place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np

from edge_runtime.errors import OutputError
from edge_runtime.media import CODECS, DEFAULT_CRF, PRESET, Encoding, VideoInfo

if TYPE_CHECKING:
    from av.video.stream import VideoStream

__all__ = ["AVWriter", "Encoding", "NoEncoderError", "choose_codec"]

_LOSSLESS = {"ffv1", "huffyuv", "ffvhuff", "utvideo", "rawvideo", "png", "qtrle", "magicyuv", "r210", "v210"}
_TIME_BASE = Fraction(1, 1000)  # live recordings: capture times in milliseconds
# AVColorSpace (what files say) -> SwsColorspace (what the converter takes); unknown ones convert as BT.601.
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


def choose_codec(encoding: Encoding, like: VideoInfo | None, container: str, supported: set[str]) -> str:
    """The codec family to write into a ``container`` (FFmpeg's format name) that takes ``supported`` codecs."""
    if encoding.codec != "auto":
        return encoding.codec
    if like is not None and like.codec == "hevc" and "hevc" in supported:
        return "hevc"
    if like is not None and like.codec in _LOSSLESS and container in ("matroska", "avi"):
        return "ffv1"
    return "h264"


class NoEncoderError(OutputError):
    """The PyAV installed has no encoder for the codec asked for."""


def _has_encoder(name: str) -> bool:
    import av

    try:
        av.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


def _chroma(like: VideoInfo | None) -> str:
    """The input's chroma sampling as an 8-bit planar format: 4:4:4 stays 4:4:4, 4:2:2 stays 4:2:2."""
    fmt = like.pix_fmt if like is not None else "yuv420p"
    if "444" in fmt or fmt.startswith(("rgb", "bgr", "gbr", "argb", "abgr")):
        return "yuv444p"
    if "422" in fmt:
        return "yuv422p"
    return "yuv420p"


def _rotate(frame: np.ndarray, degrees: int) -> np.ndarray:
    """Turn an upright frame back to how a file with display rotation ``degrees`` stores it."""
    turns = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return cv2.rotate(frame, turns[degrees]) if degrees in turns else frame


class AVWriter:
    """Encode BGR frames into ``path`` (its container chosen by ``suffix``).

    ``like``: the input's description (codec family, pixel format, colour, rotation are kept);
    ``copy_from``: a file whose audio and subtitle streams are copied in (cut to the video's length);
    ``timestamps``: frames come with their capture times (``write(frame, t)``) and are written at those
    times (variable frame rate); otherwise at ``fps``. ``name`` is the output named in errors.
    """

    def __init__(self, path: Path, suffix: str, fps: float, size: tuple[int, int], encoding: Encoding | None = None,
                 like: VideoInfo | None = None, copy_from: Path | None = None, timestamps: bool = False,
                 name: Path | None = None) -> None:
        import av  # the writer's one heavy import, here so a run without a video output never pays for it

        self.av = av
        self.name = name or path
        self.notes: list[str] = []
        self.frames = 0
        self.size = size
        self.timestamps = timestamps
        self._last_pts = -1
        self._t_last = 0.0
        self._input: Any = None
        self._copies: list[_Copy] = []
        fmt = {".mkv": "matroska", ".avi": "avi", ".mov": "mov", ".m4v": "mp4", ".mp4": "mp4"}.get(suffix.lower())
        # MP4/MOV: the index (moov) goes before the frames when the file is finished (also when a signal ends the
        # run), so that a copy cut off or still downloading plays from its start.
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            self.out = av.open(str(path), "w", format=fmt, options=options)
        except (av.FFmpegError, OSError) as e:
            raise self._error(e) from None
        try:
            self._open_video(fps, encoding or Encoding(), like)
            if copy_from is not None:
                self._open_copies(copy_from, like)
        except BaseException:
            self._close_quietly()
            raise

    # -- set-up ---------------------------------------------------------------------------------------------

    def _open_video(self, fps: float, encoding: Encoding, like: VideoInfo | None) -> None:
        supported = set(self.out.supported_codecs)
        family = choose_codec(encoding, like, self.out.format.name, supported)
        if family not in CODECS:
            msg = f"{self.name}: unknown codec '{family}'; use one of {', '.join(CODECS)}"
            raise OutputError(msg)
        if family not in supported:
            msg = (f"{self.name}: a {Path(str(self.name)).suffix} file cannot hold {family} video; choose another "
                   "codec or container")
            raise OutputError(msg)
        if family == "ffv1" and self.out.format.name == "mp4":
            self.notes.append(f"warning: {self.name}: FFV1 in MP4 plays in FFmpeg-based players only (most players, "
                              "browsers and phones cannot play it); lossless video belongs in .mkv")
        encoder = next((e for e in (CODECS[family], family) if _has_encoder(e)), None)
        if encoder is None:  # a PyAV built on an FFmpeg without it (the wheels have them all)
            msg = f"{self.name}: this PyAV has no {family} encoder"
            raise NoEncoderError(msg)
        w, h = self.size
        rate = like.frame_rate if like is not None and like.frame_rate and abs(float(like.frame_rate) - fps) < 0.01 \
            else Fraction(fps).limit_denominator(1001)
        options: dict[str, str] = {}
        if family in DEFAULT_CRF:
            crf = encoding.crf if encoding.crf is not None else DEFAULT_CRF[family]
            options |= {"crf": str(crf), "preset": encoding.preset or PRESET}
            if family == "hevc":
                options["x265-params"] = "log-level=error"
        if self.timestamps:
            options["bf"] = "0"  # no reordering: the muxer then takes each frame's time from its own timestamp
        stream = cast("VideoStream", self.out.add_stream(encoder, rate=rate, options=options))
        cc = stream.codec_context
        if encoding.threads:
            cc.thread_count = encoding.threads
        self.rotation = like.rotation if like is not None and like.rotation in (90, 180, 270) else 0
        if self.rotation in (90, 270):
            w, h = h, w
        if family == "ffv1":
            pix_fmt = "bgr0"  # lossless RGB: exactly the frames in memory
        else:
            pix_fmt = _chroma(like)
            if pix_fmt != "yuv444p" and (w % 2 or (h % 2 and pix_fmt == "yuv420p")):
                self.notes.append(f"written as 4:4:4: {w}x{h} frames have an odd side, which {pix_fmt} cannot hold")
                pix_fmt = "yuv444p"
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        self.full_range = bool(like is not None and like.full_range and pix_fmt != "bgr0")
        self.matrix = 2
        if like is not None and pix_fmt != "bgr0":
            cc.color_range = 2 if self.full_range else (like.color_range or 0)
            cc.colorspace, cc.color_primaries, cc.color_trc = like.colorspace, like.color_primaries, like.color_trc
            self.matrix = like.colorspace
        if self.timestamps:
            cc.time_base = _TIME_BASE
            stream.time_base = _TIME_BASE
        if self.rotation:
            stream.set_display_rotation(self.rotation)
        self.stream = stream
        self.pix_fmt = pix_fmt
        self.rate = rate
        self.codec = family

    def _open_copies(self, source: Path, like: VideoInfo | None) -> None:
        """Add the input's audio and subtitle streams, copied as they are; those the output's container cannot
        hold are left out, with a note."""
        av = self.av
        try:
            self._input = av.open(str(source))
        except (av.FFmpegError, OSError):
            self.notes.append(f"audio not kept: {source.name} cannot be opened for its audio")
            return
        supported = set(self.out.supported_codecs)
        offset = like.start if like is not None else 0.0
        for s in self._input.streams:
            if s.type not in ("audio", "subtitle") or s.codec_context is None:
                continue
            codec = s.codec_context.name
            if {codec, getattr(s.codec_context.codec, "canonical_name", codec)} & supported:
                self._copies.append(_Copy(s, self.out.add_stream_from_template(s), offset))
            else:
                self.notes.append(f"{s.type} stream {s.index} ({codec}) left out: a {self.out.format.name} file "
                                  "cannot hold it")
        if self._copies:
            self._packets: Iterator[Any] = self._input.demux(*[c.src for c in self._copies])
            self._pending: Any = None
        kinds = sorted({c.src.type for c in self._copies})
        if kinds:
            what = " and ".join("audio" if k == "audio" else "subtitles" for k in kinds)
            self.notes.insert(0, f"{what} kept from {source.name}")

    # -- writing --------------------------------------------------------------------------------------------

    def write(self, frame: np.ndarray, t: float | None = None) -> None:
        """Encode one upright BGR frame; ``t``: its capture time in seconds from the first (live recordings)."""
        av = self.av
        try:
            vf = self._convert(_rotate(frame, self.rotation) if self.rotation else frame)
            if self.timestamps and t is not None:
                pts = max(round(t / _TIME_BASE), self._last_pts + 1)
                self._t_last = pts * float(_TIME_BASE)
            else:
                pts = self.frames
                self._t_last = pts / float(self.rate)
            vf.pts = self._last_pts = pts
            for packet in self.stream.encode(vf):
                self.out.mux(packet)
            self.frames += 1
            if self._copies:
                self._copy_until(self._t_last)
        except (av.FFmpegError, OSError) as e:
            raise self._error(e) from None

    def _convert(self, frame: np.ndarray) -> Any:
        av = self.av
        if self.pix_fmt == "bgr0":
            return av.VideoFrame.from_ndarray(frame, format="bgr24").reformat(format="bgr0")
        if self.pix_fmt == "yuv420p" and not self.full_range and _SWS_MATRIX.get(self.matrix, 5) == 5:
            # The common case, done by OpenCV in one pass: BT.601, limited range, 2x2 chroma averages. (FFmpeg's
            # own bgr24 -> yuv420p shortcut is off by about two levels in blue and red.)
            return av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        full = av.VideoFrame.from_ndarray(frame, format="bgr24").reformat(
            format="yuv444p", dst_colorspace=_SWS_MATRIX.get(self.matrix, 5),
            dst_color_range=2 if self.full_range else 1)
        if self.pix_fmt == "yuv444p":
            return full
        y, u, v = full.to_ndarray()
        h, w = y.shape
        cw, ch = (w + 1) // 2, (h + 1) // 2 if self.pix_fmt == "yuv420p" else h
        u, v = (cv2.resize(p, (cw, ch), interpolation=cv2.INTER_AREA) for p in (u, v))
        out = av.VideoFrame(w, h, self.pix_fmt)
        for plane, data in zip(out.planes, (y, u, v), strict=True):
            rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            rows[: data.shape[0], : data.shape[1]] = data
        return out

    def _copy_until(self, t: float) -> None:
        """Write the copied streams' packets that start before ``t`` seconds of video."""
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    self._copies = []
                    return
            packet = self._pending
            copy = next(c for c in self._copies if c.src is packet.stream)
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None or packet.time_base is None:
                self._pending = None
                continue
            start = float(ts * packet.time_base) - copy.offset
            if start >= t:
                return
            self._pending = None
            if start < 0:
                continue  # before the first video frame
            copy.write(packet, self.out)

    def close(self) -> list[str]:
        """Flush the encoder, copy the rest of the audio (up to the video's end) and finish the file."""
        av = self.av
        try:
            for packet in self.stream.encode(None):
                self.out.mux(packet)
            if self._copies:
                self._copy_until(self._t_last + 1 / float(self.rate))
            self.out.close()
        except (av.FFmpegError, OSError) as e:
            self._close_quietly()
            raise self._error(e) from None
        finally:
            if self._input is not None:
                self._input.close()
                self._input = None
        return self.notes

    def abort(self) -> None:
        self._close_quietly()

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.out.close()
        if self._input is not None:
            with contextlib.suppress(Exception):
                self._input.close()
            self._input = None

    def _error(self, e: BaseException) -> OutputError:
        cause = getattr(e, "strerror", None) or str(e)
        return OutputError(f"{self.name}: could not be written ({cause}); nothing was replaced")


class _Copy:
    """One copied stream: its packets, moved to the video's clock."""

    def __init__(self, src: Any, out: Any, offset: float) -> None:
        self.src, self.out, self.offset = src, out, offset

    def write(self, packet: Any, container: Any) -> None:
        shift = round(self.offset / packet.time_base) if self.offset else 0
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self.out
        container.mux(packet)
