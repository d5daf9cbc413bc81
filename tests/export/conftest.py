"""Fixtures of the tests in this folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, frames_dir: Path) -> tuple[Path, Path]:
    """A small model trained long enough (300 steps, seconds) that bad quantization shows in PSNR."""
    import torch

    from export.onnx_export import export_checkpoint
    from train.config import build_config
    from train.loop import train_denoiser

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("small")
    ckpt, onnx_path = d / "small.pt", d / "small.onnx"
    train_denoiser(build_config("tiny", threads=1, steps_per_epoch=300, lr=3e-3), [str(frames_dir)], ckpt,
                   log=lambda s: None)
    export_checkpoint(ckpt, onnx_path)
    return ckpt, onnx_path



@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 640x480 clip at 160x120 (lossless FFV1): enough for clips of consecutive frames, quick to run."""
    from tests.helpers import CLEAN_CLIP, read_frames, write_video

    path = tmp_path_factory.mktemp("clip") / "small.mkv"
    frames = [cv2.resize(f, (160, 120), interpolation=cv2.INTER_AREA) for f in read_frames(CLEAN_CLIP)]
    write_video(path, frames, 25.0)
    return path


@pytest.fixture(scope="module")
def video_int8(tmp_path_factory: pytest.TempPathFactory, small_clip: Path) -> tuple[Path, list[str]]:
    """The bundled recurrent video.onnx as int8, calibrated and gated on clips of ``small_clip``; and its log."""
    from edge_runtime.model import default_model_path
    from export.precision import make_variant

    out = tmp_path_factory.mktemp("video_int8") / "video.int8.onnx"
    lines: list[str] = []
    make_variant(default_model_path("video"), out, "int8", small_clip, log=lines.append)
    return out, lines
