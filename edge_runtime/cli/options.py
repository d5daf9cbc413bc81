"""What the commands share: option decorators (each option declared once), the wrapper that turns
edge-ae errors into one line, and the progress display."""

from __future__ import annotations

import functools
import math
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import click

from edge_runtime.errors import EdgeAEError

if TYPE_CHECKING:  # the commands import these when they run; --help stays quick
    from edge_runtime.batch import BatchItem
    from edge_runtime.pipeline import RunReport
    from edge_runtime.sources import Source

F = TypeVar("F", bound=Callable[..., Any])
ReportT = TypeVar("ReportT", bound="RunReport")


def user_errors(fn: F) -> F:
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

    return cast(F, wrapper)


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses nan and infinity (which pass every comparison click makes)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def signal_exit_code(name: str | None) -> int:
    """The shell's exit code for a run ended by signal ``name`` (128 + its number: SIGINT 130, SIGTERM 143)."""
    return 128 + int(getattr(signal, name or "SIGINT", signal.SIGINT))


def fail_on_problems(problems: list[str]) -> None:
    """End a run that read its input to the end but found it damaged (images skipped, a video that ended early):
    one line, exit code 1, after the outputs of what could be read were written."""
    if problems:
        raise click.ClickException("; ".join(problems))


def model_option(help: str = "ONNX model file (default: the bundled denoiser).") -> Callable[[F], F]:
    """``-m/--model FILE``."""
    return click.option("-m", "--model", type=click.Path(dir_okay=False), help=help)


def device_option(fn: F) -> F:
    """``--device auto|cpu|cuda``."""
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                        help="Where to run: auto uses CUDA when onnxruntime offers it.")(fn)


def check_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """``--threads``: at most the cores this process may use (more only queue, and thousands exhaust memory)."""
    if value is None:
        return None
    from edge_runtime.model import default_threads  # only when given: --help stays quick

    cores = default_threads()
    if value > cores:
        msg = f"{value} is more than the {cores} cores this process may use; give 1 to {cores}."
        raise click.BadParameter(msg, ctx, param)
    return value


def threads_option(fn: F) -> F:
    """``--threads N`` for onnxruntime."""
    return click.option("--threads", type=click.IntRange(min=1), callback=check_threads,
                        help="CPU threads for onnxruntime, at most the cores this process may use "
                             "(default: all of them).")(fn)


def runtime_options(fn: F) -> F:
    """``-m/--model``, ``--device`` and ``--threads``, in that order."""
    return model_option()(device_option(threads_option(fn)))


MAX_CAMERA = 99  # edge_runtime.sources.MAX_CAMERA, repeated so --help does not load OpenCV


def camera_option(help: str = "Read camera N instead of INPUT.") -> Callable[[F], F]:
    """``--camera N`` (0 to 99)."""
    return click.option("--camera", type=click.IntRange(0, MAX_CAMERA), metavar="N", help=help)


def max_frames_option(help: str) -> Callable[[F], F]:
    """``--max-frames N``."""
    return click.option("--max-frames", type=click.IntRange(min=1), help=help)


def reconnect_option(fn: F) -> F:
    """``--reconnect/--no-reconnect`` for cameras and streams."""
    return click.option("--reconnect/--no-reconnect", default=True, show_default=True,
                        help="Reopen a camera or stream that stops sending frames, with back-off.")(fn)


def overwrite_option(fn: F) -> F:
    """``-y/--overwrite``: replace existing outputs (refused without it, as ffmpeg does)."""
    return click.option("-y", "--overwrite", is_flag=True,
                        help="Replace outputs that already exist (without -y an existing output is refused).")(fn)


def encoding_options(fn: F) -> F:
    """``--codec`` and ``--crf`` for written videos."""
    from edge_runtime.media import CODECS, DEFAULT_CRF

    crfs = ", ".join(f"{k} {v}" for k, v in DEFAULT_CRF.items())
    fn = click.option("--crf", type=click.IntRange(0, 51), metavar="0-51",
                      help=f"Constant quality of written H.264/HEVC videos, lower is better [default: {crfs}].")(fn)
    return click.option("--codec", type=click.Choice(["auto", *CODECS]), default="auto", show_default=True,
                        help="Codec of written videos; auto: the input's (HEVC stays HEVC, lossless stays lossless "
                             "FFV1 in .mkv/.avi), else H.264.")(fn)


class Progress(Generic[ReportT]):
    """A one-line progress display on stderr: a bar with ETA for files, a periodic line for live sources.

    ``header`` is printed with the first frame, once the outputs are known to be good. ``line`` replaces
    the bar with a line of its own; ``every`` is the seconds between updates on a terminal and in a log.
    """

    def __init__(self, source: Source, header: str | None = None, line: Callable[[ReportT], str] | None = None,
                 every: tuple[float, float] = (0.2, 5.0)) -> None:
        self.header = header
        self.total = None if source.live else source.length
        self.live = source.live
        self.line = line
        self.last = 0.0
        self.tty = sys.stderr.isatty()
        self.every = every[0] if self.tty else every[1]
        self.printed = False

    def update(self, report: ReportT) -> None:
        if self.header is not None:
            click.echo(self.header, err=True)
            self.header = None
        now = report.seconds
        if now - self.last < self.every:
            return
        self.last = now
        if self.line is not None:
            line = self.line(report)
        elif self.total:
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


def archive_options(fn: F) -> F:
    """``--manifest FILE``, ``--shard K/N``, ``--ray [ADDRESS]`` and ``--workers N`` for a batch of videos."""
    fn = ray_options(fn)
    return batch_options(fn)


def ray_options(fn: F) -> F:
    """``--ray [ADDRESS]`` and ``--workers N`` (denoise's batches only)."""
    fn = click.option("--workers", type=click.IntRange(min=1), metavar="N",
                      help="With --ray: workers to start, each holding one model and using --threads cores "
                           "[default, and at most: the cluster's CPUs / --threads].")(fn)
    fn = click.option("--ray", "ray_address", is_flag=False, flag_value="local", metavar="[ADDRESS]",
                      help="Run the videos on Ray workers: --ray alone (after the inputs) joins the Ray running on "
                           "this machine or starts one; --ray=HOST:6379 joins a cluster. Needs the [ray] extra; the "
                           "videos and -o folder must be at the same paths on every node.")(fn)
    return fn


def batch_options(fn: F) -> F:
    """``--manifest FILE`` and ``--shard K/N`` for a batch of videos."""
    fn = click.option("--shard", metavar="K/N",
                      help="Do only shard K of N of the videos (a stable split of the sorted list: run N of these, "
                           "e.g. as a Slurm array, for the whole batch).")(fn)
    return click.option("--manifest", type=click.Path(dir_okay=False),
                        help="Append one JSON line per video as it finishes (source, output, status, frames, fps, "
                             "seconds, error) to this file.")(fn)


class BatchProgress(Generic[ReportT]):
    """One progress display per item of a batch run one after another: ``start`` is run_items' hook for each
    item; ``tag`` closes the item's display and gives the "[i/total] source" its report line starts with."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bars: list[Progress[ReportT]] = []

    def start(self, i: int, item: BatchItem, source: Source) -> Callable[[ReportT], None]:
        self.bars.append(Progress(source, f"[{i + 1}/{self.total}] {item.source}"))
        return self.bars[-1].update

    def tag(self, i: int, source: str) -> str:
        if self.bars:
            self.bars[-1].done()
        return f"[{i + 1}/{self.total}] {source}"


class Strength(click.ParamType):
    """``auto`` (1: the model's own noise estimate) or a number from 0 to 4."""

    name = "auto|NUMBER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        if str(value).strip().lower() == "auto":
            return 1.0
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither 'auto' nor a number", param, ctx)
        if not 0.0 <= number <= MAX_STRENGTH:  # also refuses nan
            self.fail(f"{value!r} is outside 0 to {MAX_STRENGTH:g} (auto = 1)", param, ctx)
        return number


MAX_STRENGTH = 4.0
strength_option = click.option(
    "--strength", type=Strength(), default="auto", show_default=True,
    help="How hard to denoise: auto removes the noise the model estimates; a number scales that (1.5 harder, 0.5 "
         "softer, 0 leaves the frame). A model without a noise-level input blends its result with the input instead.")

ensemble_option = click.option(
    "--ensemble", type=click.Choice(["auto", "1", "2", "4", "8"]), default="auto", show_default=True,
    help="Images: average the model's results for this many views of each image (mirrored, flipped, transposed): "
         "slower by that factor, a little better (Set12, sigma 25: +0.22 dB at 8). auto: 8 for images and folders of "
         "images, 1 for videos, streams and cameras (only 1 is possible there).")

follow_camera_option = click.option(
    "--follow-camera/--no-follow-camera", default=True, show_default=True,
    help="Videos, streams and cameras through the bundled video model: while the camera moves (pans, shakes), the "
         "frames go to the single-frame model, which does better there.")

temporal_option = click.option(
    "--temporal/--no-temporal", default=True, show_default=True,
    help="Videos, streams and cameras: blend the previous output in where nothing moved (a motion-adaptive "
         "recursive filter after the model; less flicker and noise on still parts of the picture). Images never.")
