"""Milliseconds per frame of recurrent ONNX models through ``Denoiser.stream()``, uint8 host frames in and out.

    python -m benchmarks.gpu_stream MODEL... [--device cuda] [--size 1920x1080] [--frames 60] [--bind/--no-bind]

Each model runs one stream over the same frames in order (after 2 s of warm-up: with 5 frames only, the first
model of a process measured 8.7 ms where a second run gave 3.3); with CUDA the stream keeps the state on the GPU
(I/O binding) unless --no-bind.
"""

from __future__ import annotations

import json
import statistics
import time

import click

from edge_runtime.bench import _test_frame, parse_sizes
from edge_runtime.denoiser import Denoiser


@click.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True)
@click.option("--size", default="1920x1080", show_default=True)
@click.option("--frames", type=int, default=60, show_default=True)
@click.option("--bind/--no-bind", default=None, help="I/O binding (default: on with CUDA).")
def main(models: tuple[str, ...], device: str, size: str, frames: int, bind: bool | None) -> None:
    (w, h), = parse_sizes(size)
    frame = _test_frame(w, h)
    for m in models:
        den = Denoiser(m, device=device, tile=None, bind=bind)
        stream = den.stream(temporal=False)  # the model path (the CPU-side temporal filter is apart)
        warm = time.perf_counter() + 2.0  # the first model of a process also pays the GPU's clock ramp
        while time.perf_counter() < warm:
            stream.denoise(frame)
        times = []
        for _ in range(frames):
            t = time.perf_counter()
            stream.denoise(frame)
            times.append((time.perf_counter() - t) * 1000)
        ms = statistics.median(times)
        click.echo(json.dumps({"model": m, "provider": den.model.provider, "bind": den.bind, "size": size,
                               "precision": den.model.card.precision, "input": den.model.card.input.layout,
                               "ms": round(ms, 2), "fps": round(1000 / ms, 1)}))


if __name__ == "__main__":
    main()
