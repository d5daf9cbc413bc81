"""Image-quality measures (PSNR, SSIM) and the synthetic-noise protocol used by the benchmarks."""

from __future__ import annotations

import cv2
import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10.0 * np.log10(255.0**2 / max(mse, 1e-12)))


def ssim_planes(x: np.ndarray, y: np.ndarray, data_range: float, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM of two same-shaped images (H x W or H x W x C), each channel on its own.

    Local statistics come from a ``window`` x ``window`` Gaussian (``sigma``) with mirrored borders
    (OpenCV's BORDER_REFLECT); the constants are (0.01 L)^2 and (0.03 L)^2 for ``data_range`` L.
    """
    a, b = x.astype(np.float64), y.astype(np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (window, window), sigma, borderType=cv2.BORDER_REFLECT)

    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    out: np.ndarray = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return out


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5, on the 0..255 scale) of two uint8 images; colour averages its channels.

    This is Wang et al. (2004) as scikit-image computes it with ``structural_similarity(a, b,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)``
    (same 11-tap kernel, same mirrored border), with one difference: scikit-image leaves the 5 pixels
    along each border out of the mean, this averages every pixel. scikit-image's defaults (a uniform
    7 x 7 window, sample covariance) give other numbers again.
    """
    return float(ssim_planes(a, b, 255.0).mean())


def add_awgn(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise of ``sigma`` (0..255 scale), clipped and rounded to uint8."""
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def nlm(image: np.ndarray, h: float) -> np.ndarray:
    """OpenCV non-local means (the coloured variant for colour images), with h for luma and chroma."""
    if image.ndim == 2:
        return cv2.fastNlMeansDenoising(image, None, h, 7, 21)
    return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, 21)
