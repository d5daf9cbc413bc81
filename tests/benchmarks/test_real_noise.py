"""benchmarks.real_noise on real camera noise: the table and the before/after strip it writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from benchmarks.real_noise import STRIP_WINDOW, find_pairs, main
from tests.helpers import shared


def test_strip_of_real_noise_pairs(tmp_path: Path) -> None:
    """Two real pairs (copied to a scratch folder, never committed): the table names every method, and the strip
    is a PNG with one row per crop and a column per method, the noisy column unlike the ground truth's."""
    pairs = find_pairs(shared("denoising/realnoise_dev/PolyU"))[:2]
    folder = tmp_path / "pairs"
    folder.mkdir()
    for noisy_file, mean_file in pairs:
        shutil.copy(noisy_file, folder)
        shutil.copy(mean_file, folder)
    out = tmp_path / "strip.png"
    result = CliRunner().invoke(main, ["--pairs", str(folder), "--crop", "160", "--crops-per-pair", "1",
                                       "--threads", "1", "--strip", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("noisy", "OpenCV non-local means", "OpenCV bilateral", "model default.onnx",
                 "model default.onnx 8 views"):
        assert f"| {name} |" in result.output
    strip = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert strip is not None
    side = 2 * STRIP_WINDOW
    assert strip.shape[1] == 6 * side + 5 * 4  # noisy, NLM, bilateral, the model (1 and 8 views), ground truth
    assert strip.shape[0] == 28 + 2 * side + 4  # the labels, then one row per crop
    row = strip[28 : 28 + side]
    noisy, truth = row[:, :side].astype(np.float32), row[:, -side:].astype(np.float32)
    assert np.abs(noisy - truth).mean() > 0.5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no part file left
