"""`edge-ae bench`: every row asked for, JSON that parses, a log that grows, one warning without CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest
from click.testing import CliRunner

from edge_runtime.cli import cli

FAST = ["--runs", "2", "--min-seconds", "0"]


def test_json_has_every_row_asked_for(variants: Path, clean_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "bench.jsonl"
    args = ["bench", "-m", str(variants), "--precision", "fp32,int8", "--size", "64x48,80x60", "--quality",
            str(clean_dir), "--json", "--log", str(log), *FAST]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    rows = {(r["precision"], r["size"], r["device"]) for r in report["speed"]}
    assert rows == {(p, s, "cpu") for p in ("fp32", "int8") for s in ("64x48", "80x60")}
    for r in report["speed"]:
        assert 0 < r["ms_median"] <= r["ms_p90"] and r["fps"] > 0 and r["model_mb"] > 0 and r["runs"] >= 2
    int8 = next(r for r in report["speed"] if r["precision"] == "int8")
    fp32 = next(r for r in report["speed"] if r["precision"] == "fp32")
    assert int8["model"].endswith("tiny.int8.onnx") and int8["model_mb"] < fp32["model_mb"]
    assert int8["label"] == "int8" and int8["frame_io"] is False

    quality = {(q["method"], q["sigma"]): q for q in report["quality"]}
    assert set(quality) == {(m, s) for m in ("noisy", "fp32", "int8", "opencv-nlm") for s in (15.0, 25.0, 50.0)}
    for s in (15.0, 25.0, 50.0):
        assert quality[("fp32", s)]["psnr_vs_fp32"] == 0.0
        assert quality[("opencv-nlm", s)]["psnr"] > quality[("noisy", s)]["psnr"]  # NLM ran on the same frames
        assert 0 < quality[("int8", s)]["ssim"] <= 1
    assert quality[("noisy", 15.0)]["psnr"] > quality[("noisy", 50.0)]["psnr"]

    # the log is appended to, one JSON document per run
    again = ["bench", "-m", str(variants), "--size", "64x48", "--log", str(log), *FAST]
    assert CliRunner().invoke(cli, again).exit_code == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["speed"][0]["size"] == "64x48"


def test_table_and_progress(variants: Path) -> None:
    res = CliRunner().invoke(cli, ["bench", "-m", str(variants), "--size", "64x48", *FAST])
    assert res.exit_code == 0, res.output
    assert "[1/1] fp32 64x48" in res.stderr  # progress on stderr
    assert "median ms" in res.stdout and "64x48" in res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--size", "640by480"], "size '640by480' is not WIDTHxHEIGHT"),
    (["--precision", "fp8"], "--precision 'fp8' is not one of"),
    (["--precision", "fp16"], "no fp16 variant of"),
    (["--device", "tpu"], "--device 'tpu' is not one of"),
])
def test_bad_requests_are_one_clear_line(variants: Path, args: list[str], message: str) -> None:
    res = CliRunner().invoke(cli, ["bench", "-m", str(variants), *args, *FAST])
    assert res.exit_code == 1
    assert res.output.startswith("Error: ") and message in res.output and res.output.count("\n") == 1


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="this machine has CUDA")
def test_cuda_without_cuda_falls_back_with_one_warning_line(tiny_onnx: Path) -> None:
    cmd = [sys.executable, "-c", "from edge_runtime.cli import main; main()", "bench", "-m", str(tiny_onnx),
           "--device", "cuda", "--size", "64x48,32x32", "--json", *FAST]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1 and "CUDA was requested" in warnings[0] and "running on CPU" in warnings[0]
    assert {r["device"] for r in json.loads(res.stdout)["speed"]} == {"cpu"}


def test_a_missing_variant_of_the_bundled_model_is_made_in_the_working_folder() -> None:
    """The hint never writes into the installed package, and gives the bundled int8 the drop it needs."""
    from edge_runtime.model import default_model_path

    res = CliRunner().invoke(cli, ["bench", "--precision", "fp32,int8", "--size", "64x48", *FAST])
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    bundled = default_model_path()
    assert "no int8 variant of the bundled default.onnx" in res.output and "MODEL.int8.onnx beside" in res.output
    assert f"edge-ae export {bundled} --precision int8 --max-drop 0.15 -o default.int8.onnx" in res.output
    assert f"edge-ae bench -m {bundled} -m default.int8.onnx" in res.output
    assert str(bundled.parent / "default.int8.onnx") not in res.output
