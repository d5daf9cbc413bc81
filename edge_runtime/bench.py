"""What a machine does with a model: ms per frame through the runtime's Denoiser, and quality.

Speed is the end-to-end ``Denoiser.denoise`` call on a uint8 BGR frame (conversion, padding,
the model, conversion back), median and 90th percentile over repeated calls after a warm-up.
Quality adds Gaussian noise at a few sigmas to clean images and scores every precision and
OpenCV's non-local means (fastNlMeansDenoisingColored) on the same noisy frames.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from edge_runtime import __version__
from edge_runtime.card import card_from_metadata
from edge_runtime.denoiser import Denoiser
from edge_runtime.errors import BenchError
from edge_runtime.files import is_image
from edge_runtime.model import choose_providers, default_model_path, default_threads, sample_clip
from edge_runtime.quality import psnr, ssim

QUALITY_SIGMAS = (15.0, 25.0, 50.0)
MAX_SIDE = 8192  # largest frame side benchmarked: an 8K frame; beyond it one frame alone takes gigabytes
NLM_H = {15.0: 10.0, 25.0: 15.0, 50.0: 28.0}  # filter strength per sigma (luma h = colour h)

Log = Callable[[str], None]


@dataclass(frozen=True)
class SpeedRow:
    label: str  # the precision, or "precision:file" when several models share one
    precision: str
    frame_io: bool  # the model takes uint8 frames and converts inside its graph
    size: str  # "WxH"
    device: str  # what it ran on: "cpu" or "cuda"
    provider: str
    model: str
    model_mb: float
    ms_median: float
    ms_p90: float
    fps: float
    runs: int


@dataclass(frozen=True)
class QualityRow:
    method: str  # a precision ("fp32", "int8", ...) or "opencv-nlm" / "noisy"
    sigma: float
    psnr: float
    ssim: float
    psnr_vs_fp32: float | None  # this method's PSNR minus fp32's on the same frames
    images: int


@dataclass(frozen=True)
class BenchReport:
    speed: list[SpeedRow]
    quality: list[QualityRow] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'640x480,1280x720' -> [(640, 480), (1280, 720)] (width x height)."""
    sizes = []
    for part in text.split(","):
        try:
            w, h = (int(v) for v in part.strip().lower().split("x"))
        except ValueError:
            msg = f"size {part.strip()!r} is not WIDTHxHEIGHT (e.g. 640x480)"
            raise BenchError(msg) from None
        if w < 1 or h < 1:
            msg = f"size {part.strip()!r} must be at least 1x1"
            raise BenchError(msg)
        if max(w, h) > MAX_SIDE:
            msg = f"size {part.strip()!r} is too large; each side may be at most {MAX_SIDE} pixels"
            raise BenchError(msg)
        sizes.append((w, h))
    return sizes


def _precision_of(path: Path) -> str | None:
    try:
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return card_from_metadata(s.get_modelmeta().custom_metadata_map, str(path)).precision
    except Exception:  # not a model, or not one of ours: not a candidate
        return None


def find_variants(model: Path, precisions: list[str]) -> dict[str, Path]:
    """The file for each precision: ``model`` itself, ``<stem>.<precision>.onnx`` beside it, or
    another ``<stem>*.onnx`` beside it whose card has that precision."""
    found: dict[str, Path] = {}
    own = _precision_of(model)
    if own is None:
        msg = f"{model}: not an edge-ae ONNX model"
        raise BenchError(msg)
    others = sorted(p for p in model.parent.glob(f"{model.stem}*.onnx") if p.resolve() != model.resolve())
    for p in precisions:
        if own == p:
            found[p] = model
            continue
        named = model.with_name(f"{model.stem}.{p}.onnx")
        hit = named if named.is_file() and _precision_of(named) == p else next(
            (o for o in others if _precision_of(o) == p), None)
        if hit is None:
            raise BenchError(_no_variant(model, p, named))
        found[p] = hit
    return found


BUNDLED_INT8_DROP = 0.15  # the bundled default.onnx's int8 variant loses 0.11-0.12 dB, over export's 0.1 dB gate


def _no_variant(model: Path, precision: str, named: Path) -> str:
    """Why bench found no ``precision`` variant of ``model``, and the commands that make one and bench it."""
    if model.resolve().parent != default_model_path().resolve().parent:
        return (f"no {precision} variant of {model} beside it (looked for {named.name}); make one with: "
                f"edge-ae export {model} --precision {precision} -o {named}")
    # the bundled model: its variant goes in the working folder, not into the installed package, and is given by -m
    drop = f" --max-drop {BUNDLED_INT8_DROP:g}" if precision == "int8" else ""
    return (f"no {precision} variant of the bundled {model.name} (bench looks for MODEL.{precision}.onnx beside "
            f"the model); make one here and compare the two: edge-ae export {model} --precision {precision}{drop} "
            f"-o {named.name} && edge-ae bench -m {model} -m {named.name}")


def _test_frame(w: int, h: int) -> np.ndarray:
    """A real frame (the bundled sample clip) resized to w x h, or a textured pattern without it."""
    cap = cv2.VideoCapture(str(sample_clip()))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        frame = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)


def time_calls(fn: Callable[[], Any], runs: int, min_seconds: float, warmup: int = 3) -> list[float]:
    """Milliseconds of ``runs`` calls (more if they take under ``min_seconds`` in all), after a warm-up."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs or (time.perf_counter() - start < min_seconds and len(times) < 50 * runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def bench_speed(models: dict[str, Path], sizes: list[tuple[int, int]], devices: list[str],
                threads: int | None = None, spin: bool | None = None, runs: int = 20, min_seconds: float = 1.0,
                log: Log = lambda s: None) -> list[SpeedRow]:
    """One row per precision x size x device."""
    rows: list[SpeedRow] = []
    total = len(models) * len(sizes) * len(devices)
    for device in devices:
        for precision, path in models.items():
            den = Denoiser(path, device=device, threads=threads, spin=spin)
            for w, h in sizes:
                log(f"[{len(rows) + 1}/{total}] {precision} {w}x{h} on {den.model.provider} ...")
                frame = _test_frame(w, h)
                times = time_calls(functools.partial(den.denoise, frame), runs, min_seconds)
                med, p90 = float(np.median(times)), float(np.percentile(times, 90))
                rows.append(SpeedRow(precision, den.model.card.precision, den.frame_io, f"{w}x{h}", den.model.device,
                                     den.model.provider, str(path), round(path.stat().st_size / 1e6, 3),
                                     round(med, 2), round(p90, 2), round(1000.0 / med, 1), len(times)))
                log(f"    median {med:.1f} ms, p90 {p90:.1f} ms, {1000.0 / med:.1f} fps ({len(times)} runs)")
    return rows


def _clean_images(folder: Path, limit: int) -> list[np.ndarray]:
    if not folder.is_dir():
        msg = f"{folder}: --quality needs a folder of clean images"
        raise BenchError(msg)
    images = []
    for f in sorted(folder.rglob("*")):
        if is_image(f):
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None:
                images.append(img)
        if len(images) >= limit:
            break
    if not images:
        msg = f"{folder}: no readable images for --quality"
        raise BenchError(msg)
    return images


def bench_quality(models: dict[str, Path], folder: Path, limit: int = 8, threads: int | None = None,
                  device: str = "cpu", log: Log = lambda s: None) -> list[QualityRow]:
    """PSNR / SSIM per method and sigma on the same noisy versions of ``folder``'s images."""
    images = _clean_images(folder, limit)
    dens = {p: Denoiser(path, device=device, threads=threads) for p, path in models.items()}
    rng = np.random.default_rng(0)
    rows: list[QualityRow] = []
    for sigma in QUALITY_SIGMAS:
        log(f"quality σ={sigma:g}: {len(images)} images, {', '.join(dens)} and OpenCV non-local means ...")
        scores: dict[str, list[tuple[float, float]]] = {}
        for clean in images:
            noisy = np.clip(clean + rng.normal(0.0, sigma, clean.shape) + 0.5, 0, 255).astype(np.uint8)
            outs = {"noisy": noisy, **{p: d.denoise(noisy) for p, d in dens.items()}}
            h = NLM_H[sigma]
            outs["opencv-nlm"] = cv2.fastNlMeansDenoisingColored(noisy, None, h, h, 7, 21)
            for name, out in outs.items():
                scores.setdefault(name, []).append((psnr(out, clean), ssim(out, clean)))
        ref = float(np.mean([s[0] for s in scores["fp32"]])) if "fp32" in scores else None
        for name, vals in scores.items():
            p = float(np.mean([v[0] for v in vals]))
            rows.append(QualityRow(name, sigma, round(p, 3), round(float(np.mean([v[1] for v in vals])), 4),
                                   None if ref is None else round(p - ref, 3), len(images)))
    return rows


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": default_threads(), "onnxruntime": ort.__version__, "edge_ae": __version__,
            "providers": ort.get_available_providers(), "python": platform.python_version(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def run_bench(models: list[Path] | None, precisions: list[str], sizes: list[tuple[int, int]], devices: list[str],
              quality: Path | None = None, threads: int | None = None, spin: bool | None = None, runs: int = 20,
              min_seconds: float = 1.0, quality_images: int = 8, log: Log = lambda s: None) -> BenchReport:
    """The whole benchmark: every precision x size x device, and quality when a folder is given."""
    if models and len(models) > 1:
        chosen: dict[str, Path] = {}
        for m in models:
            p = _precision_of(m)
            if p is None:
                msg = f"{m}: not an edge-ae ONNX model"
                raise BenchError(msg)
            label = p if p not in chosen else f"{p}:{m.name}"
            chosen[label] = m
    else:
        base = models[0] if models else default_model_path()
        if not base.is_file():
            msg = f"{base}: no such model file"
            raise BenchError(msg)
        chosen = find_variants(base, precisions)
    if quality is not None:
        _clean_images(quality, quality_images)  # a bad folder fails now, not after the speed runs
    # Resolve the device once: a missing CUDA gives one warning, not one per model.
    ran_on = []
    for d in devices:
        real = "cuda" if "CUDAExecutionProvider" in choose_providers(d) else "cpu"
        if real not in ran_on:
            ran_on.append(real)
    speed = bench_speed(chosen, sizes, ran_on, threads, spin, runs, min_seconds, log)
    qual = bench_quality(chosen, quality, quality_images, threads, ran_on[0], log) if quality else []
    info = machine()
    info["threads"] = threads or default_threads()
    info["devices_requested"] = devices
    return BenchReport(speed, qual, info)


def format_table(report: BenchReport) -> str:
    """The report as plain-text tables."""
    wide = max([12, *(len(r.label) + 1 for r in report.speed)])
    head = f"{'model':<{wide}} {'size':>10} {'device':<6} {'median ms':>10} {'p90 ms':>8} {'fps':>7} {'model MB':>9}"
    lines = [head, "-" * len(head)]
    for r in report.speed:
        lines.append(f"{r.label:<{wide}} {r.size:>10} {r.device:<6} {r.ms_median:>10.1f} {r.ms_p90:>8.1f} "
                     f"{r.fps:>7.1f} {r.model_mb:>9.2f}")
    if report.quality:
        lines += ["", f"{'method':<12} {'sigma':>6} {'PSNR dB':>8} {'SSIM':>7} {'vs fp32 dB':>11} {'images':>7}",
                  "-" * 56]
        for q in report.quality:
            vs = "" if q.psnr_vs_fp32 is None else f"{q.psnr_vs_fp32:+.3f}"
            lines.append(f"{q.method:<12} {q.sigma:>6g} {q.psnr:>8.2f} {q.ssim:>7.4f} {vs:>11} {q.images:>7}")
    m = report.machine
    lines += ["", f"{m.get('cpu')} ({m.get('cores')} cores usable, {m.get('threads')} threads), "
                  f"onnxruntime {m.get('onnxruntime')}, {m.get('date')}"]
    return "\n".join(lines)


def append_log(report: BenchReport, path: Path) -> None:
    """Append the report as one JSON line (the file is a history of runs)."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(report.to_dict(), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        msg = f"{path}: cannot append the report ({e.strerror or e})"
        raise BenchError(msg) from None
