"""Training side of the denoiser: noise model, data split, config, and the train/export commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from edge_runtime.cli import cli  # noqa: E402
from edge_runtime.model import Model  # noqa: E402
from train.config import build_config  # noqa: E402
from train.data import Sample, is_validation, split  # noqa: E402
from train.errors import ConfigError, UnknownFamilyError  # noqa: E402
from train.noise import NoiseConfig, corrupt  # noqa: E402
from train.registry import create_model  # noqa: E402


def test_grey_samples_get_identical_channels_and_noise() -> None:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(64, 3, 16, 16, generator=g)
    noisy, target = corrupt(clean, NoiseConfig(p_grey=0.5, p_jpeg=0.0), g)
    grey = (target[:, 0] == target[:, 1]).all(dim=(1, 2)) & (target[:, 1] == target[:, 2]).all(dim=(1, 2))
    assert 15 < int(grey.sum()) < 50
    assert torch.equal(noisy[grey][:, 0], noisy[grey][:, 1]) and torch.equal(noisy[grey][:, 0], noisy[grey][:, 2])
    assert not torch.equal(noisy[~grey][:, 0], noisy[~grey][:, 1])
    assert torch.equal(noisy, torch.round(noisy * 255) / 255), "noisy input is quantised to 8-bit levels"


def test_camera_noise_grows_with_signal() -> None:
    from train.noise import add_camera

    g = torch.Generator().manual_seed(1)
    dark, bright = torch.full((1, 1, 64, 64), 0.05), torch.full((1, 1, 64, 64), 0.9)
    shot, read = torch.tensor([0.01]), torch.tensor([0.01])
    assert (add_camera(bright, shot, read, g) - bright).std() > 2 * (add_camera(dark, shot, read, g) - dark).std()


def test_validation_split_is_fixed_by_name() -> None:
    names = [f"img{i:03d}.jpg" for i in range(400)]
    val = [n for n in names if is_validation(n, 0.1)]
    assert 20 < len(val) < 60
    assert val == [n for n in reversed(names) if is_validation(n, 0.1)][::-1]
    # Frames of one video stay on one side.
    assert len({is_validation(f"clip.mp4#{i}", 0.5) for i in range(50)}) == 1
    samples = [Sample(n, None) for n in names]  # type: ignore[arg-type]
    train, validation = split(samples, 0.1)
    assert {s.name for s in validation} == set(val) and not {s.name for s in train} & set(val)


def test_config_rejects_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key\\(s\\) bacth"):
        build_config("tiny", bacth=3)
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"noise": {"sigma_max": 30, "colour": 1}}))
    with pytest.raises(ConfigError, match="colour"):
        build_config("tiny", f)
    f.write_text(json.dumps({"noise": {"sigma_max": 30}, "patch": 48}))
    cfg = build_config("tiny", f, batch=4)
    assert (cfg.noise.sigma_max, cfg.patch, cfg.batch) == (30, 48, 4)
    with pytest.raises(ConfigError, match="valid presets"):
        build_config("huge")


def test_unknown_family_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownFamilyError, match="conv_denoiser"):
        create_model("resnet")


def test_train_then_export_from_the_command_line(frames_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ckpt = tmp_path / "m.pt"
    r = runner.invoke(cli, ["train", "--preset", "tiny", str(frames_dir), "-o", str(ckpt), "--max-minutes", "0.2",
                            "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "loss" in r.output and "validation σ=25" in r.output
    out = tmp_path / "m.onnx"
    r = runner.invoke(cli, ["export", str(ckpt), "-o", str(out)])
    assert r.exit_code == 0, r.output
    card = Model(out, device="cpu").card
    assert card.provenance["data"]["validation_images"]
    assert card.noise is not None and card.noise["blind"] is True
    r = runner.invoke(cli, ["info", str(out)])
    assert r.exit_code == 0 and "conv_denoiser" in r.output and "val_psnr" in r.output


def test_train_and_export_refuse_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["train", str(tmp_path / "nothing"), "-o", str(tmp_path / "m.pt")])
    assert r.exit_code != 0 and "nothing: no such file or folder" in r.output
    r = runner.invoke(cli, ["export", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code != 0 and "missing.pt: no such checkpoint file" in r.output
    assert list(tmp_path.iterdir()) == []


def test_training_data_takes_the_runtime_suffixes() -> None:
    """train/data.py keeps its own copy (train may not import the runtime); it must stay the same."""
    from edge_runtime import files
    from train import data

    assert (data.IMAGE_SUFFIXES, data.VIDEO_SUFFIXES) == (files.IMAGE_SUFFIXES, files.VIDEO_SUFFIXES)



def test_max_minutes_is_the_budget_and_the_best_validation_weights_are_kept(tmp_path: Path) -> None:
    """--max-minutes alone lifts the preset's step cap (the tiny preset stops at 20 steps); on 60 digits at a
    high learning rate that budget overfits, and the checkpoint holds the weights of the lowest validation MSE
    (checked every epoch of 20 steps), not the last ones."""
    import numpy as np

    from tests.helpers import DATA
    from train.checkpoint import load_checkpoint
    from train.data_ae import load_images
    from train.loop_ae import reconstruction_mse, to_tensor

    table = tmp_path / "few.csv"
    rows = np.loadtxt(DATA / "digits.csv.gz", delimiter=",", dtype=np.int64)[:60]
    np.savetxt(table, rows, fmt="%d", delimiter=",")
    out, conf = tmp_path / "uc.pt", tmp_path / "conf.json"
    conf.write_text('{"model": {}}')  # the tiny preset's model arguments are the denoiser's
    r = CliRunner().invoke(cli, ["train", "--preset", "tiny", "--config", str(conf), "--family", "undercomplete",
                                 str(table), "--max-minutes", "0.05", "--lr", "0.01", "--threads", "1",
                                 "--channels", "1", "-o", str(out)])
    assert r.exit_code == 0, r.output
    model, meta = load_checkpoint(out)
    assert meta["metrics"]["steps"] > 20 and meta["metrics"]["minutes"] >= 0.04
    assert 0 < meta["best_step"] < meta["metrics"]["steps"] and "kept the weights of step" in r.output
    samples, _, _ = load_images([str(table)], 1, None, None)
    _, val = split(samples, 0.08)
    held = to_tensor(np.stack([s.image for s in val]), "NF")
    assert reconstruction_mse(model, held) == pytest.approx(meta["metrics"]["val_mse"], abs=2e-6)


def test_batch_making_processes_train_the_same_network(frames_dir: Path, tmp_path: Path) -> None:
    """--workers makes the batches in forked processes (what a GPU run uses); the run learns as in-process."""
    runner = CliRunner()
    ckpt = tmp_path / "w.pt"
    r = runner.invoke(cli, ["train", "--preset", "tiny", str(frames_dir), "-o", str(ckpt), "--workers", "2",
                            "--device", "cpu", "--steps-per-epoch", "200", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "batches made by 2 processes" in r.output and "training on cpu" in r.output
    val = [float(x) for x in r.output.split("denoised ")[1].split(" dB")[:1]]
    noisy = float(r.output.split("noisy ")[1].split(" dB")[0])
    assert val[0] > noisy + 0.5  # it learned (200 steps of the tiny model: about +0.9 dB)


def test_noise_made_where_the_model_trains_learns_too(frames_dir: Path, tmp_path: Path) -> None:
    """noise_on_device (on by default with CUDA; forced here on the CPU): the batch makers send clean patches and
    a noise plan, the training process adds the noise; the run learns as the in-process one does."""
    runner = CliRunner()
    config = tmp_path / "c.json"
    config.write_text('{"noise_on_device": true}')
    r = runner.invoke(cli, ["train", "--preset", "tiny", str(frames_dir), "-o", str(tmp_path / "d.pt"), "--workers",
                            "2", "--device", "cpu", "--steps-per-epoch", "200", "--threads", "1", "--config",
                            str(config)])
    assert r.exit_code == 0, r.output
    val = float(r.output.split("denoised ")[1].split(" dB")[0])
    noisy = float(r.output.split("noisy ")[1].split(" dB")[0])
    assert val > noisy + 0.5  # it learned (measured: as the in-process run, about +0.9 dB)


def test_an_unusable_device_is_one_clear_error(frames_dir: Path, tmp_path: Path) -> None:
    import torch

    runner = CliRunner()
    bad = ["--device", "tpu"] if torch.cuda.is_available() else ["--device", "cuda"]
    r = runner.invoke(cli, ["train", "--preset", "tiny", str(frames_dir), "-o", str(tmp_path / "m.pt"), *bad])
    assert r.exit_code == 1, r.output
    assert f"device {bad[1]!r}" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m.pt").exists()


def test_a_level_model_starts_from_the_blind_model_and_exports_a_strength_input(
        tiny_checkpoint: Path, frames_dir: Path, tmp_path: Path) -> None:
    """--init-from a blind conv_denoiser into one with a noise-level estimate: the shared weights load, the
    level parts start as built (the map adds nothing: the same output as the blind model), and the export
    has a strength input that changes the output."""
    import numpy as np
    import torch

    from train.checkpoint import load_checkpoint

    ckpt, onnx_path = tmp_path / "level.pt", tmp_path / "level.onnx"
    config = tmp_path / "level.json"
    config.write_text(json.dumps({"model": {"widths": [16, 32, 64], "blocks": [0, 1, 1, 1, 0], "level": True}}))
    r = CliRunner().invoke(cli, ["train", "--preset", "tiny", str(frames_dir), "--config", str(config),
                                 "--init-from", str(tiny_checkpoint), "--steps-per-epoch", "1", "--threads", "1",
                                 "-o", str(ckpt)])
    assert r.exit_code == 0, r.output
    assert "warm start:" in r.output and "(conv_denoiser)" in r.output and "level_rms" in r.output
    level, _ = load_checkpoint(ckpt)
    blind, _ = load_checkpoint(tiny_checkpoint)
    assert level.takes_strength and not blind.takes_strength
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert float((level(x) - blind(x)).abs().max()) < 0.05  # one step from the blind weights
    r = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(onnx_path)])
    assert r.exit_code == 0, r.output
    model = Model(onnx_path, device="cpu")
    assert model.card.input.strength == "strength"
    planes = np.random.default_rng(0).random((1, 3, 32, 48), dtype=np.float32)
    assert not np.array_equal(model.run(planes, strength=1.0), model.run(planes, strength=3.0))


def test_the_last_checkpoint_validates_once(tmp_path: Path) -> None:
    """A checkpoint after every step (val_every_s 0): the final one comes right after the last periodic one and
    does not validate the same weights again (the walkthrough saw the last validation line printed twice)."""
    import numpy as np

    from tests.helpers import DATA

    table = tmp_path / "few.csv"
    np.savetxt(table, np.loadtxt(DATA / "digits.csv.gz", delimiter=",", dtype=np.int64)[:60], fmt="%d",
               delimiter=",")
    conf = tmp_path / "conf.json"
    conf.write_text('{"model": {}, "val_every_s": 0, "epochs": 1, "steps_per_epoch": 5}')
    r = CliRunner().invoke(cli, ["train", "--preset", "tiny", "--config", str(conf), "--family", "undercomplete",
                                 str(table), "--threads", "1", "--channels", "1", "-o", str(tmp_path / "uc.pt")])
    assert r.exit_code == 0, r.output
    assert r.output.count("validation: reconstruction MSE") == 5, r.output


def test_a_checkpoint_gets_a_normal_files_mode(tmp_path: Path) -> None:
    """Written through a private temporary file, the checkpoint still gets the mode any new file gets (the
    umask's), not the temporary file's 0600."""
    import os

    from train.checkpoint import save_checkpoint

    out = tmp_path / "m.pt"
    save_checkpoint(out, torch.nn.Linear(2, 2), {"task": "x"})
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
