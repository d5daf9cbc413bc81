"""Video files: what one holds, read with PyAV (FFmpeg's libraries): the video stream's codec, pixel format,
colour description, rotation and frame rate, and the audio and subtitle streams beside it; and the settings
edge-ae writes videos with.

The writer (``edge_runtime.encoder``) reads this from the input so that the output is written the way the
input was; tests and benchmarks read it back from what was written. Light to import (PyAV loads on use).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

__all__ = ["CODECS", "DEFAULT_CRF", "PRESET", "Encoding", "StreamInfo", "VideoInfo", "probe"]

# --codec name (FFmpeg's codec name) -> the encoder used.
CODECS = {"h264": "libx264", "hevc": "libx265", "ffv1": "ffv1"}
# Constant-quality defaults: the written file stays within 0.3 dB of the frames in memory
# (python -m benchmarks.video_files measures it). x265's scale runs about 4 higher for the same quality.
DEFAULT_CRF = {"h264": 17, "hevc": 21}
PRESET = "veryfast"  # x264/x265 speed preset: far faster than the model on a CPU, files near 'medium' in size


@dataclass(frozen=True)
class Encoding:
    """How to encode: ``codec`` 'auto' (the input's family: HEVC stays HEVC, a lossless input stays lossless
    (FFV1) in .mkv and .avi, anything else becomes H.264) or one of ``CODECS``; ``crf`` (0-51, lower is
    better; None: ``DEFAULT_CRF``); ``preset``: x264/x265's speed preset (None: ``PRESET``); ``threads``: encoder
    threads (None: FFmpeg's choice, about one per core; set it when several runs share the cores)."""

    codec: str = "auto"
    crf: int | None = None
    preset: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a file: its index, type (video, audio, subtitle, data) and codec name."""

    index: int
    type: str
    codec: str


@dataclass(frozen=True)
class VideoInfo:
    """A video file's first video stream, and the file's other streams."""

    codec: str  # FFmpeg's decoder name: h264, hevc, mpeg4, ffv1, ...
    pix_fmt: str  # yuv420p, yuvj420p, yuv444p, ...
    width: int
    height: int
    frame_rate: Fraction | None  # the stream's average rate, when it has one
    color_range: int  # FFmpeg's AVColorRange: 0 unspecified, 1 tv (limited), 2 pc (full)
    colorspace: int  # AVColorSpace (matrix): 2 unspecified, 1 BT.709, 5/6 BT.601, ...
    color_primaries: int
    color_trc: int
    rotation: int  # degrees of the display matrix (counter-clockwise), 0 when none
    start: float  # seconds: the first video frame's time (audio is aligned to it)
    duration: float | None  # seconds, the container's claim
    frames: int  # the container's frame count (0 when it does not say)
    streams: tuple[StreamInfo, ...] = field(default_factory=tuple)
    container: str = ""

    @property
    def audio(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.type == "audio"]

    @property
    def subtitles(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.type == "subtitle"]

    @property
    def full_range(self) -> bool:
        return self.color_range == 2 or self.pix_fmt.startswith("yuvj")


def probe(path: str | Path) -> VideoInfo | None:
    """Describe ``path``'s first video stream and its other streams; None when PyAV cannot read it."""
    try:
        import av
    except ImportError:
        return None
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError):
        return None
    with contextlib.closing(container):
        if not container.streams.video:
            return None
        video = container.streams.video[0]
        cc = video.codec_context
        rotation = 0
        with contextlib.suppress(av.FFmpegError, StopIteration, ValueError, OSError):
            # The display matrix is read from the first decoded frame (PyAV does not show it on the stream).
            first = next(container.decode(video=video.index))
            rotation = round(first.rotation or 0) % 360
        tb = video.time_base
        start = float(video.start_time * tb) if video.start_time is not None and tb is not None else 0.0
        duration = container.duration / 1_000_000 if container.duration else None
        rate = video.average_rate or video.base_rate or video.guessed_rate
        return VideoInfo(
            codec=cc.name, pix_fmt=cc.pix_fmt or "", width=cc.width, height=cc.height,
            frame_rate=Fraction(rate) if rate else None, color_range=int(cc.color_range or 0),
            colorspace=int(cc.colorspace or 2), color_primaries=int(cc.color_primaries or 2),
            color_trc=int(cc.color_trc or 2), rotation=rotation, start=start, duration=duration,
            frames=int(video.frames or 0),
            streams=tuple(StreamInfo(s.index, s.type, s.codec_context.name if s.codec_context else "")
                          for s in container.streams),
            container=container.format.name,
        )
