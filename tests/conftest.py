"""Shared fixtures: a tiny model really trained and exported by the project, and real video data."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
SHARED = Path(os.environ.get("EDGE_AE_SHARED", Path(__file__).resolve().parents[2] / "shared" / "data"))
CLEAN_CLIP = DATA / "intel_asl_again.mkv"  # 640x480, 77 frames, Intel sample video (CC BY 4.0)


def shared(relative: str) -> Path:
    """A path in ../shared/data, or skip the test when that folder is absent (a user's clone)."""
    p = SHARED / relative
    if not p.exists():
        pytest.skip(f"needs ../shared/data/{relative}, which is not present here (it exists in the team's CI only)")
    return p


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while limit is None or len(frames) < limit:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def count_frames(path: Path) -> int:
    """Frames a video really holds (decoded count, not the container's claim)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.fixture(scope="session")
def frames_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few real frames of the clean clip written as PNG images (training data for the tiny model)."""
    d = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(read_frames(CLEAN_CLIP, 40)[::8]):
        cv2.imwrite(str(d / f"f{i:02d}.png"), f)
    return d


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, frames_dir: Path) -> Path:
    torch = pytest.importorskip("torch")
    from train.config import build_config
    from train.loop import train_denoiser

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    train_denoiser(build_config("tiny", threads=1), [str(frames_dir)], out, log=lambda s: None)
    return out


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    from export.onnx_export import export_checkpoint

    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_checkpoint(tiny_checkpoint, out)
    return out
