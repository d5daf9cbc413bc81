"""The training loop for image denoisers: patches, blind noise, AdamW with cosine decay."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from train.config import TrainConfig
from train.data import PatchSampler, collect, split, validation_batch
from train.errors import ConfigError
from train.noise import NoisePlan, add_gaussian, apply_noise, corrupt, plan_noise, quantize
from train.objectives import Parts
from train.registry import family_spec, list_families
from train.runner import batch_stream, checkpoint_meta, resolve_device, run_training, seed_torch, worker_count
from train.warm_start import warm_start

VAL_SIGMA = 25.0
LEVEL_WEIGHT = 10.0  # of the level estimate's squared error (0..1 scale; 2.5 levels off costs about an MSE of 1e-3)
UNDER = 0.7  # an under-estimated level leaves noise: it costs more than an over-estimate (0.3), as in CBDNet


def true_level(noisy: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """The local noise sigma of ``noisy`` (0..1 scale) per 8x8 block, smoothed over 3x3 blocks: (B, 1, H/8, W/8)."""
    var = F.avg_pool2d(((noisy - clean) ** 2).mean(1, keepdim=True), 8)
    return F.avg_pool2d(var, 3, stride=1, padding=1, count_include_pad=False).sqrt()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1] (the numpy one for uint8 frames is edge_runtime.quality.psnr)."""
    mse = F.mse_loss(a, b).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def evaluate(model: torch.nn.Module, clean: torch.Tensor, sigma: float = VAL_SIGMA,
             seed: int = 1234) -> tuple[float, float]:
    """(noisy PSNR, denoised PSNR) on ``clean`` with fixed AWGN of ``sigma``, clipped and rounded."""
    g = torch.Generator().manual_seed(seed)
    clean = clean.cpu()
    noisy = quantize(add_gaussian(clean, torch.full((clean.shape[0],), sigma), g))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.cat([model(noisy[i : i + 4].to(device).contiguous(memory_format=torch.channels_last)).cpu()
                     for i in range(0, len(noisy), 4)])
    model.train(was_training)
    return psnr(noisy, clean), psnr(out, clean)


def train_denoiser(
    cfg: TrainConfig,
    data: list[str],
    out: str | Path,
    log: Callable[[str], None] = print,
    init_from: str | Path | None = None,
) -> dict[str, Any]:
    """Train a blind denoiser on ``data`` and write a checkpoint to ``out``; returns its metrics. ``init_from``:
    start from that model's weights (train.warm_start) instead of random ones."""
    spec = family_spec(cfg.family)
    if spec.fixed_size:
        images = [f for f in list_families() if not family_spec(f).fixed_size]
        msg = f"train_denoiser trains {', '.join(images)}; {cfg.family!r} is a fixed-size family (train_autoencoder)"
        raise ConfigError(msg)
    seed_torch(cfg)
    device = resolve_device(cfg)
    samples = collect(data, channels=cfg.channels)
    train_set, val_set = split(samples, cfg.val_share)
    workers = worker_count(cfg, device)
    log(f"data: {len(train_set)} training images, {len(val_set)} validation images (never trained on); "
        f"training on {device}" + (f", batches made by {workers} processes" if workers else ""))
    val = validation_batch(val_set) if val_set else None

    model_args = {**spec.arguments(cfg.channels, None, None), **cfg.model}
    cfg = dataclasses.replace(cfg, model=model_args)
    model = spec.build(**model_args)
    if init_from is not None:
        log(f"warm start: {warm_start(model, init_from)}")
    model = model.to(device, memory_format=torch.channels_last)
    model.train()
    meta = checkpoint_meta(cfg, noise=cfg.noise.as_card(),
                           data={"sources": [str(d) for d in data], "train_images": len(train_set),
                                 "validation_images": sorted(s.name for s in val_set),
                                 "init_from": str(init_from) if init_from is not None else None})

    on_device = device.type == "cuda" if cfg.noise_on_device is None else cfg.noise_on_device

    def make(seed: int) -> Iterator[tuple[torch.Tensor, Any]]:
        sampler = PatchSampler(train_set, cfg.patch, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        while True:
            clean = sampler.batch(cfg.batch)
            # on the device: the plan (and the realistic-camera samples) here, the rest where the model trains
            if on_device:
                yield clean, plan_noise(clean, cfg.noise, gen, finish_jpeg=True).as_dict()
            else:
                yield corrupt(clean, cfg.noise, gen)

    batches = batch_stream(make, cfg.seed, workers, pin=device.type == "cuda")
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1) if on_device else None

    def pair() -> tuple[torch.Tensor, torch.Tensor]:
        first, second = next(batches)
        if on_device:
            return apply_noise(first.to(device, non_blocking=True), NoisePlan.from_dict(second), noise_gen)
        return first.to(device, non_blocking=True), second.to(device, non_blocking=True)

    def step() -> tuple[torch.Tensor, Parts]:
        noisy, clean = pair()
        x = noisy.contiguous(memory_format=torch.channels_last)
        if not getattr(model, "takes_strength", False):
            return F.mse_loss(model(x), clean), {}
        # A model with a noise-level input: the decoder follows the true level on half of the samples and
        # its own estimate on the others; the estimate is fitted to the true level.
        feats = model.encode(x)
        est = model.estimate(feats[2])
        true = true_level(noisy, clean)
        use_true = torch.rand(len(x), 1, 1, 1, device=device) < 0.5
        pred = model.decode(x, feats, torch.where(use_true, true, est))
        miss = est - true
        level_loss = (torch.where(miss < 0, UNDER, 1 - UNDER) * miss**2).mean()
        mse = F.mse_loss(pred, clean)
        rms = float(miss.detach().pow(2).mean().sqrt()) * 255  # the estimate's error in 0..255 levels
        return mse + LEVEL_WEIGHT * level_loss, {"mse": mse.item(), "level_rms": rms}

    def validate() -> dict[str, Any]:
        if val is None:
            return {}
        noisy_psnr, out_psnr = evaluate(model, val)
        log(f"  validation σ={VAL_SIGMA:g}: noisy {noisy_psnr:.2f} dB -> denoised {out_psnr:.2f} dB")
        return {"val_sigma": VAL_SIGMA, "val_noisy_psnr": round(noisy_psnr, 3), "val_psnr": round(out_psnr, 3)}

    return run_training(cfg, model, torch.optim.AdamW, step, validate, out, meta, log)
