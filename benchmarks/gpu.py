"""The runtime's Denoiser against the same network in plain PyTorch, same device, same run.

    python -m benchmarks.gpu CHECKPOINT [--device cuda] [--precision fp16] [--size 1920x1080]

Both sides do the same job end to end: a uint8 BGR frame on the host in, a uint8 BGR frame on
the host out. The runtime uses the ``--frame-io`` variant (conversion inside the graph, I/O
binding); PyTorch converts on the device in eager mode with channels_last.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
import numpy as np
import torch

from edge_runtime.bench import _test_frame, parse_sizes, time_calls
from edge_runtime.denoiser import Denoiser
from export.onnx_export import export_checkpoint
from export.precision import make_variant
from train.checkpoint import load_checkpoint


def torch_step(model: torch.nn.Module, frame: np.ndarray, device: str, dtype: torch.dtype) -> np.ndarray:
    x = torch.from_numpy(frame).to(device)  # (H, W, 3) uint8 BGR
    x = x.permute(2, 0, 1)[None].flip(1).to(dtype).div_(255.0).contiguous(memory_format=torch.channels_last)
    y = model(x)  # (1, 3, H, W) RGB in [0, 1]
    out = (y.flip(1)[0].permute(1, 2, 0) * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8)
    return out.cpu().numpy()  # waits for the device


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True)
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True)
@click.option("--size", default="1920x1080", show_default=True)
@click.option("--runs", type=int, default=200, show_default=True)
@click.option("--calibration", type=click.Path(exists=True), help="Frames for the export's quality gate.")
def main(checkpoint: str, device: str, precision: str, size: str, runs: int, calibration: str | None) -> None:
    """Time the runtime and PyTorch on CHECKPOINT's network and print their ratio."""
    (w, h), = parse_sizes(size)
    frame = _test_frame(w, h)
    model, _ = load_checkpoint(checkpoint)
    dtype = torch.float16 if precision == "fp16" else torch.float32
    results: dict[str, object] = {"size": size, "device": device, "precision": precision}
    with tempfile.TemporaryDirectory(prefix="edge-ae-bench-") as td:
        fp32 = Path(td) / "fp32.onnx"
        export_checkpoint(checkpoint, fp32)
        variant = Path(td) / f"{precision}.frame.onnx"
        make_variant(fp32, variant, precision, calibration, frame_io=True)
        den = Denoiser(variant, device=device, tile=None)
        results["provider"] = den.model.provider
        rt = time_calls(lambda: den.denoise(frame), runs, 2.0, warmup=10)
        ref = den.denoise(frame)
    m = model.to(device).to(dtype).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        tt = time_calls(lambda: torch_step(m, frame, device, dtype), runs, 2.0, warmup=10)
        out = torch_step(m, frame, device, dtype)
    results.update(runtime_ms=round(float(np.median(rt)), 3), torch_ms=round(float(np.median(tt)), 3),
                   runtime_fps=round(1000 / float(np.median(rt)), 1), torch_fps=round(1000 / float(np.median(tt)), 1),
                   torch_over_runtime=round(float(np.median(tt)) / float(np.median(rt)), 3),
                   max_abs_diff=int(np.abs(out.astype(int) - ref).max()), runs=len(rt))
    click.echo(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
