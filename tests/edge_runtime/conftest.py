"""Fixtures of the tests in this folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from edge_runtime.denoiser import Denoiser
from edge_runtime.model import sample_clip
from tests.helpers import CLEAN_CLIP, read_frames


@pytest.fixture(scope="module")
def denoiser(tiny_onnx: Path) -> Denoiser:
    return Denoiser(tiny_onnx, device="cpu")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """308 real frames (the clean clip four times), stored as MJPEG so the test can write it quickly."""
    frames = read_frames(CLEAN_CLIP)
    path = tmp_path_factory.mktemp("long") / "long.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (frames[0].shape[1], frames[0].shape[0]))
    for _ in range(4):
        for f in frames:
            w.write(f)
    w.release()
    return path


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A folder of videos in sub-folders, with one broken file among them."""
    root = tmp_path / "library"
    (root / "day1").mkdir(parents=True)
    (root / "day2" / "cam").mkdir(parents=True)
    shutil.copy(CLEAN_CLIP, root / "day1" / "a.mkv")
    shutil.copy(CLEAN_CLIP, root / "day2" / "cam" / "b.mkv")
    (root / "day2" / "broken.mp4").write_text("not a video")
    (root / "notes.txt").write_text("ignored")
    return root



@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of real videos in sub-folders (the 640x480 clip, the bundled sample) and one corrupt video."""
    root = tmp_path_factory.mktemp("archive")
    for rel, src in [("2024/cam1/a.mkv", CLEAN_CLIP), ("2024/cam2/b.mp4", sample_clip()),
                     ("2025/cam1/c.mkv", CLEAN_CLIP), ("2025/cam2/d.mp4", sample_clip())]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    (root / "2025" / "corrupt.mp4").write_bytes(sample_clip().read_bytes()[1000:3000])  # no header: not decodable
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A real Ray head on 127.0.0.1 with 2 CPUs, started for this module and stopped after it; its address."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]'); the Ray tests are skipped")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 characters
    # Loopback only, for the tests' own processes: no token (the drivers these tests start inherit the setting).
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                     os.environ.get("PYTHONPATH")])))
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
                             "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={temp}"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not start (exit code {head.poll()})")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        # `ray start --block` stops what it started when terminated, but slowly; every Ray process of this head is
        # in its process group, so the group kill ends the rest (workers included).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(10)
        shutil.rmtree(temp, ignore_errors=True)
        mp.undo()
