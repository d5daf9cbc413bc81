"""torch -> ONNX for every edge-ae family: one graph export, one parity check, one card, written atomically.

What a graph looks like comes from the family's spec (train.registry.FamilySpec); all tensors are
float32 in [0, 1] and the frame input is named ``input``:

- image families (conv_denoiser): input (B, C, H, W) of any size -> output (B, C, H, W), role image;
- NF families (undercomplete, sparse, ...): input (B, H*W*C) -> reconstruction (B, H*W*C), latent (B, Z);
- NCHW families (convolutional, fixed H x W): input (B, C, H, W) -> reconstruction (B, C, H, W), latent (B, Z);
  the predictor: input (B, K + 1, H, W) -> reconstruction (B, 1, H, W) (and, with its appearance branch,
  appearance (B, 1, H, W)): a network's ``output_roles`` names its outputs where they differ from the spec's;
- NTF families (lstm): input (B, T, H*W*C), any T -> reconstruction (B, T, H*W*C), latent (B, Z);
- recurrent image families (video_denoiser): inputs input (B, C, H, W) and state (B, S, H, W) -> output
  (B, C, H, W), state_out (B, S, H, W); the card's ``state`` names them; parity runs a closed loop of
  ``PARITY_FRAMES`` frames, each step fed the state the previous step returned;
- variational: one more input, latent (M, Z) (either batch may be 0) -> reconstruction (B, F) through the
  mean, mean (B, Z), logvar (B, Z), decoded (M, F).

The card's ``outputs`` maps each output name to its role; the runtime finds everything there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from edge_runtime import __version__
from edge_runtime.card import AnomalySpec, InputSpec, ModelCard, StateSpec
from edge_runtime.files import check_writable, write_bytes_atomic
from export.card_io import set_card
from export.errors import ExportError
from train.checkpoint import load_checkpoint
from train.registry import family_spec
from train.spec import STATE_INPUT, FamilySpec

__all__ = ["OPSET", "ExportError", "build_card", "export_checkpoint", "export_model", "parity", "probes", "to_onnx"]

OPSET = 17
PARITY_FRAMES = 10  # closed-loop steps of a recurrent model's parity check
STRENGTH_INPUT = "strength"  # the graph input (float32, (1,)) of a model with a noise-level estimate


def takes_strength(model: nn.Module) -> bool:
    """Whether ``model`` has a noise-level estimate that a strength input scales (conv_denoiser level=True)."""
    return bool(getattr(model, "takes_strength", False))
Shape = tuple[int, ...]


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


def build_card(spec: FamilySpec, model: nn.Module, payload: dict[str, Any], precision: str = "fp32") -> ModelCard:
    """The card of ``model``: layout, output roles and default anomaly score from ``spec``, the rest from
    the checkpoint ``payload`` (fixed-size families record their input size under ``input``)."""
    cfg = payload["config"]
    size = payload.get("input") or {}
    channels = int(size.get("channels", cfg.get("channels", 3)))
    task = payload.get("task", "denoise")
    state_out = [name for name, role in spec.outputs.items() if role == "state"]
    state = (StateSpec(input=STATE_INPUT, output=state_out[0], channels=spec.state_channels_of(model))
             if spec.state_channels else None)
    if spec.fixed_size and task != "anomaly":
        task = "reconstruct"
    return ModelCard(
        task=task,
        family=spec.name,
        input=InputSpec(
            layout=spec.card_layout,
            channels=channels,
            color_order="RGB" if channels == 3 else "GREY",
            spatial_multiple=int(getattr(model, "spatial_multiple", 1)),
            height=int(size["height"]) if size.get("height") is not None else None,
            width=int(size["width"]) if size.get("width") is not None else None,
            grey_frames="replicate" if channels == 3 else "native",
            sequence_length=size.get("seq_len"),
            past_frames=size.get("past_frames"),
            strength=STRENGTH_INPUT if takes_strength(model) else None,
        ),
        outputs=dict(spec.outputs_of(model)),
        precision=precision,
        noise=payload.get("noise"),
        anomaly=(AnomalySpec(score=getattr(model, "anomaly_score", spec.score), smoothing=spec.smoothing)
                 if task == "anomaly" and spec.score is not None else None),
        state=state,
        metrics=dict(payload.get("metrics", {})),
        provenance=provenance(payload),
    )


def _shapes(spec: FamilySpec, card: ModelCard) -> tuple[Shape, list[Shape]]:
    """The traced example's input shape, and the parity probes': two batch sizes, and two frame sizes
    (image families) or sequence lengths (NTF) where those are free."""
    i = card.input
    c = i.channels + (i.past_frames or 0)  # a predictor's input stacks its past frames and the present
    if spec.layout == "image":
        m = i.spatial_multiple
        return (1, c, 4 * m, 6 * m), [(1, c, 4 * m, 6 * m), (2, c, 7 * m, 3 * m)]
    h, w = int(i.height or 0), int(i.width or 0)

    def shape(batch: int, steps: int) -> Shape:
        if spec.layout == "NCHW":
            return (batch, c, h, w)
        return (batch, steps, h * w * c) if spec.layout == "NTF" else (batch, h * w * c)

    return shape(2, 5), [shape(1, 3), shape(4, i.sequence_length or 7)]


def _input_names(spec: FamilySpec, model: nn.Module) -> list[str]:
    return ["input", *(e.name for e in spec.extra_inputs), *([STATE_INPUT] if spec.state_channels else []),
            *([STRENGTH_INPUT] if takes_strength(model) else [])]


def to_onnx(spec: FamilySpec, model: nn.Module, card: ModelCard) -> onnx.ModelProto:
    """Trace ``model`` into an ONNX graph with the spec's inputs, named outputs and dynamic axes."""
    example, _ = _shapes(spec, card)
    args = (torch.rand(example), *(torch.randn(3, int(getattr(model, e.width))) for e in spec.extra_inputs))
    if spec.state_channels:
        args = (*args, torch.rand(example[0], spec.state_channels_of(model), *example[2:]))
    if takes_strength(model):
        args = (*args, torch.ones(1))
    buf = io.BytesIO()
    outputs = spec.outputs_of(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice, LSTM batch warnings
        torch.onnx.export(model, args, buf, input_names=_input_names(spec, model), output_names=list(outputs),
                          dynamic_axes=spec.axes(outputs), opset_version=OPSET, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def probes(spec: FamilySpec, card: ModelCard, model: nn.Module, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Feeds the parity check runs: several batch sizes and frame sizes or sequence lengths; with extra
    inputs (the VAE's latent rows) also an empty frame batch and empty extra rows."""
    rng = np.random.default_rng(seed)
    _, shapes = _shapes(spec, card)
    feeds = [{"input": rng.random(s, dtype=np.float32)} for s in shapes]
    if takes_strength(model):
        for feed, strength in zip(feeds, (1.0, 1.7), strict=False):
            feed[STRENGTH_INPUT] = np.array([strength], np.float32)
    if spec.extra_inputs:
        rows = {e.name: rng.standard_normal((5, int(getattr(model, e.width)))).astype(np.float32)
                for e in spec.extra_inputs}
        feeds[0].update({name: r[:2] for name, r in rows.items()})
        feeds[1].update(rows)
        feeds.append({"input": np.zeros((0, *shapes[1][1:]), np.float32), **rows})
        feeds.append({"input": feeds[1]["input"], **{name: r[:0] for name, r in rows.items()}})
    return feeds


def clip_probe(shape: Shape, frames: int = PARITY_FRAMES, seed: int = 0) -> np.ndarray:
    """A smooth moving test clip (T, B, C, H, W) in [0, 1]: a random blurred scene panning one pixel a frame
    with a little noise, so a recurrent model's state keeps (rather than cuts off) the past."""
    rng = np.random.default_rng(seed)
    b, c, h, w = shape
    coarse = rng.random((b, c, h // 4 + 2, w // 4 + frames + 2), dtype=np.float32)
    scene = np.repeat(np.repeat(coarse, 4, axis=2), 4, axis=3)
    clip = [scene[:, :, :h, t : t + w] + rng.normal(0, 0.05, (b, c, h, w)).astype(np.float32)
            for t in range(frames)]
    return np.clip(np.stack(clip), 0, 1).astype(np.float32)


def closed_loop_parity(model: nn.Module, proto: onnx.ModelProto, spec: FamilySpec, card: ModelCard) -> float:
    """Largest absolute difference between torch and onnxruntime over ``PARITY_FRAMES`` frames of each probe
    size, each side fed its own previous state (starting empty): differences that build up in the state count."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    worst = 0.0
    _, shapes = _shapes(spec, card)
    with torch.no_grad():
        for seed, shape in enumerate(shapes):
            clip = clip_probe(shape, seed=seed)
            state = np.zeros((shape[0], spec.state_channels_of(model), *shape[2:]), np.float32)
            t_state = torch.from_numpy(state)
            for frame in clip:
                t_out, t_state = model(torch.from_numpy(frame), t_state)
                out, state = session.run(None, {"input": frame, STATE_INPUT: state})
                if out.shape != tuple(t_out.shape) or state.shape != tuple(t_state.shape):
                    msg = f"onnxruntime output shapes {out.shape}, {state.shape} differ from torch for {shape}"
                    raise ExportError(msg)
                worst = max(worst, float(np.abs(out - t_out.numpy()).max()),
                            float(np.abs(state - t_state.numpy()).max()))
    return worst


def parity(model: nn.Module, proto: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> float:
    """Largest absolute difference between torch and onnxruntime over every output of every feed."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    worst = 0.0
    with torch.no_grad():
        for feed in feeds:
            expected = model(*(torch.from_numpy(feed[n]) for n in names))
            if isinstance(expected, torch.Tensor):
                expected = (expected,)
            got = session.run(None, feed)
            for t, g in zip(expected, got, strict=True):
                e = t.numpy()
                if g.shape != e.shape:
                    shapes = {k: v.shape for k, v in feed.items()}
                    msg = f"onnxruntime output shape {g.shape} differs from torch {e.shape} for inputs {shapes}"
                    raise ExportError(msg)
                if e.size:
                    worst = max(worst, float(np.abs(g - e).max()))
    return worst


def export_model(model: nn.Module, payload: dict[str, Any], out: str | Path, atol: float = 1e-4,
                 source: str = "model", overwrite: bool = True) -> ModelCard:
    """Export an in-memory model with its checkpoint metadata (as the training loops write it) to ``out``;
    nothing is written if the checker or the parity check fails (nor, unless ``overwrite``, over a file)."""
    out = Path(out)
    check_writable(out)
    spec = family_spec(payload["config"]["family"])
    model.eval()
    card = build_card(spec, model, payload)
    proto = to_onnx(spec, model, card)
    onnx.checker.check_model(proto, full_check=True)
    diff = (closed_loop_parity(model, proto, spec, card) if spec.state_channels
            else parity(model, proto, probes(spec, card, model)))
    if not diff <= atol:
        msg = f"{source}: onnxruntime differs from torch by {diff:.2e} (allowed {atol:.0e}); not written"
        raise ExportError(msg)
    card = dataclasses.replace(card, metrics={**card.metrics, "export_parity_max_abs": diff})
    set_card(proto, card)
    write_bytes_atomic(out, proto.SerializeToString(), overwrite)
    return card


def export_checkpoint(checkpoint: str | Path, out: str | Path, atol: float = 1e-4, overwrite: bool = True) -> ModelCard:
    """Export a checkpoint of any family to ``out`` with its card; fails without writing on any check."""
    check_writable(Path(out))
    model, payload = load_checkpoint(checkpoint)
    return export_model(model, payload, out, atol, source=str(checkpoint), overwrite=overwrite)
