"""Written videos, probed back with PyAV: codec, pixel format, colour description, rotation, audio, quality,
live recordings at their capture times, and OpenCV's writer as the fallback without PyAV."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge_runtime.media import Encoding, probe
from edge_runtime.pipeline import run_pipeline
from edge_runtime.sinks import VideoSink
from edge_runtime.sources import open_source
from edge_runtime.stream_server import MJPEGServer, encode_video
from tests.helpers import CLEAN_CLIP, psnr, read_frames, shared


class Keep:
    """A real filter standing in for the model (a light blur) that keeps what it returned, in order."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        out = cv2.GaussianBlur(frame, (3, 3), 0)
        self.frames.append(out)
        return out


def run_file(src: Path, out: Path, max_frames: int | None = None, **kw: object) -> tuple[Keep, list[str]]:
    keep = Keep()
    source = open_source(src)
    try:
        report = run_pipeline(source, keep, out, max_frames=max_frames, handle_signals=False, **kw)  # type: ignore[arg-type]
    finally:
        source.close()
    return keep, report.notes


def mean_psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b)
    return float(np.mean([psnr(x, y) for x, y in zip(a, b, strict=True)]))


def write_with_pyav(path: Path, frames: list[np.ndarray], rate: int = 25, pix_fmt: str = "yuv420p",
                    rotation: int = 0, bt709: bool = False) -> None:
    """An input video made here: H.264 with a display rotation or a BT.709 colour description."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate, options={"crf": "10"})
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = pix_fmt
        if bt709:
            s.codec_context.colorspace = s.codec_context.color_primaries = s.codec_context.color_trc = 1
        if rotation:
            s.set_display_rotation(rotation)
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="bgr24")
            if bt709:
                vf = vf.reformat(format=pix_fmt, dst_colorspace=1, dst_color_range=1)
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def test_h264_in_the_inputs_pixel_format_with_its_audio(tmp_path: Path) -> None:
    # 4:4:4 HD with an mp3 track stays 4:4:4 with its track; the bundled 4:2:0 sample stays 4:2:0.
    out = tmp_path / "cockatoo.mp4"
    keep, notes = run_file(shared("videos/imageio_cockatoo.mp4"), out, max_frames=8)
    info = probe(out)
    assert info is not None
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv444p", 1280, 720)
    assert [a.codec for a in info.audio] == ["mp3float"]
    assert info.frame_rate == 20
    assert any("audio kept" in n for n in notes), notes
    assert mean_psnr(read_frames(out), keep.frames) > 42

    from edge_runtime.model import sample_clip

    out = tmp_path / "sample.mp4"
    keep, _ = run_file(sample_clip(), out, max_frames=10)
    info = probe(out)
    assert info is not None and (info.codec, info.pix_fmt) == ("h264", "yuv420p") and info.audio == []
    assert mean_psnr(read_frames(out), keep.frames) > 34  # noisy frames, read back through OpenCV's 4:2:0 path
    assert out.stat().st_size < sample_clip().stat().st_size * 10 / 38  # smaller than the input's share


def test_full_range_input_stays_full_range(tmp_path: Path) -> None:
    out = tmp_path / "asl.mp4"  # the clean clip is H.264 yuvj420p (full range) in Matroska
    keep, _ = run_file(CLEAN_CLIP, out, max_frames=6)
    info = probe(out)
    assert info is not None and info.full_range and info.codec == "h264"
    assert mean_psnr(read_frames(out), keep.frames) > 40


def test_rotation_and_colour_description_are_kept(tmp_path: Path) -> None:
    frames = [cv2.resize(f, (160, 96)) for f in read_frames(CLEAN_CLIP, 6)]
    rotated = tmp_path / "rotated.mp4"
    write_with_pyav(rotated, frames, pix_fmt="yuv444p", rotation=90)  # 4:4:4: nothing lost to chroma sampling
    out = tmp_path / "out.mp4"
    lossless = Encoding("h264", 0)  # so that what is measured is the orientation and the colour conversion
    keep, _ = run_file(rotated, out, encoding=lossless)
    assert keep.frames[0].shape[:2] == (160, 96)  # OpenCV hands over upright frames
    info = probe(out)
    assert info is not None and info.rotation == 90 and (info.width, info.height) == (160, 96)
    assert mean_psnr(read_frames(out), keep.frames) > 44  # upright again when read, same as in memory

    tagged = tmp_path / "bt709.mp4"
    write_with_pyav(tagged, frames, pix_fmt="yuv444p", bt709=True)
    out = tmp_path / "out709.mkv"
    keep, _ = run_file(tagged, out, encoding=lossless)
    info = probe(out)
    assert info is not None and (info.colorspace, info.color_primaries, info.color_trc) == (1, 1, 1)
    assert mean_psnr(read_frames(out), keep.frames) > 44  # converted with the matrix it is tagged with (BT.601: 41)


def test_codec_choices_hevc_and_lossless_ffv1(tmp_path: Path) -> None:
    out = tmp_path / "hevc.mp4"
    keep, _ = run_file(CLEAN_CLIP, out, max_frames=4, encoding=Encoding("hevc", 20))
    info = probe(out)
    assert info is not None and info.codec == "hevc"
    assert mean_psnr(read_frames(out), keep.frames) > 38
    out = tmp_path / "lossless.mkv"
    keep, _ = run_file(CLEAN_CLIP, out, max_frames=4, encoding=Encoding("ffv1"))
    info = probe(out)
    assert info is not None and info.codec == "ffv1"
    for a, b in zip(read_frames(out), keep.frames, strict=True):
        np.testing.assert_array_equal(a, b)


def test_live_recording_lasts_as_long_as_the_wall_time(tmp_path: Path) -> None:
    """A model slower than the stream skips frames; the file still plays for as long as the recording took."""
    server = MJPEGServer(encode_video(CLEAN_CLIP, 30, width=160), fps=30.0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    captured: list[float] = []

    def slow(frame: np.ndarray) -> np.ndarray:
        time.sleep(0.1)  # about 9 fps against a 30 fps stream
        return frame

    out = tmp_path / "live.mp4"
    source = open_source(server.url)
    try:
        report = run_pipeline(source, slow, out, max_frames=20, handle_signals=False,
                              on_frame=lambda r: captured.append(time.monotonic()))
    finally:
        source.close()
        server.stop()
    assert report.dropped > 20
    info = probe(out)
    assert info is not None and info.duration is not None
    wall = captured[-1] - captured[0]  # first to last frame, as recorded
    assert wall > 1.5
    assert abs(info.duration - wall) < 0.4, (info.duration, wall)  # not 20 frames / 30 fps = 0.67 s
    assert len(read_frames(out)) == 20


def test_video_sink_timestamps_and_fixed_rate(tmp_path: Path) -> None:
    frame = read_frames(CLEAN_CLIP, 1)[0]
    sink = VideoSink(tmp_path / "vfr.mp4", 10.0, (640, 480), timestamps=True)
    for t in (100.0, 100.1, 100.5, 102.0):  # any clock: the first frame's time is the start
        sink.write(frame, t)
    sink.close()
    with av.open(str(tmp_path / "vfr.mp4")) as c:
        s = c.streams.video[0]
        times = [float(p.pts * p.time_base) for p in c.demux(s) if p.pts is not None]
    assert times == pytest.approx([0.0, 0.1, 0.5, 2.0], abs=0.002)
    sink = VideoSink(tmp_path / "cfr.mp4", 12.5, (640, 480))
    for _ in range(5):
        sink.write(frame)
    sink.close()
    info = probe(tmp_path / "cfr.mp4")
    assert info is not None and info.frame_rate == Fraction(25, 2) and info.frames == 5


def test_without_pyav_opencv_writes_with_one_warning(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    block = ("import sys; sys.modules['av'] = None; from edge_runtime.cli import main; "
             "sys.argv = ['edge-ae'] + sys.argv[1:]; main()")
    r = subprocess.run([sys.executable, "-c", block, "denoise", str(CLEAN_CLIP), "-o", str(out), "--max-frames", "5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "PyAV" in warnings[0] and "OpenCV" in warnings[0], r.stderr
    assert len(read_frames(out)) == 5
    info = probe(out)
    assert info is not None and info.codec == "mpeg4"
