"""A motion-adaptive recursive filter over a stream's denoised frames: where a pixel's neighbourhood has not
changed since the previous output, the previous output is blended in; where it has (motion, a cut, a light
switched on), the new frame is kept as it is.

    out_t = d_t + w * (out_{t-1} - d_t),   w = max_weight * clip(1 - blur(|d_t - out_{t-1}|) / (k * sigma), 0, 1)

d_t is the model's result for frame t, |.| is the luma-weighted change from the last output (uint8), blurred
(Gaussian, ``blur`` pixels, computed at half size), and sigma is the noise of frame t, estimated from the
residual frame - d_t (median absolute deviation of the green channel on a grid of about 30,000 pixels, so
texture the model kept does not count), so the motion test follows the noise level without being told it.
Where more than half of the frame changed (a cut, a fast pan) nothing of the past is kept, so a cut cannot
leave patches of the previous scene where the two happen to look alike. The state is the previous output in
float32 (rounding it to uint8 each frame would let small corrections stall); a new frame size starts afresh;
``reset()`` forgets the past.

Why it exists (issue 13): a denoiser seeing one frame, and even the recurrent model, leaves residual noise
that changes from frame to frame (flicker on static regions, 3-25x the clean clip's own change), and a static
camera shows the same scene again and again. Parameters were chosen on development segments of the shared
clips that the video benchmark does not use (bottle frames 300-359, one-by-one-person 250-289, bikes 58-79,
cockatoo 100-139 and 200-239; AWGN 15 and 25), never on the benchmark's own frames: after the single-frame
model, ``k`` 0.5 and ``max_weight`` 0.8 gained +0.87 / +1.15 dB (sigma 15 / 25) with no frame more than
0.02 dB below the model alone (``k`` 0.7: +0.96 / +1.16 but frames down to -0.26 dB on the handheld clip;
1.0: ghosting, frames down to -1.0 dB); after the recurrent model, whose output already changes less from
frame to frame, the stricter ``k`` 0.3 (+0.15 / +0.20 dB over the model alone; 0.45 began to cost frames),
and since streams hand a moving camera to the single-frame model (``CameraMotion``), a higher max weight of 0.9
(on the fixed-camera dev segments: +0.03 to +0.05 dB more, flicker 3.3 / 3.5 -> 2.8 / 2.9x the clean clip's on
bottle_dev, worst frame -0.03 dB; 0.95: flicker 2.6 / 2.7x but a frame -0.07 dB; 0.9 had cost handheld clips
before, which no longer reach the recurrent model while the camera moves).
Camera noise (issue 13, real noise): a camera's noise is spatially correlated (demosaicing, in-camera smoothing,
JPEG) and the models leave much of it, so their output changes from frame to frame by more than k x the residual
estimate above, and the filter took every frame for a cut (on the development segments with simulated camera noise
it added nothing at all). So while the stream knows the camera is still (``still``, set from its ``CameraMotion``;
frames under 320 pixels count as unknown; strength 1 or more) and the spread of the output's own change (its lower
quartile, from the frames before; it may grow by ``SPREAD_GROWTH`` per frame at most) exceeds the threshold from
the noise estimate, the threshold is ``SPREAD_GAIN`` x the spread instead, and a frame whose median change exceeds
``CUT_SPREAD`` x the spread is a cut. Chosen on the same development segments with three simulated cameras each
(gain 3 / 4 / 5 / 6: +0.27 / +0.38 / +0.47 / +0.54 dB over the filter without it on average, AWGN unchanged up to
5, a frame 0.44 dB down at 6; 4 kept); the condition on the spread came after a held-out clip (constants below).
numpy and OpenCV only; one filter per stream, not shared between threads.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

__all__ = ["RECURRENT", "SINGLE_FRAME", "CameraMotion", "TemporalFilter"]

SINGLE_FRAME = (0.8, 0.5)  # (max_weight, k) after a single-frame model
RECURRENT = (0.9, 0.3)  # after a recurrent model (its output already carries the past)
CUT_SHARE = 0.5  # more of the frame than this changed: nothing of the past is blended in (a cut)
_FLOOR = 0.5  # levels: the motion threshold never falls below this (clean input: only still pixels blend)
# While the camera is known to be still and the spread of the output's own change (the lower quartile of the
# blurred change, sampled at half size, from the frames before) exceeds the threshold from the noise estimate: a model
# has left spatially correlated camera noise largely in place, so its output changes from frame to frame by more
# than k x the residual noise estimate, and every frame would count as a cut. Then the threshold is SPREAD_GAIN
# times the spread, and a frame whose median change exceeds CUT_SPREAD times the spread is a cut as well (with the
# threshold raised, two scenes can look alike within it on much of the frame: a cut then kept 1 dB of the scene
# before). The spread may grow by at most SPREAD_GROWTH per frame, so a fast object or a cut cannot raise it at
# once. Under white noise the spread stays below the noise threshold (fast motion raised it to 0.4-0.5 of it on
# the benchmark's cut clip, where applying the rule anyway put a frame 0.54 dB below the single-frame model).
SPREAD_GAIN = 4.0
SPREAD_GROWTH = 1.25
CUT_SPREAD = 3.0


def _median_of_counts(counts: np.ndarray) -> int:
    """Twice the median (numpy's: the mean of the two middle values for an even count) of integer values
    given as ``counts[v]`` = how many equal v: an integer."""
    cum = np.cumsum(counts)
    n = int(cum[-1])
    lo = int(np.searchsorted(cum, (n - 1) // 2 + 1))  # the value at sorted position (n - 1) // 2
    hi = int(np.searchsorted(cum, n // 2 + 1))  # at n // 2
    return lo + hi


class TemporalFilter:
    """The recursive blend of one stream's outputs (uint8 frames of one size, grey or BGR)."""

    def __init__(self, max_weight: float = SINGLE_FRAME[0], k: float = SINGLE_FRAME[1], blur: float = 2.0) -> None:
        if not 0.0 <= max_weight < 1.0:
            msg = f"max_weight {max_weight!r} is outside 0 to 1 (1 would never let the present in)"
            raise ValueError(msg)
        if k <= 0.0 or blur <= 0.0:
            msg = f"k {k!r} and blur {blur!r} must be positive"
            raise ValueError(msg)
        self.max_weight, self.k, self.blur = float(max_weight), float(k), float(blur)
        self._prev: np.ndarray | None = None  # the last output, float32
        self._device_prev: Any = None  # or, for the graph (``run_graph``), an OrtValue where the model runs
        self._last: np.ndarray | None = None  # and as it was returned (uint8)
        self.sigma = 0.0  # the last frame's noise estimate (uint8 levels)
        self.still = False  # set by a stream that watches the camera: it is still, so the spread applies
        self.spread: float | None = None  # the output's change where nothing moves, from the still frames before
        self._sample: np.ndarray = np.zeros((0, 0), np.float32)  # the last blurred change before resizing

    def reset(self) -> None:
        """Forget the past: the next frame passes as it is."""
        self._prev = self._device_prev = None
        self.spread = None

    @staticmethod
    def grid_step(h: int, w: int) -> int:
        """The step of the sample grid (rows and columns) of the noise estimate and the spread: about 30,000
        pixels."""
        return max(2, int(np.sqrt(h * w / 30000)))

    @classmethod
    def quantiles(cls, blurred: np.ndarray, size: tuple[int, int]) -> tuple[float, float]:
        """The values at sorted positions n // 4 and n // 2 of the blurred change ``blurred`` (at half size, as
        ``_motion`` makes it, for frames of ``size``) on a grid of step (s + 1) // 2, s the noise grid's (n
        samples, about 30,000 / 4 of them)."""
        step = (cls.grid_step(*size) + 1) // 2 if blurred.shape != size else cls.grid_step(*size)
        v = blurred[::step, ::step].ravel()
        low, mid = v.size // 4, v.size // 2
        part = np.partition(v, (low, mid))
        return float(part[low]), float(part[mid])

    def _update_spread(self, value: float) -> None:
        self.spread = value if self.spread is None else min(value, SPREAD_GROWTH * self.spread)

    @staticmethod
    def noise_sigma(frame: np.ndarray, result: np.ndarray) -> float:
        """Robust noise level (uint8 levels) of ``frame`` from the residual ``frame - result``: the median
        absolute deviation of its green (or only) channel on a grid of about 30,000 pixels."""
        step = TemporalFilter.grid_step(*frame.shape[:2])
        g = (slice(None, None, step), slice(None, None, step)) + ((1,) if frame.ndim == 3 else ())
        r = frame[g].astype(np.int32).ravel() - result[g].ravel()  # whole levels, -255..255: medians from counts
        med2 = _median_of_counts(np.bincount(r + 255)) - 510  # 2 median(r): an integer
        dev2 = np.abs(2 * r - med2)  # 2 |r - median(r)|: integers
        return float(1.4826 * _median_of_counts(np.bincount(dev2)) / 4)  # (2 median(dev2)) / 4 = the MAD

    def _motion(self, result: np.ndarray, last: np.ndarray) -> np.ndarray:
        """blur(|result - last|) as float32 (H, W): the change in luma-weighted levels, blurred at half size."""
        d = cv2.absdiff(result, last)
        if d.ndim == 3:
            d = cv2.cvtColor(d, cv2.COLOR_BGR2GRAY)
        h, w = d.shape
        if min(h, w) < 32:
            self._sample = cv2.GaussianBlur(d.astype(np.float32), (0, 0), self.blur)
            return self._sample
        half = cv2.resize(d, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA).astype(np.float32)
        self._sample = cv2.GaussianBlur(half, (0, 0), self.blur / 2)  # the spread's samples come from here
        return cv2.resize(self._sample, (w, h), interpolation=cv2.INTER_LINEAR)

    def run_graph(self, session: Any, frame: Any, result: Any, size: tuple[int, int], blend: float = 1.0) -> np.ndarray:
        """The same filter as its ONNX graph (``models/temporal_filter.onnx``, made by ``export.temporal_graph``)
        in ``session``, for frames that are already where the model ran: ``frame`` and ``result`` are
        ``OrtValue``s, uint8 (1, H, W, 3) BGR (padded alike); ``size`` is the frame's own (h, w), for the noise
        estimate's grid; ``blend`` mixes a blind model's result with the frame first (``Denoiser`` at a strength
        other than 1). The state stays on that device; returns the filtered frame (1, H, W, 3) on the host."""
        import onnxruntime as ort  # where the model runs: the Denoiser has loaded it

        self._prev = None  # the host state and the graph's are not mixed: a switch starts afresh
        shape = tuple(result.shape())
        where = result.device_name().lower()
        fresh = self._device_prev is None or tuple(self._device_prev.shape()) != shape or self.max_weight == 0.0
        if self._device_prev is None or tuple(self._device_prev.shape()) != shape:  # a new source or size
            self.spread = None
        if fresh:  # zeros, not an empty buffer: the first frame's blend multiplies the state by 0
            self._device_prev = ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, np.float32), where, 0)
        h, w = size
        step = self.grid_step(h, w)
        spread = self.spread if self.still and self.spread is not None and not fresh else 0.0  # 0: no rule
        binding = session.io_binding()
        binding.bind_ortvalue_input("frame", frame)
        binding.bind_ortvalue_input("result", result)
        binding.bind_ortvalue_input("prev", self._device_prev)
        binding.bind_cpu_input("params", np.array([self.max_weight, self.k, 0.0 if fresh else 1.0, blend, spread,
                                                   SPREAD_GAIN, CUT_SPREAD], np.float32))
        binding.bind_cpu_input("grid", np.array([step, step], np.int64))
        binding.bind_output("output", "cpu")
        if where == "cuda":
            binding.bind_output("state", "cuda", 0)
        else:
            binding.bind_output("state", "cpu")
        binding.bind_output("sigma", "cpu")
        binding.bind_output("spread", "cpu")
        session.run_with_iobinding(binding)
        out, self._device_prev, sigma, spread = binding.get_outputs()
        self.sigma = 0.0 if fresh else float(sigma.numpy()[0])
        if self.still and not fresh:
            self._update_spread(float(spread.numpy()[0]))
        return np.asarray(out.numpy())

    def __call__(self, frame: np.ndarray, result: np.ndarray) -> np.ndarray:
        """The filtered output for ``frame`` (the noisy input) and ``result`` (the model's output for it), both
        uint8 of one shape (H x W or H x W x 3)."""
        self._device_prev = None  # the graph's state is not mixed with the host's: a switch starts afresh
        prev, last = self._prev, self._last
        if prev is None or last is None or prev.shape != result.shape or self.max_weight == 0.0:
            if prev is None or prev.shape != result.shape:  # a new source or size: its own spread
                self.spread = None
            self._prev, self._last = result.astype(np.float32), result.copy()  # copies: the caller may draw on
            return result  # what it gets
        self.sigma = self.noise_sigma(frame, result)
        limit = max(self.k * self.sigma, _FLOOR)
        diff = self._motion(result, last)
        mid, cut_level = 0.0, np.inf
        if self.still:  # the camera is still: the threshold may follow the spread of the change
            low, mid = self.quantiles(self._sample, diff.shape)
            if self.spread is not None and self.spread > limit:  # the output changes by more than the noise
                # estimate allows everywhere: the model leaves correlated noise (else the rule stays out of the way)
                limit = SPREAD_GAIN * self.spread
                cut_level = CUT_SPREAD * self.spread
            self._update_spread(low)
        if np.count_nonzero(diff >= limit) > CUT_SHARE * diff.size or mid > cut_level:
            # most of the frame changed, or its median change left the spread far behind: a cut (or a fast pan,
            # where little would blend anyway): keep nothing of the past
            self._prev, self._last = result.astype(np.float32), result.copy()
            return result
        w = cv2.addWeighted(diff, -self.max_weight / limit, diff, 0.0, self.max_weight)  # max_weight * (1 - d / t)
        np.maximum(w, 0.0, out=w)
        out = cv2.blendLinear(prev, result.astype(np.float32), w, 1.0 - w)  # a convex blend: stays in 0..255
        self._prev, self._last = out, cv2.convertScaleAbs(out)  # rounded to uint8
        return self._last.copy()


class CameraMotion:
    """Whether the camera moves: the global shift between consecutive frames (phase correlation of the grey
    frames at ``ANALYSIS`` pixels on the longer side), confirmed by the median shift of a 3 x 3 grid of tiles at
    twice that size (a large object moving in front of a fixed camera moves the global estimate, not most
    tiles), with hysteresis: moving from the first confirmed shift above ``start`` (analysis pixels) until
    ``hold`` frames in a row shift less than ``settle``.

    Why (issue 13): the recurrent model has no motion compensation, so on a moving camera it trusts a past that
    has moved: on the development segments (``benchmarks.video_denoise --dev``) its stream was 0.10-0.14 dB
    below the single-frame model's stream on a panning clip (bikes) and 0.35-0.44 dB below on handheld ones
    (cockatoo), and 0.28-0.82 dB above it on fixed cameras. Global shifts measured there (sigma 15 / 25 noise,
    160 pixels): fixed cameras 0.01-0.30, handheld 0.14-9 (mostly above 0.5), panning 0.4-9 once it pans; a
    person walking close to a fixed camera moved the global estimate to 0.5-1.2 (the tiles' median: at most
    0.23). About 0.2-0.3 ms per 640x480 frame, up to 1 ms on a frame that needs the tiles (a start to
    confirm). One per stream, not shared between threads.
    """

    ANALYSIS = 160
    GRID = 3
    # frames less than 2 x ANALYSIS wide and high (the longer side) are never said to move: too few pixels to tell
    # the camera from the noise (128 x 96 and 200 x 120 crops of a still scene at sigma 20 gave shifts of 2-16)
    MIN_SIDE = 2 * ANALYSIS
    # unrelated frames (a cut), not a moving camera: a phase-correlation peak below CUT or a mean change of the
    # analysis frames above CUT_CHANGE grey levels (dev and benchmark clips at sigma 25: within a shot at most
    # 30, handheld; across a cut 52-83; unrelated crops of the test clip 61-76)
    CUT = 0.15
    CUT_CHANGE = 40.0

    def __init__(self, start: float = 0.4, settle: float = 0.25, hold: int = 5) -> None:
        self.start, self.settle, self.hold = float(start), float(settle), int(hold)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._windows: dict[tuple[int, int], np.ndarray] = {}
        self._calm = 0
        self.moving = False
        self.shift = 0.0  # the last frame's global shift, analysis pixels
        self.tiles = 0.0  # the tiles' median shift where it was measured (analysis pixels), else 0

    def reset(self) -> None:
        """Forget the past: the next frame counts as still."""
        self._prev, self.moving, self.shift, self.tiles = None, False, 0.0, 0.0

    def _grey(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The frame in grey at twice the analysis size and at the analysis size (float32)."""
        f = frame if frame.ndim == 2 else frame[:, :, :3]
        step = max(1, max(f.shape[:2]) // (4 * self.ANALYSIS))
        if step > 1:  # large frames: every step-th pixel first (OpenCV's nearest resize: 0.2 against 0.5 ms at 1080p)
            f = cv2.resize(f, (-(-f.shape[1] // step), -(-f.shape[0] // step)), interpolation=cv2.INTER_NEAREST)
        g = f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)
        scale = min(2 * self.ANALYSIS / max(g.shape), 1.0)  # never enlarged
        big = cv2.resize(g, (max(16, round(g.shape[1] * scale)), max(16, round(g.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA).astype(np.float32)
        small = cv2.resize(big, (big.shape[1] // 2, big.shape[0] // 2), interpolation=cv2.INTER_AREA)
        return big, small

    def _shift(self, a: np.ndarray, b: np.ndarray) -> float:
        return self._correlate(a, b)[0]

    def _correlate(self, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        """(shift, peak response) of ``b`` against ``a``."""
        win = self._windows.get(a.shape)
        if win is None:
            win = self._windows[a.shape] = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
        (dx, dy), response = cv2.phaseCorrelate(a, b, win)
        return float(np.hypot(dx, dy)), float(response)

    def _tiles(self, a: np.ndarray, b: np.ndarray) -> float:
        """The median shift of the grid's tiles (analysis pixels)."""
        ys = np.linspace(0, a.shape[0], self.GRID + 1).astype(int)
        xs = np.linspace(0, a.shape[1], self.GRID + 1).astype(int)
        shifts = [self._shift(np.ascontiguousarray(a[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]),
                              np.ascontiguousarray(b[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]))
                  for i in range(self.GRID) for j in range(self.GRID)]
        return float(np.median(shifts)) / 2

    def __call__(self, frame: np.ndarray) -> bool:
        """Take the next frame (uint8, grey or BGR(A)); returns whether the camera is moving now."""
        if max(frame.shape[:2]) < self.MIN_SIDE or min(frame.shape[:2]) < self.MIN_SIDE // 4:
            self.reset()
            return False
        big, small = self._grey(frame)
        prev = self._prev
        self._prev = big, small
        if prev is None or prev[1].shape != small.shape:
            self.moving, self.shift, self.tiles, self._calm = False, 0.0, 0.0, self.hold
            return False
        self.shift, response = self._correlate(prev[1], small)
        if response < self.CUT or float(np.abs(small - prev[1]).mean()) > self.CUT_CHANGE:
            # a cut: says nothing about the camera (the recurrent model cuts its past itself)
            self.shift = self.tiles = 0.0
            return self.moving
        # the tiles only confirm a start (while moving, a large global shift keeps it moving as it is)
        self.tiles = self._tiles(prev[0], big) if self.shift > self.start and not self.moving else 0.0
        if self.shift > self.start and (self.moving or self.tiles > self.start):
            self.moving, self._calm = True, 0
        elif self.shift < self.settle:
            self._calm += 1
            if self._calm >= self.hold:
                self.moving = False
        else:
            self._calm = 0
        return self.moving
