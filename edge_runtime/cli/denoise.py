"""`edge-ae denoise`: a video, an image, a folder, many videos, a stream URL or a camera."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge_runtime.cli.options import (
    BatchProgress,
    FiniteFloatRange,
    Progress,
    archive_options,
    camera_option,
    encoding_options,
    ensemble_option,
    fail_on_problems,
    follow_camera_option,
    max_frames_option,
    overwrite_option,
    reconnect_option,
    runtime_options,
    signal_exit_code,
    strength_option,
    temporal_option,
    user_errors,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from edge_runtime.archive import ItemResult, Manifest
    from edge_runtime.batch import BatchItem
    from edge_runtime.denoiser import Denoiser
    from edge_runtime.media import Encoding
    from edge_runtime.pipeline import RunReport


def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _views(ensemble: str, what: str) -> None:
    """Refuse an ensemble of views for a video, stream or camera (a stream's frames go through the model once)."""
    if ensemble not in ("auto", "1"):
        msg = (f"--ensemble {ensemble}: {what} is not an image; videos, streams and cameras go through the model once "
               "per frame (the temporal model uses the frames before instead)")
        raise click.UsageError(msg)


def _describe(den: Denoiser) -> str:
    strength = ("" if den.strength == 1.0 else f", strength {den.strength:g}") + ("" if den.temporal else
                                                                                 ", temporal filter off")
    return (f"model {den.model.path.name} ({den.model.card.family}, {den.model.card.precision}{strength}) "
            f"on {den.model.provider}")


@click.command()
@click.argument("inputs", nargs=-1, metavar="[INPUT]...")
@click.option("-o", "--output", type=click.Path(), help="Video, image or folder to write (default: INPUT_denoised).")
@camera_option()
@click.option("--sample", is_flag=True, help="Denoise the short noisy sample clip bundled with edge-ae.")
@click.option("--show", is_flag=True, help="Show input and output side by side; q quits.")
@max_frames_option("Stop after this many frames (per video in a batch).")
@click.option("--tile", type=click.IntRange(128, 4096), default=2048, show_default=True,
              help="Frames with a side larger than this are processed in overlapping tiles (128 to 4096 pixels; "
                   "larger tiles need more memory: about 2.5 GB at 4096).")
@strength_option
@ensemble_option
@temporal_option
@follow_camera_option
@reconnect_option
@click.option("--give-up", type=FiniteFloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="Stop reconnecting after this long without frames, or waiting for a stream that is not up yet "
                   "(0: never give up).")
@click.option("--audio/--no-audio", default=True, show_default=True,
              help="Copy a video file's audio and subtitle streams into the output video.")
@encoding_options
@overwrite_option
@click.option("--skip-existing", is_flag=True,
              help="Leave outputs that already exist as they are and do the rest (resumes a half-done batch).")
@archive_options
@runtime_options
@user_errors
def denoise(inputs: tuple[str, ...], output: str | None, camera: int | None, sample: bool, show: bool,
            max_frames: int | None, tile: int, strength: float, ensemble: str, temporal: bool, follow_camera: bool,
            reconnect: bool,
            give_up: float,
            audio: bool, codec: str, crf: int | None, overwrite: bool, skip_existing: bool, manifest: str | None,
            shard: str | None, ray_address: str | None, workers: int | None, model: str | None, device: str,
            threads: int | None) -> None:
    """Denoise a video, an image, a folder of images, many videos, a stream URL or a camera.

    Several videos, or a folder of videos (searched recursively), are a batch: outputs mirror
    the inputs inside the -o folder, and one failure does not stop the rest. Ctrl-C or SIGTERM
    finishes the frame in flight and keeps a playable video of what was done.

    Videos are written as H.264 (HEVC stays HEVC) at a quality that keeps the model's result, in the
    input's pixel format, with its audio and subtitles. An existing output is refused unless -y.

    \b
    Examples:
      edge-ae denoise in.mp4 -o out.mp4
      edge-ae denoise in.mp4 -o out.mkv -y --codec hevc --crf 20
      edge-ae denoise photos/ -o clean/
      edge-ae denoise videos/ a.mp4 b.mkv -o clean/ --skip-existing
      edge-ae denoise archive/ -o clean/ --skip-existing --manifest done.jsonl --shard 3/8 --threads 2
      edge-ae denoise archive/ -o clean/ --manifest done.jsonl --threads 1 --ray=auto
      edge-ae denoise --camera 0 --show
      edge-ae denoise rtsp://192.168.1.10/stream -o out.mp4 --give-up 300
    """
    from edge_runtime.batch import is_video_folder
    from edge_runtime.denoiser import Denoiser
    from edge_runtime.media import Encoding
    from edge_runtime.model import default_model_for, sample_clip
    from edge_runtime.outputs import default_output
    from edge_runtime.pipeline import run_pipeline
    from edge_runtime.sinks import WindowSink
    from edge_runtime.sources import camera_device, open_source

    if overwrite and skip_existing:
        raise click.UsageError("give -y (replace existing outputs) or --skip-existing (keep them), not both")
    if ray_address is not None and Path(ray_address).exists():
        raise click.UsageError(f"--ray took {ray_address!r} as the Ray address; put --ray after the inputs or write "
                               "--ray=ADDRESS")
    encoding = Encoding(codec, crf)
    input = inputs[0] if len(inputs) == 1 else None
    given = sum(x is not None and x is not False for x in (inputs or None, camera, sample or None))
    if given != 1:
        raise click.UsageError("give exactly one of INPUT (or several videos), --camera N or --sample")
    if show and not _has_display():
        raise click.ClickException("--show needs a screen, and this machine has none (DISPLAY is not set)")
    if len(inputs) > 1 or (input is not None and is_video_folder(Path(input))):
        _views(ensemble, "a batch of videos")
        if show:
            raise click.UsageError("--show is for one input; a batch of videos runs without a window")
        _denoise_batch(inputs, output, max_frames, audio, encoding, overwrite, skip_existing, model or "video", device,
                       threads, tile, strength, temporal, manifest, shard, ray_address, workers, follow_camera)
        return
    if manifest or shard or ray_address or workers:
        raise click.UsageError("--manifest, --shard, --ray and --workers are for a batch: a folder of videos or "
                               "several videos")
    spec: str | int = camera if camera is not None else str(sample_clip() if sample else input)
    is_live = (camera is not None or camera_device(spec) is not None
               or str(spec).lower().startswith(("rtsp:", "http:", "https:")))
    if output is None and not is_live and not show:
        output = str(default_output(Path(str(spec))) if not sample else Path("sample_denoised.mp4"))
    if output is None and not show:
        raise click.UsageError("a camera or URL input needs -o OUTPUT or --show")
    if skip_existing and output is not None and Path(output).is_dir():
        raise click.UsageError("--skip-existing skips whole outputs (videos, images); for a folder of images use -y "
                               "or another folder")
    if skip_existing and output is not None and Path(output).exists():
        click.echo(f"{output}: already exists; skipped (--skip-existing)", err=True)
        return

    den = Denoiser(model or default_model_for(spec), device=device, threads=threads, tile=tile, strength=strength,
                   temporal=temporal, moving_camera="auto" if follow_camera else None)

    def on_event(message: str) -> None:
        click.echo(f"\n{message}" if sys.stderr.isatty() else message, err=True)

    source = open_source(spec, reconnect=reconnect, give_up=give_up or None, on_event=on_event)
    try:
        # video files and live sources: one stream (a recurrent model's state goes from frame to frame);
        # images and folders of images: each frame on its own, averaged over views of it (--ensemble)
        views = ""
        process: Callable[[np.ndarray], np.ndarray]
        if source.kind in ("image", "images"):
            n = 8 if ensemble == "auto" else int(ensemble)
            process = functools.partial(den.denoise, ensemble=n)
            views = f", {n} views per image" if n > 1 else ""
        else:
            _views(ensemble, source.description)
            process = den.stream()
        bar: Progress[RunReport] = Progress(source, f"{_describe(den)}{views}; input {source.description}")
        report = run_pipeline(source, process, output, WindowSink() if show else None, max_frames, bar.update,
                              audio=audio, encoding=encoding, overwrite=overwrite)
        bar.done()
    finally:
        source.close()
    state = f"stopped by {report.signal} after" if report.interrupted else "done:"
    wrote = f"; wrote {', '.join(report.outputs)}" if report.outputs else ""
    live = (f", {report.dropped} stale frames skipped, latency {report.latency_ms:.0f} ms (max "
            f"{report.max_latency_ms:.0f} ms), {report.reconnects} reconnects") if source.live else ""
    click.echo(f"{state} {report.frames} frames in {report.seconds:.1f} s ({report.fps:.1f} fps, "
               f"model {report.model_ms:.1f} ms/frame{live}){wrote}", err=True)
    for note in report.notes:
        click.echo(note, err=True)
    if report.interrupted:
        sys.exit(signal_exit_code(report.signal))
    fail_on_problems(report.problems)
    if report.lost:
        raise click.ClickException(f"{source.description}: the input was lost and did not come back "
                                   f"({'reconnecting is off' if not reconnect else f'gave up after {give_up:g} s'}); "
                                   f"the {report.frames} frames received were kept")


def _denoise_batch(inputs: tuple[str, ...], output: str | None, max_frames: int | None, audio: bool,
                   encoding: Encoding, overwrite: bool, skip_existing: bool, model: str | None, device: str,
                   threads: int | None, tile: int, strength: float, temporal: bool, manifest_path: str | None,
                   shard_spec: str | None,
                   ray_address: str | None, workers: int | None, follow_camera: bool = True) -> None:
    """Denoise many videos into one folder, here or on Ray; report each, then a summary; exit 1 if any failed."""
    from edge_runtime.archive import Manifest, parse_shard, read_manifest, shard, skipped, summarise_items
    from edge_runtime.batch import plan_batch
    from edge_runtime.outputs import default_output

    if workers is not None and ray_address is None:
        raise click.UsageError("--workers is for --ray; without it, run one process per shard (--shard K/N)")
    if output is None:
        if len(inputs) > 1:
            raise click.UsageError("several inputs need -o FOLDER for the outputs")
        output = str(default_output(Path(inputs[0])))
    items = plan_batch(inputs, output)
    if shard_spec is not None:
        try:
            k, n = parse_shard(shard_spec)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--shard") from None
        items = shard(items, k, n)
        click.echo(f"shard {k}/{n}: {len(items)} videos", err=True)
    there = [i for i in items if i.output.exists()]
    if skip_existing and manifest_path and Path(manifest_path).is_file():
        # A video that a signal stopped is kept (playable) but is not finished: its manifest line says so.
        last = {r.output: r.status for r in read_manifest(manifest_path)}
        redo = [i for i in there if last.get(str(i.output)) == "interrupted"]
        if redo:
            click.echo(f"{len(redo)} videos were interrupted in an earlier run ({manifest_path}); redoing them",
                       err=True)
            for i in redo:
                i.output.unlink()
            there = [i for i in there if i not in redo]
    if there and not (overwrite or skip_existing):
        shown = ", ".join(str(i.output) for i in there[:3]) + (", ..." if len(there) > 3 else "")
        raise click.ClickException(f"{output}: {len(there)} of the {len(items)} outputs already exist ({shown}); "
                                   "use --skip-existing to do only the rest, or -y to redo them")
    manifest = Manifest(manifest_path) if manifest_path else None
    results: list[ItemResult] = []
    try:
        if skip_existing and there:
            items = [i for i in items if not i.output.exists()]
            click.echo(f"{len(there)} videos already done in {output}, skipped (--skip-existing)", err=True)
            for item in there:
                if manifest is not None:
                    manifest.write(skipped(item))
        total = len(items)
        if items and ray_address is not None:
            stopped = _on_ray(items, model, device, threads, tile, strength, temporal, audio, max_frames, encoding,
                              overwrite, ray_address, workers, manifest, results, total, follow_camera)
        elif items:
            stopped = _here(items, model, device, threads, tile, strength, temporal, audio, max_frames, encoding,
                            overwrite, manifest, results, total, output, follow_camera)
        else:
            stopped = None
    finally:
        if manifest is not None:
            manifest.close()
    if total:
        click.echo(summarise_items(results, total), err=True)
    if stopped is not None:
        sys.exit(signal_exit_code(stopped))
    if any(r.status == "failed" for r in results):
        sys.exit(1)


def _report(tag: str, r: ItemResult) -> None:
    if r.status == "failed":
        kept = f" (its {r.frames} readable frames are in {r.output})" if r.frames else ""
        again = " (after a retry)" if r.attempts > 1 else ""
        click.echo(f"{tag}: FAILED{again}: {r.error}{kept}", err=True)
        return
    if r.status == "cancelled":
        click.echo(f"{tag}: cancelled (no output written)", err=True)
        return
    how = f"stopped by {r.signal} after" if r.status == "interrupted" else "done:"
    at = f" on {r.worker}" if r.worker else ""
    click.echo(f"{tag}: {how} {r.frames} frames ({r.fps:.1f} fps{at}) -> {r.output}", err=True)
    for note in r.notes:
        click.echo(f"  {note}", err=True)


def _here(items: list[BatchItem], model: str | None, device: str, threads: int | None, tile: int, strength: float,
          temporal: bool, audio: bool,
          max_frames: int | None, encoding: Encoding, overwrite: bool, manifest: Manifest | None,
          results: list[ItemResult], total: int, output: str, follow_camera: bool = True) -> str | None:
    """Run the items in this process, one after another; the signal that stopped it, if one did."""
    from edge_runtime.archive import pin_threads, run_items
    from edge_runtime.denoiser import Denoiser

    pin_threads(threads)
    den = Denoiser(model, device=device, threads=threads, tile=tile, strength=strength, temporal=temporal,
                   moving_camera="auto" if follow_camera else None)
    click.echo(f"{_describe(den)}; {len(items)} videos -> {output}", err=True)
    progress: BatchProgress[RunReport] = BatchProgress(total)

    def done(i: int, result: ItemResult) -> None:
        _report(progress.tag(i, result.source), result)

    ran = run_items(items, lambda: den.stream().denoise, progress.start, done, manifest, audio=audio,
                    max_frames=max_frames, encoding=encoding, overwrite=overwrite, threads=threads)
    results.extend(ran)
    return next((r.signal for r in ran if r.signal is not None), None)


def _on_ray(items: list[BatchItem], model: str | None, device: str, threads: int | None, tile: int,
            strength: float, temporal: bool, audio: bool,
            max_frames: int | None, encoding: Encoding, overwrite: bool, address: str, workers: int | None,
            manifest: Manifest | None, results: list[ItemResult], total: int, follow_camera: bool = True) -> str | None:
    """Run the items on Ray workers; "SIGINT" when Ctrl-C cancelled the rest."""
    from edge_runtime.model import bundled_name, resolve_model_path
    from edge_runtime.ray_runner import WorkerSpec, run_on_ray

    path = resolve_model_path(model)
    spec = WorkerSpec(path.name, device, threads or 1, tile, audio, max_frames, encoding, overwrite, strength,
                      temporal, bundled=bundled_name(model), follow_camera=follow_camera)

    def ready(names: list[str]) -> None:
        click.echo(f"model {path.name} on {len(names)} Ray workers ({threads or 1} threads each): "
                   f"{', '.join(names)}; {len(items)} videos", err=True)

    def done(result: ItemResult) -> None:
        results.append(result)
        if manifest is not None:
            manifest.write(result)
        _report(f"[{len(results)}/{total}] {result.source}", result)

    _, stopped = run_on_ray(items, path, spec, None if address == "local" else address, workers, ready, done)
    return "SIGINT" if stopped else None
