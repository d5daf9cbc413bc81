"""Denoiser: a uint8 frame in, a denoised uint8 frame of the same shape out."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edge_runtime.errors import ModelCardError
from edge_runtime.frames import check_frame, from_planes, pad_planes, pad_to_multiple, to_planes
from edge_runtime.model import Model, default_model_path
from edge_runtime.temporal import RECURRENT, SINGLE_FRAME, CameraMotion, TemporalFilter

if TYPE_CHECKING:  # onnxruntime is imported where the model loads, with a message when it is missing
    import onnxruntime as ort

TILE_MARGIN = 32  # context kept around each tile: wider than the model's receptive field needs for no seams
MIN_TILE = 4 * TILE_MARGIN  # a tile keeps at least its centre half: smaller tiles would mostly recompute margins


class Denoiser:
    """Denoise camera or video frames with an edge-ae model (the bundled one by default).

    One Denoiser may be shared by several threads: it holds no per-call state (I/O binding
    buffers are per thread), and the onnxruntime session it wraps is thread-safe. ``denoise``
    treats every frame on its own (a recurrent model gets its empty state: a still); ``stream()``
    opens a ``DenoiseStream`` that carries a recurrent model's state from frame to frame of one source.

    Models exported with ``--frame-io`` take uint8 BGR frames and convert inside the graph, so
    with CUDA only the uint8 frame goes to the GPU and only the uint8 result comes back.
    ``bind`` (default: on with CUDA) runs through onnxruntime I/O binding.

    ``strength`` says how hard to denoise: 1 (auto) removes the noise the model estimates, more removes more,
    less removes less, 0 returns the frame as it is. A model with a noise-level input (its card's
    ``input.strength``) scales its own estimate of the level, so it smooths more or less where the noise is;
    any other model's result is blended with the frame instead (``frame + strength * (result - frame)``).

    ``temporal`` (default on): a stream's outputs also go through a motion-adaptive recursive filter
    (``edge_runtime.temporal``) that blends the previous output in where nothing moved, stricter after a
    recurrent model than after a single-frame one; its weight scales with a strength below 1. ``denoise()``
    (a still) never uses it.

    ``moving_camera`` (default "auto"): a single-frame model that a recurrent model's streams use while the
    camera moves (pans, shakes: ``edge_runtime.temporal.CameraMotion``), since the recurrent model has no
    motion compensation; "auto" is the bundled single-frame model for the bundled video model and nothing for
    other models; None: never.
    """

    def __init__(self, model: str | Path | Model | None = None, device: str = "auto", threads: int | None = None,
                 tile: int | None = 2048, spin: bool | None = None, bind: bool | None = None,
                 strength: float = 1.0, temporal: bool = True,
                 moving_camera: str | Path | Model | None = "auto") -> None:
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
        if not 0.0 <= strength <= 4.0:  # also refuses nan
            msg = f"strength {strength!r} is outside 0 to 4 (1: as the model estimates the noise)"
            raise ValueError(msg)
        self.strength = float(strength)
        # Blind models: the result blended with the frame (1: the result as it is)
        self.blend = None if card.input.strength is not None or strength == 1.0 else self.strength
        self.recurrent = card.state is not None
        # I/O binding: a recurrent model's state then stays where the model runs (on the GPU with CUDA)
        self.bind = self.model.device == "cuda" if bind is None else bind
        self.frame_io = card.input.layout == "NHWC"
        self.temporal = bool(temporal)
        # A recurrent model's streams hand the frames to a single-frame model while the camera moves
        # (edge_runtime.temporal.CameraMotion); "auto": the bundled single-frame one for the bundled video model.
        if moving_camera == "auto":
            bundled = {default_model_path("video", d).resolve() for d in ("cpu", "cuda")}
            moving_camera = "default" if self.recurrent and self.model.path.resolve() in bundled else None
        self._moving_spec = moving_camera if self.recurrent else None
        self._moving: Denoiser | None = None
        self._options = {"device": self.model.device, "threads": threads, "tile": tile, "spin": spin, "bind": bind,
                         "strength": strength, "temporal": temporal}
        self._lock = threading.Lock()

    @property
    def follows_camera(self) -> bool:
        """Whether this Denoiser's streams switch to a single-frame model while the camera moves."""
        return self._moving_spec is not None

    def moving_camera_denoiser(self) -> Denoiser | None:
        """The single-frame Denoiser a stream uses while the camera moves (loaded on first use), or None."""
        if self._moving_spec is None:
            return None
        with self._lock:
            if self._moving is None:
                self._moving = Denoiser(self._moving_spec, moving_camera=None, **self._options)  # type: ignore[arg-type]
                if self._moving.recurrent:
                    msg = f"{self._moving.model.path}: the model for a moving camera must be a single-frame one"
                    raise ModelCardError(msg)
            return self._moving

    def denoise(self, frame: np.ndarray, ensemble: int = 1) -> np.ndarray:
        """Denoise one uint8 frame (H x W or H x W x 1 grey, H x W x 3 BGR, H x W x 4 BGRA); the result has
        the same shape. An alpha channel is passed through unchanged. No state is kept between calls.

        ``ensemble`` (1, 2, 4 or 8) averages the results for that many views of the frame (``VIEWS``: mirrored,
        upside down, transposed), each undone before the average: the model's errors differ between views and
        partly cancel. It costs that many model runs; ``edge-ae denoise`` uses 8 for images (on Set12 at sigma
        25 the bundled model gains 0.10 / 0.16 / 0.22 dB with 2 / 4 / 8 views)."""
        if ensemble == 1:
            return self._denoise(frame, None)
        if ensemble not in ENSEMBLES:
            msg = f"ensemble {ensemble!r} is not one of {', '.join(map(str, ENSEMBLES))} (views to average)"
            raise ValueError(msg)
        total = self._denoise(frame, None).astype(np.float32)  # the first view is the frame: it checks it too
        for view in VIEWS[1:ensemble]:
            out = self._denoise(np.ascontiguousarray(_view(frame, view)), None)
            total += _unview(out, view)
        return np.rint(total / ensemble).astype(np.uint8)

    __call__ = denoise

    def stream(self, temporal: bool | None = None) -> DenoiseStream:
        """A stream for the frames of one source, in order: a recurrent model's state goes from each frame to
        the next, and with ``temporal`` (default: the Denoiser's) the outputs go through the temporal filter
        (without it a single-frame model's stream gives what ``denoise`` gives)."""
        return DenoiseStream(self, self.temporal if temporal is None else temporal)

    def temporal_filter(self) -> TemporalFilter | None:
        """A new temporal filter for one stream of this Denoiser's model and strength (None at strength 0)."""
        if self.strength == 0.0:
            return None
        return TemporalFilter(*self.filter_params())

    def filter_params(self) -> tuple[float, float]:
        """(max_weight, k) of the temporal filter after this Denoiser's model, at its strength."""
        weight, k = RECURRENT if self.recurrent else SINGLE_FRAME
        return weight * min(self.strength, 1.0), k

    def _denoise(self, frame: np.ndarray, stream: DenoiseStream | None) -> np.ndarray:
        if isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] in (1, 4):
            if frame.shape[2] == 1:
                return self._denoise(frame[:, :, 0], stream)[:, :, None]
            return np.dstack([self._denoise(frame[:, :, :3], stream), frame[:, :, 3]])
        f = check_frame(frame)
        if self.strength == 0.0:
            return f.copy()
        if self.frame_io:
            out = self._denoise_frame_state(f, stream) if self.recurrent else self._denoise_frame(f)
            if self.blend is None:
                return out
            mixed = f.astype(np.float32) + self.blend * (out.astype(np.float32) - f)
            return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        x = to_planes(f, self.spec)
        if not self.recurrent:
            return from_planes(self._mix(x, self._run(x)), f, self.spec)
        if self.bind and len(_tiles(x.shape[2], x.shape[3], self.tile)) == 1:
            y = self._step_bound(pad_planes(x, self.spec.spatial_multiple), x.shape[2:], x.shape[0], stream)
            return from_planes(self._mix(x, y[:, :, : x.shape[2], : x.shape[3]]), f, self.spec)
        state = stream.state if stream is not None else None
        if state is not None and (state.shape[0], *state.shape[2:]) != (x.shape[0], *x.shape[2:]):
            state = None  # another frame size (or a grey model's plane count): start afresh
            assert stream is not None
            stream.resets += 1
        y, nxt = self._run_state(x, state if state is not None else self.model.empty_state(x))
        if stream is not None:
            stream.state = nxt  # the model's own output goes on, whatever the strength
        return from_planes(self._mix(x, y), f, self.spec)

    def _mix(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """A blind model's planes ``y`` blended with the input planes ``x`` at ``strength`` (as they are at 1)."""
        if self.blend is None:
            return y
        lo, hi = self.spec.value_range
        return np.clip(x + self.blend * (y - x), lo, hi)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return self.model.run_bound(x, self.strength) if self.bind else self.model.run(x, self.strength)

    def _run_state(self, x: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A recurrent model on planes and their state (same size): tiled like ``_run``, the state padded,
        cut into tiles and put back together exactly like the frame."""
        h, w = x.shape[2:]
        m = self.spec.spatial_multiple
        tiles = _tiles(h, w, self.tile)
        if len(tiles) == 1:  # one tile: the outputs as they come, cropped (no copies into new arrays)
            out, st = self.model.run_state(pad_planes(np.ascontiguousarray(x), m),
                                           pad_planes(np.ascontiguousarray(state), m))
            return out[:, :, :h, :w], st[:, :, :h, :w]
        y = np.empty(x.shape, dtype=np.float32)
        nxt = np.empty(state.shape, dtype=np.float32)
        for (ya, yb, xa, xb), (y0, y1, x0, x1) in tiles:
            th, tw = yb - ya, xb - xa
            out, st = self.model.run_state(pad_planes(np.ascontiguousarray(x[:, :, ya:yb, xa:xb]), m),
                                           pad_planes(np.ascontiguousarray(state[:, :, ya:yb, xa:xb]), m))
            keep = (slice(None), slice(None), slice(y0 - ya, y1 - ya), slice(x0 - xa, x1 - xa))
            y[:, :, y0:y1, x0:x1] = out[:, :, :th, :tw][keep]
            nxt[:, :, y0:y1, x0:x1] = st[:, :, :th, :tw][keep]
        return y, nxt

    def _step_bound(self, x: np.ndarray | ort.OrtValue, size: tuple[int, int], n: int, stream: DenoiseStream | None,
                    image_on_device: bool = False) -> Any:
        """One recurrent step on the padded input ``x`` (one tile; an array or already an ``OrtValue`` on the
        model's device) with the state left on the model's device between frames of ``stream``; returns the
        padded image output (an array, or an ``OrtValue`` left on the device with ``image_on_device``)."""
        key = (n, *size)
        state: np.ndarray | ort.OrtValue | None = None
        if stream is not None:
            if stream._device_state is not None and stream._device_key == key:
                state = stream._device_state
            elif stream._host_state is not None and (stream._host_state.shape[0], *stream._host_state.shape[2:]) == key:
                state = pad_planes(stream._host_state, self.spec.spatial_multiple)
            elif stream._device_state is not None or stream._host_state is not None:
                stream.resets += 1  # another frame size: start afresh
        if state is None:
            state = self.model.empty_state(x if isinstance(x, np.ndarray) else tuple(x.shape()))
        out, nxt = self.model.run_state_bound(x, state, image_on_device)
        if stream is not None:
            stream._device_state, stream._device_key, stream._host_state = nxt, key, None
        return out

    def _denoise_on_device(self, f: np.ndarray, stream: DenoiseStream) -> np.ndarray:
        """A colour frame through a frame model (``--frame-io``) and the stream's temporal filter, both where the
        model runs: the uint8 frame is copied there once, the filtered uint8 frame comes back; the model's
        output, its state and the filter's state stay there."""
        import onnxruntime as ort  # loaded with the model

        assert stream.filter is not None
        h, w = f.shape[:2]
        padded, _ = pad_to_multiple(f, self.spec.spatial_multiple)
        x = np.ascontiguousarray(padded[None])
        dev = self.model.device
        buf = stream._device_frame
        if buf is None or tuple(buf.shape()) != x.shape:  # a copy: a CPU OrtValue would share the array's memory
            buf = stream._device_frame = ort.OrtValue.ortvalue_from_numpy(x.copy(), dev, 0)
        else:
            buf.update_inplace(x)
        if self.recurrent:
            result = self._step_bound(buf, (h, w), 1, stream, image_on_device=True)
        else:
            result = self.model.run_device(buf, strength=self.strength)[0]
        blend = 1.0 if self.blend is None else self.blend  # a blind model at a strength other than 1
        out = stream.filter.run_graph(self.model.filter_session(), buf, result, (h, w), blend)
        return np.ascontiguousarray(out[0, :h, :w])

    def _denoise_frame_state(self, f: np.ndarray, stream: DenoiseStream | None) -> np.ndarray:
        """A recurrent model exported with --frame-io: uint8 frame in and out, the float state beside it (tiled
        and padded like ``_run_state``)."""
        bgr = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f
        h, w = bgr.shape[:2]
        if self.bind and len(_tiles(h, w, self.tile)) == 1:
            padded, _ = pad_to_multiple(bgr, self.spec.spatial_multiple)
            out = self._step_bound(padded[None], (h, w), 1, stream)[0, :h, :w]
            return ((out.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8) if f.ndim == 2 else out
        state = stream.state if stream is not None else None
        if state is not None and state.shape[2:] != (h, w):
            state = None  # another frame size: start afresh
            assert stream is not None
            stream.resets += 1
        if state is None:
            state = self.model.empty_state(bgr[None])
        out = np.empty_like(bgr)
        nxt = np.empty(state.shape, dtype=np.float32)
        m = self.spec.spatial_multiple
        for (ya, yb, xa, xb), (y0, y1, x0, x1) in _tiles(h, w, self.tile):
            th, tw = yb - ya, xb - xa
            padded, _ = pad_to_multiple(np.ascontiguousarray(bgr[ya:yb, xa:xb]), m)
            res, st = self.model.run_state(padded[None], pad_planes(np.ascontiguousarray(state[:, :, ya:yb, xa:xb]), m))
            out[y0:y1, x0:x1] = res[0, :th, :tw][y0 - ya : y1 - ya, x0 - xa : x1 - xa]
            nxt[:, :, y0:y1, x0:x1] = st[:, :, :th, :tw][:, :, y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        if stream is not None:
            stream.state = nxt
        if f.ndim == 2:
            return ((out.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
        return out

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


# The views an ensemble averages, in the order they are added: (transposed, upside down, mirrored); the first
# two and four keep the frame's shape (no transpose), so 2 and 4 views cost no new model shapes.
VIEWS = ((False, False, False), (False, False, True), (False, True, False), (False, True, True),
         (True, False, False), (True, False, True), (True, True, False), (True, True, True))
ENSEMBLES = (1, 2, 4, 8)


def _view(frame: np.ndarray, view: tuple[bool, bool, bool]) -> np.ndarray:
    """``frame`` (H, W, ...) transposed, then flipped upside down and / or mirrored, as ``view`` says."""
    transposed, upside_down, mirrored = view
    f = frame.swapaxes(0, 1) if transposed else frame
    return f[::-1 if upside_down else 1, ::-1 if mirrored else 1]


def _unview(frame: np.ndarray, view: tuple[bool, bool, bool]) -> np.ndarray:
    """Undo ``_view``: the flips, then the transpose."""
    transposed, upside_down, mirrored = view
    f = frame[::-1 if upside_down else 1, ::-1 if mirrored else 1]
    return f.swapaxes(0, 1) if transposed else f


class DenoiseStream:
    """The frames of one source through a ``Denoiser``, in order, with a recurrent model's state carried from
    each frame to the next (``Denoiser.stream()``).

    A stream is for one thread and one source (open one per source; the Denoiser behind it may be shared).
    ``filter`` is its temporal filter (None: off), which restarts by itself on a new frame size too.
    It starts afresh by itself when the frame size changes; call ``reset()`` where the caller knows the
    past no longer applies (a live source that reconnected, a seek). The model also cuts its past off by
    itself on a hard scene cut. With a Denoiser that ``follows_camera``, frames go to its single-frame model
    while the camera moves (``moving`` says where the last one went) and the recurrent model starts afresh
    when the camera stops.
    """

    def __init__(self, denoiser: Denoiser, temporal: bool | None = None) -> None:
        self.denoiser = denoiser
        self.filter = denoiser.temporal_filter() if (denoiser.temporal if temporal is None else temporal) else None
        self._host_state: np.ndarray | None = None
        # With I/O binding the state stays where the model runs, padded, for the frames of size _device_key.
        self._device_state: ort.OrtValue | None = None
        self._device_key: tuple[int, ...] = ()
        self.resets = 0  # times the state was dropped (reset() or a new frame size)
        # While the camera moves, a recurrent model's frames go to a single-frame model (``Denoiser(moving_camera)``);
        # while it is still, the temporal filter may follow the spread of the output's change (TemporalFilter.still)
        self.camera = CameraMotion() if denoiser.follows_camera or self.filter is not None else None
        self.moving = False  # the last frame went to the single-frame model
        self.switches = 0  # times the stream changed model
        # The model and the filter on one device, the frame copied there once (``_denoise_on_device``): on by
        # default where the model runs on CUDA (a frame model, colour frames, no tiling); True also on a CPU.
        self.on_device: bool | None = None
        self._device_frame: ort.OrtValue | None = None

    def _on_device(self, frame: np.ndarray, d: Denoiser) -> bool:
        wanted = d.model.device == "cuda" if self.on_device is None else self.on_device
        if not (wanted and self.filter is not None and d.frame_io and d.bind):
            return False
        if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3):
            return False  # grey, BGRA and anything to be checked take the host path
        h, w = frame.shape[:2]
        return min(h, w) >= 32 and len(_tiles(h, w, d.tile)) == 1

    @property
    def state(self) -> np.ndarray | None:
        """The model's state after the last frame, (N, S, H, W) float32 at the frame's size; None: empty."""
        if self._device_state is not None:
            _, h, w = self._device_key
            return np.asarray(self._device_state.numpy()[:, :, :h, :w])
        return self._host_state

    @state.setter
    def state(self, value: np.ndarray | None) -> None:
        self._host_state, self._device_state = value, None

    def denoise(self, frame: np.ndarray) -> np.ndarray:
        """Denoise the next frame of this source (as ``Denoiser.denoise``), using and updating the state."""
        den = self._follow_camera(frame)
        if self._on_device(frame, den):
            return den._denoise_on_device(frame, self)
        out = den._denoise(frame, self)
        if self.filter is None:
            return out
        if out.ndim == 2 or out.shape[2] == 3:
            return self.filter(frame, out)
        if out.shape[2] == 1:  # H x W x 1 grey
            return self.filter(frame[:, :, 0], out[:, :, 0])[:, :, None]
        return np.dstack([self.filter(frame[:, :, :3], out[:, :, :3]), out[:, :, 3]])  # alpha as it came

    __call__ = denoise

    def _follow_camera(self, frame: np.ndarray) -> Denoiser:
        """The Denoiser for this frame: the single-frame one while the camera moves (when there is one)."""
        if self.camera is None or not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            return self.denoiser
        if frame.ndim not in (2, 3) or min(frame.shape[:2]) < 8:
            return self.denoiser
        moving = self.camera(frame)
        if self.filter is not None:  # a camera known to be still: the filter may follow the spread of the change
            self.filter.still = self._still(frame, moving)
        if not self.denoiser.follows_camera:  # the camera is watched for the filter only
            return self.denoiser
        if moving != self.moving:
            self.moving = moving
            self.switches += 1
            if not moving:  # back to the recurrent model: the past it kept was seen before the camera moved
                self.state = None
        den = self.denoiser.moving_camera_denoiser() if moving else self.denoiser
        assert den is not None
        if self.filter is not None:
            self.filter.max_weight, self.filter.k = den.filter_params()
        return den

    def _still(self, frame: np.ndarray, moving: bool) -> bool:
        """Whether the filter may follow the spread of the output's change (``TemporalFilter.still``): the camera is
        known to be still (frames too small to tell count as unknown) and the strength is not below 1 (there the
        noise left in on purpose is meant to stay)."""
        return not moving and max(frame.shape[:2]) >= CameraMotion.MIN_SIDE and self.denoiser.strength >= 1.0

    def reset(self) -> None:
        """Forget the past: the next frame is treated as the first."""
        if self._host_state is not None or self._device_state is not None:
            self.resets += 1
        self.state = None
        if self.filter is not None:
            self.filter.reset()
        if self.camera is not None:
            self.camera.reset()
            self.moving = False


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
