"""Packaging: each engine extra brings exactly one onnxruntime build, and without one the runtime says how to get it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_each_engine_extra_installs_exactly_one_onnxruntime() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base, extras = names(project["dependencies"]), project["optional-dependencies"]
    engines = {"onnxruntime", "onnxruntime-gpu"}
    assert "av" in base and not base & engines
    for extra, want in (("cpu", "onnxruntime"), ("gpu", "onnxruntime-gpu"), ("dev", "onnxruntime")):
        assert (base | names(extras[extra])) & engines == {want}, extra
    assert not names(extras["train"]) & engines  # combined with [cpu] or [gpu], never both


def test_without_onnxruntime_one_line_says_how_to_install_it(tmp_path: Path) -> None:
    block = ("import sys; sys.modules['onnxruntime'] = None; from edge_runtime.cli import main; "
             "sys.argv = ['edge-ae'] + sys.argv[1:]; main()")
    r = subprocess.run([sys.executable, "-c", block, "denoise", "--sample", "-o", str(tmp_path / "s.mp4")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: onnxruntime is not installed"), r.stderr
    assert "[cpu]'" in lines[0] and "[gpu]'" in lines[0]
