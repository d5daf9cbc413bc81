"""Live input from a real RTSP server (rtsp-rs, H.264) on 127.0.0.1: killed and restarted mid-run, and not up yet
when the run starts."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_runtime.media import probe
from tests.helpers import count_frames

pytest.importorskip("rtsp", reason="the RTSP test server needs rtsp-rs (in the [dev] extra)")

SERVER = Path(__file__).with_name("rtsp_server.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen[str]:
    """The RTSP server in its own process, so the test can kill it as a crash would."""
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "serving rtsp://127.0.0.1" in line, line
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()


class Run:
    """`edge-ae denoise URL -o OUT` in its own process, its stderr collected line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "edge_runtime", "denoise", *args], stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        assert self.proc.stderr is not None
        stream = self.proc.stderr
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self.reader.start()

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in self.lines):
            assert time.monotonic() < deadline and self.proc.poll() is None, "".join(self.lines)
            time.sleep(0.05)

    def finish(self, timeout: float = 90) -> str:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(5)
        text = "".join(self.lines)
        assert code == 0, text
        return text


def test_rtsp_server_killed_and_restarted_mid_run(tmp_path: Path, tiny_onnx: Path) -> None:
    port = free_port()
    server = start_server(port)
    out = tmp_path / "live.mp4"
    run = Run(f"rtsp://127.0.0.1:{port}/stream", "-o", str(out), "-m", str(tiny_onnx), "--threads", "1",
              "--max-frames", "40")
    try:
        run.wait_for("model ")  # printed with the first frame
        stop(server)  # mid-stream, as a crash would
        run.wait_for("reconnecting")
        time.sleep(1.0)  # the source tries (and fails) to reconnect meanwhile
        server = start_server(port)
        text = run.finish()
    finally:
        run.proc.kill()
        stop(server)
    assert "reconnected after" in text and "1 reconnects" in text, text
    assert count_frames(out) == 40  # frames before and after the outage, one playable file
    info = probe(out)
    assert info is not None and info.codec == "h264" and info.duration is not None
    assert info.duration > 1.0  # the outage is in the recording's timeline, as it happened
    assert [p.name for p in tmp_path.iterdir()] == ["live.mp4"]


def test_rtsp_stream_not_up_yet_is_waited_for(tmp_path: Path, tiny_onnx: Path) -> None:
    port = free_port()
    out = tmp_path / "late.mp4"
    run = Run(f"rtsp://127.0.0.1:{port}/stream", "-o", str(out), "-m", str(tiny_onnx), "--threads", "1",
              "--max-frames", "10", "--give-up", "60")
    server = None
    try:
        run.wait_for("not up yet")
        time.sleep(1.0)
        server = start_server(port)
        text = run.finish()
    finally:
        run.proc.kill()
        if server is not None:
            stop(server)
    assert "up after" in text, text
    assert count_frames(out) == 10


def test_rtsp_stream_that_never_comes_up_gives_up(tmp_path: Path) -> None:
    port = free_port()
    r = subprocess.run([sys.executable, "-m", "edge_runtime", "denoise", f"rtsp://127.0.0.1:{port}/stream", "-o",
                        str(tmp_path / "x.mp4"), "--give-up", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert errors == [f"Error: stream rtsp://127.0.0.1:{port}/stream: cannot be opened (tried for 1 s)"], r.stderr
    assert list(tmp_path.iterdir()) == []
