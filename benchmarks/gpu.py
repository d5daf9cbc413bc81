"""The runtime's Denoiser against the same network in plain PyTorch, same device, same run.

    python -m benchmarks.gpu CHECKPOINT [--device cuda] [--precision fp16] [--size 1920x1080]

Both sides do the same job end to end: a uint8 BGR frame on the host in, a uint8 BGR frame on
the host out. The runtime uses the ``--frame-io`` variant (conversion inside the graph, I/O
binding); PyTorch converts on the device in eager mode with channels_last. Latency is the median
of single calls; throughput runs ``--streams`` threads that each denoise frames back to back (host
copies of one overlap the compute of another). A recurrent checkpoint (video_denoiser) runs
through ``Denoiser.stream()`` in fp32 (its variants feed the frame only).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import torch

from edge_runtime.bench import _test_frame, parse_sizes, time_calls
from edge_runtime.denoiser import Denoiser
from export.onnx_export import export_checkpoint
from export.precision import make_variant
from train.checkpoint import load_checkpoint


def torch_step(model: torch.nn.Module, frame: np.ndarray, device: str, dtype: torch.dtype,
               state: list[torch.Tensor] | None = None) -> np.ndarray:
    x = torch.from_numpy(frame).to(device)  # (H, W, 3) uint8 BGR
    x = x.permute(2, 0, 1)[None].flip(1).to(dtype).div_(255.0).contiguous(memory_format=torch.channels_last)
    if state is None:
        y = model(x)  # (1, 3, H, W) RGB in [0, 1]
    else:  # a recurrent model: its state stays on the device from call to call
        if not state:
            state.append(model.empty_state(x))
        y, state[0] = model(x, state[0])
    out = (y.flip(1)[0].permute(1, 2, 0) * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8)
    return out.cpu().numpy()  # waits for the device


def throughput(make: Callable[[], Callable[[], object]], streams: int, seconds: float) -> float:
    """Frames per second of ``streams`` threads each calling its own ``make()`` back to back."""
    calls = [make() for _ in range(streams)]
    with torch.inference_mode():
        for c in calls:
            c()
    counts = [0] * streams
    stop = time.perf_counter() + seconds

    def loop(i: int) -> None:
        with torch.inference_mode():  # thread-local: each thread enters it (a recurrent state would keep graphs)
            while time.perf_counter() < stop:
                calls[i]()
                counts[i] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True)
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True)
@click.option("--size", default="1920x1080", show_default=True)
@click.option("--runs", type=int, default=200, show_default=True)
@click.option("--streams", type=int, default=2, show_default=True, help="Threads for the throughput figure.")
@click.option("--calibration", type=click.Path(exists=True), help="Frames for the export's quality gate.")
def main(checkpoint: str, device: str, precision: str, size: str, runs: int, streams: int,
         calibration: str | None) -> None:
    """Time the runtime and PyTorch on CHECKPOINT's network and print their ratio."""
    (w, h), = parse_sizes(size)
    frame = _test_frame(w, h)
    model, _ = load_checkpoint(checkpoint)
    recurrent = hasattr(model, "empty_state")
    if recurrent:
        precision = "fp32"
    dtype = torch.float16 if precision == "fp16" else torch.float32
    results: dict[str, object] = {"checkpoint": Path(checkpoint).name, "size": size, "device": device,
                                  "precision": precision, "recurrent": recurrent}
    if device == "cuda":
        results["gpu"] = torch.cuda.get_device_name()
    with tempfile.TemporaryDirectory(prefix="edge-ae-bench-") as td:
        fp32 = Path(td) / "fp32.onnx"
        export_checkpoint(checkpoint, fp32)
        if recurrent:
            variant = fp32
        else:
            variant = Path(td) / f"{precision}.frame.onnx"
            make_variant(fp32, variant, precision, calibration, frame_io=True)
        den = Denoiser(variant, device=device, tile=None)
        results["provider"] = den.model.provider

        def runtime_call() -> Callable[[], object]:
            stream = den.stream(temporal=False)  # the model path (the CPU-side temporal filter is apart)
            return lambda: stream.denoise(frame)

        one = runtime_call()
        rt = time_calls(one, runs, 2.0, warmup=10)
        ref = runtime_call()()
        results["runtime_streams_fps"] = round(throughput(runtime_call, streams, 5.0), 1)
    m = model.to(device).to(dtype).to(memory_format=torch.channels_last)
    with torch.inference_mode():

        def torch_call() -> Callable[[], object]:
            state: list[torch.Tensor] | None = [] if recurrent else None
            return lambda: torch_step(m, frame, device, dtype, state)

        tt = time_calls(torch_call(), runs, 2.0, warmup=10)
        out = torch_call()()
        results["torch_streams_fps"] = round(throughput(torch_call, streams, 5.0), 1)
    results.update(runtime_ms=round(float(np.median(rt)), 3), torch_ms=round(float(np.median(tt)), 3),
                   runtime_fps=round(1000 / float(np.median(rt)), 1), torch_fps=round(1000 / float(np.median(tt)), 1),
                   torch_over_runtime=round(float(np.median(tt)) / float(np.median(rt)), 3),
                   max_abs_diff=int(np.abs(out.astype(int) - ref).max()), runs=len(rt), streams=streams)
    click.echo(json.dumps(results))


if __name__ == "__main__":
    main()
