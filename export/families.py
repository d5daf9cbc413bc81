"""ONNX export of the autoencoder families (undercomplete ... lstm) with their model cards.

Graphs (all float32 in [0, 1]; batch dynamic everywhere, time dynamic for lstm):

- dense families (layout NF): input (B, H*W*C) -> reconstruction (B, H*W*C), latent (B, Z);
- convolutional (layout NCHW, fixed H x W): input (B, C, H, W) -> reconstruction (B, C, H, W), latent (B, Z);
- lstm (layout NTF): input (B, T, H*W*C) -> reconstruction (B, T, H*W*C), latent (B, Z);
- variational (layout NF): inputs input (B, F) and latent (M, Z), either batch may be 0 ->
  reconstruction (B, F) through the mean, mean (B, Z), logvar (B, Z), decoded (M, F).

The card's ``outputs`` maps each output name to its role; the runtime finds everything there.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from edge_runtime.card import AnomalySpec, InputSpec, ModelCard
from export.card_io import set_card
from export.onnx_export import OPSET, ExportError, provenance, write_atomic
from train.checkpoint import load_checkpoint
from train.loop_ae import AE_FAMILIES

OUTPUTS = {"reconstruction": "reconstruction", "latent": "latent"}
ANOMALY_SCORES = {"variational": "likelihood", "lstm": "sequence"}  # default score by family (else mse); see edge_runtime.anomaly
VAE_OUTPUTS = {"reconstruction": "reconstruction", "mean": "mean", "logvar": "logvar", "decoded": "decoded"}


def is_family_checkpoint(payload: dict[str, Any]) -> bool:
    return payload.get("config", {}).get("family") in AE_FAMILIES


def family_card(model: nn.Module, payload: dict[str, Any], precision: str = "fp32") -> ModelCard:
    cfg, inp = payload["config"], payload["input"]
    channels = int(inp["channels"])
    family = cfg["family"]
    return ModelCard(
        task="anomaly" if payload.get("task") == "anomaly" else "reconstruct",
        family=family,
        input=InputSpec(
            layout=inp["layout"],
            channels=channels,
            color_order="RGB" if channels == 3 else "GREY",
            height=int(inp["height"]),
            width=int(inp["width"]),
            grey_frames="replicate" if channels == 3 else "native",
            sequence_length=inp.get("seq_len"),
        ),
        outputs=dict(VAE_OUTPUTS if family == "variational" else OUTPUTS),
        precision=precision,
        anomaly=AnomalySpec(score=ANOMALY_SCORES.get(family, "mse")) if payload.get("task") == "anomaly" else None,
        metrics=dict(payload.get("metrics", {})),
        provenance=provenance(payload),
    )


def _input_shape(card: ModelCard, batch: int, steps: int = 5) -> tuple[int, ...]:
    i = card.input
    f = i.height * i.width * i.channels
    if i.layout == "NF":
        return (batch, f)
    if i.layout == "NCHW":
        return (batch, i.channels, i.height, i.width)
    return (batch, steps, f)


def _to_onnx(model: nn.Module, card: ModelCard) -> onnx.ModelProto:
    x = torch.rand(_input_shape(card, 2))
    names_out = list(card.outputs)
    dynamic: dict[str, dict[int, str]] = {"input": {0: "batch"}}
    if card.input.layout == "NTF":
        dynamic["input"][1] = "time"
    args: tuple[torch.Tensor, ...] = (x,)
    names_in = ["input"]
    if card.family == "variational":
        args = (x, torch.randn(3, model.bottleneck))
        names_in.append("latent")
        dynamic["latent"] = {0: "samples"}
        dynamic.update(reconstruction={0: "batch"}, mean={0: "batch"}, logvar={0: "batch"}, decoded={0: "samples"})
    else:
        dynamic["reconstruction"] = dict(dynamic["input"])
        dynamic["latent"] = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice, LSTM batch warnings
        torch.onnx.export(model, args, buf, input_names=names_in, output_names=names_out, dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def probes(card: ModelCard, bottleneck: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Inputs the parity check runs: several batch sizes, sequence lengths and (VAE) empty batches."""
    rng = np.random.default_rng(seed)
    shapes = [_input_shape(card, 1, 3), _input_shape(card, 4, card.input.sequence_length or 7)]
    feeds = [{"input": rng.random(s, dtype=np.float32)} for s in shapes]
    if card.family == "variational":
        z = rng.standard_normal((5, bottleneck)).astype(np.float32)
        feeds[0]["latent"] = z[:2]
        feeds[1]["latent"] = z
        feeds.append({"input": np.zeros(_input_shape(card, 0), np.float32), "latent": z})
        feeds.append({"input": feeds[1]["input"], "latent": z[:0]})
    return feeds


def family_parity(model: nn.Module, proto: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> float:
    """Largest absolute difference between torch and onnxruntime over every output of every feed."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for feed in feeds:
            expected = model(*(torch.from_numpy(v) for v in feed.values()))
            got = session.run(None, feed)
            for e, g in zip(expected, got, strict=True):
                e = e.numpy()
                if g.shape != e.shape:
                    shapes = {k: v.shape for k, v in feed.items()}
                    msg = f"onnxruntime output shape {g.shape} differs from torch {e.shape} for inputs {shapes}"
                    raise ExportError(msg)
                if e.size:
                    worst = max(worst, float(np.abs(g - e).max()))
    return worst


def export_family(checkpoint: str | Path, out: str | Path, atol: float = 1e-4) -> ModelCard:
    """Export an autoencoder-family checkpoint to ``out`` with its card; nothing is written if a check fails."""
    out = Path(out)
    if not out.parent.is_dir():
        msg = f"{out}: folder {out.parent} does not exist"
        raise ExportError(msg)
    model, payload = load_checkpoint(checkpoint)
    if not is_family_checkpoint(payload):
        msg = f"{checkpoint}: family {payload['config'].get('family')!r} is not one of {', '.join(AE_FAMILIES)}"
        raise ExportError(msg)
    return export_model(model, payload, out, atol, source=str(checkpoint))


def export_model(model: nn.Module, payload: dict[str, Any], out: Path, atol: float = 1e-4,
                 source: str = "model") -> ModelCard:
    """Export an in-memory family model with its checkpoint metadata (as train_autoencoder writes it)."""
    model.eval()
    card = family_card(model, payload)
    proto = _to_onnx(model, card)
    onnx.checker.check_model(proto, full_check=True)
    diff = family_parity(model, proto, probes(card, int(model.bottleneck)))
    if not diff <= atol:
        msg = f"{source}: onnxruntime differs from torch by {diff:.2e} (allowed {atol:.0e}); not written"
        raise ExportError(msg)
    card = dataclasses.replace(card, metrics={**card.metrics, "export_parity_max_abs": diff})
    set_card(proto, card)
    write_atomic(proto, out)
    return card
