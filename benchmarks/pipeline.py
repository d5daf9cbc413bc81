"""Benchmarks of the streaming pipeline (numbers for the README):

    python -m benchmarks.pipeline throughput -m model.onnx VIDEO [--frames 200]
    python -m benchmarks.pipeline soak -m model.onnx VIDEO [--frames 10000 --width 160]
    python -m benchmarks.pipeline reconnect VIDEO [--rounds 3]

throughput: model-only fps on frames decoded beforehand vs file-to-file fps (decode, model and encode
overlapped) on the same frames, and the same file-to-file run with the stages one after another.
soak: frames through the live pipeline from a local MJPEG server; resident memory and open file
descriptors (from /proc/self) early, late and after closing. reconnect: seconds from a killed
stream server being restarted until frames flow again.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.denoiser import Denoiser
from edge_runtime.pipeline import run_pipeline
from edge_runtime.sinks import VideoSink
from edge_runtime.sources import LiveSource, open_source


def rss_kib() -> int:
    """Resident memory of this process in KiB (VmRSS from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def throughput(model: str, video: Path, frames: int, threads: int | None) -> None:
    den = Denoiser(model, threads=threads)
    cap = cv2.VideoCapture(str(video))
    imgs: list[np.ndarray] = []
    while len(imgs) < frames:
        ok, f = cap.read()
        if not ok:
            break
        imgs.append(f)
    cap.release()
    n = len(imgs)
    den(imgs[0])  # warm-up
    t0 = time.perf_counter()
    for f in imgs:
        den(f)
    model_fps = n / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        src = open_source(video)
        t0 = time.perf_counter()
        report = run_pipeline(src, den.denoise, Path(tmp) / "out.mp4", max_frames=n, audio=False, handle_signals=False)
        overlapped = report.frames / (time.perf_counter() - t0)
        src.close()
        # The same work with no overlap: decode, model, encode, one after another on one thread.
        cap = cv2.VideoCapture(str(video))
        sink = VideoSink(Path(tmp) / "seq.mp4", 25.0, (imgs[0].shape[1], imgs[0].shape[0]))
        t0 = time.perf_counter()
        for _ in range(n):
            ok, f = cap.read()
            if not ok:
                break
            sink.write(den(f))
        sequential = n / (time.perf_counter() - t0)
        sink.close()
        cap.release()
    h, w = imgs[0].shape[:2]
    print(f"{video.name} {w}x{h}, {n} frames, model {Path(model).name}, threads {threads or os.cpu_count()}",
          flush=True)
    print(f"model only          {model_fps:7.1f} fps ({1000 / model_fps:.1f} ms/frame)")
    print(f"file-to-file        {overlapped:7.1f} fps = {100 * overlapped / model_fps:.0f} % of model only "
          "(overlapped)")
    print(f"file-to-file, serial {sequential:6.1f} fps = {100 * sequential / model_fps:.0f} % of model only")


def _server(video: Path, port: int, fps: float, width: int | None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "edge_runtime.stream_server", str(video), "--port", str(port), "--fps", str(fps),
           "--max-frames", "60"]
    if width:
        cmd += ["--width", str(width)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # "serving ..." once it listens
    return proc


def soak(model: str, video: Path, frames: int, width: int, fps: float, port: int, threads: int | None) -> None:
    den = Denoiser(model, threads=threads)
    server = _server(video, port, fps, width)
    samples: list[tuple[int, int, int]] = []
    try:
        fds_before = open_fds()
        rss_before = rss_kib()
        with tempfile.TemporaryDirectory() as tmp:
            src = open_source(f"http://127.0.0.1:{port}/")

            def sample(r: object) -> None:
                n = getattr(r, "frames", 0)
                if n % 1000 == 0:
                    samples.append((n, rss_kib(), open_fds()))
                    print(f"frame {n:6d}: RSS {samples[-1][1] / 1024:.1f} MiB, {samples[-1][2]} fds", flush=True)

            t0 = time.perf_counter()
            report = run_pipeline(src, den.denoise, Path(tmp) / "live.mp4", max_frames=frames, on_frame=sample,
                                  handle_signals=False)
            secs = time.perf_counter() - t0
            src.close()
        fds_after = open_fds()
    finally:
        server.kill()
        server.wait()
    print(f"{report.frames} frames in {secs:.0f} s ({report.fps:.0f} fps) from a {fps:g} fps MJPEG stream, "
          f"{report.dropped} stale frames skipped, latency max {report.max_latency_ms:.0f} ms")
    print(f"before: RSS {rss_before / 1024:.1f} MiB, {fds_before} fds")
    first = next((rss for n, rss, _ in samples if n >= 1000), samples[0][1])
    last = samples[-1][1]
    print(f"RSS change frame 1000 -> {samples[-1][0]}: {100 * (last - first) / first:+.1f} %")
    leaked = "no" if fds_after <= fds_before else fds_after - fds_before
    print(f"after close: {fds_after} fds (before: {fds_before}) -> {leaked} leaked")


def reconnect(video: Path, rounds: int, port: int) -> None:
    server = _server(video, port, 30.0, 320)
    src = LiveSource(f"http://127.0.0.1:{port}/")
    waits = []
    try:
        for i in range(rounds):
            time.sleep(1.0)
            server.kill()
            server.wait()
            time.sleep(2.0)
            seen = src.received
            t0 = time.monotonic()
            server = _server(video, port, 30.0, 320)
            listening = time.monotonic()
            while src.received == seen:
                if time.monotonic() - t0 > 30:
                    print("no frames 30 s after the restart")
                    return
                time.sleep(0.01)
            back = time.monotonic()
            waits.append(back - listening)
            print(f"round {i + 1}: frames again {back - listening:.2f} s after the server listened again "
                  f"({back - t0:.2f} s after it was started)")
    finally:
        src.close()
        server.kill()
        server.wait()
    print(f"reconnect: mean {np.mean(waits):.2f} s, max {np.max(waits):.2f} s; events: {len(src.events)}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("video", type=Path)
    t.add_argument("-m", "--model", required=True)
    t.add_argument("--frames", type=int, default=200)
    t.add_argument("--threads", type=int)
    s = sub.add_parser("soak")
    s.add_argument("video", type=Path)
    s.add_argument("-m", "--model", required=True)
    s.add_argument("--frames", type=int, default=10_000)
    s.add_argument("--width", type=int, default=160)
    s.add_argument("--fps", type=float, default=300.0)
    s.add_argument("--port", type=int, default=8097)
    s.add_argument("--threads", type=int)
    r = sub.add_parser("reconnect")
    r.add_argument("video", type=Path)
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--port", type=int, default=8098)
    a = ap.parse_args(argv)
    if a.what == "throughput":
        throughput(a.model, a.video, a.frames, a.threads)
    elif a.what == "soak":
        soak(a.model, a.video, a.frames, a.width, a.fps, a.port, a.threads)
    else:
        reconnect(a.video, a.rounds, a.port)


if __name__ == "__main__":
    main()
