"""Denoiser: a uint8 frame in, a denoised uint8 frame of the same shape out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.errors import ModelCardError
from edge_runtime.frames import check_frame, from_planes, to_planes
from edge_runtime.model import Model

TILE_MARGIN = 32  # context kept around each tile: wider than the model's receptive field needs for no seams


class Denoiser:
    """Denoise camera or video frames with an edge-ae model (the bundled one by default).

    One Denoiser may be shared by several threads: it holds no per-call state, and the
    onnxruntime session it wraps is thread-safe.
    """

    def __init__(self, model: str | Path | Model | None = None, device: str = "auto", threads: int | None = None,
                 tile: int | None = 2048, spin: bool | None = None) -> None:
        self.model = model if isinstance(model, Model) else Model(model, device=device, threads=threads, spin=spin)
        card = self.model.card
        if card.task not in ("denoise", "both") or card.input.layout != "NCHW":
            msg = f"{self.model.path}: a {card.family} model for task {card.task!r} cannot denoise frames"
            raise ModelCardError(msg)
        self.spec = card.input
        self.tile = tile

    def denoise(self, frame: np.ndarray) -> np.ndarray:
        """Denoise one uint8 frame (H x W grey or H x W x 3 BGR); the result has the same shape."""
        f = check_frame(frame)
        x = to_planes(f, self.spec)
        y = self._run(x)
        return from_planes(y, f, self.spec)

    __call__ = denoise

    def _run(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2:]
        if self.tile and max(h, w) > self.tile:
            return self._run_tiled(x, self.tile)
        return self._run_padded(x)

    def _run_padded(self, x: np.ndarray) -> np.ndarray:
        m = self.spec.spatial_multiple
        h, w = x.shape[2:]
        ph, pw = -h % m, -w % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "edge"
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
        return self.model.run(x)[:, :, :h, :w]

    def _run_tiled(self, x: np.ndarray, tile: int) -> np.ndarray:
        """Process overlapping tiles and keep each tile's centre, so no seams show."""
        h, w = x.shape[2:]
        step = max(tile - 2 * TILE_MARGIN, 1)
        out = np.empty(x.shape, dtype=np.float32)
        for y0 in range(0, h, step):
            for x0 in range(0, w, step):
                y1, x1 = min(y0 + step, h), min(x0 + step, w)
                ya, xa = max(y0 - TILE_MARGIN, 0), max(x0 - TILE_MARGIN, 0)
                yb, xb = min(y1 + TILE_MARGIN, h), min(x1 + TILE_MARGIN, w)
                res = self._run_padded(x[:, :, ya:yb, xa:xb])
                out[:, :, y0:y1, x0:x1] = res[:, :, y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        return out
