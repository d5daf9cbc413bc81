"""`edge-ae train`: loaded lazily by the runtime CLI, so a runtime-only install never imports torch."""

from __future__ import annotations

from pathlib import Path

import click

from train.checkpoint import CheckpointError
from train.config import PRESETS, ConfigError, build_config
from train.data import DataError
from train.registry import UnknownFamilyError, list_families


@click.command("train")
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="model.pt", show_default=True,
              help="Checkpoint to write (written atomically, refreshed at every validation).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)),
              help="Starting configuration; the options below override it "
                   "(default: 'ae' for the autoencoder families, else 'default').")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="JSON file of config overrides.")
@click.option("--family", help=f"Autoencoder family ({', '.join(list_families())}).")
@click.option("--task", type=click.Choice(["denoise", "reconstruct", "anomaly"]),
              help="What the model is for; anomaly: train on normal footage (default family convolutional), "
                   "then export and run 'edge-ae calibrate'.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs to run.")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), help="Optimizer steps per epoch.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), help="Stop after this much wall time.")
@click.option("--batch", type=click.IntRange(min=1), help="Patches per step.")
@click.option("--patch", type=click.IntRange(min=8), help="Patch size in pixels.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Peak learning rate (cosine decay).")
@click.option("--channels", type=click.Choice(["1", "3"]), help="3 = colour (RGB), 1 = grey.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--threads", type=click.IntRange(min=1), help="Torch CPU threads.")
@click.option("--seq-len", type=click.IntRange(min=2), help="Frames per sequence cut from videos (lstm).")
@click.option("--bottleneck", type=click.IntRange(min=1), help="Code size (hidden units for sparse).")
@click.option("--height", type=click.IntRange(min=1), help="Frame height the autoencoder families resize to.")
@click.option("--width", type=click.IntRange(min=1), help="Frame width the autoencoder families resize to.")
def train_command(data: tuple[str, ...], output: str, preset: str | None, config_file: str | None, **overrides: object) -> None:
    """Train an autoencoder on image folders, image files, videos or digit tables (.csv.gz) and write a checkpoint.

    \b
    Families undercomplete, sparse, denoising, contractive, variational, convolutional and
    lstm train on fixed-size frames (--height/--width) with their own objective; lstm trains on
    sequences of --seq-len frames cut from videos. For conv_denoiser:

    Training is blind: every batch gets a random mix of Gaussian noise (sigma 0-50) and
    camera noise (shot + read, sometimes JPEG-compressed). A fixed share of the images is held
    out by name for validation and never trained on.
    """
    from train.loop import train_denoiser
    from train.loop_ae import AE_FAMILIES, train_autoencoder

    if overrides.get("task") == "anomaly":
        overrides["family"] = overrides.get("family") or "convolutional"
        if overrides["family"] not in AE_FAMILIES:
            raise click.ClickException(f"--task anomaly trains one of {', '.join(AE_FAMILIES)}; got {overrides['family']!r}")
    if preset is None:
        preset = "ae" if overrides.get("family") in AE_FAMILIES else "default"
    if overrides.get("channels") is not None:
        overrides["channels"] = int(overrides["channels"])  # type: ignore[arg-type]
    out = Path(output)
    if not out.parent.exists():
        raise click.ClickException(f"{out}: folder {out.parent} does not exist")
    try:
        cfg = build_config(preset, config_file, **overrides)
        if cfg.family in AE_FAMILIES:
            train_autoencoder(cfg, list(data), out, log=click.echo)
        else:
            train_denoiser(cfg, list(data), out, log=click.echo)
    except (ConfigError, DataError, UnknownFamilyError, CheckpointError) as e:
        raise click.ClickException(str(e)) from None
