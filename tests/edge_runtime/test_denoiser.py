"""The Python API: any frame size, grey and colour, through a real exported model."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime import Denoiser
from edge_runtime.errors import FrameError, ModelLoadError
from edge_runtime.model import default_model_path
from tests.helpers import CLEAN_CLIP, psnr, read_frames


@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 3), (17, 31), (17, 31, 3), (2, 9, 3), (31, 17, 1), (64, 48, 3)])
def test_any_size_grey_or_colour_keeps_shape(denoiser: Denoiser, shape: tuple[int, ...]) -> None:
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = denoiser.denoise(frame)
    assert out.shape == shape and out.dtype == np.uint8  # (H, W, 1) stays (H, W, 1), as the README promises


def test_full_hd_frames_are_denoised() -> None:
    """A real frame scaled to 1920x1080 with noise comes back the same shape and closer to the clean frame."""
    denoiser = Denoiser(device="cpu")  # the bundled model (the tiny test model hardly denoises)
    rng = np.random.default_rng(1)
    clean = cv2.resize(read_frames(CLEAN_CLIP, 1)[0], (1920, 1080), interpolation=cv2.INTER_CUBIC)
    for frame in (clean, cv2.cvtColor(clean, cv2.COLOR_BGR2GRAY)):
        noisy = np.clip(frame + rng.normal(0, 20, frame.shape), 0, 255).round().astype(np.uint8)
        out = denoiser.denoise(noisy)
        assert out.shape == frame.shape and out.dtype == np.uint8
        assert psnr(out, frame) > psnr(noisy, frame) + 3.0


def test_padding_and_tiling_match_the_whole_frame(tiny_onnx: Path) -> None:
    """Tiles with overlap give the same pixels as one pass (no seams), and padding is cropped back exactly."""
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (203, 301, 3), dtype=np.uint8)
    whole = Denoiser(tiny_onnx, device="cpu", tile=None).denoise(frame)
    tiled = Denoiser(tiny_onnx, device="cpu", tile=128).denoise(frame)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_grey_frame_equals_replicated_colour_frame(denoiser: Denoiser) -> None:
    grey = np.random.default_rng(3).integers(0, 256, (40, 56), dtype=np.uint8)
    colour = denoiser.denoise(np.dstack([grey] * 3))
    out = denoiser.denoise(grey)
    assert np.abs(out.astype(int) - colour.mean(axis=2).round().astype(int)).max() <= 1


def test_shared_between_threads(denoiser: Denoiser) -> None:
    frames = [np.random.default_rng(i).integers(0, 256, (32, 40, 3), dtype=np.uint8) for i in range(4)]
    expected = [denoiser.denoise(f) for f in frames]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = denoiser.denoise(frames[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_array_equal(results[i], expected[i])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((8, 8, 3), dtype=np.float32), "dtype is float32; expected uint8"),
        (np.zeros((8, 8, 2), dtype=np.uint8), "shape is (8, 8, 2)"),  # 4 channels are BGRA: alpha passed through
        (np.zeros((0, 8), dtype=np.uint8), "no pixels"),
        ([[1, 2]], "must be a numpy array"),
    ],
)
def test_bad_frames_are_refused(denoiser: Denoiser, frame: object, message: str) -> None:
    with pytest.raises(FrameError, match=message.replace("(", r"\(").replace(")", r"\)")):
        denoiser.denoise(frame)  # type: ignore[arg-type]


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="nope.onnx: no such model file"):
        Denoiser(tmp_path / "nope.onnx")


def test_bundled_model_denoises_real_noise() -> None:
    """Denoiser() uses the bundled model, and it removes real-looking noise from a real frame."""
    if not default_model_path().is_file():
        pytest.fail("the bundled model edge_runtime/models/default.onnx is missing")

    clean = read_frames(CLEAN_CLIP, 1)[0]
    rng = np.random.default_rng(5)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    den = Denoiser()
    assert den.model.card.task == "denoise"
    out = den.denoise(noisy)
    assert psnr(out, clean) > psnr(noisy, clean) + 6
    grey_clean = clean.mean(axis=2).round().astype(np.uint8)
    grey_noisy = np.clip(grey_clean + rng.normal(0, 25, grey_clean.shape), 0, 255).round().astype(np.uint8)
    assert psnr(den.denoise(grey_noisy), grey_clean) > psnr(grey_noisy, grey_clean) + 5


def test_colour_channels_keep_their_order(denoiser: Denoiser) -> None:
    """BGR in, BGR out: a flat blue-green-red frame comes back with the same channel means."""
    frame = np.empty((48, 64, 3), dtype=np.uint8)
    frame[:] = (200, 120, 30)
    out = denoiser.denoise(frame)
    assert np.abs(out.reshape(-1, 3).mean(axis=0) - (200, 120, 30)).max() < 12


def test_ensemble_of_views_undoes_each_view_and_helps() -> None:
    """Every view is undone exactly; with the bundled model, 2, 4 and 8 views of a real frame with noise score
    above one; shapes (a non-square frame, grey, BGRA with its alpha) come back as they went in; other counts are
    refused."""
    from edge_runtime.denoiser import VIEWS, _unview, _view

    denoiser = Denoiser(threads=1)
    a = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    for view in VIEWS:
        np.testing.assert_array_equal(_unview(_view(a, view), view), a)
    assert len({_view(a, v).tobytes() + bytes(_view(a, v).shape) for v in VIEWS}) == 8  # eight different views
    clean = read_frames(CLEAN_CLIP, 1)[0][100:260, 200:424]  # 160 x 224
    noisy = np.clip(clean + np.random.default_rng(4).normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    one = psnr(denoiser.denoise(noisy), clean)
    for n in (2, 4, 8):
        out = denoiser.denoise(noisy, ensemble=n)
        assert out.shape == noisy.shape and out.dtype == np.uint8
        assert psnr(out, clean) > one + 0.03, n
    grey = noisy[:, :, 1]
    assert denoiser.denoise(grey, ensemble=8).shape == grey.shape
    bgra = np.dstack([noisy, np.full(noisy.shape[:2], 77, np.uint8)])
    out4 = denoiser.denoise(bgra, ensemble=8)
    assert out4.shape == bgra.shape and (out4[:, :, 3] == 77).all()
    with pytest.raises(ValueError, match="ensemble 3 is not one of 1, 2, 4, 8"):
        denoiser.denoise(noisy, ensemble=3)
    with pytest.raises(FrameError):
        denoiser.denoise(np.zeros((4, 4, 2), np.uint8), ensemble=8)
