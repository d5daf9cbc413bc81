"""The export error: a check failed and nothing was written."""

from __future__ import annotations

from train.errors import TrainError


class ExportError(TrainError, RuntimeError):
    """An export fails a check; nothing is written (a RuntimeError, as before it shared TrainError)."""
