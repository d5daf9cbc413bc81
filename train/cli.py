"""`edge-ae train`: loaded lazily by the runtime CLI, so a runtime-only install never imports torch."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import click

from train.config import PRESETS, UNCAPPED_EPOCHS, build_config
from train.errors import ConfigError, TrainError
from train.registry import family_spec, list_families
from train.spec import FAMILY_OPTIONS, FamilySpec


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    # click's FloatRange lets nan through (it fails no comparison); a nan learning rate trains garbage.
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a finite number.", ctx, param)
    return value


def _threads(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    # More threads than cores only queue; thousands of them exhaust the machine.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if value is not None and value > cores:
        raise click.BadParameter(f"{value} is more than the {cores} cores this process may use; give 1 to {cores}.",
                                 ctx, param)
    return value


@click.command("train")
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="model.pt", show_default=True,
              help="Checkpoint to write, a .pt file (written atomically, refreshed at every validation); an existing "
                   "file is refused unless -y.")
@click.option("-y", "--overwrite", is_flag=True,
              help="Replace an existing -o file (--init-from FILE -o FILE -y: go on from its weights, replacing it).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)),
              help="Starting configuration; the options below override it "
                   "(default: 'ae' for the fixed-size families, else 'default').")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="JSON file of config overrides.")
@click.option("--family", help=f"Autoencoder family ({', '.join(list_families())}).")
@click.option("--task", type=click.Choice(["denoise", "reconstruct", "anomaly"]),
              help="What the model is for; anomaly: train on normal footage (default family: predictor for "
                   "videos with motion, convolutional for videos of a still scene and for images), then export "
                   "and run 'edge-ae calibrate'.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs to run.")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), help="Optimizer steps per epoch.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), callback=_finite,
              help="Train for this much wall time; without --epochs/--steps-per-epoch the preset's step count "
                   "no longer caps the run.")
@click.option("--batch", type=click.IntRange(min=1), help="Patches per step.")
@click.option("--patch", type=click.IntRange(min=8), help="Patch size in pixels.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), callback=_finite,
              help="Peak learning rate (cosine decay).")
@click.option("--channels", type=click.Choice(["1", "3"]), help="3 = colour (RGB), 1 = grey.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--threads", type=click.IntRange(min=1), callback=_threads,
              help="Torch CPU threads, at most the cores this process may use.")
@click.option("--device", help="Where to train: auto (the first CUDA GPU torch sees, else the CPU), cpu, cuda "
                                "or cuda:N. [default: auto]")
@click.option("--workers", type=click.IntRange(min=0),
              help="Processes that make training batches (image denoisers and video_denoiser); "
                   "default: none on the CPU, up to 8 beside a GPU.")
@click.option("--seq-len", type=click.IntRange(min=2), help="Frames per sequence cut from videos (NTF families: lstm).")
@click.option("--bottleneck", type=click.IntRange(min=1), help="Code size (hidden units for sparse).")
@click.option("--height", type=click.IntRange(min=1), help="Frame height the fixed-size families resize to.")
@click.option("--width", type=click.IntRange(min=1), help="Frame width the fixed-size families resize to.")
@click.option("--init-from", type=click.Path(exists=True, dir_okay=False),
              help="Image denoisers (conv_denoiser, video_denoiser): start from these weights: a conv_denoiser ONNX "
                   "file (e.g. the bundled default.onnx) or checkpoint, or a video_denoiser ONNX file (the bundled "
                   "video.onnx) or checkpoint to go on from; weights the source lacks start as built.")
def train_command(data: tuple[str, ...], output: str, overwrite: bool, preset: str | None, config_file: str | None,
                  init_from: str | None, **overrides: object) -> None:
    """Train an autoencoder on image folders, image files, videos or digit tables (.csv.gz) and write a checkpoint.

    \b
    Fixed-size families (every family but conv_denoiser) train on frames of one size
    (--height/--width) with their own objective; sequence families (lstm) train on
    sequences of --seq-len frames cut from videos. For image families (conv_denoiser):

    Training is blind: every batch gets a random mix of Gaussian noise (sigma 0-50) and
    camera noise (shot + read, sometimes JPEG-compressed). A fixed share of the images is held
    out by name for validation and never trained on.
    """
    from train.loop import train_denoiser
    from train.loop_ae import train_autoencoder
    from train.loop_video import train_video

    out = Path(output)
    check_output(out, overwrite)
    try:
        if overrides.get("task") == "anomaly":
            if not overrides.get("family"):
                overrides["family"], size = default_anomaly_family(data)
                for k, v in size.items():  # a still scene's frame size, unless --height / --width say otherwise
                    overrides[k] = overrides.get(k) or v
            if family_spec(str(overrides["family"])).score is None:
                scored = [f for f in list_families() if family_spec(f).score is not None]
                msg = f"--task anomaly trains one of {', '.join(scored)}; got {overrides['family']!r}"
                raise ConfigError(msg)
        if preset is None:
            fixed = overrides.get("family") is not None and family_spec(str(overrides["family"])).fixed_size
            recurrent = overrides.get("family") is not None and family_spec(str(overrides["family"])).state_channels
            preset = ("predictor" if overrides.get("family") == "predictor" else "ae" if fixed
                      else "video" if recurrent else "default")
        if overrides.get("channels") is not None:
            overrides["channels"] = int(str(overrides["channels"]))
        lift = (overrides.get("max_minutes") is not None and overrides.get("epochs") is None
                and overrides.get("steps_per_epoch") is None)
        if lift:
            # A time budget asked for is the budget: the preset's epochs would otherwise end the run first.
            overrides["epochs"] = UNCAPPED_EPOCHS
            click.echo(f"training for {overrides['max_minutes']:g} min (--max-minutes); no step count caps the run")
        cfg = build_config(preset, config_file, **overrides)
        spec = family_spec(cfg.family)
        check_options(spec, overrides)
        if spec.state_channels:
            train_video(cfg, list(data), out, log=click.echo, init_from=init_from)
            return
        if spec.fixed_size:
            if init_from is not None:
                raise ConfigError(f"--init-from applies to the image denoisers (conv_denoiser, video_denoiser), "
                                  f"not {spec.name!r}")
            train_autoencoder(cfg, list(data), out, log=click.echo)
            return
        train_denoiser(cfg, list(data), out, log=click.echo, init_from=init_from)
    except TrainError as e:
        raise click.ClickException(str(e)) from None


def check_output(out: Path, overwrite: bool) -> None:
    """The checkpoint ``out``: a .pt file in an existing folder, new unless ``overwrite`` (a run starts afresh, so an
    existing file, even a checkpoint, would be lost; going on from one's weights is --init-from)."""
    if out.suffix.lower() != ".pt":
        then = f", then 'edge-ae export {out.with_suffix('.pt')} -o {out}'" if out.suffix.lower() == ".onnx" else ""
        raise click.ClickException(f"{out}: edge-ae train writes a checkpoint; give a file name ending in .pt{then}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise click.ClickException(f"{out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise click.ClickException(f"{out}: folder {parent} is not writable")
    if not overwrite and (out.exists() or out.is_symlink()):
        raise click.ClickException(f"{out}: already exists; use -y (--overwrite) to replace it with this run's "
                                   "checkpoint, or choose another -o")


SCENE_HEIGHT = 54  # a still scene's convolutional model: frames at this height, the width from the video's aspect


def default_anomaly_family(data: tuple[str, ...],
                           log: Callable[[str], None] = click.echo) -> tuple[str, dict[str, int]]:
    """The family ``--task anomaly`` trains on ``data`` without --family, and the frame size it needs (empty: the
    family's default): for videos, or folders holding videos and no images (a scene camera), the causal
    ``predictor`` when the normal footage shows motion, or the ``convolutional`` autoencoder of each frame at
    the video's aspect (``SCENE_HEIGHT`` rows) when nothing moves in it (a still scene: copying the last frame
    predicts a person standing still perfectly, an autoencoder of the empty scene cannot draw them; Intel's
    empty room: AUROC 0.838 for the predictor, 0.9996 for this); else (still images: one-class sets)
    ``convolutional`` at its default size."""
    from train.data import IMAGE_SUFFIXES, STILL_SCENE, VIDEO_SUFFIXES, files_under, motion_share

    def videos(p: Path) -> list[Path] | None:
        if p.is_dir():
            files = files_under(p)
            suffixes = {f.suffix.lower() for f in files}
            if suffixes & set(VIDEO_SUFFIXES) and not suffixes & set(IMAGE_SUFFIXES):
                return [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
            return None
        return [p] if p.suffix.lower() in VIDEO_SUFFIXES else None

    found = [videos(Path(d)) for d in data]
    if not data or any(v is None for v in found):
        return "convolutional", {}
    share, (h, w) = motion_share([f for v in found for f in v or []])
    if share >= STILL_SCENE:
        log(f"--task anomaly: {100 * share:.2f} % of the pixels move per frame in the normal videos: family "
            "predictor (motion unlike the normal footage's is the anomaly)")
        return "predictor", {}
    size = {"height": SCENE_HEIGHT, "width": max(8, round(SCENE_HEIGHT * w / max(h, 1)))}
    log(f"--task anomaly: nothing moves in the normal videos ({100 * share:.3f} % of the pixels per frame): "
        f"family convolutional at {size['height']}x{size['width']} (a still scene: what appears in it is the "
        "anomaly); --family predictor to choose the motion model")
    return "convolutional", size


def check_options(spec: FamilySpec, given: dict[str, object]) -> None:
    """Refuse a family-specific option given on the command line that ``spec`` does not take."""
    for name in FAMILY_OPTIONS:
        if given.get(name) is not None and name not in spec.options:
            takers = [f for f in list_families() if name in family_spec(f).options]
            msg = (f"--{name.replace('_', '-')} does not apply to family {spec.name!r} "
                   f"(it applies to {', '.join(takers)})")
            raise ConfigError(msg)
