"""Training images from folders, image files and video files, with a fixed validation split."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from train.errors import DataError

MIN_SIDE = 8  # smaller images hold no texture to learn from (a 1x1 image is one colour)

# Identical to edge_runtime.files' tuples (train may not import the runtime; tests/test_train.py checks they agree).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")


@dataclass(frozen=True)
class Sample:
    """One training image (uint8, H x W x C, RGB or grey) and where it came from."""

    name: str
    image: np.ndarray


def _read_image(path: Path, channels: int) -> np.ndarray:
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    img = cv2.imread(str(path), flag)
    if img is None:
        msg = f"{path}: not a readable image"
        raise DataError(msg)
    if min(img.shape[:2]) < MIN_SIDE:
        msg = f"{path}: {img.shape[1]}x{img.shape[0]} pixels is too small to train on (at least {MIN_SIDE}x{MIN_SIDE})"
        raise DataError(msg)
    return img[..., None] if channels == 1 else img[..., ::-1].copy()  # BGR -> RGB


def video_frames(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) for every frame of a video; an unopenable file raises DataError."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        msg = f"{path}: not a readable video"
        raise DataError(msg)
    try:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield i, frame
            i += 1
    finally:
        cap.release()


STILL_SCENE = 0.002  # share of moving pixels per frame below which a camera's normal footage is a still scene


def motion_share(paths: list[Path], limit: int = 200) -> tuple[float, tuple[int, int]]:
    """How much moves in videos: the mean share of pixels whose grey level changes by more than 12 between
    consecutive frames (at 120 x 80, area-averaged, so sensor noise and compression barely count), over the first
    ``limit`` frames of each; and the first frame's (height, width). Measured (README, Anomaly): UCSD Ped2's
    walkway 0.009-0.035 per clip, the Intel empty room 0 and the bottle scene 0.00001."""
    shares: list[float] = []
    size = (0, 0)
    for path in paths:
        prev: np.ndarray | None = None
        for i, frame in video_frames(path):
            if i >= limit:
                break
            if size == (0, 0):
                size = frame.shape[:2]
            g = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (120, 80), interpolation=cv2.INTER_AREA)
            g = g.astype(np.int16)
            if prev is not None:
                shares.append(float((np.abs(g - prev) > 12).mean()))
            prev = g
    return (float(np.mean(shares)) if shares else 0.0), size


def _read_video(path: Path, channels: int, every: int, limit: int) -> list[Sample]:
    """Every ``every``-th frame of ``path``, at most ``limit``; ``every`` 0: spread over the whole video (every
    frame of a short one; 10 when the container does not say how many frames it has)."""
    if every <= 0:
        cap = cv2.VideoCapture(str(path))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        every = max(1, math.ceil(count / limit)) if count > 0 else 10
    out: list[Sample] = []
    for i, frame in video_frames(path):
        if len(out) >= limit:
            break
        if i % every == 0:
            img = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[..., None] if channels == 1 else frame[..., ::-1].copy()
            out.append(Sample(f"{path.name}#{i}", img))
    if not out:
        msg = f"{path}: no frames could be decoded"
        raise DataError(msg)
    return out


def files_under(path: Path) -> list[Path]:
    """``path`` itself, or every file below the folder ``path`` (sorted); a missing path raises DataError."""
    if not path.exists():
        msg = f"{path}: no such file or folder"
        raise DataError(msg)
    return sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]


def collect(paths: list[str | Path], channels: int = 3, video_every: int = 10, video_limit: int = 300) -> list[Sample]:
    """Load every image under ``paths`` (folders are searched recursively) and frames of videos (every
    ``video_every``-th, at most ``video_limit`` per video; ``video_every`` 0: spread over each whole video)."""
    samples: list[Sample] = []
    for p in map(Path, paths):
        for f in files_under(p):
            suffix = f.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                samples.append(Sample(f.name if p.is_dir() else str(f), _read_image(f, channels)))
            elif suffix in VIDEO_SUFFIXES:
                samples.extend(_read_video(f, channels, video_every, video_limit))
            elif not p.is_dir():
                msg = f"{f}: not an image or video file (expected one of {sorted(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})"
                raise DataError(msg)
    if not samples:
        msg = f"no images or videos found in {', '.join(map(str, paths))}"
        raise DataError(msg)
    return samples


def is_validation(name: str, share: float) -> bool:
    """A fixed, name-based split: the same file is always on the same side, whatever else is loaded."""
    base = name.split("#")[0]  # frames of one video stay together
    return (zlib.crc32(base.encode()) % 10_000) < share * 10_000


def split(samples: list[Sample], share: float) -> tuple[list[Sample], list[Sample]]:
    """Split into (train, validation); with a single source file, its last frames validate.

    With a validation share, one image alone is refused: nothing would be left to validate on."""
    val = [s for s in samples if is_validation(s.name, share)]
    train = [s for s in samples if not is_validation(s.name, share)]
    if share > 0 and (not val or not train):
        k = max(1, round(len(samples) * share)) if len(samples) > 1 else 0
        train, val = samples[: len(samples) - k], samples[len(samples) - k :]
    if not train:
        msg = "no training images left after the validation split"
        raise DataError(msg)
    if share > 0 and not val:
        msg = (f"only {len(samples)} training image ({samples[0].name}): none is left to validate on; give at least "
               "two images or a video (or set val_share to 0 in a --config file to train without validation)")
        raise DataError(msg)
    return train, val


class PatchSampler:
    """Random square patches with random flips and 90-degree rotations, as float tensors in [0, 1]."""

    def __init__(self, samples: list[Sample], patch: int, seed: int = 0) -> None:
        usable = [s for s in samples if min(s.image.shape[:2]) >= patch]
        small = [s for s in samples if min(s.image.shape[:2]) < patch]
        # Images smaller than a patch are padded by reflection so tiny data sets still train.
        for s in small:
            h, w = s.image.shape[:2]
            img = cv2.copyMakeBorder(s.image, 0, max(0, patch - h), 0, max(0, patch - w), cv2.BORDER_REFLECT_101)
            usable.append(Sample(s.name, img if img.ndim == 3 else img[..., None]))
        self.samples = usable
        self.patch = patch
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        p = self.patch
        out = np.empty((size, p, p, self.samples[0].image.shape[2]), dtype=np.uint8)
        for i in range(size):
            img = self.samples[self.rng.integers(len(self.samples))].image
            y = self.rng.integers(img.shape[0] - p + 1)
            x = self.rng.integers(img.shape[1] - p + 1)
            crop = img[y : y + p, x : x + p]
            k = int(self.rng.integers(8))
            crop = np.rot90(crop, k % 4)
            out[i] = crop[:, ::-1] if k >= 4 else crop
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)  # (B, C, P, P)


def validation_batch(samples: list[Sample], size: int = 192, limit: int = 16) -> torch.Tensor:
    """Centre crops of up to ``limit`` validation images, as one (N, C, size, size) batch."""
    crops = []
    for s in samples[:limit]:
        img = s.image
        h, w = img.shape[:2]
        c = min(size, h, w) // 8 * 8
        y, x = (h - c) // 2, (w - c) // 2
        crop = img[y : y + c, x : x + c]
        if c != size:
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            crop = crop if crop.ndim == 3 else crop[..., None]
        crops.append(crop)
    arr = np.stack(crops)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
