"""Full-range (yuvj420p, JPEG levels) input over the network, compared with the same clip read as a file: an http(s)
URL of a video file, a live HTTP MJPEG stream (the project's stream server) and a live RTSP stream (rtsp-rs), all on
127.0.0.1. The frames must decode to the file's levels (black 0, not 16; white 255, not 235), and the written
video of a URL of a file must stay full range, as that of the file does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pytest

from edge_runtime.media import probe
from edge_runtime.pipeline import run_pipeline
from edge_runtime.sources import LiveSource, VideoSource, open_source
from edge_runtime.stream_server import MJPEGServer, encode_video
from tests.helpers import read_frames

W, H, N = 160, 96, 12
BLACK, WHITE = (slice(8, 40), slice(8, 40)), (slice(8, 40), slice(120, 152))  # (rows, columns) of two patches
RAMP = (slice(60, 76), slice(None))  # rows of the grey ramp (0 to 255 across), away from chroma's edges


def pattern(i: int) -> np.ndarray:
    """A BGR frame: a black patch, a white patch, a grey ramp over all 256 levels and a colour bar that moves."""
    f = np.full((H, W, 3), 128, np.uint8)
    f[BLACK] = 0
    f[WHITE] = 255
    f[56:80] = np.linspace(0, 255, W).round().astype(np.uint8)[None, :, None]
    x = (i * 8) % (W - 24)
    f[84:92, x : x + 24] = (40, 200, 90)
    return f


def full_range_h264(path: Path, frames: list[np.ndarray], rate: int = 10) -> list[bytes]:
    """Write ``frames`` to ``path`` as full-range H.264 (yuvj420p: the stream's VUI says full range); returns the
    Annex B access units too (an RTSP server sends those)."""
    units: list[bytes] = []
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate, options={"crf": "12", "g": "6", "bf": "0"})
        s.width, s.height, s.pix_fmt = W, H, "yuvj420p"
        s.codec_context.color_range = 2
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="bgr24").reformat(format="yuvj420p", dst_color_range=2)
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    # The same frames as a raw stream for RTSP: headers in band, with every key frame.
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = W, H, "yuvj420p"
    codec.color_range = 2
    codec.time_base = Fraction(1, 30)
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "6", "bf": "0", "crf": "12"}
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(f, format="bgr24").reformat(format="yuvj420p", dst_color_range=2)
        vf.pts = i
        units += [bytes(p) for p in codec.encode(vf)]
    units += [bytes(p) for p in codec.encode(None)]
    return units


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """(a full-range H.264 MP4 of ``pattern`` frames, the same frames as H.264 access units)."""
    path = tmp_path_factory.mktemp("range") / "full.mp4"
    units = full_range_h264(path, [pattern(i) for i in range(N)])
    info = probe(path)
    assert info is not None and info.full_range, info  # the input really is full range
    return path, units


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web(clip: tuple[Path, list[bytes]]) -> Iterator[str]:
    """The clip's folder served over HTTP on 127.0.0.1; yields the clip's URL."""
    path = clip[0]
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(path.parent)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def levels(frame: np.ndarray) -> tuple[float, float, float]:
    """(mean of the black patch, mean of the white patch, mean difference of the ramp from its true levels).

    Full range read as limited stretches the levels (the ramp is off by about 10 on average, black and white
    clip); limited read as full squeezes them (black 16, white 235)."""
    ramp = mad(frame[RAMP], pattern(0)[RAMP])
    inner = (slice(4, -4), slice(4, -4))  # away from the patches' edges (blur, JPEG's ringing)
    return float(frame[BLACK][inner].mean()), float(frame[WHITE][inner].mean()), ramp


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def read_all(spec: str | Path) -> list[np.ndarray]:
    with open_source(spec) as source:
        assert isinstance(source, VideoSource)
        return [f.image for f in source]


def test_http_url_of_a_full_range_file_decodes_to_the_files_levels(clip: tuple[Path, list[bytes]], web: str) -> None:
    from_file, from_url = read_all(clip[0]), read_all(web)
    assert len(from_url) == len(from_file) == N
    for a, b in zip(from_file, from_url, strict=True):
        assert mad(a, b) < 0.05
    black, white, ramp = levels(from_url[0])
    assert black < 2 and white > 253 and ramp < 1.5, (black, white, ramp)  # not 16 / 235, not stretched


def write_through_pipeline(spec: str | Path, out: Path) -> list[np.ndarray]:
    """Run ``spec`` through the pipeline the CLI uses (a light blur for the model), write ``out``; its frames."""
    import cv2

    source = open_source(spec)
    try:
        run_pipeline(source, lambda f: cv2.GaussianBlur(f, (3, 3), 0), out, handle_signals=False)
    finally:
        source.close()
    return read_frames(out)


def test_http_url_of_a_full_range_file_is_written_full_range(clip: tuple[Path, list[bytes]], web: str,
                                                             tmp_path: Path) -> None:
    from_file = write_through_pipeline(clip[0], tmp_path / "from_file.mp4")
    from_url = write_through_pipeline(web, tmp_path / "from_url.mp4")
    file_info, url_info = probe(tmp_path / "from_file.mp4"), probe(tmp_path / "from_url.mp4")
    assert file_info is not None and file_info.full_range  # README: "full range stays full range"
    assert url_info is not None
    assert (url_info.pix_fmt, url_info.color_range) == (file_info.pix_fmt, file_info.color_range)
    assert len(from_url) == len(from_file) == N
    # The same frames written the same way: the URL's video decodes to the file's levels.
    assert max(mad(a, b) for a, b in zip(from_file, from_url, strict=True)) < 0.1
    black, white, ramp = levels(from_url[0])
    assert black < 2 and white > 251 and ramp < 3.0, (black, white, ramp)  # H.264 at CRF 17, after a blur
    assert np.allclose(levels(from_url[0]), levels(from_file[0]), atol=0.2)


def first_live_frame(url: str) -> np.ndarray:
    source = open_source(url, reconnect=False)
    try:
        assert isinstance(source, LiveSource)
        return next(iter(source)).image
    finally:
        source.close()


def test_live_mjpeg_stream_of_a_full_range_clip_keeps_its_levels(clip: tuple[Path, list[bytes]]) -> None:
    server = MJPEGServer(encode_video(clip[0], quality=95), fps=30.0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        frame = first_live_frame(server.url)
    finally:
        server.stop()
    reference = read_all(clip[0])
    assert min(mad(frame, r) for r in reference) < 2.0  # one of the clip's frames, JPEG's loss aside
    black, white, ramp = levels(frame)
    assert black < 3 and white > 252 and ramp < 3.0, (black, white, ramp)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_live_rtsp_stream_of_a_full_range_clip_keeps_its_levels(clip: tuple[Path, list[bytes]]) -> None:
    rtsp = pytest.importorskip("rtsp", reason="the RTSP test server needs rtsp-rs (in the [dev] extra)")
    port = free_port()
    server = rtsp.Server(f"127.0.0.1:{port}")
    server.start()
    stop = threading.Event()

    def play() -> None:
        units, i = clip[1], 0
        while not stop.is_set():
            server.send_frame(units[i % len(units)], 3000)  # 30 fps on RTP's 90 kHz clock
            i += 1
            time.sleep(1 / 30)

    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        frame = first_live_frame(f"rtsp://127.0.0.1:{port}/stream")
    finally:
        stop.set()
        player.join(5)
        server.stop()
    reference = read_all(clip[0])
    assert min(mad(frame, r) for r in reference) < 2.0
    black, white, ramp = levels(frame)
    assert black < 2 and white > 253 and ramp < 1.5, (black, white, ramp)
