"""`edge-ae bench`: ms per frame, fps and quality of a model's precisions on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_runtime.cli.options import FiniteFloatRange, check_threads, user_errors


@click.command()
@click.option("-m", "--model", "models", multiple=True, type=click.Path(dir_okay=False),
              help="ONNX model (default: the bundled one); give several to compare them directly.")
@click.option("--device", default="cpu", show_default=True,
              help="cpu, cuda or auto, or several separated by commas (cpu,cuda).")
@click.option("--precision", default="fp32", show_default=True,
              help="Precisions to compare, e.g. fp32,fp16,int8: variants are found beside the model "
                   "(MODEL.int8.onnx, ...).")
@click.option("--size", default="640x480,1280x720,1920x1080", show_default=True,
              help="Frame sizes WIDTHxHEIGHT, separated by commas (each side at most 8192).")
@click.option("--quality", type=click.Path(file_okay=False), help="Folder of clean images: PSNR / SSIM at "
              "sigma 15/25/50 for every precision and for OpenCV non-local means.")
@click.option("--quality-images", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="Images of the --quality folder to use.")
@click.option("--runs", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Timed calls per row (more when they take under --min-seconds).")
@click.option("--min-seconds", type=FiniteFloatRange(0, 60), default=1.0, show_default=True,
              help="Keep calling until this many seconds have passed per row (at most 50 x --runs calls).")
@click.option("--threads", type=click.IntRange(min=1), callback=check_threads,
              help="CPU threads (default: the cores this process may use).")
@click.option("--spin/--no-spin", default=False, show_default=True,
              help="Let onnxruntime's threads busy-wait between calls (faster in a tight loop, burns a core).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False), help="Append the report as a JSON line to FILE.")
@user_errors
def bench(models: tuple[str, ...], device: str, precision: str, size: str, quality: str | None,
          quality_images: int, runs: int, min_seconds: float, threads: int | None, spin: bool, as_json: bool,
          log_file: str | None) -> None:
    """Time the runtime per precision, frame size and device; optionally score quality.

    Each row is the end-to-end Denoiser call (median and p90 ms, fps) on a real frame.

    \b
    Examples:
      edge-ae bench --size 640x480
      edge-ae bench -m m.onnx --precision fp32,int8 --size 640x480,1920x1080 --json
      edge-ae bench -m m.onnx --precision fp32,int8 --quality clean_photos/ --log bench.jsonl
    """
    from edge_runtime.bench import append_log, format_table, parse_sizes, run_bench
    from edge_runtime.card import PRECISIONS
    from edge_runtime.errors import BenchError
    from edge_runtime.files import check_writable

    if log_file:
        check_writable(Path(log_file))  # before the benchmark, not after it
    devices = [d.strip() for d in device.split(",") if d.strip()]
    bad = [d for d in devices if d not in ("auto", "cpu", "cuda")] or ([] if devices else [device])
    if bad:
        msg = f"--device {bad[0]!r} is not one of auto, cpu, cuda"
        raise BenchError(msg)
    precisions = [p.strip() for p in precision.split(",") if p.strip()]
    wrong = [p for p in precisions if p not in PRECISIONS] or ([] if precisions else [precision])
    if wrong:
        msg = f"--precision {wrong[0]!r} is not one of {', '.join(PRECISIONS)}"
        raise BenchError(msg)
    report = run_bench([Path(m) for m in models] or None, precisions, parse_sizes(size), devices,
                       Path(quality) if quality else None, threads, spin, runs, min_seconds, quality_images,
                       log=lambda s: click.echo(s, err=True))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo(format_table(report))
    if log_file:
        append_log(report, Path(log_file))
        click.echo(f"appended to {log_file}", err=True)
