"""Fixtures of the tests in this folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest

from edge_runtime.denoiser import Denoiser
from tests.helpers import CLEAN_CLIP, read_frames


@pytest.fixture(scope="module")
def denoiser(tiny_onnx: Path) -> Denoiser:
    return Denoiser(tiny_onnx, device="cpu")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """308 real frames (the clean clip four times), stored as MJPEG so the test can write it quickly."""
    frames = read_frames(CLEAN_CLIP)
    path = tmp_path_factory.mktemp("long") / "long.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (frames[0].shape[1], frames[0].shape[0]))
    for _ in range(4):
        for f in frames:
            w.write(f)
    w.release()
    return path


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A folder of videos in sub-folders, with one broken file among them."""
    root = tmp_path / "library"
    (root / "day1").mkdir(parents=True)
    (root / "day2" / "cam").mkdir(parents=True)
    shutil.copy(CLEAN_CLIP, root / "day1" / "a.mkv")
    shutil.copy(CLEAN_CLIP, root / "day2" / "cam" / "b.mkv")
    (root / "day2" / "broken.mp4").write_text("not a video")
    (root / "notes.txt").write_text("ignored")
    return root

