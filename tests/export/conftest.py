"""Fixtures of the tests in this folder."""

from __future__ import annotations

from pathlib import Path

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

