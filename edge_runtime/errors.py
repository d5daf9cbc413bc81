"""Exception types for users: each message names the bad value and what was expected."""

from __future__ import annotations


class EdgeAEError(Exception):
    """Base class of every error edge-ae reports to a user."""


class ModelCardError(EdgeAEError):
    """An ONNX file has no model card, a malformed one, or one newer than this runtime."""


class ModelLoadError(EdgeAEError):
    """An ONNX file cannot be opened by onnxruntime."""


class FrameError(EdgeAEError):
    """A frame has a dtype or shape the runtime cannot take."""


class SourceError(EdgeAEError):
    """An input (file, folder, camera, stream) cannot be opened or read."""


class OutputError(EdgeAEError):
    """An output cannot be written, or would overwrite an input."""


class BenchError(EdgeAEError):
    """A benchmark cannot run as asked (bad size, missing model variant, no quality images)."""


class NotCalibratedError(ModelCardError):
    """A model has no anomaly threshold yet: it must be calibrated on normal data first."""


class CalibrationError(EdgeAEError):
    """Calibration settings or normal data that cannot give a threshold."""


class AutoencoderInputError(EdgeAEError):
    """A request an autoencoder model cannot serve (wrong kind of model, bad sizes or counts)."""
