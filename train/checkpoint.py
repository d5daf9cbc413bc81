"""Checkpoints that carry their own configuration, so a model can be rebuilt from the file alone."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from train.errors import CheckpointError
from train.registry import create_model

FORMAT = "edge-ae-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write atomically: a reader never sees a half-written checkpoint under ``path``."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {**meta, "format": FORMAT, "version": VERSION, "state_dict": state}  # meta never replaces the weights
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600: give the checkpoint a normal file's mode
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename: a crash never leaves a renamed, empty checkpoint
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from a checkpoint (loaded with ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such checkpoint file"
        raise CheckpointError(msg)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several unrelated types for foreign files
        msg = f"{path}: not a readable edge-ae checkpoint ({type(e).__name__})"
        raise CheckpointError(msg) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        msg = f"{path}: not an edge-ae checkpoint"
        raise CheckpointError(msg)
    if payload.get("version", 0) > VERSION:
        msg = f"{path}: checkpoint version {payload['version']} is newer than this edge-ae supports ({VERSION})"
        raise CheckpointError(msg)
    config = payload["config"]
    model = create_model(config["family"], **config["model"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, payload
