"""The `edge-ae` command. Training and export commands load lazily: they need torch."""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import click

from edge_runtime import __version__
from edge_runtime.errors import EdgeAEError

# name -> (module, attribute, short help); imported only when the command is run or asked for help.
_LAZY = {
    "train": ("train.cli", "train_command", "Train an autoencoder and write a checkpoint (needs edge-ae[train])."),
    "export": ("export.cli", "export_command", "Export a checkpoint to a self-describing ONNX file (needs edge-ae[train])."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _LAZY:
            return super().get_command(ctx, name)
        module, attr, short = _LAZY[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if e.name not in {"torch", "onnx"} and not (e.name or "").startswith(("torch.", "onnx.")):
                raise
            missing = e.name

            @click.command(name, help=short, context_settings={"ignore_unknown_options": True})
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def unavailable(args: tuple[str, ...]) -> None:
                raise click.ClickException(
                    f"'edge-ae {name}' needs {missing}, which is not installed; install it with: pip install 'edge-ae[train]'"
                )

            return unavailable

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in _LAZY:
                rows.append((name, _LAZY[name][2]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit=formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge-ae")
def cli() -> None:
    """Denoise camera and video frames live, flag anomalous frames, and train your own autoencoders."""


def main() -> None:
    cli(prog_name="edge-ae")



def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn edge-ae errors into one 'Error: ...' line and exit code 1; Ctrl-C into exit code 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeAEError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--threads", type=click.IntRange(min=1), help="CPU threads for onnxruntime (default: all cores).")(fn)
    fn = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                      help="Where to run: auto uses CUDA when onnxruntime offers it.")(fn)
    fn = click.option("-m", "--model", type=click.Path(dir_okay=False), help="ONNX model file (default: the bundled denoiser).")(fn)
    return fn


def sample_clip() -> Path:
    """The short sample clip bundled with the package."""
    return Path(str(resources.files("edge_runtime") / "samples" / "sample.mp4"))


def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _default_output(path: Path) -> Path:
    if path.is_dir():
        return path.with_name(path.name + "_denoised")
    return path.with_name(f"{path.stem}_denoised{path.suffix if path.suffix.lower() != '.mkv' else '.mp4'}")


@cli.command()
@click.argument("inputs", nargs=-1, metavar="[INPUT]...")
@click.option("-o", "--output", type=click.Path(), help="Video, image or folder to write (default: INPUT_denoised).")
@click.option("--camera", type=int, help="Read camera N instead of INPUT.")
@click.option("--sample", is_flag=True, help="Denoise the short noisy sample clip bundled with edge-ae.")
@click.option("--show", is_flag=True, help="Show input and output side by side; q quits.")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames (per video in a batch).")
@click.option("--tile", type=click.IntRange(min=64), default=2048, show_default=True,
              help="Frames with a side larger than this are processed in overlapping tiles.")
@click.option("--reconnect/--no-reconnect", default=True, show_default=True,
              help="Reopen a camera or stream that stops sending frames, with back-off.")
@click.option("--give-up", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="Stop reconnecting after this long without frames (0: never give up).")
@click.option("--audio/--no-audio", default=True, show_default=True,
              help="Keep a video file's audio track (needs an ffmpeg binary: pip install 'edge-ae[video]').")
@_model_options
@_user_errors
def denoise(inputs: tuple[str, ...], output: str | None, camera: int | None, sample: bool, show: bool,
            max_frames: int | None, tile: int, reconnect: bool, give_up: float, audio: bool, model: str | None,
            device: str, threads: int | None) -> None:
    """Denoise a video, an image, a folder of images, many videos, a stream URL or a camera.

    Several videos, or a folder of videos (searched recursively), are a batch: outputs mirror
    the inputs inside the -o folder, and one failure does not stop the rest. Ctrl-C or SIGTERM
    finishes the frame in flight and keeps a playable video of what was done.

    \b
    Examples:
      edge-ae denoise in.mp4 -o out.mp4
      edge-ae denoise photos/ -o clean/
      edge-ae denoise videos/ a.mp4 b.mkv -o clean/
      edge-ae denoise --camera 0 --show
      edge-ae denoise rtsp://192.168.1.10/stream -o out.mp4 --give-up 300
    """
    from edge_runtime.batch import is_video_folder
    from edge_runtime.denoiser import Denoiser
    from edge_runtime.pipeline import run_pipeline
    from edge_runtime.sinks import WindowSink
    from edge_runtime.sources import open_source

    input = inputs[0] if len(inputs) == 1 else None
    given = sum(x is not None and x is not False for x in (inputs or None, camera, sample or None))
    if given != 1:
        raise click.UsageError("give exactly one of INPUT (or several videos), --camera N or --sample")
    if show and not _has_display():
        raise click.ClickException("--show needs a screen, and this machine has none (DISPLAY is not set)")
    if len(inputs) > 1 or (input is not None and is_video_folder(Path(input))):
        if show:
            raise click.UsageError("--show is for one input; a batch of videos runs without a window")
        _denoise_batch(inputs, output, max_frames, audio, Denoiser(model, device=device, threads=threads, tile=tile))
        return
    spec: str | int = camera if camera is not None else str(sample_clip() if sample else input)
    if output is None and camera is None and not show and not str(spec).lower().startswith(("rtsp:", "http:", "https:")):
        output = str(_default_output(Path(str(spec))) if not sample else Path("sample_denoised.mp4"))
    if output is None and not show:
        raise click.UsageError("a live source needs -o OUTPUT or --show")

    den = Denoiser(model, device=device, threads=threads, tile=tile)
    source = open_source(spec, reconnect=reconnect, give_up=give_up or None,
                         on_event=lambda message: click.echo(f"\n{message}" if sys.stderr.isatty() else message, err=True))
    try:
        bar = _progress(source, f"model {den.model.path.name} ({den.model.card.family}, {den.model.card.precision}) "
                                f"on {den.model.provider}; input {source.description}")
        report = run_pipeline(source, den.denoise, output, WindowSink() if show else None, max_frames, bar.update,
                              audio=audio)
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
        sys.exit(143 if report.signal == "SIGTERM" else 130)
    if report.lost:
        raise click.ClickException(f"{source.description}: the input was lost and did not come back "
                                   f"({'reconnecting is off' if not reconnect else f'gave up after {give_up:g} s'}); "
                                   f"the {report.frames} frames received were kept")


def _denoise_batch(inputs: tuple[str, ...], output: str | None, max_frames: int | None, audio: bool, den: Any) -> None:
    """Denoise many videos into one folder; report each, then a summary; exit 1 if any failed."""
    from edge_runtime.batch import plan_batch, run_batch, summarise

    if output is None:
        if len(inputs) > 1:
            raise click.UsageError("several inputs need -o FOLDER for the outputs")
        output = str(_default_output(Path(inputs[0])))
    items = plan_batch(inputs, output)
    click.echo(f"model {den.model.path.name} ({den.model.card.family}, {den.model.card.precision}) on "
               f"{den.model.provider}; {len(items)} videos -> {output}", err=True)
    bars: list[_progress] = []

    def start(i: int, item: Any, source: Any) -> Any:
        bars.append(_progress(source, f"[{i + 1}/{len(items)}] {item.source}"))
        return bars[-1].update

    def done(i: int, result: Any) -> None:
        if bars:
            bars[-1].done()
        tag = f"[{i + 1}/{len(items)}] {result.item.source}"
        if result.error is not None:
            click.echo(f"{tag}: FAILED: {result.error}", err=True)
            return
        r = result.report
        how = f"stopped by {r.signal} after" if r.interrupted else "done:"
        click.echo(f"{tag}: {how} {r.frames} frames ({r.fps:.1f} fps) -> {result.item.output}", err=True)
        for note in r.notes:
            click.echo(f"  {note}", err=True)

    results = run_batch(items, den.denoise, start, done, audio=audio, max_frames=max_frames)
    click.echo(summarise(results), err=True)
    if any(r.report is not None and r.report.interrupted for r in results):
        sys.exit(130)
    if any(r.error is not None for r in results):
        sys.exit(1)


class _progress:
    """A one-line progress display on stderr: a bar with ETA for files, a periodic line for live sources."""

    def __init__(self, source: Any, header: str | None = None) -> None:
        self.header = header  # printed with the first frame, once the outputs are known to be good
        self.total = None if source.live else source.length
        self.live = source.live
        self.last = 0.0
        self.tty = sys.stderr.isatty()
        self.printed = False

    def update(self, report: Any) -> None:
        if self.header is not None:
            click.echo(self.header, err=True)
            self.header = None
        now = report.seconds
        if now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        if self.total:
            share = min(report.frames / self.total, 1.0)
            eta = (self.total - report.frames) / report.fps if report.fps else 0.0
            bar = "#" * int(share * 30)
            line = f"[{bar:<30}] {report.frames}/{self.total} frames {report.fps:.1f} fps ETA {eta:.0f} s"
        else:
            line = f"{report.frames} frames {report.fps:.1f} fps model {report.model_ms:.1f} ms"
            if self.live:
                line += f" latency {report.latency_ms:.0f} ms skipped {report.dropped}"
        click.echo(("\r" + line) if self.tty else line, err=True, nl=not self.tty)
        self.printed = True

    def done(self) -> None:
        if self.tty and self.printed:
            click.echo("", err=True)


@cli.command()
@click.argument("model", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the whole card as JSON.")
@_user_errors
def info(model: str | None, as_json: bool) -> None:
    """Print a model's card (default: the bundled model)."""
    from edge_runtime.model import Model

    m = Model(model, device="cpu")
    card = m.card.to_dict()
    if as_json:
        click.echo(json.dumps(card, indent=2, sort_keys=True))
        return
    i = card["input"]
    lines = [
        f"file        {m.path}",
        f"card        version {card['version']}",
        f"task        {card['task']}",
        f"family      {card['family']}",
        f"precision   {card['precision']}",
        f"input       {i['layout']} {i['channels']} channel(s) {i['color_order']} {i['dtype']} "
        f"range {i['value_range'][0]:g}..{i['value_range'][1]:g}, sizes padded to a multiple of {i['spatial_multiple']}",
        f"outputs     {', '.join(f'{k} ({v})' for k, v in card['outputs'].items())}",
    ]
    if card.get("noise"):
        lines.append(f"noise       {json.dumps(card['noise'], sort_keys=True)}")
    if card.get("anomaly"):
        lines.append(f"anomaly     {json.dumps(card['anomaly'], sort_keys=True)}")
    for k, v in sorted(card.get("metrics", {}).items()):
        lines.append(f"metric      {k} = {v}")
    prov = card.get("provenance", {})
    for k in ("trained", "exported", "commit", "edge_ae_version"):
        if prov.get(k):
            lines.append(f"provenance  {k} = {prov[k]}")
    click.echo("\n".join(lines))
from edge_runtime import cli_autoencoder as _cli_autoencoder  # noqa: E402,F401
from edge_runtime import cli_bench as _cli_bench  # noqa: E402,F401
from edge_runtime import cli_detect as _cli_detect  # noqa: E402,F401
