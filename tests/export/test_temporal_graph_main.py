"""`python -m export.temporal_graph`: a real argument parser (--help prints usage and writes nothing), an .onnx
output only, written atomically."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parents[2]


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "export.temporal_graph", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_help_prints_usage_and_writes_nothing(tmp_path: Path) -> None:
    r = _run(tmp_path, "--help")
    assert r.returncode == 0 and "usage: python -m export.temporal_graph" in r.stdout, r.stderr
    r = _run(tmp_path, "notes.txt")
    assert r.returncode == 2 and "notes.txt: the output is an ONNX graph" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_writes_a_loadable_graph(tmp_path: Path) -> None:
    import onnxruntime as ort

    r = _run(tmp_path, "filter.onnx")
    assert r.returncode == 0, r.stderr
    session = ort.InferenceSession(str(tmp_path / "filter.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs() and session.get_outputs()
    assert [p.name for p in tmp_path.iterdir()] == ["filter.onnx"]
