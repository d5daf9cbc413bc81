"""Helpers of the family tests: train a family with the project's own loop and hold out its validation split."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train.checkpoint import load_checkpoint
from train.config import build_config
from train.data import split
from train.loop_ae import load_data, to_tensor
from train.registry import family_spec, list_families

# Margins checked: undercomplete/denoising/contractive on seeds 0-2; sparse, variational, convolutional and lstm
# on seeds 0-4.
SEED = int(os.environ.get("EDGE_AE_TEST_SEED", "0"))


def fixed_size_families() -> list[str]:
    """Every registered family trained on fixed-size frames (all but the any-size image denoisers)."""
    return [f for f in list_families() if family_spec(f).fixed_size]


def fit(tmp: Path, data: list[str], family: str, steps: int, name: str | None = None,
        objective: dict[str, Any] | None = None, **overrides: Any) -> tuple[torch.nn.Module, torch.Tensor, Path]:
    """Train with train_autoencoder; return (model, held-out samples in model layout, checkpoint)."""
    from train.loop_ae import train_autoencoder

    torch.set_num_threads(1)
    overrides.setdefault("val_share", 0.2)
    cfg = build_config("ae", family=family, epochs=1, steps_per_epoch=steps, threads=1, seed=SEED,
                       val_every_s=3600.0, objective=objective or {}, **overrides)
    out = tmp / f"{name or family}.pt"
    train_autoencoder(cfg, data, out, log=lambda s: None)
    model, _payload = load_checkpoint(out)
    samples, _, _ = load_data(cfg, data)
    _, val = split(samples, cfg.val_share)
    held = to_tensor(np.stack([s.image for s in val]), family_spec(family).layout) if val else torch.empty(0)
    return model, held, out
