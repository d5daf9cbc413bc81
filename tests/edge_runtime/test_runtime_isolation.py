"""The runtime must never import torch, train or export."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "edge_runtime"


def test_importing_the_runtime_loads_no_torch() -> None:
    code = (
        "import sys, edge_runtime, edge_runtime.cli, edge_runtime.denoiser, edge_runtime.pipeline, "
        "edge_runtime.sources, edge_runtime.sinks, edge_runtime.model, edge_runtime.card\n"
        "from edge_runtime import Denoiser\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'train', 'export', 'onnx'))\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_runtime_module_imports_torch_train_or_export() -> None:
    offenders = []
    for f in RUNTIME.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{f.name}: {n}" for n in names if n.split(".")[0] in ("torch", "train", "export")]
    assert offenders == []


def test_cli_starts_and_explains_train_without_torch() -> None:
    """With torch unavailable (as in a runtime-only install) the CLI still works and says how to get [train]."""
    block = ("import sys; sys.modules['torch'] = None; from edge_runtime.cli import main; "
             "sys.argv = ['edge-ae'] + sys.argv[1:]; main()")
    r = subprocess.run([sys.executable, "-c", block, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "denoise" in r.stdout and "train" in r.stdout
    r = subprocess.run([sys.executable, "-c", block, "train", "data/"], capture_output=True, text=True)
    assert r.returncode != 0
    # The hint works where it is read: from a clone it names the clone's path, installed it names the package.
    m = re.search(r"pip install (?:-e )?'(.+)\[train\]'", r.stderr)
    assert m, r.stderr
    assert m.group(1) == "edge-ae" or (Path(m.group(1)) / "pyproject.toml").is_file(), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
