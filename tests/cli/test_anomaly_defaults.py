"""`edge-ae train --task anomaly` from its defaults on one-class MNIST: the default family trains (no collapse)
and its default score ranks other digits above the trained one; on videos the normal footage's motion picks the
family."""

from __future__ import annotations

from pathlib import Path

import cv2
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


def test_a_still_scene_gets_the_frame_autoencoder_and_a_scene_with_motion_the_predictor(tmp_path: Path) -> None:
    """--task anomaly on videos: the normal footage's motion decides. A real frame held still (fresh sensor-like
    noise of 2 levels on every frame, FFV1 so nothing else changes) is a still scene: the convolutional
    autoencoder at the video's aspect; the real 640x480 clip (a person signing) has motion: the predictor."""
    from tests.helpers import CLEAN_CLIP, read_frames, write_video
    from train.checkpoint import load_checkpoint
    from train.cli import default_anomaly_family

    base = read_frames(CLEAN_CLIP, 1)[0]
    rng = np.random.default_rng(0)
    still = [np.clip(base + rng.normal(0, 2, base.shape), 0, 255).round().astype(np.uint8) for _ in range(30)]
    room = tmp_path / "room.mkv"
    write_video(room, still, 10.0)
    said: list[str] = []
    assert default_anomaly_family((str(room),), said.append) == ("convolutional", {"height": 54, "width": 72})
    assert "nothing moves" in said[0]
    assert default_anomaly_family((str(CLEAN_CLIP),), said.append) == ("predictor", {})
    assert "move per frame" in said[1]
    images = tmp_path / "stills"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), base)
    assert default_anomaly_family((str(images),), said.append) == ("convolutional", {})  # still images

    out = tmp_path / "room.pt"
    r = CliRunner().invoke(cli, ["train", "--task", "anomaly", str(room), "--max-minutes", "0.05", "-o", str(out),
                                 "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "family convolutional at 54x72" in r.output
    model = load_checkpoint(out)[1]["config"]["model"]
    assert (model["height"], model["width"]) == (54, 72)
