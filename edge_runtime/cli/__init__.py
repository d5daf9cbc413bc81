"""The `edge-ae` command: the group, the lazily loaded `train` and `export` (they need torch), and `info`.

Each other command lives in a module of its own beside this one and is added to the group here; the
command modules import ``options`` (what they share), never this module.
"""

from __future__ import annotations

import importlib
import json
import os

import click

from edge_runtime.cli.autoencoder import encode, reconstruct, sample
from edge_runtime.cli.bench import bench
from edge_runtime.cli.denoise import denoise
from edge_runtime.cli.detect import calibrate, detect
from edge_runtime.cli.options import user_errors

__all__ = ["cli", "main"]

# name -> (module, attribute, short help); imported only when the command is run or asked for help.
_LAZY = {
    "train": ("train.cli", "train_command",
              "Train an autoencoder and write a checkpoint (needs the [train] extra)."),
    "export": ("export.cli", "export_command",
               "Export a checkpoint to a self-describing ONNX file (needs the [train] extra)."),
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

            from edge_runtime.install import pip_install

            hint = pip_install("train")

            @click.command(name, help=short, context_settings={"ignore_unknown_options": True})
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def unavailable(args: tuple[str, ...]) -> None:
                raise click.ClickException(f"'edge-ae {name}' needs {missing}, which is not installed; "
                                           f"install it with: {hint}")

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


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from edge_runtime import __version__  # read from the installed metadata: only when asked

        click.echo(f"edge-ae, version {__version__}")
        ctx.exit()


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
def cli() -> None:
    """Denoise camera and video frames live, flag anomalous frames, and train your own autoencoders."""


def main() -> None:
    """The ``edge-ae`` console command."""
    # FFmpeg and OpenCV print their own diagnostics on stderr (e.g. "moov atom not found" for a broken
    # file); edge-ae reports such problems itself in one line, so keep theirs quiet unless the user asked
    # for them. Set here, in edge-ae's own process, before OpenCV is imported or opens its first video.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    # OpenCV's own cap on decoded image size (default 1 Gpixel), lowered to the runtime's for every format.
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 27))
    cli(prog_name="edge-ae")


@cli.command()
@click.argument("model", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the whole card as JSON.")
@click.option("--for", "for_input", metavar="INPUT",
              help="Show the bundled model that 'edge-ae denoise INPUT' uses without --model (a video, an image, "
                   "a folder, a URL or a camera index).")
@user_errors
def info(model: str | None, as_json: bool, for_input: str | None) -> None:
    """Print a model's card (default: the bundled single-frame model; with --for, the model an input gets).

    Without --model, 'edge-ae denoise' runs video files, cameras and streams through the bundled
    recurrent model (video.onnx) and images and folders of images through default.onnx; on CUDA, their
    fp16 variants with uint8 frames in and out (video.fp16.frame.onnx, default.fp16.frame.onnx).
    """
    from edge_runtime.model import BUNDLED_CUDA, Model, default_model_for

    if model is not None and for_input is not None:
        raise click.UsageError("give a MODEL or --for INPUT, not both")
    bundled: str | None = None
    if for_input is not None:
        model = bundled = default_model_for(for_input)
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
        f"range {i['value_range'][0]:g}..{i['value_range'][1]:g}, "
        f"sizes padded to a multiple of {i['spatial_multiple']}",
        f"outputs     {', '.join(f'{k} ({v})' for k, v in card['outputs'].items())}",
    ]
    if card.get("noise"):
        lines.append(f"noise       {json.dumps(card['noise'], sort_keys=True)}")
    if card.get("anomaly"):
        lines.append(f"anomaly     {json.dumps(card['anomaly'], sort_keys=True)}")
    if card.get("state"):
        st = card["state"]
        lines.append(f"state       recurrent: input {st['input']} -> output {st['output']}, {st['channels']} channels "
                     f"at 1/{st['scale']} of the frame size, empty: {st['empty']}")
    if for_input is not None:
        lines.insert(0, f"used for    {for_input} -> bundled model {m.path.name} (without --model)")
        also = "; the temporal filter runs on the GPU too" if model == "video" else ""
        cuda = BUNDLED_CUDA[bundled or "default"]
        lines.insert(1, f"on CUDA     {cuda} (the same network in fp16, uint8 frames in and out{also})")
        if model != "video":  # an image or a folder of images
            lines.insert(2, "views       8 per image, each undone, then averaged (--ensemble 1: one model run)")
        if model == "video":  # a video, camera or stream: one Denoiser stream, the temporal filter after the model
            from edge_runtime.temporal import RECURRENT

            lines.insert(2, "camera      while the camera moves (pans, shakes), frames go to the single-frame "
                            "default.onnx; the recurrent model starts afresh when it stops")
            lines.insert(3, f"temporal    filter after the model (max weight {RECURRENT[0]:g}, k {RECURRENT[1]:g}; "
                            "--no-temporal: the model alone)")
    for k, v in sorted(card.get("metrics", {}).items()):
        lines.append(f"metric      {k} = {v}")
    prov = card.get("provenance", {})
    for k in ("trained", "exported", "commit", "edge_ae_version"):
        if prov.get(k):
            lines.append(f"provenance  {k} = {prov[k]}")
    click.echo("\n".join(lines))


cli.add_command(denoise)
cli.add_command(detect)
cli.add_command(calibrate)
cli.add_command(encode)
cli.add_command(reconstruct)
cli.add_command(sample)
cli.add_command(bench)
