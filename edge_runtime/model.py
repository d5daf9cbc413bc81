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


def default_model_path(name: str = "default") -> Path:
    """A model bundled inside the package (``default``: the fp32 single-frame denoiser; ``video``: the
    recurrent one that carries a state from frame to frame)."""
    return Path(str(resources.files("edge_runtime") / "models" / BUNDLED[name]))


def default_model_for(spec: str | int | Path | None) -> str:
    """The bundled model an input gets without --model: ``video`` for a camera index, a stream URL or a
    video file (a folder of videos too), ``default`` for images, folders of images and anything else."""
    from edge_runtime.files import VIDEO_SUFFIXES, is_video
    from edge_runtime.sources import STREAM_PREFIXES

    if spec is None:
        return "default"
    if isinstance(spec, int) or str(spec).isdigit() or str(spec).lower().startswith(STREAM_PREFIXES):
        return "video"
    path = Path(spec)
    if path.is_dir():
        has_video = any(p.suffix.lower() in VIDEO_SUFFIXES for p in path.rglob("*") if p.is_file())
        return "video" if has_video else "default"
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


class Model:
    """An edge-ae ONNX model: its card, its onnxruntime session and the provider it got.

    ``run`` may be called from several threads at once (onnxruntime sessions are thread-safe).
    """

    def __init__(self, path: str | Path | None = None, device: str = "auto", threads: int | None = None,
                 spin: bool | None = None) -> None:
        self.path = resolve_model_path(path)
        source = str(self.path)
        if not self.path.is_file():
            msg = f"{source}: no such model file"
            raise ModelLoadError(msg)
        providers = choose_providers(device)
        try:
            with_options = [(p, CUDA_OPTIONS) if p == "CUDAExecutionProvider" else p for p in providers]
            self.session = ort.InferenceSession(str(self.path), session_options(threads, spin), providers=with_options)
        except Exception as e:  # onnxruntime raises its own untyped errors for bad files
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            msg = f"{source}: not a loadable ONNX model ({first})"
            raise ModelLoadError(msg) from None
        self.card: ModelCard = card_from_metadata(self.session.get_modelmeta().custom_metadata_map, source)
        got = self.session.get_providers()
        if "CUDAExecutionProvider" in providers and "CUDAExecutionProvider" not in got:
            log.warning("warning: the CUDA execution provider failed to load; running on CPU")
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

    def strength_feed(self, strength: float) -> dict[str, np.ndarray]:
        """The strength input's feed (empty for a model without one): 1 is the model's own noise estimate."""
        return {} if self.strength_name is None else {self.strength_name: np.array([strength], np.float32)}

    def run(self, x: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """Run the model's main input through it and return its first output (a recurrent model gets the
        empty state: a still). ``strength`` scales the noise-level estimate of a model with a strength input."""
        if self.card.state is not None:
            return self.run_state(x, None)[0]
        return self.session.run(self.output_names[:1], {self.input_name: x, **self.strength_feed(strength)})[0]

    def empty_state(self, x: np.ndarray) -> np.ndarray:
        """A recurrent model's state before the first frame of the input ``x`` (zeros): (N, C, H, W) float planes,
        or (N, H, W, 3) uint8 frames for a model exported with --frame-io; the state is (N, S, H, W) float32."""
        spec = self.card.state
        if spec is None:
            msg = f"{self.path}: not a recurrent model (its card has no state)"
            raise ValueError(msg)
        size = x.shape[1:3] if self.card.input.layout == "NHWC" else x.shape[2:]
        return np.zeros((x.shape[0], spec.channels, *size), np.float32)

    def run_state(self, x: np.ndarray, state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """One step of a recurrent model: (image output, next state); ``state`` None is the empty state."""
        spec = self.card.state
        if state is None:
            state = self.empty_state(x)
        assert spec is not None  # empty_state checked
        out, nxt = self.session.run([self.output_names[0], spec.output], {self.input_name: x, spec.input: state})
        return out, nxt

    def run_state_bound(self, x: np.ndarray, state: np.ndarray | ort.OrtValue) -> tuple[np.ndarray, ort.OrtValue]:
        """One step of a recurrent model through I/O binding: the image output comes back to the host, the next
        state stays where the model runs (an ``OrtValue`` on the GPU with CUDA) to be passed to the next step."""
        spec = self.card.state
        assert spec is not None, "run_state_bound needs a recurrent model"
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, np.ascontiguousarray(x))
        if isinstance(state, np.ndarray):
            binding.bind_cpu_input(spec.input, np.ascontiguousarray(state, dtype=np.float32))
        else:
            binding.bind_ortvalue_input(spec.input, state)
        binding.bind_output(self.output_names[0], "cpu")
        binding.bind_output(spec.output, self.device, 0)
        self.session.run_with_iobinding(binding)
        out, nxt = binding.get_outputs()
        return out.numpy(), nxt

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
