"""torch -> ONNX for edge-ae checkpoints: dynamic shapes, checker, parity, the card written in."""

from __future__ import annotations

import datetime as dt
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from edge_runtime import __version__
from edge_runtime.card import InputSpec, ModelCard
from export.card_io import set_card
from train.checkpoint import load_checkpoint

OPSET = 17


class ExportError(RuntimeError):
    """Raised when an export fails a check; nothing is written."""


def provenance(payload: dict[str, Any]) -> dict[str, Any]:
    """Where a model came from: its training configuration, data, commit and dates."""
    return {
        "preset_config": payload["config"],
        "data": payload.get("data", {}),
        "commit": payload.get("commit"),
        "trained": payload.get("created"),
        "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "edge_ae_version": __version__,
        "torch_version": payload.get("torch_version"),
    }


def image_card(model: nn.Module, payload: dict[str, Any], precision: str = "fp32") -> ModelCard:
    """The card of a convolutional image model (NCHW in, same-size image out)."""
    cfg = payload["config"]
    channels = int(cfg.get("channels", 3))
    return ModelCard(
        task=payload.get("task", "denoise"),
        family=cfg["family"],
        input=InputSpec(
            layout="NCHW",
            channels=channels,
            color_order="RGB" if channels == 3 else "GREY",
            spatial_multiple=int(getattr(model, "spatial_multiple", 1)),
            grey_frames="replicate" if channels == 3 else "native",
        ),
        outputs={"output": "image"},
        precision=precision,
        noise=payload.get("noise"),
        metrics=dict(payload.get("metrics", {})),
        provenance=provenance(payload),
    )


def _to_onnx(model: nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    buf = io.BytesIO()
    dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (example,), buf, input_names=["input"], output_names=["output"],
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def parity(model: nn.Module, proto: onnx.ModelProto, inputs: list[np.ndarray]) -> float:
    """Largest absolute difference between torch and onnxruntime outputs over ``inputs``."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            expected = model(torch.from_numpy(x)).numpy()
            got = session.run(None, {"input": x})[0]
            if got.shape != expected.shape:
                msg = f"onnxruntime output shape {got.shape} differs from torch {expected.shape} for input {x.shape}"
                raise ExportError(msg)
            worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def write_atomic(proto: onnx.ModelProto, out: Path) -> None:
    """Write to a temporary file beside ``out`` and rename: never a half-written model under ``out``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        onnx.save_model(proto, tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp made it private
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_checkpoint(checkpoint: str | Path, out: str | Path, atol: float = 1e-4) -> ModelCard:
    """Export an image-model checkpoint to ``out`` with its card; fails without writing on any check."""
    out = Path(out)
    if not out.parent.is_dir():
        msg = f"{out}: folder {out.parent} does not exist"
        raise ExportError(msg)
    model, payload = load_checkpoint(checkpoint)
    from export.families import export_model, is_family_checkpoint  # the autoencoder families' own graphs

    if is_family_checkpoint(payload):
        return export_model(model, payload, out, atol, source=str(checkpoint))
    card = image_card(model, payload)
    c, m = card.input.channels, card.input.spatial_multiple
    proto = _to_onnx(model, torch.rand(1, c, 4 * m, 6 * m))
    onnx.checker.check_model(proto, full_check=True)
    rng = np.random.default_rng(0)
    probes = [rng.random((1, c, 4 * m, 6 * m), dtype=np.float32), rng.random((2, c, 7 * m, 3 * m), dtype=np.float32)]
    diff = parity(model, proto, probes)
    if not diff <= atol:
        msg = f"{checkpoint}: onnxruntime differs from torch by {diff:.2e} (allowed {atol:.0e}); not written"
        raise ExportError(msg)
    card = ModelCard(**{**card.__dict__, "metrics": {**card.metrics, "export_parity_max_abs": diff}})
    set_card(proto, card)
    write_atomic(proto, out)
    return card
