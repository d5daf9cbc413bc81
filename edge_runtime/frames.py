"""The one place where frames (uint8 BGR or grey, H x W [x 3]) become model tensors and back."""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime.card import InputSpec
from edge_runtime.errors import FrameError


def check_frame(frame: object) -> np.ndarray:
    """Accept uint8 H x W, H x W x 1 or H x W x 3 (BGR); return H x W or H x W x 3."""
    if not isinstance(frame, np.ndarray):
        msg = f"frame must be a numpy array, got {type(frame).__name__}"
        raise FrameError(msg)
    if frame.dtype != np.uint8:
        msg = f"frame dtype is {frame.dtype}; expected uint8 (as OpenCV reads images)"
        raise FrameError(msg)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
        msg = f"frame shape is {frame.shape}; expected H x W (grey) or H x W x 3 (BGR)"
        raise FrameError(msg)
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        msg = f"frame shape is {frame.shape}; it has no pixels"
        raise FrameError(msg)
    return frame


def padding(h: int, w: int, multiple: int) -> tuple[int, int, bool]:
    """Rows and columns to add at the bottom and right so both sides divide ``multiple``, and whether to
    mirror the frame into them (else its edge pixels are repeated: a mirror needs more pixels than it adds)."""
    ph, pw = -h % multiple, -w % multiple
    return ph, pw, ph < h and pw < w


def pad_to_multiple(img: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A frame (H x W [x C]) padded by the ``padding`` rule, and its size before."""
    h, w = img.shape[:2]
    ph, pw, mirror = padding(h, w, multiple)
    if ph == 0 and pw == 0:
        return img, (h, w)
    out = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_REFLECT_101 if mirror else cv2.BORDER_REPLICATE)
    return out, (h, w)


def pad_planes(x: np.ndarray, multiple: int) -> np.ndarray:
    """Planes (N, C, H, W) padded by the ``padding`` rule (numpy's "reflect" is OpenCV's BORDER_REFLECT_101)."""
    ph, pw, mirror = padding(x.shape[2], x.shape[3], multiple)
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect" if mirror else "edge")


def to_planes(frame: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A checked frame -> (N, C, H, W) float in the model's range; N = 3 when a grey model takes a colour frame."""
    lo, hi = spec.value_range
    scale = (hi - lo) / 255.0
    if frame.ndim == 3 and spec.channels == 3:
        # One pass in OpenCV: channel swap, HWC -> CHW, scale and offset (several times faster than numpy).
        x: np.ndarray = np.asarray(cv2.dnn.blobFromImage(frame, scale, swapRB=spec.color_order == "RGB"))
        if lo:
            x += lo
    else:
        if frame.ndim == 2:
            planes = frame[None, None]  # (1, 1, H, W)
            if spec.channels == 3:
                planes = np.repeat(planes, 3, axis=1)
        else:
            planes = frame.transpose(2, 0, 1)[:, None]  # each colour plane through the grey model
        x = planes.astype(np.float32)
        x *= scale
        if lo:
            x += lo
    return np.ascontiguousarray(x, dtype=np.float16 if spec.dtype == "float16" else np.float32)


def from_planes(y: np.ndarray, frame: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Model output (N, C, H, W) -> a uint8 frame shaped like ``frame`` (grey stays grey)."""
    lo, hi = spec.value_range
    y = y.astype(np.float32, copy=False)
    if lo:
        y = y - lo
    scale = 255.0 / (hi - lo)
    if frame.ndim == 2:
        out = y[0].mean(axis=0) if y.shape[1] > 1 else y[0, 0]
    elif spec.channels == 1:
        out = cv2.merge(list(y[:, 0]))
    else:
        planes = list(y[0])
        out = cv2.merge(planes[::-1] if spec.color_order == "RGB" else planes)
    # Scale, round and saturate to uint8 in one OpenCV pass. The scale is given per channel:
    # OpenCV 4 reads a bare number as (scale, 0, 0, 0) and would zero the other channels.
    # (OpenCV's type stubs know only arrays as the second operand.)
    return cv2.multiply(np.ascontiguousarray(out), (scale,) * 4, dtype=cv2.CV_8U)  # type: ignore[call-overload]
