"""edge-ae runtime: denoise frames and flag anomalies with self-describing ONNX autoencoders.

Imports numpy, onnxruntime and OpenCV only; never torch.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

# FFmpeg and OpenCV print their own diagnostics on stderr (e.g. "moov atom not found" for a
# broken file); edge-ae reports such problems itself in one line, so keep theirs quiet unless
# the user asked for them. Must be set before OpenCV opens its first video.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

try:
    __version__ = version("edge-ae")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

__all__ = ["AnomalyDetector", "Denoiser", "Model", "__version__"]


def __getattr__(name: str) -> object:
    # Lazy so that `import edge_runtime` stays cheap for the CLI.
    if name == "AnomalyDetector":
        from edge_runtime.anomaly import AnomalyDetector

        return AnomalyDetector
    if name == "Denoiser":
        from edge_runtime.denoiser import Denoiser

        return Denoiser
    if name == "Model":
        from edge_runtime.model import Model

        return Model
    raise AttributeError(name)
