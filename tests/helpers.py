"""Helpers the tests share: where the data is, reading frames, PSNR (fixtures live in the conftest.py files)."""

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


def mp4_boxes(path: Path) -> list[str]:
    """The top-level boxes (atoms) of an MP4/MOV file, in file order: ftyp, moov, mdat, ..."""
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8].decode("latin-1")
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        boxes.append(kind)
        if size < 8:  # 0: the box runs to the end of the file
            break
        pos += size
    return boxes


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def write_video(path: Path, frames: list[np.ndarray], fps: float, fourcc: str = "FFV1") -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    assert w.isOpened()
    for f in frames:
        w.write(f)
    w.release()


def fixed_camera(n: int, shot: float, read: float, **steps: float) -> object:
    """``n`` copies of one simulated camera for ``train.noise.add_realistic``: identity colour matrix, unit
    gains, bilinear demosaicing and no in-camera step unless ``steps`` sets one (chroma_sigma, chroma_keep,
    luma_sigma, sharpen, jpeg_quality)."""
    import torch

    from train.noise import CameraParams

    def full(name: str, default: float = 0.0) -> torch.Tensor:
        return torch.full((n,), float(steps.get(name, default)))

    return CameraParams(shot=torch.full((n,), shot), read=torch.full((n,), read), gains=torch.ones(n, 3),
                        ccm=torch.eye(3).expand(n, 3, 3).clone(), chroma_sigma=full("chroma_sigma"),
                        chroma_keep=full("chroma_keep", 1.0),
                        luma_sigma=full("luma_sigma"), sharpen=full("sharpen"),
                        jpeg_quality=full("jpeg_quality").long(), edge_aware=torch.zeros(n, dtype=torch.bool))
