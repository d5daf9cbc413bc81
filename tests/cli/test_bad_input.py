"""The bad-input battery: every command, option range, input type, output type and signal a new user may get wrong.

One row per bad input: the command, the exit code, a fragment of the one ``Error:`` line, and what the run may
create (nothing, for most). Every row also checks that no input was modified, that nothing else was left behind
(no hidden temporary file either), that there is no traceback, and that no C library (OpenCV, libpng, FFmpeg)
printed its own line beside ours. Rows run in-process through click's CliRunner; rows marked ``subprocess`` run
the real command, where the behaviour needs a process of its own (a crash inside OpenCV, C libraries writing to
stderr). A new option joins the table with a row.

Cameras: this machine has none, so "--camera N" rows check the index ranges and the one-line message for a
camera that cannot be opened; reading from a real camera is not tested here.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.cli import cli
from edge_runtime.model import default_threads
from tests.cli.conftest import CountingServer
from tests.helpers import CLEAN_CLIP, count_frames, read_frames

TOO_MANY_THREADS = str(default_threads() + 1)


@dataclass(frozen=True)
class Row:
    """One bad input. ``args`` is formatted with {inp} (the inputs folder), {out} (this row's empty folder),
    {http} (a web server serving {inp}), {scene} (an uncalibrated anomaly model) and {cal} (a calibrated one)."""

    id: str
    args: str
    code: int
    message: str | None  # a fragment of the one "Error:" line; None for rows that must succeed
    creates: tuple[str, ...] = ()  # what the run may leave in {out}, relative to it
    subprocess: bool = False


ROWS = [
    # --- 1. camera indexes: a negative one crashed inside OpenCV (exit 139); 100+ is read as a backend number
    Row("camera-negative", "denoise --camera -1 -o {out}/o.mp4", 2, "'--camera': -1 is not in the range 0<=x<=99",
        subprocess=True),
    Row("camera-minus-five", "denoise --camera -5 -o {out}/o.mp4", 2, "-5 is not in the range 0<=x<=99"),
    Row("detect-camera-negative", "detect --camera -1 -m {inp}/none.onnx --scores {out}/s.csv", 2,
        "'--camera': -1 is not in the range", subprocess=True),
    Row("calibrate-camera-negative", "calibrate {inp}/none.onnx --camera -1 --max-frames 10", 2,
        "-1 is not in the range 0<=x<=99"),
    Row("camera-backend-number", "denoise --camera 200 -o {out}/o.mp4", 2, "200 is not in the range 0<=x<=99"),
    Row("detect-camera-too-large", "detect --camera 100 -m {inp}/none.onnx --scores {out}/s.csv", 2,
        "100 is not in the range"),
    # 11: OpenCV's own "camera index out of range" lines stay off stderr (skipped where a camera 0 exists)
    Row("camera-absent", "denoise --camera 0 -o {out}/o.mp4", 1, "camera 0: cannot be opened", subprocess=True),
    # --- 2. URLs
    Row("http-404", "denoise {http}/missing.mp4 -o {out}/o.mp4", 1, "missing.mp4: cannot be opened"),
    Row("http-cut-file", "denoise {http}/cut.mp4 -o {out}/o.mp4", 1, "cut.mp4: the input ended early: 9 of the 38",
        creates=("o.mp4",)),
    Row("url-needs-output", "denoise {http}/clip.mp4", 2, "a camera or URL input needs -o OUTPUT or --show"),
    # --- 3. ranges that hung or exhausted the machine
    Row("tile-64", "denoise {inp}/img.png -o {out}/o.png --tile 64", 2,
        "'--tile': 64 is not in the range 128<=x<=4096"),
    Row("tile-huge", "denoise {inp}/img.png -o {out}/o.png --tile 100000", 2, "100000 is not in the range"),
    Row("tile-128-is-fine", "denoise {inp}/img.png -o {out}/o.png --tile 128", 0, None, creates=("o.png",)),
    Row("threads-100000", "denoise {inp}/img.png -o {out}/o.png --threads 100000", 2, "cores this process may use"),
    Row("threads-1000", "denoise {inp}/img.png -o {out}/o.png --threads 1000", 2, "'--threads': 1000 is more than"),
    Row("threads-one-too-many", "denoise {inp}/img.png -o {out}/o.png --threads " + TOO_MANY_THREADS, 2,
        "cores this process may use"),
    Row("threads-zero", "denoise {inp}/img.png -o {out}/o.png --threads 0", 2, "0 is not in the range x>=1"),
    Row("detect-threads", "detect {inp}/clip.mp4 -m {inp}/none.onnx --scores {out}/s.csv --threads 1000", 2,
        "is more than the"),
    Row("calibrate-threads", "calibrate {inp}/none.onnx {inp}/clip.mp4 --threads 1000", 2, "is more than the"),
    Row("bench-threads", "bench --size 64x48 --threads 1000", 2, "is more than the"),
    Row("encode-threads", "encode {inp}/none.onnx {inp}/clip.mp4 -o {out}/z.npy --threads 1000", 2, "is more than"),
    Row("max-frames-zero", "denoise {inp}/clip.mp4 -o {out}/o.mp4 --max-frames 0", 2, "0 is not in the range x>=1"),
    # --- 4. tracebacks before, and numbers that are not numbers
    Row("threshold-negative", "detect {inp}/clip.mp4 -m {inp}/none.onnx --scores {out}/s.csv --threshold -1", 2,
        "'--threshold': -1.0 is not in the range x>0"),
    Row("threshold-nan", "detect {inp}/clip.mp4 -m {inp}/none.onnx --scores {out}/s.csv --threshold nan", 2,
        "'--threshold': 'nan' is not a finite number"),
    Row("threshold-inf", "detect {inp}/clip.mp4 -m {inp}/none.onnx --scores {out}/s.csv --threshold inf", 2,
        "'inf' is not a finite number"),
    Row("threshold-zero", "detect {inp}/clip.mp4 -m {inp}/none.onnx --scores {out}/s.csv --threshold 0", 2,
        "0.0 is not in the range x>0"),
    Row("release-nan", "detect {inp}/clip.mp4 -m {inp}/none.onnx --scores {out}/s.csv --release nan", 2,
        "'--release': 'nan' is not a finite number"),
    Row("release-above-one", "detect {inp}/clip.mp4 -m {inp}/none.onnx --scores {out}/s.csv --release 2", 2,
        "2.0 is not in the range 0<=x<=1"),
    Row("hold-zero", "detect {inp}/clip.mp4 -m {inp}/none.onnx --scores {out}/s.csv --hold 0", 2,
        "0 is not in the range x>=1"),
    Row("give-up-nan", "denoise {http}/clip.mp4 -o {out}/o.mp4 --give-up nan", 2, "'--give-up': 'nan' is not a finite"),
    Row("give-up-inf", "denoise {http}/clip.mp4 -o {out}/o.mp4 --give-up inf", 2, "'inf' is not a finite number"),
    Row("give-up-negative", "denoise {http}/clip.mp4 -o {out}/o.mp4 --give-up -1", 2, "is not in the range x>=0"),
    Row("bench-log-missing-folder", "bench --size 64x48 --runs 1 --log {out}/missing/b.jsonl", 1,
        "b.jsonl: folder", ),
    Row("bench-log-is-folder", "bench --size 64x48 --runs 1 --log {inp}", 2, "is a directory"),
    Row("bench-size-huge", "bench --size 100000x100000", 1, "size '100000x100000' is too large"),
    Row("bench-size-zero", "bench --size 0x480", 1, "size '0x480' must be at least 1x1"),
    Row("bench-size-words", "bench --size big", 1, "size 'big' is not WIDTHxHEIGHT"),
    Row("bench-quality-missing", "bench --size 64x48 --quality {out}/nothing", 1, "--quality needs a folder"),
    Row("bench-runs-huge", "bench --size 64x48 --runs 100000", 2, "100000 is not in the range 1<=x<=1000"),
    Row("bench-min-seconds-nan", "bench --size 64x48 --min-seconds nan", 2, "'nan' is not a finite number"),
    Row("bench-min-seconds-huge", "bench --size 64x48 --min-seconds 1e9", 2, "is not in the range 0<=x<=60"),
    # --- 5. a folder of images with unreadable ones: reported, carried on, counted at the end
    Row("folder-one-cut-png", "denoise {inp}/photos -o {out}/clean", 1,
        "photos: 1 of 4 images could not be read and were skipped (bad.png)",
        creates=("clean/a.png", "clean/b.jpg", "clean/c.png")),
    Row("folder-all-unreadable", "denoise {inp}/broken -o {out}/clean", 1, "2 of 2 images could not be read",
        creates=("clean",)),
    Row("detect-folder-one-cut-png", "detect {inp}/photos -m {cal} --scores {out}/s.csv", 1,
        "1 of 4 images could not be read", creates=("s.csv",)),
    Row("calibrate-folder-one-cut-png", "calibrate {scene} {inp}/photos -o {out}/c.onnx --max-false-alarm 0.5", 1,
        "calibration needs normal data that reads completely"),
    # --- single images: cut, empty, 16-bit, a decompression bomb, a text file (11: libpng/OpenCV stay quiet)
    Row("png-cut-short", "denoise {inp}/cut.png -o {out}/o.png", 1,
        "cut.png: not a readable image: the file is cut short", subprocess=True),
    Row("bmp-cut-short", "denoise {inp}/cut.bmp -o {out}/o.bmp", 1, "cut.bmp: not a readable image", subprocess=True),
    Row("png-bad-checksum", "denoise {inp}/flipped.png -o {out}/o.png", 1, "checksum mismatch"),
    Row("png-empty", "denoise {inp}/empty.png -o {out}/o.png", 1, "empty.png: not a readable image"),
    Row("png-16-bit", "denoise {inp}/deep.png -o {out}/o.png", 1, "uint16 images are not supported"),
    Row("png-bomb", "denoise {inp}/bomb.png -o {out}/o.png", 1, "100000x100000 pixels is more than edge-ae reads"),
    Row("text-named-png", "denoise {inp}/text.png -o {out}/o.png", 1, "text.png: not a readable image"),
    # --- 6./7. inputs that end early
    Row("video-cut-short", "denoise {inp}/cut.mp4 -o {out}/o.mp4", 1,
        "cut.mp4: the input ended early: 9 of the 38 frames", creates=("o.mp4",)),
    Row("video-cut-short-max-frames", "denoise {inp}/cut.mp4 -o {out}/o.mp4 --max-frames 5", 0, None,
        creates=("o.mp4",)),
    Row("batch-one-cut-short", "denoise {inp}/videos -o {out}/clean --max-frames 12", 1, None,
        creates=("clean/a.mp4", "clean/b.mp4")),
    Row("detect-video-cut-short", "detect {inp}/cut.mp4 -m {cal} --scores {out}/s.csv", 1, "the input ended early",
        creates=("s.csv",)),
    Row("calibrate-video-cut-short", "calibrate {scene} {inp}/cut.mp4 -o {out}/c.onnx --max-false-alarm 0.5", 1,
        "cut.mp4: the input ended early"),
    # --- 10. calibration data too short for what is asked
    Row("calibrate-one-frame", "calibrate {scene} {inp}/clip.mp4 --max-frames 1 -o {out}/c.onnx", 1,
        "1 normal frame(s) are too few"),
    Row("calibrate-too-few-for-1-percent", "calibrate {scene} {inp}/clip.mp4 --max-frames 30 -o {out}/c.onnx", 1,
        "at most 1 % false alarms: that needs at least 100 frames"),
    Row("calibrate-smoothing-huge",
        "calibrate {scene} {inp}/clip.mp4 --max-frames 30 --max-false-alarm 0.05 --smoothing 1000000 -o {out}/c.onnx",
        1, "smoothing over 1000000 frames needs longer normal data: only 0 of its 30"),
    Row("calibrate-quantile-nan", "calibrate {inp}/none.onnx {inp}/clip.mp4 --quantile nan", 2,
        "'nan' is not a finite"),
    Row("calibrate-false-alarm-nan", "calibrate {inp}/none.onnx {inp}/clip.mp4 --max-false-alarm nan", 2,
        "'nan' is not a finite"),
    Row("calibrate-false-alarm-one", "calibrate {inp}/none.onnx {inp}/clip.mp4 --max-false-alarm 1", 2,
        "1.0 is not in the range 0<=x<1"),
    Row("calibrate-smoothing-zero", "calibrate {inp}/none.onnx {inp}/clip.mp4 --smoothing 0", 2,
        "0 is not in the range"),
    Row("train-1x1-image", "train {inp}/pixel.png -o {out}/m.pt --epochs 1 --steps-per-epoch 1 --threads 1", 1,
        "pixel.png: 1x1 pixels is too small to train on"),
    Row("train-one-image", "train {inp}/img.png -o {out}/m.pt --epochs 1 --steps-per-epoch 1 --threads 1", 1,
        "none is left to validate on"),
    Row("train-threads", "train {inp}/photos -o {out}/m.pt --threads 100000", 2, "is more than the"),
    Row("train-lr-nan", "train {inp}/photos -o {out}/m.pt --lr nan", 2, "'--lr': nan is not a finite number"),
    # --- beyond the issue: other input types that hung, crashed or misled
    Row("fifo-as-video", "denoise {inp}/pipe.mp4 -o {out}/o.mp4", 1, "pipe.mp4: not a file or a folder"),
    Row("missing-input", "denoise {inp}/nothing.mp4 -o {out}/o.mp4", 1, "nothing.mp4: no such file or folder"),
    Row("empty-video", "denoise {inp}/empty.mp4 -o {out}/o.mp4", 1, "empty.mp4: cannot be decoded as a video"),
    Row("text-named-mp4", "denoise {inp}/text.mp4 -o {out}/o.mp4", 1, "text.mp4: cannot be decoded as a video"),
    Row("unknown-suffix", "denoise {inp}/notes.xyz -o {out}/o.mp4", 1, "unknown input type '.xyz'"),
    Row("model-not-onnx", "denoise {inp}/img.png -o {out}/o.png -m {inp}/text.png", 1, "not a loadable ONNX model"),
    Row("model-missing", "info {inp}/none.onnx", 1, "none.onnx: no such model file"),
    # --- beyond the issue: outputs
    Row("colour-as-pgm", "denoise {inp}/img.png -o {out}/o.pgm", 1, "cannot encode this 3-channel image as '.pgm'"),
    Row("image-to-video-name", "denoise {inp}/img.png -o {out}/o.mp4", 1, "the output must be an image"),
    Row("output-is-input", "denoise {inp}/img.png -o {inp}/img.png", 1, "the output is the input"),
    Row("output-folder-missing", "denoise {inp}/clip.mp4 -o {out}/no/o.mp4", 1, "does not exist"),
    Row("detect-plot-not-png", "detect {inp}/clip.mp4 -m {inp}/none.onnx --plot {out}/p.jpg", 2,
        "--plot writes a .png image"),
    Row("detect-snapshots-is-file", "detect {inp}/clip.mp4 -m {inp}/none.onnx --snapshots {inp}/img.png", 2,
        "img.png' is a file"),
    Row("detect-scores-twice", "detect {inp}/clip.mp4 -m {cal} --scores {out}/s.csv --events {out}/s.csv", 1,
        "two outputs have the same name"),
    # --- beyond the issue: autoencoder commands' numbers
    Row("sample-seed-negative", "sample {inp}/none.onnx -o {out}/g.png --seed -1", 2, "-1 is not in the range x>=0"),
    Row("sample-columns-huge", "sample {inp}/none.onnx -o {out}/g.png --columns 100000", 2, "is not in the range"),
    Row("sample-steps-huge", "sample {inp}/none.onnx -o {out}/g.png --steps 1000000", 2, "is not in the range"),
    Row("reconstruct-scale-huge", "reconstruct {inp}/none.onnx {inp}/img.png -o {out}/r.png --scale 17", 2,
        "17 is not in the range 1<=x<=16"),
]

NEEDS_SCENE = ("{scene}", "{cal}")
FOREIGN = re.compile(r"^\[ ?(WARN|ERROR|INFO|DEBUG)|libpng|OpenCV\(|^\[[\w,]+ @ 0x|Traceback")


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> content digest ('fifo' / 'dir' for those) of everything under ``folder``, hidden included."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_fifo():
            out[rel] = "fifo"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_edge_ae(args: list[str], in_process: bool, cwd: Path) -> tuple[int, str]:
    """(exit code, stderr) of ``edge-ae ARGS``: through CliRunner, or as a real process."""
    if in_process:
        result = CliRunner().invoke(cli, args, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stderr
    proc = subprocess.run([sys.executable, "-m", "edge_runtime", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, inputs: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if row.id == "fifo-as-video" and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this system")
    if row.id == "camera-absent" and Path("/dev/video0").exists():
        pytest.skip("this machine has a camera 0")
    if row.args.startswith("train "):
        pytest.importorskip("torch")
    values = {"inp": str(inputs), "out": str(tmp_path), "http": "", "scene": "", "cal": ""}
    if "{http}" in row.args:
        server = request.getfixturevalue("http")
        values["http"] = f"http://127.0.0.1:{server.server_address[1]}"
    if any(k in row.args for k in NEEDS_SCENE):
        values["scene"], values["cal"] = map(str, request.getfixturevalue("scene"))
    args = [a.format(**values) for a in shlex.split(row.args)]
    before = _snapshot(inputs)

    code, err = run_edge_ae(args, not row.subprocess, tmp_path)

    assert code == row.code, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    if row.message is not None:
        assert len(errors) == 1 and row.message in errors[0], err
    elif row.code == 0:
        assert not errors, err
    foreign = [line for line in err.splitlines() if FOREIGN.search(line)]
    assert not foreign, f"lines that are not edge-ae's own: {foreign}"
    assert _snapshot(inputs) == before, "an input was modified, or something was written among the inputs"
    left = {rel for rel in _snapshot(tmp_path)}
    expected = {part for c in row.creates for part in _parents(c)}
    assert left == expected, f"left behind: {sorted(left - expected)}, missing: {sorted(expected - left)}"


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


# --- rows whose outputs need a closer look ----------------------------------------------------------------------


def test_folder_with_an_unreadable_image_names_it_and_writes_the_rest(inputs: Path, tmp_path: Path) -> None:
    code, err = run_edge_ae(["denoise", str(inputs / "photos"), "-o", str(tmp_path / "clean")], True, tmp_path)
    assert code == 1
    skipped = [line for line in err.splitlines() if line.endswith("; skipped")]
    assert len(skipped) == 1 and "bad.png: not a readable image: the file is cut short" in skipped[0], err
    for name in ("a.png", "b.jpg", "c.png"):
        a = cv2.imread(str(inputs / "photos" / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "clean" / name), cv2.IMREAD_UNCHANGED)
        assert a.shape == b.shape, name


def test_many_unreadable_images_do_not_flood(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(25):
        (folder / f"{i:02d}.png").write_text("text")
    cv2.imwrite(str(folder / "ok.png"), read_frames(CLEAN_CLIP, 1)[0][:32, :32])
    code, err = run_edge_ae(["denoise", str(folder), "-o", str(tmp_path / "clean")], True, tmp_path)
    assert code == 1
    assert sum(line.endswith("skipped") or "only counted" in line for line in err.splitlines()) == 10, err
    assert "25 of 26 images could not be read" in err


def test_cut_video_keeps_the_frames_that_were_there(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    code, err = run_edge_ae(["denoise", str(inputs / "cut.mp4"), "-o", str(out)], True, tmp_path)
    assert code == 1 and "done: 9 frames" in err, err
    assert count_frames(out) == 9


def test_batch_counts_a_cut_video_as_failed_and_finishes_the_rest(inputs: Path, tmp_path: Path) -> None:
    code, err = run_edge_ae(["denoise", str(inputs / "videos"), "-o", str(tmp_path / "clean")], True, tmp_path)
    assert code == 1
    assert "b.mp4: FAILED:" in err and "the input ended early: 9 of the 38" in err, err
    assert "1 of 2 videos denoised (47 frames), 1 failed" in err, err
    assert count_frames(tmp_path / "clean" / "a.mp4") == 38 and count_frames(tmp_path / "clean" / "b.mp4") == 9


def test_rgba_png_keeps_its_alpha_channel(tmp_path: Path) -> None:
    from edge_runtime import Denoiser

    frame = read_frames(CLEAN_CLIP, 1)[0][:60, :90]
    alpha = np.tile(np.linspace(0, 255, 90).astype(np.uint8), (60, 1))
    cv2.imwrite(str(tmp_path / "in.png"), np.dstack([frame, alpha]))
    code, err = run_edge_ae(["denoise", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png")], True, tmp_path)
    assert code == 0, err
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (60, 90, 4)
    np.testing.assert_array_equal(out[:, :, 3], alpha)  # passed through
    np.testing.assert_array_equal(out[:, :, :3], Denoiser().denoise(frame, ensemble=8))  # denoised as usual (8 views)


# --- 2. a URL of a finite file is read as a file; a live source that keeps ending is not hammered ---------------


def test_http_url_of_a_video_file_is_read_once_frames_in_equal_frames_out(http: CountingServer, tmp_path: Path) -> None:
    before = http.requests
    out = tmp_path / "o.mp4"
    url = f"http://127.0.0.1:{http.server_address[1]}/clip.mp4"
    code, err = run_edge_ae(["denoise", url, "-o", str(out)], True, tmp_path)
    assert code == 0, err
    assert "reconnect" not in err
    assert count_frames(out) == 38
    assert http.requests - before <= 2  # one GET (and perhaps one range request), not thousands


def test_a_live_stream_that_keeps_ending_is_reopened_with_back_off() -> None:
    from edge_runtime.sources import LiveSource, open_source
    from edge_runtime.stream_server import MJPEGServer, encode_video

    class Counting(MJPEGServer):
        connections = 0

        def process_request(self, request: object, client_address: object) -> None:
            self.connections += 1
            super().process_request(request, client_address)  # type: ignore[arg-type]

    server = Counting(encode_video(CLEAN_CLIP, 3, width=64), fps=100.0, loop=False)  # each visit: 3 frames, then EOF
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    source = open_source(server.url, give_up=None)
    assert isinstance(source, LiveSource)
    try:
        t0 = time.monotonic()
        for _ in source:
            if time.monotonic() - t0 > 3.0:
                break
    finally:
        source.close()
        server.stop()
    # Waits of 0.25, 0.5, 1 and 2 s before the reopens: at most 4 visits in 3 s (it was hundreds per second).
    assert 2 <= server.connections <= 6, (server.connections, source.events)
    reconnects = [e for e in source.events if "reconnected after" in e]
    assert len(reconnects) <= 4 and not any("after 0.0 s" in e for e in reconnects), source.events


# --- 3. the smallest tile no longer means a tile step of one pixel --------------------------------------------------


def test_smallest_tile_is_quick_and_smaller_ones_are_refused() -> None:
    from edge_runtime import Denoiser
    from edge_runtime.denoiser import _tiles

    frame = cv2.resize(read_frames(CLEAN_CLIP, 1)[0], (360, 360))
    assert len(_tiles(360, 360, 128)) == 36  # was 129,600 tiles at --tile 64
    t0 = time.perf_counter()
    out = Denoiser(tile=128, threads=1).denoise(frame)
    assert out.shape == frame.shape and time.perf_counter() - t0 < 20
    with pytest.raises(ValueError, match="tile 64 is too small"):
        Denoiser(tile=64)


# --- 8. the Denoiser keeps the shape it was given -------------------------------------------------------------------


def test_denoiser_keeps_every_frame_shape() -> None:
    from edge_runtime import Denoiser

    den = Denoiser(threads=1)
    grey = read_frames(CLEAN_CLIP, 1)[0][:40, :50, 1]
    assert den.denoise(grey[:, :, None]).shape == (40, 50, 1)
    np.testing.assert_array_equal(den.denoise(grey[:, :, None])[:, :, 0], den.denoise(grey))
    bgra = np.dstack([read_frames(CLEAN_CLIP, 1)[0][:40, :50], np.full((40, 50), 7, np.uint8)])
    out = den.denoise(bgra)
    assert out.shape == (40, 50, 4) and (out[:, :, 3] == 7).all()


def test_library_refuses_a_negative_camera_before_opencv_sees_it() -> None:
    from edge_runtime.errors import SourceError
    from edge_runtime.sources import open_source

    for index in (-1, -5, 100):
        with pytest.raises(SourceError, match=f"camera {index}: not a camera index"):
            open_source(index)


def test_image_grid_too_large_is_refused_not_allocated() -> None:
    from edge_runtime.autoencoder import AutoencoderInputError, image_grid

    frames = [np.zeros((28, 28), np.uint8)] * 4096
    with pytest.raises(AutoencoderInputError, match="megapixels"):
        image_grid(frames, scale=16)


# --- 9. signals: a second Ctrl-C, and SIGHUP, keep what was done ----------------------------------------------------


def _signalled(long_video: Path, out: Path, signals: list[tuple[int, float]]) -> tuple[int, str]:
    """Start `edge-ae denoise`, wait until it has written frames, send each signal after its delay."""
    proc = subprocess.Popen([sys.executable, "-m", "edge_runtime", "denoise", str(long_video), "-o", str(out),
                             "--threads", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = list(out.parent.glob(f".{out.stem}.*partial*"))
        if parts and parts[0].stat().st_size > 20_000:
            break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    for sig, delay in signals:
        time.sleep(delay)
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("name", "signals", "code"), [
    ("two-sigints-50ms-apart", [("SIGINT", 0.0), ("SIGINT", 0.05)], 130),
    ("sigint-then-sigterm", [("SIGINT", 0.0), ("SIGTERM", 0.02)], 130),
    ("sighup", [("SIGHUP", 0.0)], 129),
])
def test_signals_keep_what_was_done(long_video: Path, tmp_path: Path, name: str, signals: list[tuple[str, float]],
                                    code: int) -> None:
    """Two Ctrl-C 50 ms apart discarded everything ("interrupted", no output): the second lands while the
    outputs are finalised, and is now ignored there."""
    import signal

    out = tmp_path / "out.mp4"
    rc, err = _signalled(long_video, out, [(getattr(signal, s), d) for s, d in signals])
    assert rc == code, err
    m = re.search(r"stopped by SIG\w+ after (\d+) frames", err)
    assert m, err
    assert 0 < int(m.group(1)) < 308
    assert count_frames(out) == int(m.group(1))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"], "no temporary file is left behind"
    assert "Traceback" not in err and "interrupted" not in err


# --- 12. --release means the same in --help and in the README --------------------------------------------------------


def test_release_wording_matches_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    help_text = " ".join(CliRunner().invoke(cli, ["detect", "--help"]).output.split())
    assert "of the way from the median normal score" in help_text
    assert "of the way from the median normal score" in " ".join(readme.split())
    assert "--release` × threshold" not in readme
