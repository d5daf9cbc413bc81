"""The training loop for recurrent video denoisers (video_denoiser): noisy clips, truncated backpropagation
through time, warm-started from a single-frame conv_denoiser.

Each step takes ``batch`` clips of ``seq_len`` frames (``patch`` x ``patch``): real video clips (30 %) and
clips rendered from photos with synthetic motion and cuts (train.sequences). Half of the steps first run
``BURN`` frames without gradient, so the state is trained in the regime of later frames too (the first
of them, from the empty state, still counts: a stream's first frame must not fall behind the
single-frame model); the loss is L1 over the unrolled frames. The weights the single-frame model lacks
(state inputs, gate, auxiliary map) learn at ``NEW_LR_SCALE`` times the rate of the pretrained ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train.config import TrainConfig
from train.data import is_validation
from train.errors import ConfigError
from train.loop import VAL_SIGMA, psnr
from train.noise import add_gaussian, quantize
from train.objectives import Parts
from train.registry import family_spec
from train.runner import batch_stream, checkpoint_meta, resolve_device, run_training, seed_torch, worker_count
from train.sequences import RealClips, SyntheticClips, add_sequence_noise, load_sources
from train.warm_start import warm_start

BURN = 4  # frames run without gradient before the unrolled ones, on half of the steps
REAL_SHARE = 0.3  # share of real video clips in a batch (when there are both)
NEW_LR_SCALE = 15.0  # rate of the new (state, gate) weights relative to the pretrained ones
VAL_CLIPS, VAL_FRAMES = 8, 10


def _optimizer(model: torch.nn.Module) -> Callable[..., torch.optim.Optimizer]:
    new = list(getattr(model, "new_parameters", list)())
    new_ids = {id(p) for p in new}

    def make(params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        old = [p for p in model.parameters() if id(p) not in new_ids]
        groups = [{"params": old}, {"params": new, "lr_scale": NEW_LR_SCALE}] if new else [{"params": old}]
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)

    return make


def train_video(cfg: TrainConfig, data: list[str], out: str | Path, log: Callable[[str], None] = print,
                init_from: str | Path | None = None) -> dict[str, Any]:
    """Train a recurrent video denoiser on the photos and videos under ``data``; write a checkpoint to ``out``."""
    spec = family_spec(cfg.family)
    if not spec.state_channels:
        msg = f"train_video trains recurrent families; {cfg.family!r} has no state (train_denoiser)"
        raise ConfigError(msg)
    seed_torch(cfg)
    device = resolve_device(cfg)
    photos, clips = load_sources(data, cfg.patch)
    val_names = sorted(n for n in [*photos, *clips] if is_validation(n, cfg.val_share))
    if len(val_names) == len(photos) + len(clips):
        val_names = []  # too little data to hold any out
    train_photos = [img for n, img in photos.items() if n not in val_names]
    train_clips = [c for n, c in clips.items() if n not in val_names and len(c) >= cfg.seq_len + BURN]
    workers = worker_count(cfg, device)
    log(f"data: {len(train_photos)} photos and {len(train_clips)} clips for training, "
        f"{len(val_names)} held out for validation; training on {device}"
        + (f", clips made by {workers} processes" if workers else ""))

    model_args = {**spec.arguments(cfg.channels, None, None), **cfg.model}
    cfg = dataclasses.replace(cfg, model=model_args)
    model = spec.build(**model_args)
    if init_from is not None:
        log(f"warm start: {warm_start(model, init_from)}")
    model.to(device).train()
    val = _validation_clips(photos, clips, val_names, cfg.patch)
    if val is not None:
        val = (val[0].to(device), val[1].to(device))
    meta = checkpoint_meta(cfg, noise=cfg.noise.as_card(),
                           data={"sources": [str(d) for d in data], "train_photos": len(train_photos),
                                 "train_clips": len(train_clips), "validation": val_names,
                                 "init_from": str(init_from) if init_from is not None else None})
    frames = cfg.seq_len

    def make(seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = np.random.default_rng(seed)
        syn = SyntheticClips(train_photos, rng) if train_photos else None
        real = RealClips(train_clips, rng) if train_clips else None
        while True:
            n_real = int(rng.binomial(cfg.batch, REAL_SHARE)) if syn and real else (cfg.batch if real else 0)
            t_len = frames + (BURN if rng.random() < 0.5 else 0)
            made = [real.clip(t_len, cfg.patch) for _ in range(n_real)] if real else []
            made += [syn.clip(t_len, cfg.patch) for _ in range(cfg.batch - n_real)] if syn else []
            yield add_sequence_noise(torch.stack(made), rng, cfg.noise)

    batches = batch_stream(make, cfg.seed, workers, pin=device.type == "cuda")

    def step() -> tuple[torch.Tensor, Parts]:
        noisy, clean = (t.to(device, non_blocking=True) for t in next(batches))
        burn = noisy.shape[1] - frames
        state = model.empty_state(noisy[:, 0])
        loss = torch.zeros((), device=device)
        counted = frames
        if burn:
            # The first frame (empty state: spatial-only) is in the loss on every step, so that the first
            # frame of a stream stays as good as the single-frame model while the shared weights move.
            y, state = model(noisy[:, 0], state)
            loss = loss + (y - clean[:, 0]).abs().mean()
            counted += 1
            state = state.detach()
        with torch.no_grad():
            for t in range(1 if burn else 0, burn):
                _, state = model(noisy[:, t], state)
        for t in range(burn, noisy.shape[1]):
            y, state = model(noisy[:, t], state)
            loss = loss + (y - clean[:, t]).abs().mean()
        return loss / counted, {}

    def validate() -> dict[str, Any]:
        if val is None:
            return {}
        noisy, clean = val
        model.eval()
        with torch.no_grad():
            y, _ = model.run_sequence(noisy)
        model.train()
        per = [psnr(y[:, t], clean[:, t]) for t in range(y.shape[1])]
        log(f"  validation σ={VAL_SIGMA:g} per frame: {' '.join(f'{p:.2f}' for p in per)} dB")
        return {"val_sigma": VAL_SIGMA, "val_psnr_first": round(per[0], 3), "val_psnr_last": round(per[-1], 3),
                "val_psnr": round(float(np.mean(per)), 3)}

    return run_training(cfg, model, _optimizer(model), step, validate, out, meta, log)


def _validation_clips(photos: dict[str, np.ndarray], clips: dict[str, list[np.ndarray]], names: list[str],
                      patch: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Fixed noisy/clean validation clips (AWGN σ=25) from the held-out photos and videos, or None."""
    if not names:
        return None
    rng = np.random.default_rng(1234)
    held_photos = [photos[n] for n in names if n in photos]
    held_clips = [clips[n] for n in names if n in clips and len(clips[n]) >= VAL_FRAMES]
    made = []
    for i in range(VAL_CLIPS):
        if held_clips and (i % 2 or not held_photos):
            made.append(RealClips(held_clips, rng).clip(VAL_FRAMES, patch))
        elif held_photos:
            made.append(SyntheticClips(held_photos, rng).clip(VAL_FRAMES, patch))
    if not made:
        return None
    clean = torch.stack(made)
    g = torch.Generator().manual_seed(5)
    flat = clean.flatten(0, 1)
    noisy = quantize(add_gaussian(flat, torch.full((len(flat),), VAL_SIGMA), g)).view_as(clean)
    return noisy, clean
