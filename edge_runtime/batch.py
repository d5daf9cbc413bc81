"""Many videos in one run: a folder (searched recursively) or a list of files, mirrored into an output folder.

This plans the batch; ``edge_runtime.archive`` runs it (in this process, or in shards), ``edge_runtime.ray_runner``
on Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import OutputError, SourceError
from edge_runtime.files import VIDEO_SUFFIXES, is_image, is_video
from edge_runtime.outputs import VIDEO_OUT_SUFFIXES, check_not_input


@dataclass(frozen=True)
class BatchItem:
    """One input video and the output it maps to."""

    source: Path
    output: Path


def is_video_folder(path: Path) -> bool:
    """A folder with videos in it (at any depth) and no images directly inside; a folder of both is refused
    (``check_not_mixed``)."""
    if not path.is_dir():
        return False
    check_not_mixed(path)
    if any(p.is_file() and is_image(p) for p in path.iterdir()):
        return False
    return any(_videos_in(path))


def check_not_mixed(folder: Path) -> None:
    """Refuse a folder with images directly inside and videos (at any depth): a run reads one kind, and would
    silently leave the other out (and put the images through the video model)."""
    if not folder.is_dir():
        return
    images = sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))
    videos = _videos_in(folder) if images else []
    if videos:
        msg = (f"{folder}: holds both images ({len(images)}, e.g. {images[0].name}) and videos ({len(videos)}, e.g. "
               f"{videos[0].relative_to(folder)}); a run takes one kind: put them in separate folders and run each")
        raise SourceError(msg)


def _videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_video(p) and not p.name.startswith("."))


def _output_name(rel: Path) -> Path:
    # Containers OpenCV cannot write in (.webm, .ts, ...) become .mp4; the rest keep their suffix.
    return rel if rel.suffix.lower() in VIDEO_OUT_SUFFIXES and rel.suffix.lower() != ".mkv" else rel.with_suffix(".mp4")


def plan_batch(inputs: Sequence[str | Path], out_dir: str | Path) -> list[BatchItem]:
    """Map every input video (folders searched recursively) to a path under ``out_dir``.

    A folder's videos keep their path relative to it; single files keep their name. Files
    already inside ``out_dir`` are left out, so a rerun does not denoise its own outputs.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        msg = f"{out_dir}: exists and is not a folder; a batch run writes into a folder"
        raise OutputError(msg)
    if out_dir.suffix.lower() in VIDEO_OUT_SUFFIXES:
        msg = f"{out_dir}: a batch run writes into a folder; give a folder name, not a video file name"
        raise OutputError(msg)
    items: list[BatchItem] = []
    taken: dict[Path, Path] = {}
    out_resolved = out_dir.resolve()
    for given in map(Path, inputs):
        if not given.exists():
            msg = f"{given}: no such file or folder"
            raise SourceError(msg)
        if given.is_dir():
            check_not_mixed(given)
            found = [(p, p.relative_to(given)) for p in _videos_in(given) if out_resolved not in p.resolve().parents]
            if not found:
                msg = f"{given}: folder has no videos ({', '.join(VIDEO_SUFFIXES)})"
                raise SourceError(msg)
        elif is_video(given):
            found = [(given, Path(given.name))]
        else:
            msg = f"{given}: not a video ({', '.join(VIDEO_SUFFIXES)}) or a folder of videos"
            raise SourceError(msg)
        for src, rel in found:
            dst = out_dir / _output_name(rel)
            if dst in taken:
                msg = f"{src} and {taken[dst]} would both be written to {dst}; denoise them in separate runs"
                raise OutputError(msg)
            check_not_input(dst, [src], "{output}: the output is the input; choose another output folder")
            taken[dst] = src
            items.append(BatchItem(src, dst))
    return items
