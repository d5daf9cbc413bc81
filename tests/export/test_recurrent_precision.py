"""int8 and fp16 variants of the bundled recurrent video.onnx: float32 state at the boundary, closed-loop gate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edge_runtime.cli import cli
from edge_runtime.denoiser import Denoiser
from edge_runtime.model import Model, default_model_path
from export.precision import PrecisionError, make_variant
from tests.helpers import psnr, read_frames


def _noisy(frame: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    n = np.random.default_rng(seed).normal(0, sigma, frame.shape)
    return np.clip(frame + n + 0.5, 0, 255).astype(np.uint8)


def _state_io(path: Path) -> dict[str, str]:
    m = Model(path, device="cpu")
    return {i.name: i.type for i in [*m.session.get_inputs(), *m.session.get_outputs()]}


def _stream_psnr(model: Path, clean: list[np.ndarray], sigma: float) -> list[float]:
    stream = Denoiser(model, device="cpu", threads=1).stream()
    return [psnr(stream.denoise(_noisy(f, sigma, t)), f) for t, f in enumerate(clean)]


def test_int8_keeps_float32_state_and_passes_the_closed_loop_gate(video_int8: tuple[Path, list[str]]) -> None:
    out, lines = video_int8
    fp32 = Model("video", device="cpu")
    m = Model(out, device="cpu")
    assert m.card.precision == "int8" and m.card.state == fp32.card.state
    assert _state_io(out) == {"input": "tensor(float)", "state": "tensor(float)", "output": "tensor(float)",
                              "state_out": "tensor(float)"}
    gate = m.card.metrics["precision_gate"]
    assert gate["metric"] == "psnr_db" and gate["max_drop"] == 0.1 and gate["clips"] == 3 and gate["frames"] == 24
    assert m.card.metrics["precision_drop"] <= 0.1  # measured: 0.02-0.05 dB
    assert gate["method"].startswith("static QOperator")
    # every convolution was measured alone; those taken fit the budget together; the edge layers stay float
    assert set(gate["int8_layers"]) <= set(gate["layer_drops"]) and gate["int8_layers"]
    assert sum(max(gate["layer_drops"][n], 0.0) for n in gate["int8_layers"]) <= 0.1
    assert "/Conv" not in gate["layer_drops"]
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("QLinearConv") == len(gate["int8_layers"])
    assert any("held-back clips" in s and "closed loop" in s for s in lines)


def test_int8_runs_in_a_stream_close_to_fp32(video_int8: tuple[Path, list[str]]) -> None:
    out, _ = video_int8
    scene = read_frames(Path(__file__).parents[1] / "data" / "intel_asl_again.mkv", 1)[0][200:296, 240:368]
    clean = [scene] * 6  # a still scene, fresh noise each frame: the state is what helps
    ref, got = _stream_psnr(default_model_path("video"), clean, 25), _stream_psnr(out, clean, 25)
    assert got[-1] > got[0] + 0.3, got  # the variant's own state carries from frame to frame
    assert abs(float(np.mean(ref)) - float(np.mean(got))) <= 0.15, (ref, got)


def test_denoise_cli_streams_a_video_through_the_int8_variant(video_int8: tuple[Path, list[str]], small_clip: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    r = CliRunner().invoke(cli, ["denoise", str(small_clip), "-o", str(out), "--model", str(video_int8[0]),
                                 "--max-frames", "4"])
    assert r.exit_code == 0, r.output
    frames = read_frames(out)
    assert len(frames) == 4 and frames[0].shape == (120, 160, 3)


def test_fp16_keeps_float32_state_and_matches_fp32_in_closed_loop(small_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "video.fp16.onnx"
    card = make_variant(default_model_path("video"), out, "fp16", small_clip)
    assert card.precision == "fp16" and card.metrics["precision_drop"] <= 0.1  # measured: 0.001 dB
    assert card.metrics["precision_gate"]["clips"] == 3
    assert _state_io(out)["state"] == _state_io(out)["state_out"] == "tensor(float)"
    clean = [cv2.resize(f, (128, 96)) for f in read_frames(small_clip, 5)]
    a = Denoiser("video", device="cpu", threads=1).stream()
    b = Denoiser(out, device="cpu", threads=1).stream()
    for t, f in enumerate(clean):
        noisy = _noisy(f, 15, t)
        assert np.abs(a.denoise(noisy).astype(int) - b.denoise(noisy)).max() <= 2
    assert b.state is not None and b.state.dtype == np.float32


def test_bad_calibration_keeps_layers_float_and_a_tight_gate_refuses_writing_nothing(
        video_int8: tuple[Path, list[str]], small_clip: Path, tmp_path: Path) -> None:
    """Held-back clip real, calibration clips black: the layers that break stay float; at --max-drop 0.005 none
    is left (measured alone: 0.009 dB and more), so the variant is refused and nothing is written."""
    data = tmp_path / "frames"
    data.mkdir()
    real = read_frames(small_clip, 8)
    for i in range(24):  # one sequence, cut into clips of 8: the first held back for the gate, the others black
        cv2.imwrite(str(data / f"f{i:02d}.png"), real[i] if i < 8 else np.zeros_like(real[0]))
    card = make_variant(default_model_path("video"), tmp_path / "black.int8.onnx", "int8", data)
    gate = card.metrics["precision_gate"]
    assert card.metrics["precision_drop"] <= 0.1 and gate["clips"] == 1
    broken = [n for n, d in gate["layer_drops"].items() if d > 0.1]
    assert broken and not set(broken) & set(gate["int8_layers"])  # measured: down1, enc1, dec1 lose 3-7 dB alone
    assert len(gate["int8_layers"]) < len(Model(video_int8[0], device="cpu").card.metrics["precision_gate"]
                                          ["int8_layers"])

    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "video.int8.onnx"
    out.write_bytes(b"previous good file")
    r = CliRunner().invoke(cli, ["export", str(default_model_path("video")), "-o", str(out), "--precision", "int8",
                                 "--calibration", str(data), "--max-drop", "0.005", "-y"])  # -y: a failed gate keeps it
    assert r.exit_code != 0
    assert "Error:" in r.output and "more than --max-drop 0.005" in r.output and "not written" in r.output
    assert out.read_bytes() == b"previous good file"
    assert [p.name for p in outdir.iterdir()] == ["video.int8.onnx"]


def test_recurrent_variants_need_clips(tmp_path: Path) -> None:
    with pytest.raises(PrecisionError, match="clips of consecutive frames: give --calibration"):
        make_variant(default_model_path("video"), tmp_path / "b.onnx", "int8")
    assert not list(tmp_path.iterdir())


def test_a_recurrent_frame_io_variant_takes_uint8_frames_and_keeps_the_float_state(small_clip: Path,
                                                                                  tmp_path: Path) -> None:
    """--frame-io on the video model: uint8 BGR frames in and out, the float32 state beside them; as a stream it
    gives what the fp32 model gives (to a level), grey frames come back grey, and a new frame size resets."""
    out = tmp_path / "video.fp16.frame.onnx"
    card = make_variant(default_model_path("video"), out, "fp16", small_clip, frame_io=True)
    assert card.input.layout == "NHWC" and card.state is not None and card.outputs["frame_out"] == "image"
    assert _state_io(out) == {"frame": "tensor(uint8)", "state": "tensor(float)", "frame_out": "tensor(uint8)",
                              "state_out": "tensor(float)"}
    clean = read_frames(small_clip, 10)
    ref, var = Denoiser("video", device="cpu").stream(), Denoiser(out, device="cpu").stream()
    for t, f in enumerate(clean):
        x = _noisy(f, 20, t)
        a, b = ref.denoise(x), var.denoise(x)
        assert np.abs(a.astype(int) - b).max() <= 2, t
    assert var.state is not None and var.state.dtype == np.float32 and var.state.shape[2:] == clean[0].shape[:2]
    grey = var.denoise(cv2.cvtColor(clean[0], cv2.COLOR_BGR2GRAY)[:64, :96])
    assert grey.shape == (64, 96) and var.resets == 1
