"""Autoencoder models (task 'reconstruct'): encode frames to codes, reconstruct them, and for
variational models sample and interpolate. numpy + onnxruntime + OpenCV only.

Frames at this boundary are what OpenCV gives (uint8 H x W x 3 BGR or H x W grey); they are
converted to the model's fixed size and layout here and nowhere else. ``reconstruct_batch`` and
``errors`` work on model-layout arrays and are the building blocks of reconstruction-based anomaly
scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import AutoencoderInputError, ModelCardError
from edge_runtime.frames import check_frame
from edge_runtime.model import Model

__all__ = ["Autoencoder", "AutoencoderInputError", "image_grid"]

CHUNK = 256  # samples per onnxruntime call: bounded memory for long videos
MAX_GRID_PIXELS = 1 << 27  # about 134 megapixels (400 MB in colour): a larger grid is refused, not allocated


class Autoencoder:
    """An edge-ae autoencoder: ``encode``, ``reconstruct``, and per-sample reconstruction ``errors``.

    Holds no per-call state; one instance may be shared by threads (onnxruntime sessions are thread-safe).
    """

    def __init__(self, model: str | Path | Model, device: str = "auto", threads: int | None = None) -> None:
        self.model = model if isinstance(model, Model) else Model(model, device=device, threads=threads)
        card = self.model.card
        self.roles = {role: name for name, role in card.outputs.items()}
        if "reconstruction" not in self.roles or card.input.layout not in ("NF", "NCHW", "NTF") \
                or card.input.height is None or card.input.width is None:
            msg = (f"{self.model.path}: a {card.family} model (task {card.task!r}, layout {card.input.layout}) "
                   "is not a fixed-size autoencoder; use 'edge-ae denoise' for denoisers")
            raise ModelCardError(msg)
        self.spec = card.input
        self.layout = card.input.layout
        self.size = (card.input.height, card.input.width)
        self.sequence_length = card.input.sequence_length or 16
        self.latent_role = "mean" if "mean" in self.roles else "latent"
        inputs = self.model.session.get_inputs()
        self.latent_input = next((i.name for i in inputs if i.name != self.model.input_name), None)

    @property
    def variational(self) -> bool:
        return "decoded" in self.roles and self.latent_input is not None

    # -- frames <-> model layout ------------------------------------------------------------------
    def frames_to_array(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Frames -> (N, F) for NF, (N, C, H, W) for NCHW, (N, F) per frame for NTF (cut with ``windows``)."""
        if len(frames) == 0:
            msg = "no frames to process"
            raise AutoencoderInputError(msg)
        h, w = self.size
        lo, hi = self.spec.value_range
        out = np.empty((len(frames), h, w, self.spec.channels), dtype=np.float32)
        for i, frame in enumerate(frames):
            f = check_frame(frame)
            if self.spec.channels == 1:
                f = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) if f.ndim == 3 else f
            else:
                f = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f
                f = f[:, :, ::-1] if self.spec.color_order == "RGB" else f
            if f.shape[:2] != (h, w):
                f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
            out[i] = f.reshape(h, w, -1)
        out *= (hi - lo) / 255.0
        out += lo
        if self.layout == "NCHW":
            return np.ascontiguousarray(out.transpose(0, 3, 1, 2))
        return out.reshape(len(frames), -1)

    def array_to_frames(self, y: np.ndarray) -> list[np.ndarray]:
        """Model-layout output (any leading batch/time axes) -> uint8 frames (BGR, or grey for 1 channel)."""
        h, w = self.size
        c = self.spec.channels
        lo, hi = self.spec.value_range
        if self.layout == "NCHW":
            y = y.transpose(0, 2, 3, 1)
        y = y.reshape(-1, h, w, c)
        y = np.clip((y - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)
        if c == 1:
            return [f[:, :, 0] for f in y]
        return [np.ascontiguousarray(f[:, :, ::-1] if self.spec.color_order == "RGB" else f) for f in y]

    def windows(self, n: int, length: int | None = None) -> list[int]:
        """Start indices of windows covering ``n`` frames: back to back, the last one aligned to the end."""
        t = length or self.sequence_length
        if n <= t:
            return [0]
        starts = list(range(0, n - t + 1, t))
        if starts[-1] + t < n:
            starts.append(n - t)
        return starts

    def sequences(self, per_frame: np.ndarray, length: int | None = None) -> tuple[np.ndarray, list[int]]:
        """(N, F) frames -> (W, T, F) windows and their start indices."""
        t = min(length or self.sequence_length, len(per_frame))
        starts = self.windows(len(per_frame), t)
        return np.stack([per_frame[s : s + t] for s in starts]), starts

    # -- model-layout batches --------------------------------------------------------------------------
    def _run(self, x: np.ndarray, roles: Sequence[str]) -> list[np.ndarray]:
        names = [self.roles[r] for r in roles]
        parts: list[list[np.ndarray]] = [[] for _ in names]
        for i in range(0, len(x), CHUNK):
            feeds = {self.model.input_name: np.ascontiguousarray(x[i : i + CHUNK], dtype=np.float32)}
            if self.latent_input is not None:
                z_dim = self.model.session.get_inputs()[1].shape[1]
                feeds[self.latent_input] = np.zeros((0, z_dim), np.float32)
            outs = self.model.session.run(names, feeds)
            for p, o in zip(parts, outs, strict=True):
                p.append(o)
        return [np.concatenate(p) for p in parts]

    def reconstruct_batch(self, x: np.ndarray) -> np.ndarray:
        """Model-layout input (B, ...) -> its reconstruction, same shape."""
        return self._run(x, ["reconstruction"])[0]

    def encode_batch(self, x: np.ndarray) -> np.ndarray:
        """Model-layout input (B, ...) -> codes (B, Z) (the mean for variational models)."""
        z = self._run(x, [self.latent_role])[0]
        return z.reshape(len(z), -1)

    def errors(self, x: np.ndarray) -> np.ndarray:
        """Per-sample mean squared reconstruction error of a model-layout batch (B,)."""
        y = self.reconstruct_batch(x)
        return ((y - x) ** 2).reshape(len(x), -1).mean(axis=1)

    # -- frames ------------------------------------------------------------------------------------------
    def encode(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Codes of frames (B, Z); for sequence models one code per window of ``sequence_length`` frames."""
        x = self.frames_to_array(frames)
        if self.layout == "NTF":
            x, _ = self.sequences(x)
        return self.encode_batch(x)

    def reconstruct(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Reconstructed frames at the model's size, one per input frame."""
        x = self.frames_to_array(frames)
        if self.layout != "NTF":
            return self.array_to_frames(self.reconstruct_batch(x))
        seqs, starts = self.sequences(x)
        y = self.reconstruct_batch(seqs)
        out = np.empty_like(x)
        for s, ys in zip(starts, y, strict=True):
            out[s : s + len(ys)] = ys
        return self.array_to_frames(out)

    # -- variational models ------------------------------------------------------------------------------
    def _need_decoder(self) -> None:
        if not self.variational:
            msg = (f"{self.model.path}: a {self.model.card.family} model has no decoder input; "
                   "sampling needs a variational model")
            raise AutoencoderInputError(msg)

    def decode(self, z: np.ndarray) -> list[np.ndarray]:
        """Latent vectors (M, Z) -> decoded frames."""
        self._need_decoder()
        z_dim = self.model.session.get_inputs()[1].shape[1]
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != z_dim:
            msg = f"latent vectors have shape {z.shape}; expected (M, {z_dim})"
            raise AutoencoderInputError(msg)
        empty = np.zeros((0, *self.frames_to_array_shape()), np.float32)
        out = self.model.session.run([self.roles["decoded"]], {self.model.input_name: empty, self.latent_input: z})[0]
        return self.array_to_frames(out)

    def frames_to_array_shape(self) -> tuple[int, ...]:
        h, w = self.size
        c = self.spec.channels
        return (c, h, w) if self.layout == "NCHW" else (h * w * c,)

    def sample(self, n: int, seed: int | None = None, temperature: float = 1.0) -> list[np.ndarray]:
        """``n`` frames decoded from the prior N(0, I) (scaled by ``temperature``)."""
        self._need_decoder()
        if n < 1:
            msg = f"sample count is {n}; expected at least 1"
            raise AutoencoderInputError(msg)
        z_dim = self.model.session.get_inputs()[1].shape[1]
        z = np.random.default_rng(seed).standard_normal((n, z_dim)).astype(np.float32) * temperature
        return self.decode(z)

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 10) -> list[np.ndarray]:
        """Frames decoded along the straight line between the codes (means) of frames ``a`` and ``b``."""
        self._need_decoder()
        if steps < 2:
            msg = f"interpolation steps is {steps}; expected at least 2"
            raise AutoencoderInputError(msg)
        za, zb = self.encode([a, b])
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        return self.decode((1 - t) * za + t * zb)


def image_grid(frames: Sequence[np.ndarray], columns: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile equally sized frames into one image (row-major), ``pad`` pixels of black between them."""
    if not frames:
        msg = "no frames to put in a grid"
        raise AutoencoderInputError(msg)
    cols = min(columns or int(np.ceil(np.sqrt(len(frames)))), len(frames))
    rows = int(np.ceil(len(frames) / cols))
    h, w = frames[0].shape[:2]
    gh, gw = (rows * (h + pad) + pad) * scale, (cols * (w + pad) + pad) * scale
    if gh * gw > MAX_GRID_PIXELS:
        msg = (f"a grid of {len(frames)} frames of {w}x{h} in {cols} columns at scale {scale} would be {gw}x{gh} "
               f"pixels; at most {MAX_GRID_PIXELS / 1e6:.0f} megapixels: use fewer frames or a smaller scale")
        raise AutoencoderInputError(msg)
    extra = frames[0].shape[2:]
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, *extra), dtype=np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = f
    if scale > 1:
        grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return grid
