"""The training loop of the fixed-size families (layouts NF, NCHW, NTF): frames or sequences of one size,
the objective the family's spec names, Adam with cosine decay, a held-out validation split."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from train.config import TrainConfig
from train.data import Sample, split
from train.data_ae import load_images, load_sequences
from train.errors import ConfigError
from train.objectives import Parts
from train.registry import family_spec, list_families
from train.runner import checkpoint_meta, run_training, seed_torch

SEQ_SIZE = (16, 24)  # default (height, width) of sequence frames: small, 3:2 like most video
PREDICTOR_SIZE = (80, 120)  # default (height, width) of a predictor's frames: Ped2's 240x360 / 3


def to_tensor(images: np.ndarray, layout: str) -> torch.Tensor:
    """uint8 (N, H, W, C) or (N, T, H, W, C) -> float in [0, 1] in the model's layout."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    if layout == "NF":
        return x.flatten(1)  # (N, H*W*C), row-major H, W, C
    if layout == "NCHW":
        if x.dim() == 5:  # grey stacks (N, T, H, W, 1) of a predictor -> (N, T, H, W): the frames as channels
            return x[..., 0].contiguous()
        return x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    return x.flatten(2)  # (N, T, H*W*C)


def load_data(cfg: TrainConfig, data: list[str]) -> tuple[list[Sample], int, int]:
    """The samples for ``cfg.family`` (sequences for an NTF family) and the frame size (height, width)."""
    spec = family_spec(cfg.family)
    if spec.past_frames:
        if cfg.channels != 1:
            msg = f"the {spec.name} family predicts grey frames; use --channels 1"
            raise ConfigError(msg)
        h, w = cfg.height or PREDICTOR_SIZE[0], cfg.width or PREDICTOR_SIZE[1]
        return load_sequences(data, 1, h, w, spec.past_frames + 1, stride=2), h, w
    if spec.layout == "NTF":
        h, w = cfg.height or SEQ_SIZE[0], cfg.width or SEQ_SIZE[1]
        return load_sequences(data, cfg.channels, h, w, cfg.seq_len), h, w
    return load_images(data, cfg.channels, cfg.height, cfg.width)


def model_arguments(cfg: TrainConfig, height: int, width: int) -> dict[str, Any]:
    """The family's keyword arguments: sizes from the data (the spec's rule), the code size from
    ``cfg.bottleneck`` (under the spec's name for it), then ``cfg.model``."""
    spec = family_spec(cfg.family)
    args = spec.arguments(cfg.channels, height, width)
    if cfg.bottleneck is not None:
        if spec.code_argument is None:
            msg = (f"the {spec.name} family's code size follows from its architecture and the frame size; "
                   "drop --bottleneck")
            raise ConfigError(msg)
        args[spec.code_argument] = cfg.bottleneck
    return {**args, **cfg.model}


@torch.no_grad()
def reconstruction_mse(model: nn.Module, x: torch.Tensor, chunk: int = 512) -> float:
    """Mean squared error of the deterministic reconstruction (eval mode) over ``x``; for a predictor
    (``past_frames``), of the predicted present frame (the last channel), plus that of its appearance branch's
    reconstruction of it when it has one (issue 14: the best epoch is then the best for both)."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    past = int(getattr(model, "past_frames", 0))
    for i in range(0, len(x), chunk):
        batch = x[i : i + chunk]
        target = batch[:, past:] if past else batch
        outs = model(batch)
        total += float((outs[0] - target).pow(2).sum())
        if past and len(outs) > 1:  # (prediction, appearance): both of the present frame
            total += float((outs[1] - target).pow(2).sum())
        count += target.numel()
    model.train(was)
    return total / count


def train_autoencoder(cfg: TrainConfig, data: list[str], out: str | Path,
                      log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``cfg.family`` on ``data`` and write a checkpoint to ``out``; returns its metrics."""
    spec = family_spec(cfg.family)
    if not spec.fixed_size:
        fixed = [f for f in list_families() if family_spec(f).fixed_size]
        msg = f"train_autoencoder trains {', '.join(fixed)}; got {cfg.family!r}"
        raise ConfigError(msg)
    seed_torch(cfg)
    layout = spec.layout
    samples, height, width = load_data(cfg, data)
    train_set, val_set = split(samples, cfg.val_share)
    what = (f"sequences of {cfg.seq_len} frames" if layout == "NTF" else
            f"stacks of {spec.past_frames} past frames + the present" if spec.past_frames else "frames")
    log(f"data: {len(train_set)} training {what}, {len(val_set)} validation (never trained on), "
        f"{height}x{width}x{cfg.channels}")
    x_train = to_tensor(np.stack([s.image for s in train_set]), layout)
    x_val = to_tensor(np.stack([s.image for s in val_set]), layout) if val_set else None

    model_args = model_arguments(cfg, height, width)
    cfg = dataclasses.replace(cfg, model=model_args, height=height, width=width,
                              task="anomaly" if cfg.task == "anomaly" else "reconstruct")
    model = spec.build(**model_args)
    model.train()
    gen = torch.Generator().manual_seed(cfg.seed)
    meta = checkpoint_meta(cfg, input={"layout": layout, "channels": cfg.channels, "height": height, "width": width,
                                       "seq_len": cfg.seq_len if layout == "NTF" else None,
                                       "past_frames": spec.past_frames or None},
                           data={"sources": [str(d) for d in data], "train_samples": len(train_set),
                                 "validation_samples": len(val_set)})
    objective = spec.objective
    assert objective is not None  # FamilySpec refuses a fixed-size family without one

    def step() -> tuple[torch.Tensor, Parts]:
        idx = torch.randint(len(x_train), (min(cfg.batch, len(x_train)),), generator=gen)
        return objective(model, x_train[idx], cfg.objective, gen)

    def validate() -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if hasattr(model, "bottleneck"):
            metrics["bottleneck"] = int(model.bottleneck)
        if x_val is not None:
            mse = reconstruction_mse(model, x_val)
            metrics["val_mse"] = round(mse, 6)
            log(f"  validation: reconstruction MSE {mse:.5f} on {len(x_val)} held-out samples")
        return metrics

    val_loss = (lambda: reconstruction_mse(model, x_val)) if x_val is not None else None
    return run_training(cfg, model, torch.optim.Adam, step, validate, out, meta, log, val_loss)
