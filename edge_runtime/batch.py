"""Many videos in one run: a folder (searched recursively) or a list of files, mirrored into an output folder.

One video that fails is reported and the rest still run; Ctrl-C finishes the video in flight
(kept, playable) and skips the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import EdgeAEError, OutputError, SourceError
from edge_runtime.files import VIDEO_SUFFIXES, is_image, is_video
from edge_runtime.media import Encoding
from edge_runtime.outputs import VIDEO_OUT_SUFFIXES, check_not_input
from edge_runtime.pipeline import RunReport, run_pipeline
from edge_runtime.sources import Source, open_source


@dataclass(frozen=True)
class BatchItem:
    """One input video and the output it maps to."""

    source: Path
    output: Path


@dataclass
class BatchResult:
    """How one item went: a report, or the error that stopped it (or both: a damaged input whose readable
    frames were written), or skipped after a stop."""

    item: BatchItem
    report: RunReport | None = None
    error: str | None = None
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.report is not None and self.error is None and not self.skipped


def is_video_folder(path: Path) -> bool:
    """A folder with videos in it (at any depth) and no images directly inside."""
    if not path.is_dir():
        return False
    if any(p.is_file() and is_image(p) for p in path.iterdir()):
        return False
    return any(_videos_in(path))


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


def run_batch(
    items: Sequence[BatchItem],
    process: Callable[[np.ndarray], np.ndarray],
    on_start: Callable[[int, BatchItem, Source], Callable[[RunReport], None] | None] | None = None,
    on_done: Callable[[int, BatchResult], None] | None = None,
    audio: bool = True,
    max_frames: int | None = None,
    encoding: Encoding | None = None,
    overwrite: bool = True,
) -> list[BatchResult]:
    """Denoise each item in turn; a failure is recorded and the next item runs.

    ``on_start(i, item, source)`` may return a per-frame callback (a progress bar). ``overwrite=False``:
    an output that exists (or appears meanwhile) is a failure of that item, not replaced.
    """
    results: list[BatchResult] = []
    stopped = False
    for i, item in enumerate(items):
        if stopped:
            results.append(BatchResult(item, skipped=True))
            continue
        result = BatchResult(item)
        try:
            item.output.parent.mkdir(parents=True, exist_ok=True)
            source = open_source(item.source)
            try:
                on_frame = on_start(i, item, source) if on_start is not None else None
                result.report = run_pipeline(source, process, item.output, None, max_frames, on_frame, audio=audio,
                                             encoding=encoding, overwrite=overwrite)
            finally:
                source.close()
            stopped = result.report.interrupted
            if result.report.problems:  # e.g. a cut-off file: its frames are written, and it counts as failed
                result.error = "; ".join(result.report.problems)
        except EdgeAEError as e:
            result.error = str(e)
        except OSError as e:
            result.error = f"{item.output}: {e.strerror or e}"
        results.append(result)
        if on_done is not None:
            on_done(i, result)
    return results


def summarise(results: Sequence[BatchResult]) -> str:
    """One line: how many videos were done, failed and skipped, and the frames written."""
    done = sum(r.ok for r in results)
    failed = sum(r.error is not None for r in results)
    skipped = sum(r.skipped for r in results)
    frames = sum(r.report.frames for r in results if r.report is not None)
    parts = [f"{done} of {len(results)} videos denoised ({frames} frames)"]
    if failed:
        parts.append(f"{failed} failed")
    if skipped:
        parts.append(f"{skipped} skipped after the stop")
    return ", ".join(parts)
