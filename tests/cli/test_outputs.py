"""Existing outputs, as ffmpeg treats them: refused without -y, replaced with it, skipped with --skip-existing;
two runs on one output cannot both report success."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from edge_runtime.errors import OutputError
from edge_runtime.files import claim
from tests.helpers import CLEAN_CLIP, count_frames, mp4_boxes, read_frames


def edge_ae(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_runtime", *args], capture_output=True, text=True, timeout=300)


def one_error(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert r.returncode != 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_existing_video_is_refused_without_y_and_replaced_with_it(tmp_path: Path, tiny_onnx: Path) -> None:
    out = tmp_path / "out.mp4"
    run = ("denoise", str(CLEAN_CLIP), "-o", str(out), "-m", str(tiny_onnx), "--threads", "1")
    r = edge_ae(*run, "--max-frames", "2")
    assert r.returncode == 0, r.stderr
    first = out.read_bytes()
    r = edge_ae(*run, "--max-frames", "3")
    one_error(r, str(out), "already exists", "-y")
    assert out.read_bytes() == first
    r = edge_ae(*run, "--max-frames", "3", "-y")
    assert r.returncode == 0, r.stderr
    assert count_frames(out) == 3
    r = edge_ae(*run, "--max-frames", "4", "--skip-existing")
    assert r.returncode == 0 and "skipped" in r.stderr, r.stderr
    assert count_frames(out) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_existing_image_and_images_in_a_folder_are_refused(tmp_path: Path, tiny_onnx: Path) -> None:
    frame = read_frames(CLEAN_CLIP, 1)[0][:64, :96]
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(src / name), frame)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"an earlier result")
    r = edge_ae("denoise", str(src), "-o", str(out), "-m", str(tiny_onnx))
    one_error(r, str(out), "1 of the 2 images", "b.png", "-y")
    assert sorted(p.name for p in out.iterdir()) == ["b.png"]
    r = edge_ae("denoise", str(src), "-o", str(out), "-m", str(tiny_onnx), "-y")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(out / "b.png")).shape == frame.shape

    one = tmp_path / "one.png"
    one.write_bytes(b"an earlier image")
    r = edge_ae("denoise", str(src / "a.png"), "-o", str(one), "-m", str(tiny_onnx))
    one_error(r, str(one), "already exists")
    assert one.read_bytes() == b"an earlier image"


def test_batch_refuses_existing_outputs_and_resumes_with_skip_existing(tmp_path: Path, tiny_onnx: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        shutil.copy(CLEAN_CLIP, videos / name)
    out = tmp_path / "clean"
    run = ("denoise", str(videos), "-o", str(out), "-m", str(tiny_onnx), "--threads", "1", "--max-frames", "2")
    r = edge_ae(*run)
    assert r.returncode == 0, r.stderr
    (out / "b.mp4").unlink()  # as if the first run had stopped before b
    kept = (out / "a.mp4").read_bytes()
    r = edge_ae(*run)
    one_error(r, "2 of the 3 outputs already exist", "--skip-existing", "-y")
    r = edge_ae(*run, "--skip-existing")
    assert r.returncode == 0, r.stderr
    assert "2 videos already done" in r.stderr and "1 of 1 videos denoised" in r.stderr, r.stderr
    assert (out / "a.mp4").read_bytes() == kept
    assert count_frames(out / "b.mp4") == 2
    r = edge_ae(*run, "-y")
    assert r.returncode == 0 and "3 of 3 videos denoised" in r.stderr, r.stderr


REPEATS = 8


def test_two_runs_on_one_output_cannot_both_succeed(tmp_path: Path, tiny_onnx: Path) -> None:
    long_video = tmp_path / "long.avi"
    frames = read_frames(CLEAN_CLIP)
    w = cv2.VideoWriter(str(long_video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 480))
    # long enough that the second run starts while the first still writes (3 copies, about 6.5 s, once lost the
    # race on a loaded CI machine)
    for _ in range(REPEATS):
        for f in frames:
            w.write(f)
    w.release()
    out = tmp_path / "out.mp4"
    first = subprocess.Popen([sys.executable, "-m", "edge_runtime", "denoise", str(long_video), "-o", str(out),
                              "-m", str(tiny_onnx), "--threads", "1"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".out.mp4.*partial*")):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = edge_ae("denoise", str(CLEAN_CLIP), "-o", str(out), "-m", str(tiny_onnx), "-y")
        one_error(second, str(out), "another edge-ae run is writing this output now")
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert count_frames(out) == REPEATS * len(frames)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_output_that_appears_while_writing_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    part = claim(out, overwrite=False)
    part.tmp.write_bytes(b"this run's result")
    out.write_bytes(b"someone else's file")
    with pytest.raises(OutputError, match="was created by something else while this run was writing it"):
        part.commit(overwrite=False)
    assert out.read_bytes() == b"someone else's file"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_mp4_and_mov_outputs_have_their_index_first_so_a_cut_copy_plays(tmp_path: Path, tiny_onnx: Path,
                                                                        suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    r = edge_ae("denoise", str(CLEAN_CLIP), "-o", str(out), "-m", str(tiny_onnx), "--threads", "1", "--max-frames",
                "12")
    assert r.returncode == 0, r.stderr
    boxes = mp4_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    cut = tmp_path / f"cut{suffix}"
    data = out.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])  # a download cut off part-way
    assert 0 < count_frames(cut) < 12


def test_ffv1_in_mp4_is_written_with_one_warning_line(tmp_path: Path, tiny_onnx: Path) -> None:
    out = tmp_path / "lossless.mp4"
    r = edge_ae("denoise", str(CLEAN_CLIP), "-o", str(out), "-m", str(tiny_onnx), "--threads", "1", "--max-frames",
                "3", "--codec", "ffv1")
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if "FFV1" in ln]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {out}: ") and ".mkv" in warnings[0], r.stderr
    assert count_frames(out) == 3
    r = edge_ae("denoise", str(CLEAN_CLIP), "-o", str(tmp_path / "lossless.mkv"), "-m", str(tiny_onnx), "--threads",
                "1", "--max-frames", "3", "--codec", "ffv1")
    assert r.returncode == 0 and "FFV1" not in r.stderr, r.stderr
