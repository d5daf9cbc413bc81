"""Start a network from another model's weights: an exported ONNX file (e.g. the bundled default.onnx or
video.onnx) or a checkpoint. Used by `edge-ae train --init-from` (train.loop, train.loop_video)."""

from __future__ import annotations

from pathlib import Path

import torch

from train.errors import ConfigError

NEW_PREFIXES = ("head_state", "tail_ctrl", "level_")  # weights a warm start may leave as built (new parts)


def warm_start(model: torch.nn.Module, source: str | Path) -> str:
    """Load weights into ``model`` (a conv_denoiser or video_denoiser) from ``source``: an exported conv_denoiser
    ONNX file (e.g. the bundled default.onnx) or video_denoiser ONNX file (the bundled video.onnx), or a
    checkpoint of either. Weights the source lacks (a video model's state inputs, a level estimate) stay as
    built; any other mismatch is refused. Returns what was loaded, for the log."""
    source = Path(source)
    sd = model.state_dict()
    if source.suffix.lower() == ".onnx":
        import onnx  # train-only dependency
        from onnx import numpy_helper

        proto = onnx.load(str(source))
        weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
        family = "onnx"
        _split_exported(weights, sd)
    else:
        from train.checkpoint import load_checkpoint

        loaded, payload = load_checkpoint(source)
        weights = loaded.state_dict()
        family = str(payload["config"]["family"])
    matched = {k: v for k, v in weights.items() if k in sd and sd[k].shape == v.shape}
    missing = sorted(k for k in sd if k not in matched and not k.startswith(NEW_PREFIXES))
    if missing:
        msg = f"{source}: its weights do not fit this network (missing or differently shaped: {', '.join(missing[:5])})"
        raise ConfigError(msg)
    sd.update(matched)
    model.load_state_dict(sd)
    return f"{len(matched)} of {len(sd)} tensors from {source} ({family})"


# An exported video_denoiser concatenates these pairs (forward) into one unnamed initializer each.
_JOINED = (("head.0.weight", "head_state", 1), ("tail.weight", "tail_ctrl_weight", 1),
           ("tail.bias", "tail_ctrl_bias", 0))


def _split_exported(weights: dict[str, torch.Tensor], sd: dict[str, torch.Tensor]) -> None:
    """In place: an exported video_denoiser's joined head/tail initializers (found by their unique shape)
    back into the named tensors, so that --init-from takes an exported video.onnx too."""
    for a, b, dim in _JOINED:
        if a in weights or a not in sd or b not in sd:
            continue
        shape = list(sd[a].shape)
        shape[dim] += sd[b].shape[dim]
        found = [k for k, v in weights.items() if list(v.shape) == shape and k not in sd]
        if len(found) == 1:
            weights[a], weights[b] = weights.pop(found[0]).split([sd[a].shape[dim], sd[b].shape[dim]], dim)
