"""Corruptions applied to clean training images: Gaussian and realistic camera noise."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class NoiseConfig:
    """What noise a blind denoiser is trained on (recorded in the model card)."""

    sigma_max: float = 50.0  # Gaussian sigma range [0, sigma_max] on the 0..255 scale
    p_camera: float = 0.35  # share of samples with shot + read noise instead of Gaussian
    shot_max: float = 0.02  # Poisson-like variance per unit signal, signal in [0, 1]
    read_max: float = 0.15  # read-noise sigma upper bound in [0, 1] units (log-uniform)
    p_jpeg: float = 0.1  # share of camera-noise samples that are then JPEG-compressed
    p_grey: float = 0.3  # share of samples made grey (identical channels, identical noise)

    def as_card(self) -> dict[str, object]:
        return {
            "gaussian_sigma": [0.0, self.sigma_max],
            "camera": {"shot_max": self.shot_max, "read_max": self.read_max, "share": self.p_camera},
            "jpeg_share": self.p_jpeg,
            "grey_share": self.p_grey,
            "blind": True,
        }


def add_gaussian(clean: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add AWGN with a per-sample ``sigma`` (0..255 scale) to (B, C, H, W) images in [0, 1]."""
    n = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    return clean + n * (sigma.view(-1, 1, 1, 1) / 255.0)


def add_camera(
    clean: torch.Tensor, shot: torch.Tensor, read: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Signal-dependent noise: variance = shot * x + read**2 per pixel."""
    var = shot.view(-1, 1, 1, 1) * clean + read.view(-1, 1, 1, 1) ** 2
    n = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    return clean + n * var.clamp_min(0).sqrt()


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to 8-bit levels, as a camera frame would be."""
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip of one (C, H, W) RGB image in [0, 1]."""
    img = (x.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - encoder failure on valid arrays does not happen
        return x
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1).float() / 255.0


def corrupt(clean: torch.Tensor, cfg: NoiseConfig,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (noisy, clean) for a batch (B, C, H, W) in [0, 1], mixing the noise kinds of ``cfg``.

    Grey samples get identical channels and identical noise in every channel, so a colour
    model also learns to denoise grey frames fed to it as three equal channels.
    """
    b, c = clean.shape[:2]
    g = generator
    if c == 3 and cfg.p_grey > 0:
        grey = torch.rand(b, generator=g) < cfg.p_grey
        if grey.any():
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # RGB order
            y = (clean[grey] * w).sum(1, keepdim=True)
            clean = clean.clone()
            clean[grey] = y.expand(-1, 3, -1, -1)
    else:
        grey = torch.zeros(b, dtype=torch.bool)

    sigma = torch.rand(b, generator=g) * cfg.sigma_max
    noisy = add_gaussian(clean, sigma, g)
    camera = torch.rand(b, generator=g) < cfg.p_camera
    if camera.any():
        k = int(camera.sum())
        shot = torch.rand(k, generator=g) * cfg.shot_max
        read = torch.exp(torch.empty(k).uniform_(np.log(0.002), np.log(cfg.read_max), generator=g))
        noisy[camera] = add_camera(clean[camera], shot, read, g)
    if grey.any():
        noisy[grey] = noisy[grey][:, :1].expand(-1, c, -1, -1)
    noisy = quantize(noisy)
    if cfg.p_jpeg > 0 and c == 3:
        for i in torch.nonzero(camera & (torch.rand(b, generator=g) < cfg.p_jpeg)).flatten().tolist():
            q = int(torch.randint(60, 96, (1,), generator=g))
            noisy[i] = jpeg(noisy[i], q)
    return noisy, clean
