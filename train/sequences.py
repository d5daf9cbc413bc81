"""Training clips for recurrent video denoisers (train.loop_video).

* ``SyntheticClips``: short clips rendered from still photos with a synthetic camera path (static, slow,
  pan, fast, hand shake, zoom/rotation), moving pasted objects (occlusions), brightness changes and hard
  cuts to another photo.
* ``RealClips``: consecutive frames (stride 1-2) of real video clips, random crop, flip, reversed play.
* ``add_sequence_noise``: the blind noise mix of ``train.noise.NoiseConfig`` with the noise kind and level
  (for realistic noise: the whole simulated camera) fixed per clip and an independent realisation per frame.
* ``load_sources``: photos and clips from the `edge-ae train` data arguments.

All clips are float tensors (T, 3, P, P) RGB in [0, 1].
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch

from train.data import IMAGE_SUFFIXES, VIDEO_SUFFIXES, files_under, video_frames
from train.errors import DataError
from train.noise import NoiseConfig, add_camera, add_gaussian, add_realistic, jpeg, quantize, sample_camera

GREY_W = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
MAX_SIDE = 480  # video frames are scaled down to this side (training patches are small)
MAX_CLIP_FRAMES = 300  # frames read per video


def read_clip(path: Path, max_side: int = MAX_SIDE, limit: int = MAX_CLIP_FRAMES) -> list[np.ndarray]:
    """Up to ``limit`` consecutive RGB frames of a video, scaled down to ``max_side``."""
    frames: list[np.ndarray] = []
    for _, f in video_frames(path):
        if len(frames) >= limit:
            break
        if max(f.shape[:2]) > max_side:
            s = max_side / max(f.shape[:2])
            f = cv2.resize(f, (round(f.shape[1] * s), round(f.shape[0] * s)), interpolation=cv2.INTER_AREA)
        frames.append(np.ascontiguousarray(f[..., ::-1]))
    return frames


def load_sources(paths: list[str | Path], patch: int) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
    """Photos (name -> RGB image) and video clips (name -> RGB frames) under ``paths``; images or clips
    smaller than ``patch`` are left out."""
    photos: dict[str, np.ndarray] = {}
    clips: dict[str, list[np.ndarray]] = {}
    for p in map(Path, paths):
        for f in files_under(p):
            suffix = f.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if img is not None and min(img.shape[:2]) >= patch:
                    photos[f.name if p.is_dir() else str(f)] = np.ascontiguousarray(img[..., ::-1])
            elif suffix in VIDEO_SUFFIXES:
                frames = read_clip(f)
                if frames and min(frames[0].shape[:2]) >= patch:
                    clips[f.name if p.is_dir() else str(f)] = frames
    if not photos and not clips:
        msg = f"no images or videos of at least {patch}x{patch} pixels in {', '.join(map(str, paths))}"
        raise DataError(msg)
    return photos, clips


def _to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    a = np.stack(frames).astype(np.float32) / 255.0  # (T, P, P, 3)
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


class SyntheticClips:
    """Clips rendered from still photos with a random camera path, objects, brightness and cuts."""

    def __init__(self, photos: list[np.ndarray], rng: np.random.Generator) -> None:
        self.photos = photos
        self.rng = rng

    def _photo(self) -> np.ndarray:
        img = self.photos[self.rng.integers(len(self.photos))]
        s = self.rng.uniform(0.6, 1.0)  # random downscale: varied scale of detail
        if s < 0.97:
            img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        if self.rng.random() < 0.5:
            img = img[:, ::-1]
        return np.ascontiguousarray(img)

    def _path(self, t_len: int) -> list[np.ndarray]:
        """Per-frame 2x3 inverse affine maps (output -> source, about the crop centre)."""
        r = self.rng
        kind = r.choice(["static", "slow", "pan", "fast", "shake", "zoomrot"], p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
        v = np.zeros(2)
        zoom = 0.0
        rot = 0.0
        shake = 0.0
        if kind == "slow":
            v = r.normal(0, 0.6, 2)
        elif kind == "pan":
            v = r.normal(0, 2.0, 2)
        elif kind == "fast":
            v = r.normal(0, 6.0, 2)
        elif kind == "shake":
            shake = r.uniform(0.3, 2.0)
            v = r.normal(0, 0.3, 2)
        elif kind == "zoomrot":
            zoom = r.normal(0, 0.01)
            rot = r.normal(0, 0.5)
            v = r.normal(0, 0.5, 2)
        mats = []
        pos = np.zeros(2)
        for t in range(t_len):
            jitter = r.normal(0, shake, 2) if shake else np.zeros(2)
            s = math.exp(zoom * t)
            a = math.radians(rot * t)
            c, sn = math.cos(a) / s, math.sin(a) / s
            off = pos + jitter
            mats.append(np.array([[c, -sn, off[0]], [sn, c, off[1]]]))
            pos = pos + v
        return mats

    def _render(self, img: np.ndarray, mats: list[np.ndarray], p: int) -> list[np.ndarray]:
        h, w = img.shape[:2]
        span = max(abs(m[0, 2]) for m in mats) + max(abs(m[1, 2]) for m in mats)
        margin = int(p * 0.75 + span) + 2
        cx = self.rng.uniform(min(margin, w / 2), max(w - margin, w / 2))
        cy = self.rng.uniform(min(margin, h / 2), max(h - margin, h / 2))
        out = []
        for m in mats:
            a = m[:, :2]
            centre_out = np.array([p / 2, p / 2])
            t = np.array([cx, cy]) + m[:, 2] - a @ centre_out
            full = np.concatenate([a, t[:, None]], 1)
            out.append(cv2.warpAffine(img, full, (p, p), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                      borderMode=cv2.BORDER_REFLECT))
        return out

    def _add_object(self, frames: list[np.ndarray]) -> None:
        r = self.rng
        p = frames[0].shape[0]
        src = self._photo()
        size = int(r.uniform(0.15, 0.5) * p)
        y0 = r.integers(0, src.shape[0] - size)
        x0 = r.integers(0, src.shape[1] - size)
        patch = src[y0 : y0 + size, x0 : x0 + size].astype(np.float32)
        mask = np.zeros((size, size), np.float32)
        if r.random() < 0.5:
            axes = (size // 2 - 1, int(size * r.uniform(0.25, 0.5)))
            cv2.ellipse(mask, (size // 2, size // 2), axes, r.uniform(0, 180), 0, 360, 1.0, -1)
        else:
            mask[size // 8 : -size // 8 or None, :] = 1.0
        mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
        pos = r.uniform(-size / 2, p - size / 2, 2)
        vel = r.normal(0, 4.0, 2)
        for f in frames:
            x, y = round(pos[0]), round(pos[1])
            xa, ya, xb, yb = max(x, 0), max(y, 0), min(x + size, p), min(y + size, p)
            if xb > xa and yb > ya:
                pm = patch[ya - y : yb - y, xa - x : xb - x]
                mm = mask[ya - y : yb - y, xa - x : xb - x]
                reg = f[ya:yb, xa:xb].astype(np.float32)
                f[ya:yb, xa:xb] = (reg * (1 - mm) + pm * mm + 0.5).astype(np.uint8)
            pos = pos + vel

    def clip(self, t_len: int, p: int) -> torch.Tensor:
        r = self.rng
        cut = int(r.integers(1, t_len)) if r.random() < 0.2 else t_len
        frames = self._render(self._photo(), self._path(cut), p)
        if cut < t_len:
            frames += self._render(self._photo(), self._path(t_len - cut), p)
        frames = [np.ascontiguousarray(f) for f in frames]
        if r.random() < 0.4:
            self._add_object(frames)
        x = _to_tensor(frames)
        if r.random() < 0.2:  # brightness ramp / flicker
            gain = (1.0 + np.cumsum(r.normal(0, 0.03, t_len)) if r.random() < 0.5
                    else np.linspace(1.0, r.uniform(0.6, 1.4), t_len))
            x = (x * torch.tensor(gain, dtype=torch.float32).view(-1, 1, 1, 1)).clamp(0, 1)
            x = torch.round(x * 255) / 255
        return x


class RealClips:
    """Random windows of real camera clips (list of frame lists, RGB uint8)."""

    def __init__(self, clips: list[list[np.ndarray]], rng: np.random.Generator) -> None:
        self.clips = [c for c in clips if len(c) >= 2]
        self.weights = np.array([math.sqrt(len(c)) for c in self.clips])
        self.weights /= self.weights.sum()
        self.rng = rng

    def clip(self, t_len: int, p: int) -> torch.Tensor:
        r = self.rng
        frames = self.clips[r.choice(len(self.clips), p=self.weights)]
        stride = 2 if (r.random() < 0.3 and len(frames) > 2 * t_len + 1) else 1
        start = int(r.integers(0, len(frames) - stride * (t_len - 1)))
        h, w = frames[0].shape[:2]
        y = int(r.integers(0, h - p + 1))
        x = int(r.integers(0, w - p + 1))
        sel = [frames[start + stride * i][y : y + p, x : x + p] for i in range(t_len)]
        if r.random() < 0.5:
            sel = [f[:, ::-1] for f in sel]
        if r.random() < 0.3:  # play backwards
            sel = sel[::-1]
        return _to_tensor([np.ascontiguousarray(f) for f in sel])


def add_sequence_noise(clean: torch.Tensor, rng: np.random.Generator,
                       cfg: NoiseConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """clean (B, T, 3, P, P) -> (noisy, clean): the blind mix of ``cfg`` (AWGN, camera shot + read noise,
    JPEG, realistic camera noise, grey), the noise kind and level fixed per clip (for realistic noise, one
    simulated camera per clip), an independent realisation per frame."""
    cfg = cfg or NoiseConfig()
    sigma_max = cfg.sigma_max
    b, t_len = clean.shape[:2]
    clean = clean.clone()
    noisy = torch.empty_like(clean)
    for i in range(b):
        x = clean[i]
        grey = rng.random() < cfg.p_grey
        if grey:
            x = (x * GREY_W).sum(1, keepdim=True).expand(-1, 3, -1, -1).contiguous()
            clean[i] = x
        if cfg.p_real > 0 and rng.random() < cfg.p_real:  # no draw at 0: the other kinds stay as they were
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            camera_params = sample_camera(1, g).take(torch.zeros(t_len, dtype=torch.long))
            n = add_realistic(x, g, camera_params)
            if grey:
                n = quantize((n * GREY_W).sum(1, keepdim=True)).expand(-1, 3, -1, -1)
            noisy[i] = n
            continue
        xin = x[:, :1] if grey else x
        if rng.random() < cfg.p_camera:
            shot = torch.full((t_len,), rng.uniform(0, cfg.shot_max))
            read = torch.full((t_len,), math.exp(rng.uniform(math.log(0.002), math.log(cfg.read_max))))
            n = add_camera(xin, shot, read)
            camera = True
        else:
            sigma = torch.full((t_len,), rng.uniform(0, sigma_max))
            n = add_gaussian(xin, sigma)
            camera = False
        n = quantize(n)
        if grey:
            n = n.expand(-1, 3, -1, -1)
        if camera and rng.random() < cfg.p_jpeg:
            q = int(rng.integers(60, 96))
            n = torch.stack([jpeg(f, q) for f in n])
        noisy[i] = n
    return noisy, clean
