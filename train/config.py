"""Typed training configuration; files and the CLI only override fields."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.errors import ConfigError
from train.noise import NoiseConfig
from train.objectives import ObjectiveConfig


@dataclass(frozen=True)
class TrainConfig:
    family: str = "conv_denoiser"
    task: str = "denoise"
    model: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the family
    channels: int = 3
    patch: int = 64
    batch: int = 16
    lr: float = 1e-3
    lr_min: float = 1e-5
    weight_decay: float = 0.0
    epochs: int = 10
    steps_per_epoch: int = 500
    max_minutes: float | None = None
    val_share: float = 0.08
    val_every_s: float = 60.0
    seed: int = 0
    threads: int | None = None
    device: str = "auto"  # "auto": the first CUDA GPU when torch sees one, else "cpu"; or "cpu", "cuda", "cuda:N"
    workers: int | None = None  # batch-making processes; None: none on the CPU, up to 8 beside a GPU
    # Denoisers: add the Gaussian and shot + read noise where the model trains (the batch makers draw the plan and
    # make only the realistic-camera samples); None: on with CUDA, where the CPU side bounded the steps per second
    noise_on_device: bool | None = None
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    # Autoencoder families (train.loop_ae): input size, sequence length, code size, objective weights.
    height: int | None = None  # None: a table's native size, else 28 (16 for sequences)
    width: int | None = None  # None: a table's native size, else 28 (24 for sequences)
    seq_len: int = 16
    bottleneck: int | None = None  # None: the family's default code size
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


UNCAPPED_EPOCHS = 10**6  # --max-minutes alone: the time budget, not a step count, ends the run

PRESETS: dict[str, dict[str, Any]] = {
    # The bundled default model (edge_runtime/models/default.onnx).
    "default": {
        "family": "conv_denoiser",
        "model": {"widths": [32, 64, 128], "blocks": [0, 1, 2, 1, 0]},
        "patch": 96,
        "batch": 16,
        "lr": 2e-3,
        "epochs": 100,
        "steps_per_epoch": 1000,
    },
    # The autoencoder families (undercomplete, sparse, ..., lstm) on small frames.
    "ae": {
        "family": "undercomplete",
        "task": "reconstruct",
        "channels": 1,
        "batch": 64,
        "lr": 2e-3,
        "epochs": 10,
        "steps_per_epoch": 300,
        "val_share": 0.1,
        "val_every_s": 30.0,
    },
    # The bundled video model (edge_runtime/models/video.onnx): video_denoiser warm-started from default.onnx
    # (--init-from), 8-frame clips of 96x96 (360 steps made the bundled one).
    "video": {
        "family": "video_denoiser",
        "model": {"widths": [32, 64, 128], "blocks": [0, 1, 2, 1, 0]},
        "patch": 96,
        "batch": 8,
        "seq_len": 8,
        "lr": 2e-4,
        "lr_min": 4e-6,
        "epochs": 1,
        "steps_per_epoch": 360,
        "val_every_s": 600.0,
    },
    # The causal video predictor (train/families/predictor.py): small batches of 48x64 crops of grey stacks.
    "predictor": {
        "family": "predictor",
        "task": "anomaly",
        "channels": 1,
        "batch": 16,
        "lr": 2e-3,
        "epochs": 10,
        "steps_per_epoch": 300,
        "val_share": 0.1,
        "val_every_s": 60.0,
    },
    # A few seconds of training: for tests and trying the tool chain.
    "tiny": {
        "family": "conv_denoiser",
        "model": {"widths": [16, 32, 64], "blocks": [0, 1, 1, 1, 0]},
        "patch": 32,
        "batch": 8,
        "epochs": 1,
        "steps_per_epoch": 20,
        "val_every_s": 3600.0,
    },
}


# What a task changes in a preset: applied over the preset, under a config file and explicit options.
# ae + anomaly (edge-ae train --task anomaly on still images): batches of 32, not 64. On one thread a step of 32
# small frames costs about half one of 64, so a time budget buys twice the steps; on one-class MNIST
# (validation split, 30 s each, convolutional, two runs side by side) that ranked other digits better
# (ssim_patch, README's One-class MNIST results). Reconstruction training keeps the preset's 64.
TASK_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("ae", "anomaly"): {"batch": 32},
}


def _check(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        msg = f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
        raise ConfigError(msg)
    return values


def build_config(preset: str = "default", file: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Start from a preset (with what the task changes in it, TASK_PRESETS), apply a JSON file, then explicit
    overrides (None means 'not given')."""
    if preset not in PRESETS:
        msg = f"unknown preset {preset!r}; valid presets: {', '.join(sorted(PRESETS))}"
        raise ConfigError(msg)
    values: dict[str, Any] = dict(PRESETS[preset])
    loaded: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = json.loads(Path(file).read_text())
        except (OSError, json.JSONDecodeError) as e:
            msg = f"{file}: cannot read a JSON training config ({e})"
            raise ConfigError(msg) from None
        if not isinstance(loaded, dict):
            msg = f"{file}: a training config must be a JSON object"
            raise ConfigError(msg)
        _check(TrainConfig, loaded, str(file))
    task = overrides.get("task") or loaded.get("task") or values.get("task", TrainConfig.task)
    values.update(TASK_PRESETS.get((preset, str(task)), {}))
    values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    _check(TrainConfig, values, "training config")
    noise = values.get("noise", {})
    if isinstance(noise, dict):
        values["noise"] = NoiseConfig(**_check(NoiseConfig, noise, "noise config"))
    objective = values.get("objective", {})
    if isinstance(objective, dict):
        values["objective"] = ObjectiveConfig(**_check(ObjectiveConfig, objective, "objective config"))
    return TrainConfig(**values)
