"""Fixtures of the tests in this folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import CLEAN_CLIP, read_frames, write_video


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, tiny_onnx: Path, frames_dir: Path) -> Path:
    """The tiny model and its int8 variant side by side, as `edge-ae export --precision int8` names them."""
    pytest.importorskip("torch")
    from export.precision import make_variant

    d = tmp_path_factory.mktemp("variants")
    model = d / "tiny.onnx"
    model.write_bytes(tiny_onnx.read_bytes())
    make_variant(model, d / "tiny.int8.onnx", "int8", frames_dir)
    return model



@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory: pytest.TempPathFactory, frames_dir: Path) -> Path:
    d = tmp_path_factory.mktemp("clean")
    for f in sorted(frames_dir.iterdir())[:2]:
        cv2.imwrite(str(d / f.name), cv2.resize(cv2.imread(str(f)), (96, 72), interpolation=cv2.INTER_AREA))
    return d


@pytest.fixture(scope="module")
def noisy_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """20 real frames with AWGN sigma 20, stored losslessly (FFV1) so the noise is exactly what was added."""
    clean = read_frames(CLEAN_CLIP, 20)
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 20, f.shape), 0, 255).round().astype(np.uint8) for f in clean]
    path = tmp_path_factory.mktemp("video") / "noisy.avi"
    write_video(path, noisy, 12.5)
    return path, clean

