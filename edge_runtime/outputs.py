"""Judging output paths, in one place: default names, which outputs an input may be written to, whether a
path can be written, and that no output replaces an input or another output.

Every check runs before any work starts, so bad output paths fail at once, naming the path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edge_runtime.errors import OutputError
from edge_runtime.files import IMAGE_SUFFIXES, check_writable, same_file

if TYPE_CHECKING:
    from edge_runtime.sources import Source

VIDEO_OUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")  # containers OpenCV's own writers can always fill
IMAGE_OUT_SUFFIXES = IMAGE_SUFFIXES

IS_THE_INPUT = "{output}: the output is the input; choose another output so the input is kept"


def default_output(path: Path) -> Path:
    """Where ``edge-ae denoise INPUT`` writes without ``-o``: INPUT_denoised (a folder stays a folder, .mkv -> .mp4)."""
    if path.is_dir():
        return path.with_name(path.name + "_denoised")
    return path.with_name(f"{path.stem}_denoised{path.suffix if path.suffix.lower() != '.mkv' else '.mp4'}")


def check_not_input(output: Path, inputs: Iterable[str | Path | int | None], message: str = IS_THE_INPUT) -> None:
    """Refuse ``output`` when it is one of the existing ``inputs`` (camera indexes and None are skipped).

    ``message`` is formatted with ``output`` and ``input``.
    """
    for i in inputs:
        if i is None or isinstance(i, int):
            continue
        path = Path(i)
        if path.exists() and same_file(output, path):
            raise OutputError(message.format(output=output, input=path))


def check_outputs(outputs: Sequence[Path | None], inputs: Iterable[str | Path | int | None],
                  message: str = IS_THE_INPUT, overwrite: bool = True) -> None:
    """Each given output is no input and can be written (and, unless ``overwrite``, does not exist yet);
    no two outputs share a name."""
    given = [p for p in outputs if p is not None]
    inputs = list(inputs)
    for p in given:
        check_not_input(p, inputs, message)
        check_writable(p)
        if not overwrite and p.exists():
            msg = f"{p}: already exists; use -y (--overwrite) to replace it"
            raise OutputError(msg)
    resolved = [p.resolve() for p in given]
    if len(set(resolved)) != len(resolved):
        msg = f"two outputs have the same name ({', '.join(map(str, given))})"
        raise OutputError(msg)


def check_file_output(output: Path, suffixes: Sequence[str], what: str, inputs: Iterable[str | Path | int | None] = (),
                      overwrite: bool = True) -> None:
    """A file output of one kind: its name ends in one of ``suffixes`` (``what`` says what it holds, e.g.
    "an ONNX model"), then as ``check_outputs``: no input, writable, and, unless ``overwrite``, not there yet."""
    if output.suffix.lower() not in suffixes:
        ending = suffixes[0] if len(suffixes) == 1 else f"one of {', '.join(suffixes)}"
        msg = f"{output}: the output is {what}; give a file name ending in {ending}"
        raise OutputError(msg)
    check_outputs([output], inputs, "{output}: the output would overwrite the input {input}", overwrite)


def check_video_output(path: Path) -> None:
    """A video file edge-ae can write (by its suffix) in a writable folder."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_OUT_SUFFIXES:
        msg = f"{path}: cannot write '{suffix}' videos; use one of {', '.join(VIDEO_OUT_SUFFIXES)}"
        raise OutputError(msg)
    check_writable(path)


def frame_output(source: Source, output: Path) -> Literal["folder", "image", "video"]:
    """What a frame-by-frame run of ``source`` writes to ``output``: a folder for a folder of images, an
    image for an image, else a video; fails, naming ``output``, when the path does not fit."""
    if source.path is not None:
        check_not_input(output, [source.path])
    if source.kind == "images" and source.path is not None and source.path.is_dir():
        if output.suffix:
            msg = f"{output}: the input is a folder, so the output must be a folder (no file extension)"
            raise OutputError(msg)
        return "folder"
    if source.kind == "images":
        if output.suffix.lower() not in IMAGE_OUT_SUFFIXES:
            msg = f"{output}: the input is an image, so the output must be an image ({', '.join(IMAGE_OUT_SUFFIXES)})"
            raise OutputError(msg)
        check_writable(output)
        return "image"
    if output.suffix.lower() not in VIDEO_OUT_SUFFIXES:
        msg = f"{output}: the input is a video, so the output must be a video ({', '.join(VIDEO_OUT_SUFFIXES)})"
        raise OutputError(msg)
    check_writable(output)
    return "video"
