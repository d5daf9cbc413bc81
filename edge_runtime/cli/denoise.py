"""`edge-ae denoise`: a video, an image, a folder, many videos, a stream URL or a camera."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge_runtime.cli.options import (
    FiniteFloatRange,
    Progress,
    camera_option,
    encoding_options,
    fail_on_problems,
    max_frames_option,
    overwrite_option,
    reconnect_option,
    runtime_options,
    signal_exit_code,
    user_errors,
)

if TYPE_CHECKING:
    from edge_runtime.batch import BatchItem, BatchResult
    from edge_runtime.denoiser import Denoiser
    from edge_runtime.media import Encoding
    from edge_runtime.pipeline import RunReport
    from edge_runtime.sources import Source


def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _describe(den: Denoiser) -> str:
    return f"model {den.model.path.name} ({den.model.card.family}, {den.model.card.precision}) on {den.model.provider}"


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
@runtime_options
@user_errors
def denoise(inputs: tuple[str, ...], output: str | None, camera: int | None, sample: bool, show: bool,
            max_frames: int | None, tile: int, reconnect: bool, give_up: float, audio: bool, codec: str,
            crf: int | None, overwrite: bool, skip_existing: bool, model: str | None, device: str,
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
    from edge_runtime.sources import open_source

    if overwrite and skip_existing:
        raise click.UsageError("give -y (replace existing outputs) or --skip-existing (keep them), not both")
    encoding = Encoding(codec, crf)
    input = inputs[0] if len(inputs) == 1 else None
    given = sum(x is not None and x is not False for x in (inputs or None, camera, sample or None))
    if given != 1:
        raise click.UsageError("give exactly one of INPUT (or several videos), --camera N or --sample")
    if show and not _has_display():
        raise click.ClickException("--show needs a screen, and this machine has none (DISPLAY is not set)")
    if len(inputs) > 1 or (input is not None and is_video_folder(Path(input))):
        if show:
            raise click.UsageError("--show is for one input; a batch of videos runs without a window")
        den = Denoiser(model or "video", device=device, threads=threads, tile=tile)
        _denoise_batch(inputs, output, max_frames, audio, encoding, overwrite, skip_existing, den)
        return
    spec: str | int = camera if camera is not None else str(sample_clip() if sample else input)
    is_live = camera is not None or str(spec).lower().startswith(("rtsp:", "http:", "https:"))
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

    den = Denoiser(model or default_model_for(spec), device=device, threads=threads, tile=tile)

    def on_event(message: str) -> None:
        click.echo(f"\n{message}" if sys.stderr.isatty() else message, err=True)

    source = open_source(spec, reconnect=reconnect, give_up=give_up or None, on_event=on_event)
    try:
        bar: Progress[RunReport] = Progress(source, f"{_describe(den)}; input {source.description}")
        # video files and live sources: one stream (a recurrent model's state goes from frame to frame);
        # images and folders of images: each frame on its own
        process = den.denoise if source.kind in ("image", "images") else den.stream()
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
                   encoding: Encoding, overwrite: bool, skip_existing: bool, den: Denoiser) -> None:
    """Denoise many videos into one folder; report each, then a summary; exit 1 if any failed."""
    from edge_runtime.batch import plan_batch, run_batch, summarise
    from edge_runtime.outputs import default_output

    if output is None:
        if len(inputs) > 1:
            raise click.UsageError("several inputs need -o FOLDER for the outputs")
        output = str(default_output(Path(inputs[0])))
    items = plan_batch(inputs, output)
    there = [i for i in items if i.output.exists()]
    if there and not (overwrite or skip_existing):
        shown = ", ".join(str(i.output) for i in there[:3]) + (", ..." if len(there) > 3 else "")
        raise click.ClickException(f"{output}: {len(there)} of the {len(items)} outputs already exist ({shown}); "
                                   "use --skip-existing to do only the rest, or -y to redo them")
    if skip_existing and there:
        items = [i for i in items if not i.output.exists()]
        click.echo(f"{len(there)} videos already done in {output}, skipped (--skip-existing)", err=True)
        if not items:
            return
    click.echo(f"{_describe(den)}; {len(items)} videos -> {output}", err=True)
    bars: list[Progress[RunReport]] = []

    def start(i: int, item: BatchItem, source: Source) -> Callable[[RunReport], None]:
        bars.append(Progress(source, f"[{i + 1}/{len(items)}] {item.source}"))
        return bars[-1].update

    def done(i: int, result: BatchResult) -> None:
        if bars:
            bars[-1].done()
        tag = f"[{i + 1}/{len(items)}] {result.item.source}"
        if result.error is not None or result.report is None:
            kept = f" (its {result.report.frames} readable frames are in {result.item.output})" \
                if result.report is not None and result.report.outputs else ""
            click.echo(f"{tag}: FAILED: {result.error}{kept}", err=True)
            return
        r = result.report
        how = f"stopped by {r.signal} after" if r.interrupted else "done:"
        click.echo(f"{tag}: {how} {r.frames} frames ({r.fps:.1f} fps) -> {result.item.output}", err=True)
        for note in r.notes:
            click.echo(f"  {note}", err=True)

    results = run_batch(items, den.stream(), start, done, audio=audio, max_frames=max_frames, encoding=encoding,
                        overwrite=overwrite)
    click.echo(summarise(results), err=True)
    stopped = next((r.report for r in results if r.report is not None and r.report.interrupted), None)
    if stopped is not None:
        sys.exit(signal_exit_code(stopped.signal))
    if any(r.error is not None for r in results):
        sys.exit(1)
