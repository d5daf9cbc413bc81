from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_runtime.model import Model  # noqa: E402
from export.onnx_export import ExportError, export_checkpoint  # noqa: E402
from train.checkpoint import load_checkpoint  # noqa: E402
from train.errors import CheckpointError  # noqa: E402


def test_checkpoint_rebuilds_from_the_file_alone(tiny_checkpoint: Path) -> None:
    model, payload = load_checkpoint(tiny_checkpoint)  # weights_only=True inside
    assert payload["config"]["family"] == "conv_denoiser"
    assert payload["complete"] is True
    assert payload["data"]["validation_images"], "a validation split is recorded"
    x = torch.rand(1, 3, 16, 24)
    assert model(x).shape == x.shape


def test_export_matches_torch_at_any_size(tiny_checkpoint: Path, tiny_onnx: Path) -> None:
    model, _ = load_checkpoint(tiny_checkpoint)
    m = Model(tiny_onnx, device="cpu")
    assert m.card.family == "conv_denoiser" and m.card.precision == "fp32"
    assert m.card.metrics["export_parity_max_abs"] < 1e-4
    import onnx

    proto = onnx.load(str(tiny_onnx))
    assert proto.opset_import[0].version >= 17
    for shape in [(1, 3, 40, 72), (3, 3, 8, 8), (2, 3, 64, 16)]:  # dynamic batch, height and width
        x = np.random.default_rng(1).random(shape, dtype=np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(m.run(x), expected, atol=1e-4)


def test_parity_failure_writes_nothing(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous good file")
    with pytest.raises(ExportError, match="differs from torch"):
        export_checkpoint(tiny_checkpoint, out, atol=0.0 - 1.0)
    assert out.read_bytes() == b"previous good file"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, p)
    with pytest.raises(CheckpointError, match="not an edge-ae checkpoint"):
        load_checkpoint(p)
    p.write_text("text")
    with pytest.raises(CheckpointError, match="not a readable edge-ae checkpoint"):
        load_checkpoint(p)
