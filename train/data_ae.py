"""Fixed-size training frames for the autoencoder families: digit tables (csv.gz), images, videos,
and sequences cut from videos."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import cv2
import numpy as np

from train.data import VIDEO_SUFFIXES, Sample, collect, files_under, video_frames
from train.errors import DataError

TABLE_SUFFIXES = (".csv.gz", ".csv")


def is_table(path: Path) -> bool:
    return path.name.lower().endswith(TABLE_SUFFIXES)


def read_digit_table(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A table of square grey images, one per row, pixels then a label (MNIST csv, sklearn digits).

    Returns (uint8 images (N, S, S), labels (N,)); pixel values are rescaled from the table's range
    (0..16 for the 8x8 digits, 0..255 for MNIST) to 0..255.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt") as f:
            data = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, ValueError, EOFError) as e:
        msg = f"{path}: not a readable digit table ({e})"
        raise DataError(msg) from None
    side = math.isqrt(data.shape[1] - 1)
    if data.shape[0] == 0 or side * side != data.shape[1] - 1:
        msg = f"{path}: expected rows of S*S pixels and a label, got {data.shape[1]} columns"
        raise DataError(msg)
    pixels = data[:, :-1]
    top = 16.0 if pixels.max() <= 16 else 255.0
    images = np.clip(np.rint(pixels * (255.0 / top)), 0, 255).astype(np.uint8).reshape(-1, side, side)
    return images, data[:, -1].astype(np.int64)


def _fit(img: np.ndarray, height: int, width: int) -> np.ndarray:
    if img.shape[:2] != (height, width):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    return img if img.ndim == 3 else img[..., None]


def load_images(paths: list[str | Path], channels: int, height: int | None,
                width: int | None) -> tuple[list[Sample], int, int]:
    """Every image, video frame and table row under ``paths`` at one size (H, W, C uint8, RGB or grey).

    Without a size, tables keep their native size and other images become 28 x 28.
    """
    samples: list[Sample] = []
    others: list[str | Path] = []
    for p in map(Path, paths):
        if p.is_file() and is_table(p):
            if channels != 1:
                msg = f"{p}: digit tables are grey; use --channels 1"
                raise DataError(msg)
            images, _ = read_digit_table(p)
            if height is None or width is None:
                height = height or images.shape[1]
                width = width or images.shape[2]
            samples += [Sample(f"{p.name}:{i}", _fit(im, height, width)) for i, im in enumerate(images)]
        elif p.is_dir():
            tables = sorted(f for f in p.rglob("*") if f.is_file() and is_table(f))
            rest = [f for f in sorted(p.rglob("*")) if f.is_file() and not is_table(f)]
            if tables:
                got, height, width = load_images(tables, channels, height, width)
                samples += got
            if rest:
                others.append(p)
        else:
            others.append(p)
    height, width = height or 28, width or 28
    if others:
        # video frames spread over each whole video (every frame of a short clip of a scene)
        samples += [Sample(s.name, _fit(s.image, height, width))
                    for s in collect(others, channels=channels, video_every=0)]
    if not samples:
        msg = f"no images found in {', '.join(map(str, paths))}"
        raise DataError(msg)
    return samples, height, width


def read_video_frames(path: str | Path, channels: int, height: int, width: int, step: int = 1) -> np.ndarray:
    """Every ``step``-th frame of a video at (height, width): uint8 (N, H, W, C), RGB or grey."""
    frames = []
    for i, frame in video_frames(Path(path)):
        if i % step == 0:
            img = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if channels == 1 else frame[..., ::-1]
            frames.append(_fit(img, height, width))
    if not frames:
        msg = f"{path}: no frames could be decoded"
        raise DataError(msg)
    return np.stack(frames)


def load_sequences(paths: list[str | Path], channels: int, height: int, width: int, seq_len: int,
                   stride: int | None = None, step: int = 1) -> list[Sample]:
    """Windows of ``seq_len`` consecutive frames cut from videos (each a (T, H, W, C) uint8 sample).

    Names are ``clip#start`` so every window of one clip falls on the same side of the split.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        vids = [f for f in files_under(p) if f.suffix.lower() in VIDEO_SUFFIXES]
        if not p.is_dir() and not vids:
            msg = f"{p}: sequence models train on videos ({', '.join(sorted(VIDEO_SUFFIXES))})"
            raise DataError(msg)
        files += vids
    if not files:
        msg = f"no videos found in {', '.join(map(str, paths))}"
        raise DataError(msg)
    stride = stride or max(1, seq_len // 2)
    out: list[Sample] = []
    for f in files:
        frames = read_video_frames(f, channels, height, width, step)
        for s in range(0, len(frames) - seq_len + 1, stride):
            out.append(Sample(f"{f.name}#{s}", frames[s : s + seq_len]))
    if not out:
        msg = f"the videos have fewer than --seq-len {seq_len} frames"
        raise DataError(msg)
    return out
