"""The training loop for image denoisers: patches, blind noise, Adam with cosine decay."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from train.checkpoint import save_checkpoint
from train.config import TrainConfig
from train.data import PatchSampler, collect, split, validation_batch
from train.noise import add_gaussian, corrupt, quantize
from train.registry import create_model

VAL_SIGMA = 25.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a, b).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
    except OSError:
        return None
    return out.stdout.strip() or None


@torch.no_grad()
def evaluate(model: torch.nn.Module, clean: torch.Tensor, sigma: float = VAL_SIGMA, seed: int = 1234) -> tuple[float, float]:
    """(noisy PSNR, denoised PSNR) on ``clean`` with fixed AWGN of ``sigma``, clipped and rounded."""
    g = torch.Generator().manual_seed(seed)
    noisy = quantize(add_gaussian(clean, torch.full((clean.shape[0],), sigma), g))
    was_training = model.training
    model.eval()
    out = torch.cat([model(noisy[i : i + 4].contiguous(memory_format=torch.channels_last)) for i in range(0, len(noisy), 4)])
    model.train(was_training)
    return psnr(noisy, clean), psnr(out, clean)


def train_denoiser(
    cfg: TrainConfig,
    data: list[str],
    out: str | Path,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train a blind denoiser on ``data`` and write a checkpoint to ``out``; returns its metrics."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    samples = collect(data, channels=cfg.channels)
    train_set, val_set = split(samples, cfg.val_share)
    log(f"data: {len(train_set)} training images, {len(val_set)} validation images (never trained on)")
    sampler = PatchSampler(train_set, cfg.patch, seed=cfg.seed)
    val = validation_batch(val_set) if val_set else None

    model_args = {"channels": cfg.channels, **cfg.model}
    cfg = dataclasses.replace(cfg, model=model_args)
    model = create_model(cfg.family, **model_args).to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)

    total_steps = cfg.epochs * cfg.steps_per_epoch
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else math.inf
    start = time.monotonic()
    last_val = last_log = start
    metrics: dict[str, Any] = {}
    meta: dict[str, Any] = {
        "config": cfg.to_dict(),
        "task": cfg.task,
        "noise": cfg.noise.as_card(),
        "data": {"sources": [str(d) for d in data], "train_images": len(train_set),
                 "validation_images": sorted(s.name for s in val_set)},
        "commit": _commit(),
        "torch_version": str(torch.__version__),
    }

    def checkpoint(step: int, final: bool = False) -> None:
        nonlocal metrics
        metrics = {"steps": step, "minutes": round((time.monotonic() - start) / 60, 2)}
        if val is not None:
            noisy_psnr, out_psnr = evaluate(model, val)
            metrics.update({"val_sigma": VAL_SIGMA, "val_noisy_psnr": round(noisy_psnr, 3), "val_psnr": round(out_psnr, 3)})
            log(f"  validation σ={VAL_SIGMA:g}: noisy {noisy_psnr:.2f} dB -> denoised {out_psnr:.2f} dB")
        meta.update(metrics=metrics, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    complete=final)
        save_checkpoint(out, model, meta)

    step = 0
    loss_avg = 0.0
    while step < total_steps:
        progress = max(step / total_steps, (time.monotonic() - start) / budget_s)
        if progress >= 1:
            break
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        clean = sampler.batch(cfg.batch)
        noisy, clean = corrupt(clean, cfg.noise, gen)
        pred = model(noisy.contiguous(memory_format=torch.channels_last))
        loss = F.mse_loss(pred, clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_avg = loss.item() if step == 1 else 0.98 * loss_avg + 0.02 * loss.item()
        now = time.monotonic()
        if now - last_log >= 10 or step == total_steps:
            elapsed = now - start
            rate = step / elapsed
            remaining = min((total_steps - step) / rate, budget_s - elapsed)
            log(f"epoch {min((step - 1) // cfg.steps_per_epoch + 1, cfg.epochs)}/{cfg.epochs} step {step}/{total_steps} "
                f"loss {loss_avg:.5f} lr {lr:.2e} {rate:.1f} steps/s, about {remaining / 60:.1f} min left")
            last_log = now
        if now - last_val >= cfg.val_every_s:
            checkpoint(step)
            last_val = time.monotonic()
    checkpoint(step, final=True)
    log(f"wrote {out} after {step} steps in {metrics['minutes']} min")
    return metrics
