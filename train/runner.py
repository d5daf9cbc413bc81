"""What both training loops share: seeding, the optimiser, steps under a step and time budget with
cosine decay, progress lines, a checkpoint refreshed at every validation and at the end, and (when the loop
gives a validation loss) the weights of the best validation kept in place of the last ones."""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from train.checkpoint import save_checkpoint
from train.config import UNCAPPED_EPOCHS, TrainConfig
from train.errors import ConfigError
from train.objectives import Parts

LOG_EVERY_S = 10.0


def commit() -> str | None:
    """The short git commit of this source tree, when it is a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
    except OSError:
        return None
    return out.stdout.strip() or None


def seed_torch(cfg: TrainConfig) -> None:
    """Torch threads and seed from ``cfg``, before any data or model is made."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)


def resolve_device(cfg: TrainConfig) -> torch.device:
    """The device ``cfg`` asks for: "auto" is the first CUDA GPU when torch sees one, else the CPU."""
    name = cfg.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        msg = f"device {cfg.device!r}: not a device name (auto, cpu, cuda or cuda:N)"
        raise ConfigError(msg) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            msg = f"device {cfg.device!r}: this torch sees no CUDA GPU (torch {torch.__version__}); use --device cpu"
            raise ConfigError(msg)
        if device.index is not None and device.index >= torch.cuda.device_count():
            msg = f"device {cfg.device!r}: only {torch.cuda.device_count()} CUDA GPU(s) here"
            raise ConfigError(msg)
        torch.backends.cudnn.benchmark = True  # fixed patch sizes: let cuDNN pick its fastest convolutions
    elif device.type != "cpu":
        msg = f"device {cfg.device!r}: edge-ae trains on cpu or cuda"
        raise ConfigError(msg)
    return device


def worker_count(cfg: TrainConfig, device: torch.device) -> int:
    """Batch-making processes: ``cfg.workers``, else none on the CPU (the cores train) and up to 8 beside a
    GPU (the patches, noise and clips are made on the CPU and would starve it)."""
    if cfg.workers is not None:
        return cfg.workers
    if device.type == "cpu":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(8, cores - 1))


class _Endless(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    def __init__(self, make: Callable[[int], Iterator[Any]], seed: int) -> None:
        self.make, self.seed = make, seed

    def __iter__(self) -> Iterator[Any]:
        info = torch.utils.data.get_worker_info()
        torch.set_num_threads(1)
        return self.make(self.seed + 7919 * (info.id + 1 if info is not None else 0))


def batch_stream(make: Callable[[int], Iterator[Any]], seed: int, workers: int,
                 pin: bool = False) -> Iterator[Any]:
    """Endless training batches from ``make(seed)``, an iterator of batches: in this process when ``workers`` is
    0 (the same batches for the same seed), else from that many forked processes, each with its own seed."""
    if workers <= 0:
        return make(seed)
    loader = torch.utils.data.DataLoader(_Endless(make, seed), batch_size=None, num_workers=workers,
                                         pin_memory=pin, prefetch_factor=4, persistent_workers=True,
                                         multiprocessing_context="fork")
    return iter(loader)


def checkpoint_meta(cfg: TrainConfig, **fields: Any) -> dict[str, Any]:
    """What a checkpoint records besides the weights: the configuration, ``fields``, commit and torch version."""
    return {"config": cfg.to_dict(), "task": cfg.task, **fields, "commit": commit(),
            "torch_version": str(torch.__version__)}


def run_training(cfg: TrainConfig, model: nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                 step: Callable[[], tuple[torch.Tensor, Parts]], validate: Callable[[], dict[str, Any]],
                 out: str | Path, meta: dict[str, Any], log: Callable[[str], None],
                 val_loss: Callable[[], float] | None = None) -> dict[str, Any]:
    """Optimise ``model`` on ``step``'s loss for ``cfg``'s steps or minutes; returns the final metrics.

    ``step`` computes the loss (and its parts, for the progress line) of one batch; ``validate`` runs at
    every checkpoint and returns metrics to record (it logs its own line). ``val_loss``, when given, runs
    at the end of every epoch; the weights with the lowest one are what the final checkpoint holds (small
    data overfits when a time budget runs many epochs).
    """
    opt = optimizer(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else math.inf
    start = time.monotonic()
    last_val = last_log = start
    metrics: dict[str, Any] = {}

    validated_at = -1  # the step whose weights ``metrics`` describes

    def checkpoint(done: int, final: bool = False) -> None:
        nonlocal metrics, validated_at
        if validated_at != done:  # (the final checkpoint right after a periodic one: validated already)
            metrics = {"steps": done, "minutes": round((time.monotonic() - start) / 60, 2), **validate()}
            validated_at = done
        meta.update(metrics=metrics, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    complete=final)
        save_checkpoint(out, model, meta)

    best: tuple[float, int, dict[str, torch.Tensor]] | None = None  # (validation loss, step, weights)

    def track_best(done: int) -> None:
        nonlocal best
        assert val_loss is not None
        v = val_loss()
        if best is None or v < best[0]:
            best = (v, done, copy.deepcopy(model.state_dict()))

    done = 0
    avg: Parts = {}
    while done < total_steps:
        progress = max(done / total_steps, (time.monotonic() - start) / budget_s)
        if progress >= 1:
            break
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # a group may learn faster (new weights)
        loss, parts = step()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += 1
        parts["loss"] = loss.item()
        avg = parts if done == 1 else {k: 0.98 * avg.get(k, v) + 0.02 * v for k, v in parts.items()}
        now = time.monotonic()
        if now - last_log >= LOG_EVERY_S or done == total_steps:
            elapsed = now - start
            rate = done / elapsed
            remaining = min((total_steps - done) / rate, budget_s - elapsed)
            shown = " ".join(f"{k} {v:.5f}" for k, v in avg.items())
            epoch = min((done - 1) // cfg.steps_per_epoch + 1, cfg.epochs)
            where = (f"epoch {epoch} step {done}" if cfg.epochs >= UNCAPPED_EPOCHS  # a time budget only
                     else f"epoch {epoch}/{cfg.epochs} step {done}/{total_steps}")
            log(f"{where} {shown} lr {lr:.2e} {rate:.1f} steps/s, about {remaining / 60:.1f} min left")
            last_log = now
        if val_loss is not None and done % cfg.steps_per_epoch == 0:
            track_best(done)
        if now - last_val >= cfg.val_every_s:
            checkpoint(done)
            last_val = time.monotonic()
    if val_loss is not None and done > 0:
        if done % cfg.steps_per_epoch:
            track_best(done)
        assert best is not None
        if best[1] != done:
            log(f"kept the weights of step {best[1]} (validation loss {best[0]:.5f}, the lowest); "
                "later steps fit the training data better but held-out data worse")
            model.load_state_dict(best[2])
            validated_at = -1  # other weights now: validate them
        meta["best_step"] = best[1]
    checkpoint(done, final=True)
    log(f"wrote {out} after {done} steps in {metrics['minutes']} min")
    return metrics
