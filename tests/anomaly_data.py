"""Small anomaly models really trained (a few steps, one thread) and exported by the project, cached per test run."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tests.helpers import shared

MNIST = "anomaly/mnist_train_subset_5k/mnist_5k.csv.gz"
PED2 = "anomaly/ucsd_ped2_train"
_TMP = Path(tempfile.mkdtemp(prefix="edge_ae_anomaly_tests_"))
atexit.register(shutil.rmtree, _TMP, True)


@functools.cache
def mnist() -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels) of the 5k MNIST subset."""
    d = np.loadtxt(shared(MNIST), delimiter=",", dtype=np.uint8)
    return d[:, :-1].reshape(-1, 28, 28), d[:, -1].astype(int)


def digit_split(k: int, train: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training images of digit k, test images of every digit, their labels).

    The first ``train`` images of each digit are for training."""
    x, y = mnist()
    tr = np.concatenate([x[y == k][:train]])
    test_idx = np.concatenate([np.flatnonzero(y == c)[train:] for c in range(10)])
    return tr, x[test_idx], y[test_idx]


def _train_export(name: str, data: list[str], family: str, steps: int, **overrides: object) -> Path:
    import torch

    from export.onnx_export import export_checkpoint
    from train.config import build_config
    from train.loop_ae import train_autoencoder

    torch.set_num_threads(1)
    cfg = build_config("ae", family=family, task="anomaly", epochs=1, steps_per_epoch=steps, threads=1, seed=0,
                       val_every_s=3600.0, **overrides)
    ckpt = _TMP / f"{name}.pt"
    train_autoencoder(cfg, data, ckpt, log=lambda s: None)
    out = _TMP / f"{name}.onnx"
    export_checkpoint(ckpt, out)
    return out


@functools.cache
def digit_model(k: int = 0, family: str = "convolutional", steps: int = 150) -> Path:
    """An anomaly model trained on digit ``k`` (uncalibrated)."""
    tr, _, _ = digit_split(k)
    table = _TMP / f"digit{k}.csv"
    np.savetxt(table, np.concatenate([tr.reshape(len(tr), -1), np.full((len(tr), 1), k)], axis=1),
               fmt="%d", delimiter=",")
    return _train_export(f"{family}_digit{k}_{steps}", [str(table)], family, steps, batch=32)


@functools.cache
def scene_model(family: str = "convolutional", steps: int = 60) -> Path:
    """A small grey model of the UCSD Ped2 scene trained on clip 02 (uncalibrated)."""
    clip = shared(f"{PED2}/02.mp4")
    lstm = {"seq_len": 6, "height": 16, "width": 24}
    extra: dict[str, object] = lstm if family == "lstm" else {"height": 24, "width": 36}
    return _train_export(f"{family}_ped2_{steps}", [str(clip)], family, steps, batch=16, **extra)


@functools.cache
def predictor_model(steps: int = 80, appearance: bool = False) -> Path:
    """The causal frame predictor (grey 80x120) trained on Ped2 clips 01-04 (uncalibrated); as training builds it
    (the prediction alone), or ``appearance=True``: with the optional appearance branch (a code of 16)."""
    clips = [str(shared(f"{PED2}/{c:02d}.mp4")) for c in range(1, 5)]
    extra: dict[str, object] = {"model": {"appearance": 16}} if appearance else {}
    return _train_export(f"predictor_ped2_{steps}{'_appearance' if appearance else ''}", clips, "predictor", steps,
                         batch=16, **extra)


def fresh_copy(path: Path, name: str) -> Path:
    """A copy of a cached model that a test may rewrite."""
    out = _TMP / name
    shutil.copyfile(path, out)
    return out
