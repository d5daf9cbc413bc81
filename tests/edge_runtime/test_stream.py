"""Live input from a real HTTP MJPEG server on 127.0.0.1: bounded latency, reconnect after the server dies, give-up.

RTSP: tests/edge_runtime/test_rtsp.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.denoiser import Denoiser
from edge_runtime.errors import SourceError
from edge_runtime.pipeline import run_pipeline
from edge_runtime.sources import LiveSource, open_source
from edge_runtime.stream_server import MJPEGServer, encode_video
from tests.helpers import CLEAN_CLIP, count_frames


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, fps: float = 30.0) -> subprocess.Popen[str]:
    """The stream server in its own process, so the test can kill it as a crash would."""
    proc = subprocess.Popen([sys.executable, "-m", "edge_runtime.stream_server", str(CLEAN_CLIP), "--port", str(port),
                             "--fps", str(fps), "--max-frames", "30"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "serving" in line, line
    return proc


def test_cli_resumes_after_the_server_is_killed_and_restarted(tmp_path: Path, tiny_onnx: Path) -> None:
    port = free_port()
    server = start_server(port)
    out = tmp_path / "live.mp4"
    cli = subprocess.Popen([sys.executable, "-m", "edge_runtime", "denoise", f"http://127.0.0.1:{port}/",
                            "-o", str(out),
                            "-m", str(tiny_onnx), "--threads", "1", "--max-frames", "40"],
                           stderr=subprocess.PIPE, text=True)
    assert cli.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(cli.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("model ") for line in lines):  # printed with the first frame
            assert time.monotonic() < deadline and cli.poll() is None, "".join(lines)
            time.sleep(0.05)
        server.kill()  # mid-stream, as a crash would
        server.wait()
        while not any("reconnecting" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        time.sleep(1.0)  # the source tries (and fails) to reconnect meanwhile
        server = start_server(port)
        back = time.monotonic()
        assert cli.wait(timeout=90) == 0, "".join(lines)
    finally:
        cli.kill()
        server.kill()
        server.wait()
    reader.join(5)
    text = "".join(lines)
    assert "reconnected after" in text, text
    assert "1 reconnects" in text, text
    assert time.monotonic() - back < 60
    assert count_frames(out) == 40  # frames before and after the outage, one playable file
    assert [p.name for p in tmp_path.iterdir()] == ["live.mp4"]


def test_no_reconnect_ends_with_an_error_and_keeps_the_frames(tmp_path: Path, tiny_onnx: Path) -> None:
    port = free_port()
    server = start_server(port)
    out = tmp_path / "live.mp4"
    try:
        cli = subprocess.Popen([sys.executable, "-m", "edge_runtime", "denoise", f"http://127.0.0.1:{port}/", "-o",
                                str(out), "-m", str(tiny_onnx), "--threads", "1", "--no-reconnect"],
                               stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".live.*partial*")):
            assert time.monotonic() < deadline and cli.poll() is None
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        server.kill()
        server.wait()
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == 1, err
    assert "not reconnecting" in err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "was lost" in errors[0] and "reconnecting is off" in errors[0], err
    assert count_frames(out) > 0


def test_gives_up_after_the_given_time() -> None:
    port = free_port()
    server = start_server(port)
    try:
        source = open_source(f"http://127.0.0.1:{port}/", give_up=1.0)
    finally:
        server.kill()
        server.wait()
    assert isinstance(source, LiveSource)
    t0 = time.monotonic()
    frames = sum(1 for _ in source)  # ends once the reader gives up
    source.close()
    assert frames > 0
    assert time.monotonic() - t0 < 15
    assert any("gave up" in e for e in source.events), source.events


def test_unreachable_stream_is_one_clear_error() -> None:
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=rf"127.0.0.1:{port}.*cannot be opened \(tried for 1 s\)"):
        open_source(f"http://127.0.0.1:{port}/", give_up=1.0)  # a stream not up yet is waited for, up to give_up
    assert time.monotonic() - t0 < 5
    with pytest.raises(SourceError, match=f"127.0.0.1:{port}.*cannot be opened$"):
        open_source(f"http://127.0.0.1:{port}/", reconnect=False)


def test_slow_model_on_fast_stream_keeps_latency_bounded(tiny_onnx: Path) -> None:
    server = MJPEGServer(encode_video(CLEAN_CLIP, 30), fps=60.0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    den = Denoiser(tiny_onnx, threads=1)
    model_s = 0.25

    runs: list[float] = []

    def slow(frame: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = den(frame)
        time.sleep(max(0.0, model_s - (time.perf_counter() - t0)))  # at least 4x slower than the stream's 60 fps
        runs.append(time.perf_counter() - t0)
        return out

    latencies: list[float] = []
    source = open_source(server.url)
    try:
        report = run_pipeline(source, slow, max_frames=12,
                              on_frame=lambda r: latencies.append(r.latency_ms), handle_signals=False)
    finally:
        source.close()
        server.stop()
    assert report.frames == 12
    assert report.dropped > 12 * 5, "stale frames are skipped, not queued"
    # A queue would grow latency by one model run per frame (12 runs by the 12th); the newest-frame
    # rule keeps it near one model run plus a frame interval, however long the run.
    assert report.max_latency_ms < 1000 * (2 * max(runs) + 0.5), (latencies, runs)
    assert max(latencies[6:]) < 1000 * (2 * max(runs) + 0.5), "latency does not grow over the run"


def test_a_live_stream_runs_through_the_recurrent_model_by_default(tmp_path: Path) -> None:
    """Without --model an MJPEG stream gets the bundled video.onnx, run as one stream of frames."""
    port = free_port()
    server = start_server(port)
    out = tmp_path / "live.mp4"
    try:
        r = subprocess.run([sys.executable, "-m", "edge_runtime", "denoise", f"http://127.0.0.1:{port}/",
                            "-o", str(out), "--threads", "1", "--max-frames", "5"],
                           capture_output=True, text=True, timeout=120)
    finally:
        server.kill()
        server.wait()
    assert r.returncode == 0, r.stderr
    assert "model video.onnx (video_denoiser" in r.stderr
    assert count_frames(out) == 5
