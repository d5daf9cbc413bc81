"""Every registered autoencoder family: train a few steps -> export -> run through the runtime -> same as torch.

Runs on a fresh clone: the 8x8 digits and the Intel clip are committed in tests/data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from edge_runtime.autoencoder import Autoencoder  # noqa: E402
from edge_runtime.cli import cli  # noqa: E402
from export.families import export_family  # noqa: E402
from tests._families_util import fit  # noqa: E402
from tests.conftest import CLEAN_CLIP, DATA  # noqa: E402
from train.loop_ae import AE_FAMILIES  # noqa: E402
from train.registry import UnknownFamilyError, create_model, list_families  # noqa: E402

DIGITS = str(DATA / "digits.csv.gz")


def test_registry_lists_all_families() -> None:
    assert set(AE_FAMILIES) <= set(list_families())
    with pytest.raises(UnknownFamilyError, match="valid families: .*contractive.*variational"):
        create_model("nope")


@pytest.mark.parametrize("family", AE_FAMILIES)
def test_family_train_export_runtime_parity(family: str, tmp_path: Path) -> None:
    if family == "lstm":
        model, _, ckpt = fit(tmp_path, [str(CLEAN_CLIP)], family, 5, seq_len=6, batch=4, model={"hidden": 16})
    else:
        model, _, ckpt = fit(tmp_path, [DIGITS], family, 20)
    card = export_family(ckpt, tmp_path / "m.onnx")
    assert card.task == "reconstruct" and card.family == family
    ae = Autoencoder(tmp_path / "m.onnx", device="cpu", threads=1)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (8, 8) if family != "lstm" else (30, 40, 3), dtype=np.uint8) for _ in range(13)]
    x = ae.frames_to_array(frames)
    if family == "lstm":
        x, _ = ae.sequences(x)
        assert x.shape[1] == 6
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    np.testing.assert_allclose(ae.reconstruct_batch(x), out[0].numpy(), atol=1e-5)
    z = out[1] if family != "variational" else out[1]  # the mean for the VAE
    np.testing.assert_allclose(ae.encode_batch(x), z.reshape(len(z), -1).numpy(), atol=1e-5)
    assert len(ae.reconstruct(frames)) == len(frames)
    errors = ae.errors(x)
    assert errors.shape == (len(x),) and np.all(errors >= 0)


def test_lstm_runs_any_sequence_length(tmp_path: Path) -> None:
    model, _, ckpt = fit(tmp_path, [str(CLEAN_CLIP)], "lstm", 3, seq_len=6, batch=4, model={"hidden": 16})
    export_family(ckpt, tmp_path / "l.onnx")
    ae = Autoencoder(tmp_path / "l.onnx", device="cpu", threads=1)
    for t in (1, 6, 11):
        x = np.random.default_rng(t).random((2, t, model.features), dtype=np.float32)
        with torch.no_grad():
            np.testing.assert_allclose(ae.reconstruct_batch(x), model(torch.from_numpy(x))[0].numpy(), atol=1e-5)


def test_cli_train_export_encode_reconstruct_sample(tmp_path: Path) -> None:
    import cv2

    run = CliRunner().invoke
    ck, onnx_path = tmp_path / "v.pt", tmp_path / "v.onnx"
    r = run(cli, ["train", "--family", "variational", DIGITS, "--epochs", "1", "--steps-per-epoch", "30",
                  "--bottleneck", "3", "--threads", "1", "-o", str(ck)])
    assert r.exit_code == 0, r.output
    assert "validation: reconstruction MSE" in r.output
    r = run(cli, ["export", str(ck), "-o", str(onnx_path)])
    assert r.exit_code == 0, r.output
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(5):
        cv2.imwrite(str(imgs / f"{i}.png"), np.full((8, 8), 40 * i, np.uint8))
    r = run(cli, ["encode", str(onnx_path), str(imgs), "-o", str(tmp_path / "z.npy")])
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "z.npy").shape == (5, 3)
    r = run(cli, ["reconstruct", str(onnx_path), str(imgs), "-o", str(tmp_path / "rec")])
    assert r.exit_code == 0 and sorted(p.name for p in (tmp_path / "rec").iterdir()) == [f"{i}.png" for i in range(5)]
    r = run(cli, ["sample", str(onnx_path), "-n", "6", "--scale", "1", "--columns", "3", "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output
    assert cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED).shape == (2 * 10 + 2, 3 * 10 + 2)
    r = run(cli, ["sample", str(onnx_path), "--interpolate", str(imgs / "0.png"), str(imgs / "4.png"),
                  "--steps", "4", "--scale", "1", "-o", str(tmp_path / "w.png")])
    assert r.exit_code == 0, r.output
    assert cv2.imread(str(tmp_path / "w.png"), cv2.IMREAD_UNCHANGED).shape == (12, 4 * 10 + 2)
    # bad input: one Error line, non-zero exit, the input untouched
    before = (imgs / "0.png").read_bytes()
    r = run(cli, ["reconstruct", str(onnx_path), str(imgs / "0.png"), "-o", str(imgs / "0.png")])
    assert r.exit_code == 1 and "would overwrite the input" in r.output
    assert (imgs / "0.png").read_bytes() == before
    r = run(cli, ["encode", str(onnx_path), str(tmp_path / "missing"), "-o", str(tmp_path / "z2.npy")])
    assert r.exit_code == 1 and "no such file or folder" in r.output and not (tmp_path / "z2.npy").exists()


def test_sampling_needs_a_variational_model(tmp_path: Path) -> None:
    _, _, ckpt = fit(tmp_path, [DIGITS], "undercomplete", 2)
    export_family(ckpt, tmp_path / "u.onnx")
    r = CliRunner().invoke(cli, ["sample", str(tmp_path / "u.onnx"), "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 1 and "sampling needs a variational model" in r.output
    assert not (tmp_path / "g.png").exists()
