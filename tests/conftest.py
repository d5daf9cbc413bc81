"""Shared fixtures: a tiny model really trained and exported by the project, and real video data."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from tests.helpers import CLEAN_CLIP, read_frames


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
