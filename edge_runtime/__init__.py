"""edge-ae runtime: denoise frames and flag anomalies with self-describing ONNX autoencoders.

Imports numpy, onnxruntime and OpenCV only; never torch.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edge-ae")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

__all__ = ["Denoiser", "Model", "__version__"]


def __getattr__(name: str) -> object:
    # Lazy so that `import edge_runtime` stays cheap for the CLI.
    if name == "Denoiser":
        from edge_runtime.denoiser import Denoiser

        return Denoiser
    if name == "Model":
        from edge_runtime.model import Model

        return Model
    raise AttributeError(name)
