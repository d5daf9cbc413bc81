"""Image-quality measures and the synthetic-noise protocol used by the benchmarks."""

from __future__ import annotations

import cv2
import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-12))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5) of two uint8 images; colour images average their channels."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def add_awgn(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise of ``sigma`` (0..255 scale), clipped and rounded to uint8."""
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def nlm(image: np.ndarray, h: float) -> np.ndarray:
    """OpenCV non-local means (the coloured variant for colour images), with h for luma and chroma."""
    if image.ndim == 2:
        return cv2.fastNlMeansDenoising(image, None, h, 7, 21)
    return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, 21)
