"""Fixtures of the tests in this folder."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socket import socket

import cv2
import numpy as np
import pytest

from edge_runtime.model import sample_clip
from tests.helpers import CLEAN_CLIP, SHARED, read_frames, write_video


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, tiny_onnx: Path, frames_dir: Path) -> Path:
    """The tiny model and its int8 variant side by side, as `edge-ae export --precision int8` names them."""
    pytest.importorskip("torch")
    from export.precision import make_variant

    d = tmp_path_factory.mktemp("variants")
    model = d / "tiny.onnx"
    model.write_bytes(tiny_onnx.read_bytes())
    make_variant(model, d / "tiny.int8.onnx", "int8", frames_dir)
    return model



@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory: pytest.TempPathFactory, frames_dir: Path) -> Path:
    d = tmp_path_factory.mktemp("clean")
    for f in sorted(frames_dir.iterdir())[:2]:
        cv2.imwrite(str(d / f.name), cv2.resize(cv2.imread(str(f)), (96, 72), interpolation=cv2.INTER_AREA))
    return d


@pytest.fixture(scope="module")
def noisy_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """20 real frames with AWGN sigma 20, stored losslessly (FFV1) so the noise is exactly what was added."""
    clean = read_frames(CLEAN_CLIP, 20)
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 20, f.shape), 0, 255).round().astype(np.uint8) for f in clean]
    path = tmp_path_factory.mktemp("video") / "noisy.avi"
    write_video(path, noisy, 12.5)
    return path, clean


# --- the bad-input battery (test_bad_input.py) ----------------------------------------------------------------------


def _png(width: int, height: int, raw: bytes, colour_type: int = 2) -> bytes:
    """A PNG file of valid chunks whose header says ``width`` x ``height`` (whatever ``raw`` holds)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every input of the battery, made once from real frames and the bundled sample clip."""
    d = tmp_path_factory.mktemp("inputs")
    frame = read_frames(CLEAN_CLIP, 1)[0]
    shutil.copy(sample_clip(), d / "clip.mp4")  # 38 frames, index at the front (faststart)
    data = (d / "clip.mp4").read_bytes()
    (d / "cut.mp4").write_bytes(data[: int(len(data) * 0.3)])  # a cut-off download: 9 frames decode
    cv2.imwrite(str(d / "img.png"), frame[100:196, 200:328])
    png = (d / "img.png").read_bytes()
    (d / "cut.png").write_bytes(png[: len(png) // 2])
    (d / "flipped.png").write_bytes(png[:100] + bytes([png[100] ^ 0xFF]) + png[101:])
    bmp = cv2.imencode(".bmp", frame[:64, :64])[1].tobytes()
    (d / "cut.bmp").write_bytes(bmp[: len(bmp) // 2])
    (d / "empty.png").write_bytes(b"")
    (d / "empty.mp4").write_bytes(b"")
    cv2.imwrite(str(d / "deep.png"), (frame[:32, :32].astype(np.uint16) * 257))
    (d / "bomb.png").write_bytes(_png(100_000, 100_000, b"\0" * 64))
    cv2.imwrite(str(d / "pixel.png"), frame[:1, :1])
    (d / "text.png").write_text("not an image\n")
    (d / "text.mp4").write_text("not a video\n")
    (d / "notes.xyz").write_text("notes\n")
    photos = d / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), frame[:48, :64])
    (photos / "bad.png").write_bytes(png[: len(png) // 3])
    cv2.imwrite(str(photos / "b.jpg"), frame[48:96, :64])
    cv2.imwrite(str(photos / "c.png"), cv2.cvtColor(frame[:40, 64:120], cv2.COLOR_BGR2GRAY))
    broken = d / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(png[:40])
    (broken / "y.png").write_text("text")
    videos = d / "videos"
    videos.mkdir()
    shutil.copy(d / "clip.mp4", videos / "a.mp4")
    shutil.copy(d / "cut.mp4", videos / "b.mp4")
    if hasattr(os, "mkfifo"):
        os.mkfifo(d / "pipe.mp4")
    return d


class CountingServer(ThreadingHTTPServer):
    """``python -m http.server`` that counts the requests it gets."""

    daemon_threads = True
    requests = 0

    def process_request(self, request: socket | tuple[bytes, socket], client_address: object) -> None:
        self.requests += 1
        super().process_request(request, client_address)  # type: ignore[arg-type]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http(inputs: Path) -> Iterator[CountingServer]:
    """A web server on 127.0.0.1, in a thread, serving the inputs folder."""
    server = CountingServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(inputs)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(an anomaly model really trained on UCSD Ped2 clip 02, the same calibrated on clip 01)."""
    pytest.importorskip("torch")
    if not (SHARED / "anomaly/ucsd_ped2_train").exists():
        pytest.skip("needs ../shared/data/anomaly/ucsd_ped2_train, which is not present here")
    from edge_runtime.calibration import calibrate
    from tests.anomaly_data import PED2, scene_model

    model = scene_model()
    cal = tmp_path_factory.mktemp("scene") / "calibrated.onnx"
    calibrate(model, [str(SHARED / PED2 / "01.mp4")], max_false_alarm=0.05, max_frames=60, out=cal, device="cpu",
              threads=1)
    return model, cal


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """308 real frames (the clean clip four times) as MJPEG, for runs long enough to signal."""
    frames = read_frames(CLEAN_CLIP)
    path = tmp_path_factory.mktemp("long") / "long.avi"
    write_video(path, frames * 4, 25.0, "MJPG")
    return path


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 192 KiB tmpfs: a real file system that runs out of space."""
    mount = shutil.which("mount")
    if os.name != "posix" or os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a small tmpfs needs root on Linux; this run cannot, so the full-disk tests are skipped")
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run([mount, "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); the full-disk tests are skipped")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)

