"""Open a self-describing ONNX file, validate its card, choose execution providers, run it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_runtime.card import ModelCard, card_from_metadata
from edge_runtime.errors import ModelLoadError

log = logging.getLogger("edge_runtime")

DEVICES = ("auto", "cpu", "cuda")


def default_model_path() -> Path:
    """The bundled default denoiser shipped inside the package."""
    return Path(str(resources.files("edge_runtime") / "models" / "default.onnx"))


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
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(threads: int | None = None, spin: bool | None = None) -> ort.SessionOptions:
    """CPU settings: all graph optimisations, intra-op threads = cores (or ``threads``).

    Spinning keeps worker threads busy-waiting between runs; that buys a little latency in a
    tight loop but burns a core while a live source waits for the next frame, so it is off
    unless asked for.
    """
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return so


class Model:
    """An edge-ae ONNX model: its card, its onnxruntime session and the provider it got.

    ``run`` may be called from several threads at once (onnxruntime sessions are thread-safe).
    """

    def __init__(self, path: str | Path | None = None, device: str = "auto", threads: int | None = None,
                 spin: bool | None = None) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        source = str(self.path)
        if not self.path.is_file():
            msg = f"{source}: no such model file"
            raise ModelLoadError(msg)
        providers = choose_providers(device)
        try:
            self.session = ort.InferenceSession(str(self.path), session_options(threads, spin), providers=providers)
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

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run the model's main input through it and return its first output."""
        return self.session.run(self.output_names[:1], {self.input_name: x})[0]

    def run_all(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run with named inputs; return every output by name."""
        outs = self.session.run(self.output_names, dict(feeds))
        return dict(zip(self.output_names, outs, strict=True))

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, family={self.card.family!r}, task={self.card.task!r}, provider={self.provider!r})"
