"""The temporal filter behind every Denoiser stream (edge_runtime.temporal): real frames, the bundled models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.denoiser import Denoiser
from edge_runtime.temporal import RECURRENT, SINGLE_FRAME, TemporalFilter
from tests.helpers import CLEAN_CLIP, psnr, read_frames


@pytest.fixture(scope="module")
def single() -> Denoiser:
    return Denoiser("default", device="cpu", threads=1)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return read_frames(CLEAN_CLIP, 1)[0][200:296, 240:368]  # a real 96 x 128 crop


def noisy(frame: np.ndarray, seed: int, sigma: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).round().astype(np.uint8)


def change(frames: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(frames[1:], frames[:-1], strict=False)]))


def test_a_static_scene_gets_better_and_steadier_than_frame_by_frame(single: Denoiser, scene: np.ndarray) -> None:
    stream = single.stream()
    assert stream.filter is not None and (stream.filter.max_weight, stream.filter.k) == SINGLE_FRAME
    frames = [noisy(scene, t) for t in range(8)]
    alone = [single.denoise(f) for f in frames]
    filtered = [stream.denoise(f) for f in frames]
    assert np.array_equal(filtered[0], alone[0])  # the first frame has no past
    gain = np.mean([psnr(a, scene) - psnr(b, scene) for a, b in zip(filtered[4:], alone[4:], strict=True)])
    assert gain > 0.5, gain  # measured: +1.0 dB
    assert change(filtered[2:]) < 0.85 * change(alone[2:])  # less flicker (measured: 0.70x)
    assert 13.0 < stream.filter.sigma < 25.0  # noise estimated, not told (sigma 20, clipped: measured 16.3)


def test_a_moving_object_is_not_smeared(single: Denoiser, scene: np.ndarray) -> None:
    """A bright square crossing the still scene at 6 px/frame: where it is, the output stays the model's own."""
    stream = single.stream()
    for t in range(8):
        f = scene.copy()
        x = 10 + 6 * t
        f[40:60, x : x + 20] = 230
        n = noisy(f, t)
        out, alone = stream.denoise(n).astype(float), single.denoise(n).astype(float)
        region = (slice(40, 60), slice(x, x + 20))
        assert np.abs(out[region] - alone[region]).mean() < 1.0, t  # no trail of the background in it
        assert np.abs(out[region] - 230).mean() < 6.0, t
    behind = (slice(40, 60), slice(10, 30))  # where the square was 6 frames ago: the background again
    assert np.abs(out[behind] - scene[behind]).mean() < 8.0  # no ghost of the square left behind


def test_a_cut_and_reset_keep_nothing_of_the_past(single: Denoiser, scene: np.ndarray) -> None:
    stream = single.stream()
    for t in range(4):
        stream.denoise(noisy(scene, t))
    other = noisy(cv2.rotate(read_frames(CLEAN_CLIP, 61)[60][300:396, 400:528], cv2.ROTATE_180), 9)
    assert np.array_equal(stream.denoise(other), single.denoise(other))  # a cut: the model's output as it is
    stream.reset()
    first = noisy(scene, 5)
    assert np.array_equal(stream.denoise(first), single.denoise(first))
    small = noisy(scene[:48, :64], 6)
    assert np.array_equal(stream.denoise(small), single.denoise(small))  # a new size starts afresh


def test_off_strength_and_frame_shapes(single: Denoiser, scene: np.ndarray) -> None:
    frames = [noisy(scene, t) for t in range(3)]
    off = single.stream(temporal=False)
    assert off.filter is None and all(np.array_equal(off.denoise(f), single.denoise(f)) for f in frames)
    assert Denoiser("default", device="cpu", temporal=False).stream().filter is None
    assert Denoiser("default", device="cpu", strength=0.0).stream().filter is None  # strength 0: frames as they are
    half = Denoiser("default", device="cpu", strength=0.5).stream().filter
    assert half is not None and half.max_weight == pytest.approx(SINGLE_FRAME[0] * 0.5)
    video = Denoiser("video", device="cpu").stream().filter
    assert video is not None and (video.max_weight, video.k) == RECURRENT
    grey, bgra = single.stream(), single.stream()
    for f in frames:
        g = grey.denoise(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[:, :, None])
        assert g.shape == (96, 128, 1)
        alpha = np.full((96, 128, 1), 77, np.uint8)
        a = bgra.denoise(np.dstack([f, alpha]))
        assert a.shape == (96, 128, 4) and (a[:, :, 3] == 77).all()
    with pytest.raises(ValueError, match="max_weight"):
        TemporalFilter(1.0)


def test_drawing_on_an_output_does_not_change_the_next_one(single: Denoiser, scene: np.ndarray) -> None:
    """The filter keeps its own copy of what it returned (a caller may draw boxes or text on it)."""
    frames = [noisy(scene, t) for t in range(3)]
    a, b = single.stream(), single.stream()
    for f in frames[:2]:
        a.denoise(f)
        b.denoise(f)[:20, :20] = 255  # drawn on by the caller
    assert np.array_equal(a.denoise(frames[2]), b.denoise(frames[2]))


def pan(frame: np.ndarray, steps: list[int], size: tuple[int, int] = (240, 320)) -> list[np.ndarray]:
    """Crops of a real frame whose window moves right by ``steps`` pixels, one per frame: a panning camera."""
    h, w = size
    x, out = 40, []
    for s in steps:
        x += s
        out.append(frame[100 : 100 + h, x : x + w].copy())
    return out


def test_camera_motion_tells_a_moving_camera_from_a_fixed_one() -> None:
    from edge_runtime.temporal import CameraMotion

    frame = read_frames(CLEAN_CLIP, 1)[0]
    cam = CameraMotion()
    still = [cam(noisy(f, t, 25)) for t, f in enumerate(pan(frame, [0] * 8))]
    assert not any(still) and cam.shift < cam.settle  # noise alone does not move the camera
    moving = [cam(noisy(f, t, 25)) for t, f in enumerate(pan(frame, [3] * 4))]
    assert all(moving) and 2.0 < cam.shift * 320 / CameraMotion.ANALYSIS < 4.0  # 3 px per frame, measured
    settling = [cam(noisy(f, t, 25)) for t, f in enumerate(pan(frame, [0] * 8))]
    assert settling[: cam.hold - 1] == [True] * (cam.hold - 1) and not settling[-1]  # held, then still again
    cam.reset()
    assert not cam(frame[:64, :64]) and not cam.moving  # too small to tell: never moving
    for t, f in enumerate(pan(frame, [0] * 4)):
        cam(noisy(f, t, 25))
    from edge_runtime.model import sample_clip

    other = cv2.resize(read_frames(sample_clip(), 1)[0], (320, 240), interpolation=cv2.INTER_AREA)  # another scene
    assert not cam(noisy(other, 9, 25)) and cam.shift == 0.0  # a cut is not a moving camera


def test_a_video_stream_hands_a_moving_camera_to_the_single_frame_model() -> None:
    """The bundled video model trusts a past that a moving camera has shifted; its stream gives those frames to
    the single-frame model and goes back (with a fresh state) when the camera stops."""
    frame = read_frames(CLEAN_CLIP, 1)[0]
    clean = pan(frame, [0] * 6 + [4] * 8 + [0] * 8)
    frames = [noisy(f, t, 20) for t, f in enumerate(clean)]
    video = Denoiser("video", device="cpu", threads=1)
    assert video.follows_camera and not Denoiser("video", device="cpu", moving_camera=None).follows_camera
    assert not Denoiser("default", device="cpu").follows_camera  # a single-frame model has nothing to hand over
    follow, always = video.stream(), Denoiser("video", device="cpu", threads=1, moving_camera=None).stream()
    used, gain = [], []
    for f, c in zip(frames, clean, strict=True):
        a, b = follow.denoise(f), always.denoise(f)
        used.append(follow.moving)
        gain.append(psnr(a, c) - psnr(b, c))
    assert used == [False] * 6 + [True] * (8 + follow.camera.hold - 1) + [False] * (9 - follow.camera.hold)  # type: ignore[union-attr]
    assert follow.switches == 2 and follow.filter is not None and follow.filter.k == RECURRENT[1]  # back again
    assert np.mean(gain[6:14]) > 0.1  # better while the camera moves (measured +0.2 dB)
    assert min(gain[:6]) == 0.0 == max(gain[:6])  # identical while it is still


def camera_noise(frame: np.ndarray, seed: int) -> np.ndarray:
    """Noise as a camera leaves it: spatially correlated (luma smoothed over about a pixel, chroma over a few), then
    JPEG; about 4 levels, like the PolyU development pairs' residuals."""
    rng = np.random.default_rng(seed)
    luma = cv2.GaussianBlur(rng.normal(0, 12, frame.shape[:2]).astype(np.float32), (0, 0), 0.9)
    chroma = cv2.GaussianBlur(rng.normal(0, 6, frame.shape).astype(np.float32), (0, 0), 2.5)
    x = np.clip(frame + luma[..., None] + chroma, 0, 255).round().astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


@pytest.mark.parametrize("model", ["video", "default"])
def test_camera_noise_on_a_still_camera_is_averaged_and_a_cut_still_cuts(model: str) -> None:
    """Correlated camera noise is left largely in place by the models, so their output changes from frame to frame
    by more than k x the residual noise estimate: the filter used to take every frame for a cut and did nothing
    (+0.00 dB). With the camera known to be still, its threshold follows the spread of the output's own change
    (measured: +1.8 to +2.1 dB after the video model, +2.6 to +2.8 after the single-frame one). A cut to another
    scene still keeps nothing of the past."""
    clean = read_frames(CLEAN_CLIP, 1)[0]  # 640 x 480: large enough for the camera test
    frames = [camera_noise(clean, t) for t in range(8)]
    den = Denoiser(model, device="cpu", threads=1)
    stream, alone = den.stream(), den.stream(temporal=False)
    gains = [psnr(stream.denoise(f), clean) - psnr(alone.denoise(f), clean) for f in frames]
    assert stream.filter is not None and stream.filter.still and stream.filter.spread is not None
    assert min(gains[4:]) > 1.0, gains
    cut = camera_noise(np.ascontiguousarray(clean[::-1, ::-1]), 99)  # another scene (the frame upside down)
    after, fresh = stream.denoise(cut), den.stream().denoise(cut)
    assert psnr(after, fresh) > 40.0  # nothing of the previous scene
    soft = Denoiser(model, device="cpu", threads=1, strength=0.6).stream()
    for f in frames[:2]:
        soft.denoise(f)
    assert soft.filter is not None and not soft.filter.still  # below 1 the noise left in on purpose stays
