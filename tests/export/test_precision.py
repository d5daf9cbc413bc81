"""int8 and fp16 variants: exported by the project, run by the runtime, held to the quality gate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from edge_runtime import Denoiser  # noqa: E402
from edge_runtime.cli import cli  # noqa: E402
from edge_runtime.model import Model  # noqa: E402
from export.precision import PrecisionError, make_variant, validation_frames  # noqa: E402
from tests.helpers import psnr  # noqa: E402


def _noisy(frame: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    n = np.random.default_rng(seed).normal(0, sigma, frame.shape)
    return np.clip(frame + n + 0.5, 0, 255).astype(np.uint8)


def test_int8_export_runs_in_the_runtime_within_the_gate(small: tuple[Path, Path], frames_dir: Path,
                                                         tmp_path: Path) -> None:
    ckpt, fp32 = small
    out = tmp_path / "small.int8.onnx"
    res = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(out), "--precision", "int8",
                                   "--calibration", str(frames_dir)])
    assert res.exit_code == 0, res.output
    assert "int8" in res.output and "held-back frames" in res.output

    m = Model(out, device="cpu")
    assert m.card.precision == "int8"
    gate = m.card.metrics["precision_gate"]
    assert gate["metric"] == "psnr_db" and gate["max_drop"] == 0.1 and gate["frames"] >= 1
    assert m.card.metrics["precision_drop"] <= 0.1
    assert len(gate["fp32_psnr"]) == len(gate["variant_psnr"]) == 3
    import onnx

    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format

    # the runtime's Denoiser gives nearly the fp32 result on a held-back frame
    clean = validation_frames(Model(fp32, device="cpu").card)[0]
    noisy = _noisy(clean, 25)
    ref = Denoiser(fp32, device="cpu").denoise(noisy)
    got = Denoiser(out, device="cpu").denoise(noisy)
    assert got.shape == clean.shape
    assert psnr(ref, clean) - psnr(got, clean) <= 0.15
    assert psnr(got, clean) > psnr(noisy, clean) + 1.0


def test_fp16_with_uint8_frame_io_matches_fp32(small: tuple[Path, Path], tmp_path: Path) -> None:
    _, fp32 = small
    out = tmp_path / "small.fp16.onnx"
    card = make_variant(fp32, out, "fp16", frame_io=True)
    assert card.precision == "fp16" and card.metrics["precision_drop"] <= 0.1
    m = Model(out, device="cpu")
    assert m.card.precision == "fp16"
    assert (m.card.input.layout, m.card.input.dtype, m.card.input.color_order) == ("NHWC", "uint8", "BGR")
    assert m.session.get_inputs()[0].type == "tensor(uint8)"

    clean = validation_frames(m.card)[0][:203, :301]  # odd size: padding to the multiple and back
    noisy = _noisy(clean, 25, seed=1)
    ref = Denoiser(fp32, device="cpu").denoise(noisy)
    for bind in (False, True):  # I/O binding is the CUDA path; on CPU it must give the same frames
        got = Denoiser(out, device="cpu", bind=bind).denoise(noisy)
        assert got.shape == noisy.shape and got.dtype == np.uint8
        assert np.abs(got.astype(int) - ref).max() <= 2
    grey = Denoiser(out, device="cpu", tile=128).denoise(noisy[:, :, 1])  # grey frame, tiled
    assert grey.shape == noisy.shape[:2]


def test_io_binding_matches_plain_run(small: tuple[Path, Path]) -> None:
    m = Model(small[1], device="cpu")
    x = np.random.default_rng(2).random((1, 3, 48, 64), dtype=np.float32)
    np.testing.assert_array_equal(m.run_bound(x), m.run(x))
    y = np.random.default_rng(3).random((2, 3, 16, 24), dtype=np.float32)  # another shape, same thread
    np.testing.assert_array_equal(m.run_bound(y), m.run(y))


def test_destroyed_calibration_is_refused_and_writes_nothing(small: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, fp32 = small
    black = tmp_path / "black"
    black.mkdir()
    for i in range(4):
        cv2.imwrite(str(black / f"b{i}.png"), np.zeros((96, 128, 3), np.uint8))
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "m.onnx"
    out.write_bytes(b"previous good file")

    res = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(out), "--precision", "int8",
                                   "--calibration", str(black), "-y"])  # -y: the failed gate still keeps it
    assert res.exit_code != 0
    assert "Error:" in res.output and "more than --max-drop 0.1" in res.output and "not written" in res.output
    assert out.read_bytes() == b"previous good file"
    assert [p.name for p in outdir.iterdir()] == ["m.onnx"]

    fresh = outdir / "new.onnx"
    with pytest.raises(PrecisionError, match="loses .* dB PSNR"):
        make_variant(fp32, fresh, "int8", black)
    assert [p.name for p in outdir.iterdir()] == ["m.onnx"]


def test_without_calibration_data_int8_says_what_to_give(tiny_onnx: Path, tmp_path: Path) -> None:
    """The tiny model's card names one validation image: enough for the gate, none left to calibrate on."""
    with pytest.raises(PrecisionError, match="--calibration"):
        make_variant(tiny_onnx, tmp_path / "x.onnx", "int8")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("family", "method"), [("undercomplete", "dynamic"), ("convolutional", "static QDQ")])
def test_autoencoder_int8_is_gated_by_score_rank_correlation(family: str, method: str, tmp_path: Path) -> None:
    """Dense families get dynamic quantization, convolutional ones static; the gate compares anomaly scores."""
    from edge_runtime.autoencoder import Autoencoder
    from tests.anomaly_data import digit_model, digit_split

    _, test, _ = digit_split(0)
    data = tmp_path / "digits"
    data.mkdir()
    for i in range(0, len(test), 40):
        cv2.imwrite(str(data / f"d{i:04d}.png"), test[i])
    fp32 = digit_model(0, family, 60)
    out = tmp_path / "ae.int8.onnx"
    card = make_variant(fp32, out, "int8", data)
    gate = card.metrics["precision_gate"]
    assert gate["metric"] == "score_rank_corr" and gate["method"].startswith(method)
    assert card.metrics["precision_drop"] <= 0.02 and gate["spearman"] >= 0.98
    frames = [cv2.imread(str(p)) for p in sorted(data.iterdir())[:6]]
    a, b = Autoencoder(fp32, device="cpu"), Autoencoder(out, device="cpu")
    assert b.model.card.precision == "int8"
    ea, eb = a.errors(a.frames_to_array(frames)), b.errors(b.frames_to_array(frames))
    np.testing.assert_allclose(eb, ea, rtol=0.2, atol=1e-3)
