"""Realistic camera noise (train.noise.add_realistic) and its place in the training noise mix."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.helpers import fixed_camera  # noqa: E402
from train.noise import NoiseConfig, add_realistic, corrupt, sample_camera  # noqa: E402
from train.sequences import add_sequence_noise  # noqa: E402


def _flat(level: float, n: int = 4, size: int = 64) -> torch.Tensor:
    return torch.full((n, 3, size, size), level)


def _lag1_correlation(r: torch.Tensor) -> float:
    """Mean correlation of horizontally and vertically neighbouring residuals of (B, 3, H, W)."""
    r = r - r.mean(dim=(2, 3), keepdim=True)
    h = (r[..., :, 1:] * r[..., :, :-1]).mean() / r.var()
    v = (r[..., 1:, :] * r[..., :-1, :]).mean() / r.var()
    return float((h + v) / 2)


def test_output_is_an_8_bit_image_of_the_same_shape_and_seeded_runs_repeat() -> None:
    clean = torch.rand(6, 3, 33, 40, generator=torch.Generator().manual_seed(0))  # odd sizes on purpose
    noisy = add_realistic(clean, torch.Generator().manual_seed(1))
    assert noisy.shape == clean.shape and noisy.dtype == clean.dtype
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1
    assert torch.equal(noisy, torch.round(noisy * 255) / 255)
    assert torch.equal(noisy, add_realistic(clean, torch.Generator().manual_seed(1)))
    assert not torch.equal(noisy, add_realistic(clean, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        add_realistic(clean[:, :1], torch.Generator().manual_seed(1))


def test_without_sensor_noise_the_clean_image_comes_back() -> None:
    """Only the noise goes through the simulated camera: no demosaicing blur or colour shift of the image."""
    clean = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    noisy = add_realistic(clean, torch.Generator().manual_seed(0), fixed_camera(2, 0.0, 0.0))
    assert float((noisy - clean).abs().max()) <= 0.5 / 255 + 1e-6


def test_noise_is_signal_dependent() -> None:
    """Shot noise: its variance grows with the raw signal, unlike read noise, after the same tone curve."""
    g = torch.Generator().manual_seed(3)

    def var_ratio(shot: float, read: float) -> float:
        dark, bright = (add_realistic(_flat(v), g, fixed_camera(4, shot, read)) - v for v in (0.15, 0.6))
        return float(bright.var() / dark.var())

    assert var_ratio(0.004, 0.0005) > 2 * var_ratio(0.0, 0.01)


def test_demosaicing_correlates_neighbouring_pixels_and_chroma_smoothing_correlates_channels() -> None:
    g = torch.Generator().manual_seed(4)
    clean = _flat(0.5)
    plain = add_realistic(clean, g, fixed_camera(4, 0.004, 0.002)) - clean
    assert _lag1_correlation(plain) > 0.2

    def channel_correlation(r: torch.Tensor) -> float:
        return float(np.corrcoef(r.permute(1, 0, 2, 3).reshape(3, -1).numpy())[0, 1])

    smoothed = add_realistic(clean, g, fixed_camera(4, 0.004, 0.002, chroma_sigma=2.5)) - clean
    assert channel_correlation(smoothed) > 0.5 > channel_correlation(plain) + 0.2


def test_random_cameras_cover_a_range_of_noise_levels() -> None:
    g = torch.Generator().manual_seed(5)
    cams = sample_camera(400, g)
    assert float(cams.shot.min()) >= 1e-4 and float(cams.shot.max()) <= 0.012
    # Read noise is tied to the shot level (Brooks et al. 2019): brighter noise, more read noise.
    assert np.corrcoef(cams.shot.log().numpy(), cams.read.log().numpy())[0, 1] > 0.9
    assert torch.allclose(cams.ccm.sum(2), torch.ones(400, 3), atol=1e-5), "grey stays grey through the colour matrix"
    std = (add_realistic(_flat(0.5, 64, 32), g) - 0.5).std(dim=(1, 2, 3)) * 255
    assert float(std.min()) < 3 and float(std.max()) > 10


def test_mix_gives_realistic_noise_to_a_share_and_grey_samples_stay_grey() -> None:
    g = torch.Generator().manual_seed(6)
    clean = torch.rand(48, 3, 24, 24, generator=g)
    noisy, target = corrupt(clean, NoiseConfig(p_real=1.0, p_grey=0.5), g)
    grey = (target[:, 0] == target[:, 1]).all(dim=(1, 2)) & (target[:, 1] == target[:, 2]).all(dim=(1, 2))
    assert 10 < int(grey.sum()) < 38
    assert torch.equal(noisy[grey][:, 0], noisy[grey][:, 1]) and torch.equal(noisy[grey][:, 0], noisy[grey][:, 2])
    assert not torch.equal(noisy[~grey][:, 0], noisy[~grey][:, 1])
    assert torch.equal(noisy, torch.round(noisy * 255) / 255)
    card = NoiseConfig(p_real=0.25).as_card()
    assert card["realistic"]["share"] == 0.25 and card["realistic"]["shot"] == [1e-4, 0.012]  # type: ignore[index]


def test_clip_keeps_one_camera_with_fresh_noise_per_frame() -> None:
    clean = _flat(0.5, 1, 48)[None].expand(3, 5, -1, -1, -1).contiguous()  # (B, T, 3, P, P)
    noisy, target = add_sequence_noise(clean, np.random.default_rng(0), NoiseConfig(p_real=1.0, p_grey=0.0))
    assert noisy.shape == clean.shape and torch.equal(target, clean)
    r = noisy - clean
    std = r.std(dim=(2, 3, 4))  # (B, T)
    assert float((std.max(1).values / std.min(1).values).max()) < 1.3, "one noise level per clip"
    assert not torch.equal(r[:, 0], r[:, 1]), "an independent realisation per frame"
    noisy, target = add_sequence_noise(clean, np.random.default_rng(1), NoiseConfig(p_real=1.0, p_grey=1.0))
    assert torch.equal(noisy[:, :, 0], noisy[:, :, 1]) and torch.equal(noisy[:, :, 1], noisy[:, :, 2])


def test_jpeg_samples_made_with_the_plan_match_the_ones_made_after_it() -> None:
    """``plan_noise(..., finish_jpeg=True)`` (a GPU run's batch makers) makes the JPEG samples on the CPU, with the
    same draws as a plan whose JPEG round trips ``apply_noise`` would do: same samples, same kind of result."""
    from tests.helpers import CLEAN_CLIP, read_frames
    from train.noise import apply_noise, plan_noise

    frame = read_frames(CLEAN_CLIP, 1)[0][:, :, ::-1].copy()
    clean = torch.stack([torch.from_numpy(frame[y : y + 64, x : x + 64]).permute(2, 0, 1).float() / 255
                         for y in range(0, 384, 64) for x in range(0, 512, 64)])  # 48 real RGB patches
    cfg = NoiseConfig(p_jpeg=0.5, p_camera=1.0)
    late = plan_noise(clean, cfg, torch.Generator().manual_seed(3))
    ready = plan_noise(clean, cfg, torch.Generator().manual_seed(3), finish_jpeg=True)
    jpeg = late.jpeg_quality > 0
    assert jpeg.sum() >= 4 and not (ready.jpeg_quality > 0).any()
    assert torch.equal(ready.real, late.real | jpeg) and len(ready.realistic) == int(ready.real.sum())
    a, _ = apply_noise(clean, late, torch.Generator().manual_seed(4))
    b, target = apply_noise(clean, ready, torch.Generator().manual_seed(4))
    assert torch.equal(a[~ready.real], b[~ready.real])  # the others: untouched by the change
    ra, rb = (a[jpeg] - target[jpeg]).pow(2).mean().sqrt(), (b[jpeg] - target[jpeg]).pow(2).mean().sqrt()
    assert 0.8 < float(rb / ra) < 1.25  # the same noise and compression, other random numbers
    # a JPEG image changes less than a noisy one when compressed (again) at the same quality
    q = int(late.jpeg_quality[jpeg][0])
    plain = (~jpeg & ~late.real).nonzero().flatten().tolist()
    was, never = (float(np.mean([(jpeg_round_trip(b[i], q) - b[i]).abs().mean() for i in idx]))
                  for idx in (jpeg.nonzero().flatten().tolist(), plain))
    assert was < 0.7 * never
    assert torch.equal(ready.realistic[late.real[ready.real]], late.realistic)  # the camera samples as they were


def jpeg_round_trip(x: torch.Tensor, quality: int) -> torch.Tensor:
    from train.noise import jpeg

    return jpeg(x, quality)
