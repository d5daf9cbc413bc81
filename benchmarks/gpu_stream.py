"""Milliseconds per frame of denoiser streams through ``Denoiser.stream()``, uint8 host frames in and out, and
what each way of running the temporal filter does to the result.

    python -m benchmarks.gpu_stream [MODEL...] [--device cuda] [--size 1920x1080 --size 640x480] [--frames 200]
                                    [--pan PIXELS] [--eager]

MODEL: a model file or a bundled name (default: ``video`` and ``default``, which on CUDA load their fp16
``--frame-io`` variants). Each model is timed three ways, one stream each, over the same frames in order:
``model alone`` (``stream(temporal=False)``), ``filter on the host`` (the model on the device, the OpenCV
filter on the CPU: ``on_device = False``) and ``default`` (``stream()``: with a frame model on CUDA the
filter's graph runs where the model runs). The frames are real: the first 30 of the bundled test clip
(640x480, Intel sample video), resized to the size, with Gaussian noise sigma 20 (seed 0), fed in order
and again from the start (after 2 s of warm-up: the first model of a process pays the GPU's clock ramp).
Quality: PSNR of each way against the clean frames over the 30 frames of one pass, beside the bundled fp32
model's default stream on the CPU (the reference the CUDA path should match).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import click
import cv2
import numpy as np

from edge_runtime.bench import parse_sizes
from edge_runtime.denoiser import Denoiser, DenoiseStream

CLIP = Path(__file__).resolve().parents[1] / "tests" / "data" / "intel_asl_again.mkv"
PASS = 30


def clip_frames(w: int, h: int, pan: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(clean, noisy) frames of the test clip at w x h; with ``pan``, a camera panning right by ``pan`` pixels
    per frame over the first frame instead (crops of it resized to w + PASS * pan wide)."""
    cap = cv2.VideoCapture(str(CLIP))
    clean = []
    while len(clean) < PASS:
        ok, f = cap.read()
        if not ok:
            break
        if pan:
            wide = cv2.resize(f, (w + PASS * pan, h), interpolation=cv2.INTER_AREA)
            clean = [np.ascontiguousarray(wide[:, i * pan : i * pan + w]) for i in range(PASS)]
            break
        clean.append(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) if f.shape[:2] != (h, w) else f)
    cap.release()
    rng = np.random.default_rng(0)
    noisy = [np.clip(c + rng.normal(0, 20, c.shape), 0, 255).round().astype(np.uint8) for c in clean]
    return clean, noisy


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def stream_for(den: Denoiser, mode: str) -> DenoiseStream:
    if mode == "model alone":
        return den.stream(temporal=False)
    s = den.stream()
    if mode == "filter on the host":
        s.on_device = False
    return s


@click.command()
@click.argument("models", nargs=-1)
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True)
@click.option("--size", "sizes", multiple=True, default=["1920x1080", "640x480"], show_default=True)
@click.option("--frames", type=int, default=200, show_default=True, help="Timed frames per way.")
@click.option("--bind/--no-bind", default=None, help="I/O binding (default: on with CUDA).")
@click.option("--pan", type=int, default=0, show_default=True,
              help="Pixels per frame of a panning camera over the clip's first frame (0: the clip as it is).")
@click.option("--eager", is_flag=True,
              help="Also the bundled video network in PyTorch eager (fp16 on CUDA, channels_last; needs torch).")
def main(models: tuple[str, ...], device: str, sizes: tuple[str, ...], frames: int, bind: bool | None,
         pan: int, eager: bool) -> None:
    for size in sizes:
        (w, h), = parse_sizes(size)
        clean, noisy = clip_frames(w, h, pan)
        for m in models or ("video", "default"):
            den = Denoiser(m, device=device, tile=None, bind=bind)
            ref_name = m if m in ("video", "default") else None
            row: dict[str, object] = {"model": m, "file": den.model.path.name, "provider": den.model.provider,
                                      "size": size, "precision": den.model.card.precision,
                                      "input": den.model.card.input.layout}
            if ref_name is not None:  # the bundled fp32 model on the CPU: the reference
                ref = Denoiser(ref_name, device="cpu").stream()
                row["psnr cpu fp32 default"] = round(float(np.mean([psnr(ref.denoise(n), c)
                                                                    for n, c in zip(noisy, clean, strict=True)])), 3)
            for mode in ("model alone", "filter on the host", "default"):
                s = stream_for(den, mode)
                row[f"psnr {mode}"] = round(float(np.mean([psnr(s.denoise(n), c)
                                                           for n, c in zip(noisy, clean, strict=True)])), 3)
                s = stream_for(den, mode)
                warm = time.perf_counter() + 2.0
                i = 0
                while time.perf_counter() < warm:
                    s.denoise(noisy[i % len(noisy)])
                    i += 1
                times = []
                for i in range(frames):
                    t = time.perf_counter()
                    s.denoise(noisy[i % len(noisy)])
                    times.append((time.perf_counter() - t) * 1000)
                ms = statistics.median(times)
                row[f"ms {mode}"] = round(ms, 2)
                row[f"switches {mode}"] = s.switches
                row[f"fps {mode}"] = round(1000 / ms, 1)
            if eager and m == "video":
                row.update(eager_video(device, noisy, clean, frames))
            click.echo(json.dumps(row))


def eager_video(device: str, noisy: list[np.ndarray], clean: list[np.ndarray], frames: int) -> dict[str, float]:
    """The bundled video network in PyTorch eager, its weights read from video.onnx, the state kept on the
    device, the uint8 conversion on the device too (``benchmarks.gpu.torch_step``): the model alone."""
    import torch

    from benchmarks.gpu import torch_step
    from edge_runtime.model import default_model_path
    from train.registry import create_model
    from train.warm_start import warm_start

    net = create_model("video_denoiser").eval()
    warm_start(net, default_model_path("video"))
    dtype = torch.float16 if device == "cuda" else torch.float32
    net = net.to(device).to(dtype).to(memory_format=torch.channels_last)
    out: dict[str, float] = {}
    with torch.inference_mode():
        state: list[torch.Tensor] = []
        out["psnr torch eager, model alone"] = round(float(np.mean(
            [psnr(torch_step(net, n, device, dtype, state), c) for n, c in zip(noisy, clean, strict=True)])), 3)
        state = []
        warm = time.perf_counter() + 2.0
        i = 0
        while time.perf_counter() < warm:
            torch_step(net, noisy[i % len(noisy)], device, dtype, state)
            i += 1
        times = []
        for i in range(frames):
            t = time.perf_counter()
            torch_step(net, noisy[i % len(noisy)], device, dtype, state)
            times.append((time.perf_counter() - t) * 1000)
    ms = statistics.median(times)
    out["ms torch eager, model alone"], out["fps torch eager, model alone"] = round(ms, 2), round(1000 / ms, 1)
    return out


if __name__ == "__main__":
    main()
