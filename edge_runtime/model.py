"""Open a self-describing ONNX file, validate its card, choose execution providers, run it."""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np

try:
    import onnxruntime as ort
except ImportError:  # the base install leaves the choice between onnxruntime and onnxruntime-gpu to the extras
    from edge_runtime.errors import ModelCardError, ModelLoadError
    from edge_runtime.install import pip_install

    _msg = (f"onnxruntime is not installed; install the CPU build with: {pip_install('cpu')} "
            f"(or the CUDA build: {pip_install('gpu')})")
    raise ModelLoadError(_msg) from None

from edge_runtime.card import ModelCard, card_from_metadata
from edge_runtime.errors import ModelCardError, ModelLoadError

log = logging.getLogger("edge_runtime")

DEVICES = ("auto", "cpu", "cuda")
# Conv algorithms are searched once per input shape (frames of a stream share one); frames are
# copied on the stream that computes, so a copy never races the previous frame's kernels.
CUDA_OPTIONS = {"cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": "1",
                "cudnn_conv_use_max_workspace": "1"}


def default_threads() -> int:
    """Cores this process may run on (CPU affinity and container limits included), at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
    try:  # a container's CPU quota (cgroup v2): more threads than the quota only queue
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


# Names of the models shipped inside the package, usable wherever a model path is taken.
# default: the single-frame denoiser (stills); video: the recurrent denoiser (video files, cameras, streams).
BUNDLED = {"default": "default.onnx", "video": "video.onnx"}
# What the bundled names load when the model runs on CUDA: the same networks in fp16 with uint8 frames in and
# out (``edge-ae export --precision fp16 --frame-io``; each checked against fp32 when it was made, see its card):
# only the uint8 frame crosses to the GPU, and a stream's temporal filter runs there too.
BUNDLED_CUDA = {"default": "default.fp16.frame.onnx", "video": "video.fp16.frame.onnx"}
# The temporal filter as a graph (made by ``python -m export.temporal_graph``), for streams on CUDA.
TEMPORAL_FILTER = "temporal_filter.onnx"


def default_model_path(name: str = "default", device: str = "cpu") -> Path:
    """A model bundled inside the package (``default``: the fp32 single-frame denoiser; ``video``: the
    recurrent one that carries a state from frame to frame); with ``device`` "cuda", its fp16 frame variant."""
    table = BUNDLED_CUDA if device == "cuda" else BUNDLED
    return Path(str(resources.files("edge_runtime") / "models" / table[name]))


def bundled_name(path: str | Path | None) -> str | None:
    """The bundled model's name that ``path`` stands for (None: the default), or None for a file of the user's."""
    if path is None:
        return "default"
    if isinstance(path, str) and path in BUNDLED and not Path(path).exists():
        return path
    return None


def default_model_for(spec: str | int | Path | None) -> str:
    """The bundled model an input gets without --model: ``video`` for a camera (an index or a /dev/video* device),
    a stream URL or a video file (a folder of videos too), ``default`` for images, folders of images and anything
    else; a folder of both images and videos is refused (``SourceError``)."""
    from edge_runtime.batch import is_video_folder
    from edge_runtime.files import is_video
    from edge_runtime.sources import STREAM_PREFIXES

    if spec is None:
        return "default"
    if isinstance(spec, int) or str(spec).isdigit() or str(spec).lower().startswith(STREAM_PREFIXES):
        return "video"
    path = Path(spec)
    if path.is_dir():
        return "video" if is_video_folder(path) else "default"
    if path.parent == Path("/dev") and path.name.startswith("video"):  # a V4L2 camera device (Linux)
        return "video"
    return "video" if is_video(path) else "default"


def sample_clip() -> Path:
    """The short noisy sample clip bundled with the package."""
    return Path(str(resources.files("edge_runtime") / "samples" / "sample.mp4"))


def resolve_model_path(path: str | Path | None) -> Path:
    """A model file path; None and the bundled names map to the files inside the package."""
    if path is None:
        return default_model_path()
    if isinstance(path, str) and path in BUNDLED and not Path(path).exists():
        return default_model_path(path)
    return Path(path)


def choose_providers(device: str, available: list[str] | None = None) -> list[str]:
    """Execution providers for ``device``; asking for CUDA where it is missing falls back with one warning."""
    if device not in DEVICES:
        msg = f"device {device!r} is not one of {', '.join(DEVICES)}"
        raise ValueError(msg)
    available = ort.get_available_providers() if available is None else available
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        log.warning("warning: CUDA was requested but this onnxruntime offers only %s; running on CPU",
                    ", ".join(available))
    if device != "cpu" and has_cuda:
        _preload_cuda_libraries()
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@functools.cache
def _preload_cuda_libraries() -> None:
    """onnxruntime-gpu finds CUDA and cuDNN installed as Python packages (e.g. beside torch) only when told to
    load them first (onnxruntime >= 1.21); a system-wide CUDA needs nothing. Once per process."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception as e:  # a missing library shows again, with its name, when the session starts
            log.debug("onnxruntime.preload_dlls failed: %s", e)


def session_options(threads: int | None = None, spin: bool | None = None) -> ort.SessionOptions:
    """CPU settings: all graph optimisations, intra-op threads = cores (or ``threads``).

    Spinning keeps worker threads busy-waiting between runs; that buys a little latency in a
    tight loop but burns a core while a live source waits for the next frame, so it is off
    unless asked for.
    """
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return so


def open_session(path: Path, providers: list[str], threads: int | None = None,
                 spin: bool | None = None) -> ort.InferenceSession:
    """An onnxruntime session for the model file ``path`` on ``providers`` (CUDA with edge-ae's options)."""
    if not path.is_file():
        msg = f"{path}: no such model file"
        raise ModelLoadError(msg)
    try:
        with_options = [(p, CUDA_OPTIONS) if p == "CUDAExecutionProvider" else p for p in providers]
        return ort.InferenceSession(str(path), session_options(threads, spin), providers=with_options)
    except Exception as e:  # onnxruntime raises its own untyped errors for bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = f"{path}: not a loadable ONNX model ({first})"
        raise ModelLoadError(msg) from None


class Model:
    """An edge-ae ONNX model: its card, its onnxruntime session and the provider it got.

    ``run`` may be called from several threads at once (onnxruntime sessions are thread-safe).
    """

    def __init__(self, path: str | Path | None = None, device: str = "auto", threads: int | None = None,
                 spin: bool | None = None) -> None:
        self.path = resolve_model_path(path)
        providers = choose_providers(device)
        name = bundled_name(path)
        on_cuda = "CUDAExecutionProvider" in providers
        if name is not None and on_cuda:
            self.path = default_model_path(name, "cuda")  # the bundled network's fp16 frame variant
        self.threads, self.spin = threads, spin
        self.session = open_session(self.path, providers, threads, spin)
        got = self.session.get_providers()
        if on_cuda and "CUDAExecutionProvider" not in got:
            log.warning("warning: the CUDA execution provider failed to load; running on CPU")
            if name is not None:  # fp16 is for GPUs: on the CPU the bundled fp32 model
                self.path = default_model_path(name)
                self.session = open_session(self.path, ["CPUExecutionProvider"], threads, spin)
                got = self.session.get_providers()
        source = str(self.path)
        self.card: ModelCard = card_from_metadata(self.session.get_modelmeta().custom_metadata_map, source)
        self.provider = got[0]
        self.device = "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        state = self.card.state
        if state is not None:
            inputs = [i.name for i in self.session.get_inputs()]
            if state.input not in inputs or state.output not in self.output_names:
                msg = f"{source}: the card's state ({state.input} -> {state.output}) is not in the graph"
                raise ModelCardError(msg)
            # the frame comes first and the image output first, as run() expects
            self.input_name = self.card.input.name
            self.output_names = [n for n in self.output_names if n != state.output] + [state.output]
        self.strength_name = self.card.input.strength
        if self.strength_name is not None and self.strength_name not in [i.name for i in self.session.get_inputs()]:
            msg = f"{source}: the card's strength input {self.strength_name!r} is not in the graph"
            raise ModelCardError(msg)
        self._bound = threading.local()  # per-thread I/O binding and device input buffer
        self._lock = threading.Lock()
        self._filter: ort.InferenceSession | None = None

    def filter_session(self) -> ort.InferenceSession:
        """The temporal filter's graph on this model's device: opened on first use, shared by its streams."""
        with self._lock:
            if self._filter is None:
                path = Path(str(resources.files("edge_runtime") / "models" / TEMPORAL_FILTER))
                providers = list(dict.fromkeys([self.provider, "CPUExecutionProvider"]))
                self._filter = open_session(path, providers, self.threads, self.spin)
            return self._filter

    def strength_feed(self, strength: float) -> dict[str, np.ndarray]:
        """The strength input's feed (empty for a model without one): 1 is the model's own noise estimate."""
        return {} if self.strength_name is None else {self.strength_name: np.array([strength], np.float32)}

    def run(self, x: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """Run the model's main input through it and return its first output (a recurrent model gets the
        empty state: a still). ``strength`` scales the noise-level estimate of a model with a strength input."""
        if self.card.state is not None:
            return self.run_state(x, None)[0]
        return self.session.run(self.output_names[:1], {self.input_name: x, **self.strength_feed(strength)})[0]

    def empty_state(self, x: np.ndarray | tuple[int, ...]) -> np.ndarray:
        """A recurrent model's state before the first frame of the input ``x`` (zeros; or of an input of that
        shape): (N, C, H, W) float planes, or (N, H, W, 3) uint8 frames for a model exported with --frame-io;
        the state is (N, S, H, W) float32."""
        spec = self.card.state
        if spec is None:
            msg = f"{self.path}: not a recurrent model (its card has no state)"
            raise ValueError(msg)
        shape = x if isinstance(x, tuple) else x.shape
        size = shape[1:3] if self.card.input.layout == "NHWC" else shape[2:]
        return np.zeros((shape[0], spec.channels, *size), np.float32)

    def run_state(self, x: np.ndarray, state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """One step of a recurrent model: (image output, next state); ``state`` None is the empty state."""
        spec = self.card.state
        if state is None:
            state = self.empty_state(x)
        assert spec is not None  # empty_state checked
        out, nxt = self.session.run([self.output_names[0], spec.output], {self.input_name: x, spec.input: state})
        return out, nxt

    def run_state_bound(self, x: np.ndarray | ort.OrtValue, state: np.ndarray | ort.OrtValue,
                        image_on_device: bool = False) -> tuple[np.ndarray | ort.OrtValue, ort.OrtValue]:
        """One step of a recurrent model through I/O binding: the next state stays where the model runs (an
        ``OrtValue`` on the GPU with CUDA) to be passed to the next step; the image output comes back to the
        host as an array, or stays there too with ``image_on_device``. ``x`` may already be there."""
        spec = self.card.state
        assert spec is not None, "run_state_bound needs a recurrent model"
        out, nxt = self.run_device(x, {spec.input: state}, [spec.output], () if image_on_device else ("image",))
        return (out if image_on_device else out.numpy()), nxt

    def run_device(self, x: np.ndarray | ort.OrtValue, extra: Mapping[str, np.ndarray | ort.OrtValue] | None = None,
                   outputs: list[str] | None = None, host: tuple[str, ...] = (),
                   strength: float = 1.0) -> list[ort.OrtValue]:
        """Run once through I/O binding: the main input ``x`` and the ``extra`` inputs are arrays (copied to the
        model's device) or ``OrtValue``s already there. Returns the image output and then the ``outputs`` named,
        as ``OrtValue``s that stay on the model's device, except those named in ``host`` ("image": the image
        output), which come to host memory."""
        names = [self.output_names[0], *(outputs or [])]
        host = tuple(self.output_names[0] if h == "image" else h for h in host)
        binding = self.session.io_binding()
        feeds: dict[str, np.ndarray | ort.OrtValue] = {self.input_name: x, **(extra or {}),
                                                       **self.strength_feed(strength)}
        for name, value in feeds.items():
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            else:
                binding.bind_ortvalue_input(name, value)
        for name in names:
            if name in host or self.device != "cuda":
                binding.bind_output(name, "cpu")
            else:
                binding.bind_output(name, "cuda", 0)
        self.session.run_with_iobinding(binding)
        return list(binding.get_outputs())

    def run_bound(self, x: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """Like ``run``, through onnxruntime I/O binding.

        With CUDA the input goes to a device buffer kept per thread and shape (one host-to-device
        copy, no reallocation), the output stays on the device until it is copied back once; on
        CPU the arrays are bound without copies.
        """
        st = self._bound
        if self.device != "cuda":
            binding = self.session.io_binding()
            binding.bind_cpu_input(self.input_name, np.ascontiguousarray(x))
            for name, value in self.strength_feed(strength).items():
                binding.bind_cpu_input(name, value)
            binding.bind_output(self.output_names[0], "cpu")
            self.session.run_with_iobinding(binding)
            return binding.get_outputs()[0].numpy()
        key = (x.shape, x.dtype.str)
        if getattr(st, "key", None) != key:
            st.input = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x), "cuda", 0)
            st.binding = self.session.io_binding()
            st.binding.bind_ortvalue_input(self.input_name, st.input)
            st.binding.bind_output(self.output_names[0], "cuda", 0)
            st.key = key
        else:
            st.input.update_inplace(np.ascontiguousarray(x))
        for name, value in self.strength_feed(strength).items():
            st.binding.bind_cpu_input(name, value)
        self.session.run_with_iobinding(st.binding)
        return st.binding.copy_outputs_to_cpu()[0]

    def run_all(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run with named inputs; return every output by name."""
        outs = self.session.run(self.output_names, dict(feeds))
        return dict(zip(self.output_names, outs, strict=True))

    def __repr__(self) -> str:
        card = self.card
        return f"Model({str(self.path)!r}, family={card.family!r}, task={card.task!r}, provider={self.provider!r})"
