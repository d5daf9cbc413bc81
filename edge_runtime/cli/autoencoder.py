"""`edge-ae encode`, `edge-ae reconstruct` and `edge-ae sample`: the autoencoder uses, without torch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge_runtime.cli.options import device_option, max_frames_option, overwrite_option, threads_option, user_errors

if TYPE_CHECKING:
    import numpy as np


def _read_all(spec: str, max_frames: int | None) -> tuple[list[np.ndarray], list[str], float | None]:
    """Every frame of a file source (video, image, folder): frames, names, fps."""
    from edge_runtime.errors import OutputError
    from edge_runtime.sources import open_source

    frames: list[np.ndarray] = []
    names: list[str] = []
    with open_source(spec) as source:
        if source.live:
            msg = f"{spec}: encode/reconstruct read files (video, image or folder), not live sources"
            raise OutputError(msg)
        for f in source:
            frames.append(f.image)
            names.append(f.name or f"{f.index:06d}.png")
            if max_frames and len(frames) >= max_frames:
                break
        fps = source.fps
    return frames, names, fps


def _check_output(output: Path, inputs: list[str], overwrite: bool, suffixes: tuple[str, ...], what: str) -> None:
    """A file output (``suffixes``; ``what`` it holds) that is no input and, unless ``overwrite``, is new."""
    from edge_runtime.outputs import check_file_output

    check_file_output(output, suffixes, what, inputs, overwrite)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("input")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="The .npy file of codes to write.")
@max_frames_option("Read at most this many frames.")
@overwrite_option
@device_option
@threads_option
@user_errors
def encode(model: str, input: str, output: str, max_frames: int | None, overwrite: bool, device: str,
           threads: int | None) -> None:
    """Encode a video, image or image folder to bottleneck vectors (dimensionality reduction).

    Writes an (N, Z) float32 array: one code per frame, or per window of frames for sequence
    (lstm) models; the mean for variational models.

    \b
    Example:
      edge-ae encode mnist_ae.onnx digits/ -o latents.npy
    """
    import numpy as np

    from edge_runtime.autoencoder import Autoencoder
    from edge_runtime.files import atomic_path

    out = Path(output)
    _check_output(out, [input, model], overwrite, (".npy",), "a NumPy array of codes")
    ae = Autoencoder(model, device=device, threads=threads)
    frames, _, _ = _read_all(input, max_frames)
    z = ae.encode(frames).astype(np.float32)
    with atomic_path(out, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
        np.save(f, z)
    per = f"one per window of {ae.sequence_length} frames" if ae.layout == "NTF" else "one per frame"
    click.echo(f"wrote {out}: {z.shape[0]} codes of size {z.shape[1]} ({per}; {len(frames)} input frames)", err=True)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("input")
@click.option("-o", "--output", type=click.Path(), required=True,
              help="A video file, an image (one input image, or a grid of many), or a folder of PNG images.")
@max_frames_option("Read at most this many frames.")
@click.option("--scale", type=click.IntRange(min=1, max=16), default=1, show_default=True,
              help="Enlarge the model-size frames this many times (nearest neighbour).")
@overwrite_option
@device_option
@threads_option
@user_errors
def reconstruct(model: str, input: str, output: str, max_frames: int | None, scale: int, overwrite: bool, device: str,
                threads: int | None) -> None:
    """Reconstruct a video, image or folder through an autoencoder (frames at the model's size).

    \b
    Examples:
      edge-ae reconstruct mnist_ae.onnx digit.png -o digit_rec.png
      edge-ae reconstruct ped2_lstm.onnx clip.mp4 -o clip_rec.mp4
    """
    import cv2

    from edge_runtime.autoencoder import Autoencoder, image_grid
    from edge_runtime.outputs import IMAGE_OUT_SUFFIXES, VIDEO_OUT_SUFFIXES, check_not_input
    from edge_runtime.sinks import ImageFolderSink, VideoSink, write_image_atomic

    out = Path(output)
    if out.suffix:
        _check_output(out, [input, model], overwrite, (*IMAGE_OUT_SUFFIXES, *VIDEO_OUT_SUFFIXES),
                      "an image or a video (no extension: a folder of images)")
    else:
        check_not_input(out, [input, model], "{output}: the output would overwrite the input {input}")
    ae = Autoencoder(model, device=device, threads=threads)
    frames, names, fps = _read_all(input, max_frames)
    rec = ae.reconstruct(frames)
    if scale > 1:
        rec = [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for f in rec]
    suffix = out.suffix.lower()
    if suffix in IMAGE_OUT_SUFFIXES:
        write_image_atomic(out, rec[0] if len(rec) == 1 else image_grid(rec), overwrite=overwrite)
    elif suffix:
        bgr = [cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f for f in rec]
        sink = VideoSink(out, fps or 25.0, (bgr[0].shape[1], bgr[0].shape[0]), overwrite=overwrite)
        try:
            for f in bgr:
                sink.write(f)
        except BaseException:
            sink.abort()
            raise
        sink.close()
    else:
        pngs = [Path(name).stem + ".png" for name in names]
        folder = ImageFolderSink(out, overwrite, pngs)
        for f, name in zip(rec, pngs, strict=True):
            folder.write(f, name)
        folder.close()
    errors = ae.errors(ae.frames_to_array(frames)) if ae.layout != "NTF" else None
    detail = f", mean reconstruction MSE {float(errors.mean()):.5f}" if errors is not None else ""
    click.echo(f"wrote {out}: {len(rec)} reconstructed frames{detail}", err=True)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="The image grid to write.")
@click.option("-n", "count", type=click.IntRange(min=1, max=4096), default=64, show_default=True,
              help="Samples from the prior.")
@click.option("--interpolate", nargs=2, type=click.Path(dir_okay=False, exists=True), metavar="A B",
              help="Instead of sampling: walk the latent line between images A and B.")
@click.option("--steps", type=click.IntRange(2, 4096), default=10, show_default=True, help="Frames of the walk.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed of the samples.")
@click.option("--columns", type=click.IntRange(1, 4096),
              help="Grid columns (default: square, or one row for a walk).")
@click.option("--scale", type=click.IntRange(min=1, max=16), default=2, show_default=True,
              help="Enlarge the grid this many times (nearest neighbour).")
@overwrite_option
@device_option
@threads_option
@user_errors
def sample(model: str, output: str, count: int, interpolate: tuple[str, str] | None, steps: int, seed: int,
           columns: int | None, scale: int, overwrite: bool, device: str, threads: int | None) -> None:
    """Decode samples from a variational model's prior, or a latent walk between two images, as a grid.

    \b
    Examples:
      edge-ae sample vae.onnx -n 64 -o grid.png
      edge-ae sample vae.onnx --interpolate a.png b.png --steps 10 -o walk.png
    """
    from edge_runtime.autoencoder import Autoencoder, image_grid
    from edge_runtime.outputs import IMAGE_OUT_SUFFIXES
    from edge_runtime.sinks import write_image_atomic
    from edge_runtime.sources import read_image

    out = Path(output)
    _check_output(out, [model, *(interpolate or ())], overwrite, IMAGE_OUT_SUFFIXES, "an image grid")
    ae = Autoencoder(model, device=device, threads=threads)
    if interpolate:
        a, b = (read_image(Path(p)) for p in interpolate)
        frames = ae.interpolate(a, b, steps)
        columns = columns or steps
    else:
        frames = ae.sample(count, seed=seed)
    write_image_atomic(out, image_grid(frames, columns, scale=scale), overwrite=overwrite)
    click.echo(f"wrote {out}: {len(frames)} frames", err=True)
