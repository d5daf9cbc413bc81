"""`edge-ae train --task anomaly` from its defaults on one-class MNIST: the default family trains (no collapse)
and its default score ranks other digits above the trained one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.anomaly import AnomalyDetector, auroc
from edge_runtime.autoencoder import Autoencoder
from edge_runtime.cli import cli
from tests.anomaly_data import digit_split

pytest.importorskip("torch")


def test_default_anomaly_model_trains_on_a_mostly_black_digit_and_beats_a_floor(tmp_path: Path) -> None:
    """Digit 2, seed 0: the old convolutional family (Sigmoid output) collapsed to one black frame here
    (AUROC 0.40); the default family must learn the digit within a few hundred steps."""
    from train.checkpoint import load_checkpoint

    tr, test, labels = digit_split(2)
    table = tmp_path / "two.csv"
    np.savetxt(table, np.c_[tr.reshape(len(tr), -1), np.full(len(tr), 2)], fmt="%d", delimiter=",")
    ckpt, model = tmp_path / "two.pt", tmp_path / "two.onnx"
    # the defaults but the budget: a step count keeps the test's length independent of the machine's load
    r = CliRunner().invoke(cli, ["train", "--task", "anomaly", str(table), "--steps-per-epoch", "400",
                                 "--epochs", "1", "--threads", "1", "-o", str(ckpt)])
    assert r.exit_code == 0, r.output
    assert load_checkpoint(ckpt)[1]["config"]["batch"] == 32  # the ae preset's 64, changed by --task anomaly
    r = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(model)])
    assert r.exit_code == 0, r.output
    det = AnomalyDetector(model, device="cpu", threads=1)
    assert det.model.card.family == "convolutional" and det.score_name == "ssim_patch"
    pick = np.concatenate([np.flatnonzero(labels == c)[:30] for c in range(10)])
    x, y = test[pick], labels[pick]
    s = np.array([det.score(im).raw for im in x])
    assert auroc(s[y == 2], s[y != 2]) > 0.8
    # not one frame for every input: reconstructions of different twos differ about as much as the twos do
    twos = x[y == 2][:20]
    recon = np.stack(Autoencoder(det.model).reconstruct(list(twos))).astype(np.float64) / 255.0
    assert recon.std(axis=0).mean() > 0.3 * (twos / 255.0).std(axis=0).mean()


def test_anomaly_training_takes_batches_of_32_unless_told_otherwise(tmp_path: Path) -> None:
    """--task anomaly on the ae preset trains on batches of 32 (more steps in a time budget); reconstruction keeps
    the preset's 64, and a config file or an explicit option still wins over the task's preset."""
    from train.config import build_config

    assert build_config("ae").batch == 64 and build_config("ae", task="reconstruct").batch == 64
    assert build_config("ae", task="anomaly").batch == 32
    assert build_config("ae", task="anomaly", batch=8).batch == 8
    assert build_config("predictor", task="anomaly").batch == 16  # the video predictor's own preset
    conf = tmp_path / "c.json"
    conf.write_text('{"task": "anomaly"}')
    assert build_config("ae", conf).batch == 32
    conf.write_text('{"task": "anomaly", "batch": 48}')
    assert build_config("ae", conf).batch == 48
