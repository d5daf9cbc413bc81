"""Denoiser: a uint8 frame in, a denoised uint8 frame of the same shape out."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import ModelCardError
from edge_runtime.frames import check_frame, from_planes, pad_planes, pad_to_multiple, to_planes
from edge_runtime.model import Model

TILE_MARGIN = 32  # context kept around each tile: wider than the model's receptive field needs for no seams
MIN_TILE = 4 * TILE_MARGIN  # a tile keeps at least its centre half: smaller tiles would mostly recompute margins


class Denoiser:
    """Denoise camera or video frames with an edge-ae model (the bundled one by default).

    One Denoiser may be shared by several threads: it holds no per-call state (I/O binding
    buffers are per thread), and the onnxruntime session it wraps is thread-safe.

    Models exported with ``--frame-io`` take uint8 BGR frames and convert inside the graph, so
    with CUDA only the uint8 frame goes to the GPU and only the uint8 result comes back.
    ``bind`` (default: on with CUDA) runs through onnxruntime I/O binding.
    """

    def __init__(self, model: str | Path | Model | None = None, device: str = "auto", threads: int | None = None,
                 tile: int | None = 2048, spin: bool | None = None, bind: bool | None = None) -> None:
        self.model = model if isinstance(model, Model) else Model(model, device=device, threads=threads, spin=spin)
        card = self.model.card
        if card.task not in ("denoise", "both") or card.input.layout not in ("NCHW", "NHWC"):
            msg = f"{self.model.path}: a {card.family} model for task {card.task!r} cannot denoise frames"
            raise ModelCardError(msg)
        self.spec = card.input
        if tile is not None and tile != 0 and tile < MIN_TILE:
            msg = f"tile {tile} is too small; expected at least {MIN_TILE} pixels (or None: no tiling)"
            raise ValueError(msg)
        self.tile = tile
        self.bind = self.model.device == "cuda" if bind is None else bind
        self.frame_io = card.input.layout == "NHWC"

    def denoise(self, frame: np.ndarray) -> np.ndarray:
        """Denoise one uint8 frame (H x W or H x W x 1 grey, H x W x 3 BGR, H x W x 4 BGRA); the result has
        the same shape. An alpha channel is passed through unchanged."""
        if isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] in (1, 4):
            if frame.shape[2] == 1:
                return self.denoise(frame[:, :, 0])[:, :, None]
            return np.dstack([self.denoise(frame[:, :, :3]), frame[:, :, 3]])
        f = check_frame(frame)
        if self.frame_io:
            return self._denoise_frame(f)
        x = to_planes(f, self.spec)
        y = self._run(x)
        return from_planes(y, f, self.spec)

    __call__ = denoise

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return self.model.run_bound(x) if self.bind else self.model.run(x)

    def _denoise_frame(self, f: np.ndarray) -> np.ndarray:
        """uint8 frame in, uint8 frame out: the model converts (NHWC BGR, padded to its multiple)."""
        bgr = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f
        h, w = bgr.shape[:2]
        out = np.empty_like(bgr)
        for (ya, yb, xa, xb), (y0, y1, x0, x1) in _tiles(h, w, self.tile):
            padded, _ = pad_to_multiple(bgr[ya:yb, xa:xb], self.spec.spatial_multiple)
            res = self._infer(padded[None])[0]
            out[y0:y1, x0:x1] = res[y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        if f.ndim == 2:
            return ((out.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2:]
        if self.tile and max(h, w) > self.tile:
            return self._run_tiled(x, self.tile)
        return self._run_padded(x)

    def _run_padded(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2:]
        return self._infer(pad_planes(x, self.spec.spatial_multiple))[:, :, :h, :w]

    def _run_tiled(self, x: np.ndarray, tile: int) -> np.ndarray:
        """Process overlapping tiles and keep each tile's centre, so no seams show."""
        h, w = x.shape[2:]
        out = np.empty(x.shape, dtype=np.float32)
        for (ya, yb, xa, xb), (y0, y1, x0, x1) in _tiles(h, w, tile):
            res = self._run_padded(x[:, :, ya:yb, xa:xb])
            out[:, :, y0:y1, x0:x1] = res[:, :, y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        return out


def _tiles(h: int, w: int, tile: int | None) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """(region read with margin, region kept) pairs covering an h x w frame; one pair when it fits a tile."""
    if not tile or max(h, w) <= tile:
        return [((0, h, 0, w), (0, h, 0, w))]
    step = max(tile - 2 * TILE_MARGIN, 1)
    pairs = []
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            y1, x1 = min(y0 + step, h), min(x0 + step, w)
            ya, xa = max(y0 - TILE_MARGIN, 0), max(x0 - TILE_MARGIN, 0)
            yb, xb = min(y1 + TILE_MARGIN, h), min(x1 + TILE_MARGIN, w)
            pairs.append(((ya, yb, xa, xb), (y0, y1, x0, x1)))
    return pairs
