"""A real full disk (a small tmpfs mounted here): one error line naming the output and the cause, a non-zero exit,
no temporary file left, and an existing output untouched; for video, image and folder outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from tests.helpers import CLEAN_CLIP


def edge_ae(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_runtime", *args], capture_output=True, text=True, timeout=300)


def full_disk_error(r: subprocess.CompletedProcess[str], output: Path) -> None:
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    assert str(output) in errors[0] and "No space left on device" in errors[0], errors[0]
    assert "wrote" not in r.stderr


def noise_image(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))


def test_video_on_a_full_disk(disk: Path, tiny_onnx: Path) -> None:
    out = disk / "out.mp4"
    run = ("denoise", str(CLEAN_CLIP), "-o", str(out), "-m", str(tiny_onnx), "--threads", "1", "--max-frames", "40")
    r = edge_ae(*run, "--crf", "0")  # lossless: megabytes, far more than the disk holds
    full_disk_error(r, out)
    assert list(disk.iterdir()) == []

    r = edge_ae(*run[:-2], "--max-frames", "1")
    assert r.returncode == 0, r.stderr
    good = out.read_bytes()
    r = edge_ae(*run, "--crf", "0", "-y")
    full_disk_error(r, out)
    assert out.read_bytes() == good
    assert [p.name for p in disk.iterdir()] == ["out.mp4"]


def test_image_on_a_full_disk(disk: Path, tmp_path: Path, tiny_onnx: Path) -> None:
    src = tmp_path / "noise.png"
    noise_image(src, 0)
    out = disk / "clean.png"
    r = edge_ae("denoise", str(src), "-o", str(out), "-m", str(tiny_onnx))
    full_disk_error(r, out)
    assert list(disk.iterdir()) == []
    out.write_bytes(b"an earlier result")
    r = edge_ae("denoise", str(src), "-o", str(out), "-m", str(tiny_onnx), "-y")
    full_disk_error(r, out)
    assert out.read_bytes() == b"an earlier result"
    assert [p.name for p in disk.iterdir()] == ["clean.png"]


def test_folder_on_a_full_disk(disk: Path, tmp_path: Path, tiny_onnx: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        noise_image(src / f"{i}.png", i)
    out = disk / "clean"
    r = edge_ae("denoise", str(src), "-o", str(out), "-m", str(tiny_onnx))
    full_disk_error(r, out / "0.png")
    assert list(out.iterdir()) == []
    (out / "0.png").write_bytes(b"an earlier result")
    r = edge_ae("denoise", str(src), "-o", str(out), "-m", str(tiny_onnx), "-y")
    full_disk_error(r, out / "0.png")
    assert (out / "0.png").read_bytes() == b"an earlier result"
    assert [p.name for p in out.iterdir()] == ["0.png"]
