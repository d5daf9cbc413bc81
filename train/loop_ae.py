"""The training loop of the autoencoder families (undercomplete ... lstm): fixed-size frames or
sequences, the family's objective, Adam with cosine decay, a held-out validation split."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from train.checkpoint import save_checkpoint
from train.config import TrainConfig
from train.data import DataError, Sample, split
from train.data_ae import load_images, load_sequences
from train.loop import _commit
from train.objectives import objective_loss
from train.registry import create_model

DENSE = ("undercomplete", "sparse", "denoising", "contractive", "variational")
AE_FAMILIES = (*DENSE, "convolutional", "lstm")
LAYOUTS = {**{f: "NF" for f in DENSE}, "convolutional": "NCHW", "lstm": "NTF"}
SEQ_SIZE = (16, 24)  # default (height, width) of sequence frames: small, 3:2 like most video


def to_tensor(images: np.ndarray, layout: str) -> torch.Tensor:
    """uint8 (N, H, W, C) or (N, T, H, W, C) -> float in [0, 1] in the model's layout."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    if layout == "NF":
        return x.flatten(1)  # (N, H*W*C), row-major H, W, C
    if layout == "NCHW":
        return x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    return x.flatten(2)  # (N, T, H*W*C)


def load_data(cfg: TrainConfig, data: list[str]) -> tuple[list[Sample], int, int]:
    """The samples for ``cfg.family`` and the frame size (height, width)."""
    if cfg.family == "lstm":
        h, w = cfg.height or SEQ_SIZE[0], cfg.width or SEQ_SIZE[1]
        return load_sequences(data, cfg.channels, h, w, cfg.seq_len), h, w
    return load_images(data, cfg.channels, cfg.height, cfg.width)


def model_arguments(cfg: TrainConfig, height: int, width: int) -> dict[str, Any]:
    """The family's keyword arguments: sizes from the data, the code size from ``cfg.bottleneck``."""
    features = height * width * cfg.channels
    args: dict[str, Any] = {}
    if cfg.family == "convolutional":
        args = {"channels": cfg.channels, "height": height, "width": width}
    else:
        args = {"features": features}
    if cfg.family == "lstm":
        args["centre"] = True  # recorded in the checkpoint and the card; --config with {"model": {"centre": false}} turns it off
    if cfg.bottleneck is not None:
        if cfg.family == "convolutional":
            msg = "the convolutional family's code size follows from its widths and the frame size; drop --bottleneck"
            raise DataError(msg)
        args["hidden" if cfg.family == "sparse" else "bottleneck"] = cfg.bottleneck
    return {**args, **cfg.model}


@torch.no_grad()
def reconstruction_mse(model: nn.Module, x: torch.Tensor, chunk: int = 512) -> float:
    """Mean squared error of the deterministic reconstruction (eval mode) over ``x``."""
    was = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(x), chunk):
        pred = model(x[i : i + chunk])[0]
        total += float((pred - x[i : i + chunk]).pow(2).sum())
    model.train(was)
    return total / x.numel()


def train_autoencoder(cfg: TrainConfig, data: list[str], out: str | Path,
                      log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``cfg.family`` on ``data`` and write a checkpoint to ``out``; returns its metrics."""
    if cfg.family not in AE_FAMILIES:
        msg = f"train_autoencoder trains {', '.join(AE_FAMILIES)}; got {cfg.family!r}"
        raise DataError(msg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    layout = LAYOUTS[cfg.family]
    samples, height, width = load_data(cfg, data)
    train_set, val_set = split(samples, cfg.val_share)
    what = f"sequences of {cfg.seq_len} frames" if layout == "NTF" else "frames"
    log(f"data: {len(train_set)} training {what}, {len(val_set)} validation (never trained on), "
        f"{height}x{width}x{cfg.channels}")
    x_train = to_tensor(np.stack([s.image for s in train_set]), layout)
    x_val = to_tensor(np.stack([s.image for s in val_set]), layout) if val_set else None

    model_args = model_arguments(cfg, height, width)
    cfg = dataclasses.replace(cfg, model=model_args, height=height, width=width,
                              task="anomaly" if cfg.task == "anomaly" else "reconstruct")
    model = create_model(cfg.family, **model_args)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)

    total_steps = cfg.epochs * cfg.steps_per_epoch
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else math.inf
    start = time.monotonic()
    last_val = last_log = start
    metrics: dict[str, Any] = {}
    meta: dict[str, Any] = {
        "config": cfg.to_dict(),
        "task": cfg.task,
        "input": {"layout": layout, "channels": cfg.channels, "height": height, "width": width,
                  "seq_len": cfg.seq_len if layout == "NTF" else None},
        "data": {"sources": [str(d) for d in data], "train_samples": len(train_set),
                 "validation_samples": len(val_set)},
        "commit": _commit(),
        "torch_version": str(torch.__version__),
    }

    def checkpoint(step: int, final: bool = False) -> None:
        nonlocal metrics
        metrics = {"steps": step, "minutes": round((time.monotonic() - start) / 60, 2),
                   "bottleneck": int(model.bottleneck)}
        if x_val is not None:
            mse = reconstruction_mse(model, x_val)
            metrics["val_mse"] = round(mse, 6)
            log(f"  validation: reconstruction MSE {mse:.5f} on {len(x_val)} held-out samples")
        meta.update(metrics=metrics, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    complete=final)
        save_checkpoint(out, model, meta)

    step = 0
    avg: dict[str, float] = {}
    while step < total_steps:
        progress = max(step / total_steps, (time.monotonic() - start) / budget_s)
        if progress >= 1:
            break
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(x_train), (min(cfg.batch, len(x_train)),), generator=gen)
        loss, parts = objective_loss(cfg.family, model, x_train[idx], cfg.objective, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        parts["loss"] = loss.item()
        avg = parts if step == 1 else {k: 0.98 * avg.get(k, v) + 0.02 * v for k, v in parts.items()}
        now = time.monotonic()
        if now - last_log >= 10 or step == total_steps:
            elapsed = now - start
            rate = step / elapsed
            remaining = min((total_steps - step) / rate, budget_s - elapsed)
            shown = " ".join(f"{k} {v:.5f}" for k, v in avg.items())
            log(f"epoch {min((step - 1) // cfg.steps_per_epoch + 1, cfg.epochs)}/{cfg.epochs} step {step}/{total_steps} "
                f"{shown} lr {lr:.2e} {rate:.1f} steps/s, about {remaining / 60:.1f} min left")
            last_log = now
        if now - last_val >= cfg.val_every_s:
            checkpoint(step)
            last_val = time.monotonic()
    checkpoint(step, final=True)
    log(f"wrote {out} after {step} steps in {metrics['minutes']} min")
    return metrics
