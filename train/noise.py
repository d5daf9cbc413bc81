"""Corruptions applied to clean training images: Gaussian and realistic camera noise."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

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
    # Share of colour samples given ``add_realistic`` (unprocessed raw noise through a simulated camera)
    # instead of the above; p_camera and p_jpeg then apply to the others.
    p_real: float = 0.3

    def as_card(self) -> dict[str, object]:
        ranges = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(REALISTIC).items()}
        return {
            "gaussian_sigma": [0.0, self.sigma_max],
            "camera": {"shot_max": self.shot_max, "read_max": self.read_max, "share": self.p_camera},
            "jpeg_share": self.p_jpeg,
            "grey_share": self.p_grey,
            "realistic": {"share": self.p_real, **ranges},
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
    return x.clamp(0, 1).mul_(255.0).round_().div_(255.0)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip of one (C, H, W) RGB image in [0, 1]."""
    img = (x.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - encoder failure on valid arrays does not happen
        return x
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1).float() / 255.0


@dataclass(frozen=True)
class CameraRanges:
    """Ranges the camera parameters of ``add_realistic`` are drawn from (recorded in the model card).

    Sensor noise follows Brooks et al., "Unprocessing images for learned raw denoising" (CVPR 2019):
    log(shot) uniform, log(read**2) = 2.18 log(shot) + 1.20 + N(0, 0.26); white-balance gains and the
    brightness gain are theirs too. The in-camera steps (chroma / luma smoothing, sharpening, JPEG)
    are what makes sRGB camera noise spatially and cross-channel correlated (PolyU residuals: lag-1
    autocorrelation about 0.7, inter-channel correlation about 0.65).
    """

    shot: tuple[float, float] = (1e-4, 0.012)  # raw-domain variance per unit signal, log-uniform
    read_slope: float = 2.18
    read_intercept: float = 1.20
    read_jitter: float = 0.26
    red_gain: tuple[float, float] = (1.9, 2.4)
    blue_gain: tuple[float, float] = (1.5, 1.9)
    brightness: tuple[float, float] = (0.8, 0.1)  # mean, std of the inverse brightness gain
    ccm_diag: tuple[float, float] = (1.2, 2.0)  # diagonal of the camera-to-sRGB matrix (rows sum to 1)
    p_chroma_nr: float = 0.9  # share of samples whose chroma noise the "camera" smooths
    chroma_sigma: tuple[float, float] = (1.0, 3.0)  # Gaussian sigma in pixels
    chroma_keep: tuple[float, float] = (0.4, 1.0)  # share of the chroma noise amplitude left by that smoothing
    p_luma_nr: float = 0.6
    luma_sigma: tuple[float, float] = (0.4, 1.2)
    p_sharpen: float = 0.3
    sharpen: tuple[float, float] = (0.2, 0.8)  # unsharp-mask amount (sigma 1)
    p_jpeg: float = 0.7
    jpeg_quality: tuple[int, int] = (60, 95)
    p_edge_aware: float = 0.5  # share demosaiced edge-aware (OpenCV EA) instead of bilinear


REALISTIC = CameraRanges()
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class CameraParams:
    """Per-sample camera parameters of ``add_realistic``; 0 for a smoothing / sharpening / JPEG step is off."""

    shot: torch.Tensor  # (B,)
    read: torch.Tensor  # (B,) read-noise sigma, raw domain
    gains: torch.Tensor  # (B, 3) white-balance x brightness gains applied to raw RGB
    ccm: torch.Tensor  # (B, 3, 3) camera RGB -> linear sRGB
    chroma_sigma: torch.Tensor  # (B,)
    chroma_keep: torch.Tensor  # (B,) factor on the chroma noise (1: untouched)
    luma_sigma: torch.Tensor  # (B,)
    sharpen: torch.Tensor  # (B,)
    jpeg_quality: torch.Tensor  # (B,) int
    edge_aware: torch.Tensor  # (B,) bool: edge-aware demosaicing instead of bilinear

    def take(self, index: torch.Tensor) -> CameraParams:
        """The parameters of samples ``index`` (repeat one clip's camera over its frames)."""
        return CameraParams(*(getattr(self, f.name)[index] for f in fields(self)))


def sample_camera(n: int, generator: torch.Generator | None = None,
                  ranges: CameraRanges = REALISTIC) -> CameraParams:
    """Draw ``n`` random cameras (sensor noise level, gains, colour matrix, in-camera processing)."""
    g = generator

    def uniform(lo: float, hi: float, size: tuple[int, ...] = (n,)) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(size, generator=g)

    def maybe(p: float, lo: float, hi: float) -> torch.Tensor:
        return torch.where(torch.rand(n, generator=g) < p, uniform(lo, hi), torch.zeros(n))

    log_shot = uniform(math.log(ranges.shot[0]), math.log(ranges.shot[1]))
    log_read_var = (ranges.read_slope * log_shot + ranges.read_intercept
                    + ranges.read_jitter * torch.randn(n, generator=g))
    brightness = 1.0 / (ranges.brightness[0] + ranges.brightness[1] * torch.randn(n, generator=g)).clamp(0.5, 1.1)
    gains = torch.stack([uniform(*ranges.red_gain), torch.ones(n), uniform(*ranges.blue_gain)], 1)
    # Colour matrix: a diagonal above 1 with negative off-diagonals, each row summing to 1 (grey stays grey).
    diag = uniform(*ranges.ccm_diag, (n, 3))
    split = torch.rand(n, 3, generator=g)
    ccm = torch.diag_embed(diag)
    off = [(1, 2), (0, 2), (0, 1)]
    for i, (j, k) in enumerate(off):
        ccm[:, i, j] = -(diag[:, i] - 1) * split[:, i]
        ccm[:, i, k] = -(diag[:, i] - 1) * (1 - split[:, i])
    q = torch.randint(ranges.jpeg_quality[0], ranges.jpeg_quality[1] + 1, (n,), generator=g)
    chroma_sigma = maybe(ranges.p_chroma_nr, *ranges.chroma_sigma)
    chroma_keep = torch.where(chroma_sigma > 0, uniform(*ranges.chroma_keep), torch.ones(n))
    return CameraParams(
        shot=log_shot.exp(),
        read=(0.5 * log_read_var).exp(),
        gains=gains * brightness[:, None],
        ccm=ccm,
        chroma_sigma=chroma_sigma,
        chroma_keep=chroma_keep,
        luma_sigma=maybe(ranges.p_luma_nr, *ranges.luma_sigma),
        sharpen=maybe(ranges.p_sharpen, *ranges.sharpen),
        jpeg_quality=torch.where(torch.rand(n, generator=g) < ranges.p_jpeg, q, torch.zeros_like(q)),
        edge_aware=torch.rand(n, generator=g) < ranges.p_edge_aware,
    )


def _tone_luts(n: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables on [0, 1] (``n`` steps): sRGB -> linear (inverse smoothstep tone curve, then
    gamma 2.2) and its inverse; tables because asin / pow on every pixel cost more than the rest."""
    v = np.linspace(0.0, 1.0, n)
    to_linear = np.maximum(0.5 - np.sin(np.arcsin(1.0 - 2.0 * v) / 3.0), 0.0) ** 2.2
    g = v ** (1 / 2.2)
    to_srgb = 3 * g**2 - 2 * g**3
    return to_linear.astype(np.float32), to_srgb.astype(np.float32)


_TO_LINEAR, _TO_SRGB = _tone_luts()
_RAW_OFFSET, _RAW_SCALE = 0.125, 52000.0  # raw values in [-0.125, 1.13] -> uint16 for OpenCV's demosaicing


def _lut(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``table`` looked up at ``x`` (float32, clipped to [0, 1]; overwritten)."""
    np.clip(x, 0.0, 1.0, out=x)
    x *= len(table) - 1
    x += 0.5
    return table.take(x.astype(np.int32))


def _mosaic(cam: np.ndarray) -> np.ndarray:
    """(H, W, 3) camera RGB -> (H, W) RGGB mosaic."""
    raw = np.empty(cam.shape[:2], np.float32)
    raw[0::2, 0::2] = cam[0::2, 0::2, 0]
    raw[0::2, 1::2] = cam[0::2, 1::2, 1]
    raw[1::2, 0::2] = cam[1::2, 0::2, 1]
    raw[1::2, 1::2] = cam[1::2, 1::2, 2]
    return raw


def _demosaic(raw: np.ndarray, edge_aware: bool) -> np.ndarray:
    """(H, W) RGGB mosaic -> (H, W, 3) RGB, bilinear or OpenCV's edge-aware interpolation."""
    u16 = np.clip((raw + _RAW_OFFSET) * _RAW_SCALE + 0.5, 0, 65535).astype(np.uint16)
    # OpenCV names a Bayer pattern by its second row: RGGB is "BayerBG".
    code = cv2.COLOR_BayerBG2RGB_EA if edge_aware else cv2.COLOR_BayerBG2RGB
    return cv2.cvtColor(u16, code).astype(np.float32) / _RAW_SCALE - _RAW_OFFSET


def _camera_isp(rgb: np.ndarray, chroma_sigma: float, chroma_keep: float, luma_sigma: float,
                sharpen: float) -> np.ndarray:
    """In-camera smoothing (and damping) of chroma, smoothing of luma, and unsharp masking of luma, of
    (H, W, 3) sRGB (linear)."""
    if chroma_sigma <= 0 and chroma_keep == 1 and luma_sigma <= 0 and sharpen <= 0:
        return rgb
    y = rgb @ np.array(_LUMA, np.float32)  # (H, W)
    c = (rgb - y[..., None]) * np.float32(chroma_keep)
    if chroma_sigma > 0:
        c = cv2.GaussianBlur(c, (0, 0), chroma_sigma, borderType=cv2.BORDER_REPLICATE)
    if luma_sigma > 0:
        y = cv2.GaussianBlur(y, (0, 0), luma_sigma, borderType=cv2.BORDER_REPLICATE)
    if sharpen > 0:
        y = y + sharpen * (y - cv2.GaussianBlur(y, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE))
    return c + y[..., None]


def add_realistic(clean: torch.Tensor, generator: torch.Generator | None = None,
                  params: CameraParams | None = None) -> torch.Tensor:
    """Real-camera-like noise for (B, 3, H, W) sRGB images in [0, 1], quantised to 8-bit levels.

    Per sample (``params``, or random cameras from ``sample_camera``): unprocess to linear raw (inverse
    tone curve and gamma, inverse colour matrix, white balance and brightness gains), mosaic to RGGB, add
    heteroscedastic noise (variance shot * x + read**2), demosaic, process back, then the in-camera chroma /
    luma smoothing and sharpening of that noise, 8-bit rounding and JPEG as the parameters ask. The image
    itself is not demosaiced or smoothed: the noisy result is ``clean`` plus the noise the camera made.
    """
    b, c, h, w = clean.shape
    if c != 3:
        msg = f"add_realistic takes RGB images (B, 3, H, W); got shape {tuple(clean.shape)}"
        raise ValueError(msg)
    p = params if params is not None else sample_camera(b, generator)
    if len(p.shot) != b:
        msg = f"add_realistic: {len(p.shot)} cameras for {b} images"
        raise ValueError(msg)
    images = clean.detach().float().permute(0, 2, 3, 1).numpy()  # (B, H, W, 3)
    noise = torch.randn((b, h, w), generator=generator).numpy()
    to_rgb = (p.ccm * p.gains[:, None, :]).numpy()  # camera raw -> linear sRGB: gains, then colour matrix
    to_cam = np.linalg.inv(to_rgb.astype(np.float64)).astype(np.float32)
    var_shot, var_read = p.shot.numpy(), (p.read**2).numpy()
    out = np.empty((b, 3, h, w), np.uint8)
    for i in range(b):
        raw = _mosaic(cv2.transform(_lut(_TO_LINEAR, images[i].copy()), to_cam[i]))
        var = var_shot[i] * np.maximum(raw, 0) + var_read[i]
        # The sensor saturates at 1; values below 0 survive (a black-level offset) until the final clip.
        noisy_raw = np.minimum(raw + np.sqrt(var) * noise[i], 1.0)
        ea = bool(p.edge_aware[i])
        rgb, rgb0 = (_lut(_TO_SRGB, cv2.transform(_demosaic(r, ea), to_rgb[i])) for r in (noisy_raw, raw))
        # Only the noise goes through the camera: the clean target keeps its detail and colours (a real
        # pair's ground truth went through the same demosaicing and smoothing as its noisy frame).
        # The in-camera smoothing and sharpening are linear, so they act on the difference alone.
        rgb = images[i] + _camera_isp(rgb - rgb0, float(p.chroma_sigma[i]), float(p.chroma_keep[i]),
                                      float(p.luma_sigma[i]), float(p.sharpen[i]))
        img = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
        q = int(p.jpeg_quality[i])
        if q > 0:
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
            if decoded is not None:
                img = decoded[..., ::-1]
        out[i] = img.transpose(2, 0, 1)
    return torch.from_numpy(out).to(clean.dtype).div_(255.0)


@dataclass(frozen=True)
class NoisePlan:
    """What ``corrupt`` will do to each sample of a batch, drawn on the CPU (``plan_noise``), with the
    realistic-camera samples already made (they need OpenCV); ``apply_noise`` adds the rest where the batch is,
    so a GPU training run makes its Gaussian and shot + read noise on the GPU. Tensors only: a DataLoader worker
    can send it (``as_dict`` / ``from_dict``)."""

    grey: torch.Tensor  # (B,) bool: identical channels, identical noise
    real: torch.Tensor  # (B,) bool: realistic camera noise (then ``realistic`` holds them, in order)
    camera: torch.Tensor  # (B,) bool: shot + read noise instead of Gaussian
    sigma: torch.Tensor  # (B,) Gaussian sigma, 0..255
    shot: torch.Tensor  # (B,)
    read: torch.Tensor  # (B,)
    jpeg_quality: torch.Tensor  # (B,) int, 0: no JPEG round trip
    realistic: torch.Tensor  # (k, C, H, W) the noisy images of the ``real`` samples, 8-bit levels in [0, 1]

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(d: dict[str, torch.Tensor]) -> NoisePlan:
        return NoisePlan(**d)


def plan_noise(clean: torch.Tensor, cfg: NoiseConfig, generator: torch.Generator | None = None,
               finish_jpeg: bool = False) -> NoisePlan:
    """Draw the noise kinds and parameters of each sample of ``clean`` (B, C, H, W), on the CPU, and make the
    realistic-camera samples (a grey one gets the luma of the simulated camera's output). With ``finish_jpeg``
    the samples that get a JPEG round trip are made here too (their noise, then the JPEG, on the CPU) and join
    the ready-made ones: ``apply_noise`` on a GPU then never waits for the CPU (measured on an H200: made one
    by one in the training process, they cut the still recipe from 40.7 to 24.4 steps/s)."""
    b, c = clean.shape[:2]
    g = generator
    no = torch.zeros(b, dtype=torch.bool)
    grey = torch.rand(b, generator=g) < cfg.p_grey if c == 3 and cfg.p_grey > 0 else no
    real = torch.rand(b, generator=g) < cfg.p_real if c == 3 and cfg.p_real > 0 else no
    sigma = torch.rand(b, generator=g) * cfg.sigma_max
    camera = torch.rand(b, generator=g) < cfg.p_camera
    shot = torch.rand(b, generator=g) * cfg.shot_max
    read = torch.exp(math.log(0.002) + (math.log(cfg.read_max) - math.log(0.002)) * torch.rand(b, generator=g))
    q = torch.randint(60, 96, (b,), generator=g)
    jpeg_on = camera & ~real & (torch.rand(b, generator=g) < cfg.p_jpeg) if cfg.p_jpeg > 0 and c == 3 else no
    realistic = clean.new_zeros((0, *clean.shape[1:]))
    if real.any():
        src = _grey(clean[real].cpu(), grey[real])
        realistic = add_realistic(src, g)
        both = grey[real]
        if both.any():
            y = quantize((realistic[both] * torch.tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True))
            realistic[both] = y.expand(-1, c, -1, -1)
    quality = torch.where(jpeg_on, q, torch.zeros_like(q))
    if finish_jpeg and jpeg_on.any():
        sub = NoisePlan(grey[jpeg_on], no[jpeg_on], camera[jpeg_on], sigma[jpeg_on], shot[jpeg_on], read[jpeg_on],
                        quality[jpeg_on], realistic[:0])
        made = apply_noise(clean[jpeg_on].cpu(), sub, g)[0]
        ready = real | jpeg_on  # in batch order: the realistic samples and the JPEG ones
        both = clean.new_empty((int(ready.sum()), *clean.shape[1:]))
        both[real[ready]] = realistic.to(both.dtype)
        both[jpeg_on[ready]] = made.to(both.dtype)
        real, realistic, quality = ready, both, torch.zeros_like(q)
    return NoisePlan(grey, real, camera, sigma, shot, read, quality, realistic)


def _grey(clean: torch.Tensor, grey: torch.Tensor) -> torch.Tensor:
    """``clean`` with the ``grey`` samples (a CPU mask) replaced by their luma in every channel (a copy when any
    is)."""
    if clean.shape[1] != 3 or not grey.any():
        return clean
    out = clean.clone()
    idx = grey.cpu().nonzero().flatten().to(clean.device)
    w = torch.tensor(_LUMA, device=clean.device).view(1, 3, 1, 1)  # RGB order
    out.index_copy_(0, idx, (clean.index_select(0, idx) * w).sum(1, keepdim=True).expand(-1, 3, -1, -1))
    return out


def apply_noise(clean: torch.Tensor, plan: NoisePlan,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, clean) for ``clean`` (B, C, H, W) on any device, as ``plan`` says; ``generator`` on that device.
    Gaussian and shot + read noise in a few passes over the whole batch where it is; the few JPEG round trips
    go through the CPU; the realistic samples come from the plan."""
    dev = clean.device
    c = clean.shape[1]
    p = NoisePlan(*(t.to(dev, non_blocking=True) for t in plan.as_dict().values()))
    clean = _grey(clean, plan.grey)  # decisions from the plan's CPU copy: no waiting on the device

    def v(t: torch.Tensor) -> torch.Tensor:
        return t.view(-1, 1, 1, 1)

    var = torch.where(v(p.camera), v(p.shot) * clean + v(p.read) ** 2, v(p.sigma / 255.0) ** 2)  # per pixel
    n = torch.randn(clean.shape, generator=generator, device=dev)
    if c > 1 and plan.grey.any():  # one noise plane for all three channels of a grey sample
        n[:, 1:] = torch.where(v(p.grey), n[:, :1], n[:, 1:])
        var[:, 1:] = torch.where(v(p.grey), var[:, :1], var[:, 1:])
    noisy = quantize(torch.addcmul(clean, n, var.clamp_min_(0).sqrt_()))
    for i in torch.nonzero(plan.jpeg_quality).flatten().tolist():
        noisy[i] = jpeg(noisy[i].cpu(), int(plan.jpeg_quality[i])).to(dev)
    if plan.real.any():
        noisy.index_copy_(0, plan.real.nonzero().flatten().to(dev), p.realistic.to(noisy.dtype))
    return noisy, clean


def corrupt(clean: torch.Tensor, cfg: NoiseConfig,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (noisy, clean) for a batch (B, C, H, W) in [0, 1] on the CPU, mixing the noise kinds of ``cfg``
    (``plan_noise`` then ``apply_noise``).

    Grey samples get identical channels and identical noise in every channel, so a colour
    model also learns to denoise grey frames fed to it as three equal channels; a grey sample drawn
    for realistic noise gets the luma of the simulated camera's output.
    """
    return apply_noise(clean, plan_noise(clean, cfg, generator), generator)
