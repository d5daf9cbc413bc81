"""edge-ae runtime: denoise frames and flag anomalies with self-describing ONNX autoencoders.

Imports numpy, onnxruntime and OpenCV only; never torch. ``import edge_runtime`` itself is quick: the
classes and functions below load (with numpy, OpenCV and onnxruntime) when first used, and type
checkers see them as the real thing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from edge_runtime.errors import (
    AutoencoderInputError,
    BenchError,
    CalibrationError,
    EdgeAEError,
    FrameError,
    ModelCardError,
    ModelLoadError,
    NotCalibratedError,
    OutputError,
    SourceError,
)

if TYPE_CHECKING:
    from edge_runtime.anomaly import AnomalyDetector
    from edge_runtime.autoencoder import Autoencoder
    from edge_runtime.calibration import calibrate
    from edge_runtime.denoiser import Denoiser
    from edge_runtime.model import Model
    from edge_runtime.pipeline import run_pipeline
    from edge_runtime.sources import open_source

    __version__: str

__all__ = [
    "AnomalyDetector",
    "Autoencoder",
    "AutoencoderInputError",
    "BenchError",
    "CalibrationError",
    "Denoiser",
    "EdgeAEError",
    "FrameError",
    "Model",
    "ModelCardError",
    "ModelLoadError",
    "NotCalibratedError",
    "OutputError",
    "SourceError",
    "__version__",
    "calibrate",
    "open_source",
    "run_pipeline",
]

# public name -> module that defines it; loaded on first use (PEP 562)
_LAZY = {
    "AnomalyDetector": "edge_runtime.anomaly",
    "Autoencoder": "edge_runtime.autoencoder",
    "calibrate": "edge_runtime.calibration",
    "Denoiser": "edge_runtime.denoiser",
    "Model": "edge_runtime.model",
    "run_pipeline": "edge_runtime.pipeline",
    "open_source": "edge_runtime.sources",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edge-ae")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+local"


def __getattr__(name: str) -> object:
    if name == "__version__":
        value: object = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        msg = f"module 'edge_runtime' has no attribute {name!r}"
        raise AttributeError(msg)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
