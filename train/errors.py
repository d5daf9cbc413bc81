"""Errors the torch side reports to a user; the train and export commands catch ``TrainError`` alone.

Each also stays a ``ValueError``, as it was before they shared a base.
"""

from __future__ import annotations


class TrainError(Exception):
    """Base class of every error train/ and export/ report to a user."""


class ConfigError(TrainError, ValueError):
    """Unknown configuration keys or values of the wrong type."""


class DataError(TrainError, ValueError):
    """Training data is missing or unreadable."""


class CheckpointError(TrainError, ValueError):
    """A file is not an edge-ae checkpoint."""


class UnknownFamilyError(TrainError, ValueError):
    """A family name is not registered."""
