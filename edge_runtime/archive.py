"""Archives of videos: one item (a video or an image folder in, one output) as a JSON-able result, the manifest
of results (one JSON line per item, written as it finishes), a stable split into shards, and the one-process
runner. Every way of running a batch (one process, shards under a scheduler, Ray) goes through ``denoise_item``;
``edge-ae detect`` on an archive goes through ``detect_item`` (here or in shards).

An output is written under a hidden temporary name and renamed when complete, so an output that exists is a
finished one: ``--skip-existing`` after a killed run redoes only the items that had not finished, and the next run
on an output removes what a killed run left for it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_runtime.batch import BatchItem
from edge_runtime.errors import EdgeAEError, OutputError
from edge_runtime.events import HOLD
from edge_runtime.media import Encoding
from edge_runtime.pipeline import RunReport, run_pipeline
from edge_runtime.sources import Source

if TYPE_CHECKING:
    from edge_runtime.anomaly import AnomalyDetector
    from edge_runtime.detect import DetectReport
    from edge_runtime.files import Partial

# What became of an item: its output is complete (done), the run failed (failed: its readable frames may still be
# in the output), the output was there already (skipped), a signal stopped it (interrupted: what was done is kept,
# playable), or the run was cancelled while the item was in flight on a worker (cancelled: no output).
STATUSES = ("done", "failed", "skipped", "interrupted", "cancelled")


@dataclass
class ItemResult:
    """How one item went, as one manifest line."""

    source: str
    output: str
    status: str
    frames: int = 0
    fps: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    attempts: int = 1
    worker: str = ""  # host:pid that ran it
    finished: float = 0.0  # Unix time
    notes: list[str] = field(default_factory=list)
    signal: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what the command adds (detect: flagged, events)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemResult:
        return cls(**data)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pin_threads(threads: int | None) -> None:
    """Keep OpenCV's own thread pool to ``threads`` (onnxruntime, decoder and encoder get it per item)."""
    if threads:
        import cv2

        cv2.setNumThreads(threads)


def open_item(path: Path, threads: int | None = None) -> Source:
    """The source of one item: a video decoded with at most ``threads`` threads, or an image folder."""
    from edge_runtime.sources import VideoSource, open_source

    if threads and path.is_file():
        import cv2

        cap = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, threads])
        return VideoSource(path, cap)
    return open_source(path)


def denoise_item(item: BatchItem, process: Callable[[np.ndarray], np.ndarray], *, audio: bool = True,
                 max_frames: int | None = None, encoding: Encoding | None = None, overwrite: bool = True,
                 threads: int | None = None, handle_signals: bool = True,
                 on_start: Callable[[Source], Callable[[RunReport], None] | None] | None = None) -> ItemResult:
    """Denoise one video (or image folder) into its output; never raises for a bad input or output.

    ``threads`` caps the decoder's and encoder's threads (give the model's the same); ``on_start(source)`` may
    return a per-frame callback (a progress bar).
    """
    result = ItemResult(str(item.source), str(item.output), "failed", worker=worker_name())
    t0 = time.perf_counter()
    try:
        item.output.parent.mkdir(parents=True, exist_ok=True)
        source = open_item(item.source, threads)
        try:
            on_frame = on_start(source) if on_start is not None else None
            enc = replace(encoding or Encoding(), threads=threads) if threads else encoding
            report = run_pipeline(source, process, item.output, None, max_frames, on_frame, audio=audio,
                                  encoding=enc, overwrite=overwrite, handle_signals=handle_signals)
        finally:
            source.close()
        result.frames, result.fps, result.notes = report.frames, round(report.fps, 3), report.notes
        result.signal = report.signal
        if report.problems:  # e.g. a cut-off file: its frames are written, and it counts as failed
            result.error = "; ".join(report.problems)
        elif report.interrupted:
            result.status = "interrupted"
        else:
            result.status = "done"
    except EdgeAEError as e:
        result.error = str(e)
    except OSError as e:
        result.error = f"{item.output}: {e.strerror or e}"
    result.seconds = round(time.perf_counter() - t0, 3)
    result.finished = round(time.time(), 3)
    return result


def detect_outputs(output: Path) -> tuple[Path, Path]:
    """The score log and event log of a batch item whose planned output is ``output`` (``a/b.mp4``:
    ``a/b.scores.csv``, ``a/b.events.jsonl``)."""
    base = output.with_suffix("")
    return base.with_name(base.name + ".scores.csv"), base.with_name(base.name + ".events.jsonl")


def detect_item(item: BatchItem, detector: AnomalyDetector, *, low: float | None = None, hold: int = HOLD,
                max_frames: int | None = None, overwrite: bool = True, threads: int | None = None,
                on_start: Callable[[Source], Callable[[DetectReport], None] | None] | None = None) -> ItemResult:
    """Score one video with a calibrated ``detector`` into its score log and event log; never raises for a bad
    input or output.

    Both logs are written under temporary names and renamed only when the whole video was scored, so a failed
    or interrupted item leaves neither. ``result.extra`` holds the flagged frames and the events.
    """
    from edge_runtime.detect import detect_stream
    from edge_runtime.files import claim

    scores_path, events_path = detect_outputs(item.output)
    result = ItemResult(str(item.source), str(scores_path), "failed", worker=worker_name())
    t0 = time.perf_counter()
    parts: list[Partial] = []
    try:
        item.output.parent.mkdir(parents=True, exist_ok=True)
        for path in (scores_path, events_path):
            parts.append(claim(path, overwrite=overwrite))
        source = open_item(item.source, threads)
        try:
            on_frame = on_start(source) if on_start is not None else None
            report = detect_stream(detector, source, parts[0].tmp, parts[1].tmp, low=low, hold=hold,
                                   max_frames=max_frames, on_frame=on_frame)
        finally:
            source.close()
        result.frames, result.fps, result.notes = report.frames, round(report.fps, 3), report.notes
        result.signal = report.signal
        result.extra = {"events_path": str(events_path), "flagged": report.flagged, "events": len(report.events)}
        if report.problems:  # a cut-off or corrupt file: its scores are not kept
            result.error = "; ".join(report.problems)
        elif report.interrupted:
            result.status = "interrupted"
        else:
            while parts:  # the event log last: a score log without one is not a finished item
                parts.pop(0).commit(overwrite)
            result.status = "done"
    except EdgeAEError as e:
        result.error = str(e)
    except OSError as e:
        result.error = f"{item.output}: {e.strerror or e}"
    finally:
        for part in parts:
            part.discard()
    result.seconds = round(time.perf_counter() - t0, 3)
    result.finished = round(time.time(), 3)
    return result


def skipped(item: BatchItem) -> ItemResult:
    return ItemResult(str(item.source), str(item.output), "skipped", worker=worker_name())


class Manifest:
    """Results as JSON lines, appended one per item as it finishes and flushed to disk at once.

    Each line is one ``write`` on a file opened for appending, so several processes (shards) may share one
    manifest without mixing their lines. A rerun appends: an item's last line is its state.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as e:
            msg = f"{self.path}: cannot write the manifest ({e.strerror})"
            raise OutputError(msg) from None

    def write(self, result: ItemResult) -> None:
        try:
            os.write(self.fd, (result.to_json() + "\n").encode())
            os.fsync(self.fd)
        except OSError as e:
            msg = f"{self.path}: cannot write the manifest ({e.strerror})"
            raise OutputError(msg) from None

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_manifest(path: str | Path) -> list[ItemResult]:
    """Every line of a manifest (a line cut short by a kill is left out)."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(ItemResult.from_dict(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


def parse_shard(text: str) -> tuple[int, int]:
    """``'K/N'`` (1 <= K <= N) as (K, N)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        msg = f"shard {text!r}: expected K/N with 1 <= K <= N, e.g. 1/4 (Slurm: $((SLURM_ARRAY_TASK_ID+1))/N)"
        raise ValueError(msg)
    return k, n


def shard(items: Sequence[BatchItem], k: int, n: int) -> list[BatchItem]:
    """Shard ``k`` of ``n``: every n-th item of the plan, starting at the k-th. The plan is sorted, so every
    process given the same inputs gets the same split; the shards are disjoint and together hold every item."""
    return [item for i, item in enumerate(items) if i % n == k - 1]


def run_items(items: Sequence[BatchItem], new_process: Callable[[], Any],
              on_start: Callable[[int, BatchItem, Source], Callable[[Any], None] | None] | None = None,
              on_done: Callable[[int, ItemResult], None] | None = None, manifest: Manifest | None = None,
              run_item: Callable[..., ItemResult] = denoise_item, **options: Any) -> list[ItemResult]:
    """Run the items one after another in this process; a failure is recorded and the next item runs; a
    signal ends the item in flight (denoise: kept, playable) and the rest are not started.

    ``new_process()`` gives what ``run_item`` runs one video with: ``denoise_item``'s frame function (called
    per video, so a model with state across frames starts each video afresh) or ``detect_item``'s detector.
    ``options``: of ``run_item``.
    """
    results: list[ItemResult] = []
    for i, item in enumerate(items):
        start = (lambda source, i=i, item=item: on_start(i, item, source)) if on_start is not None else None
        result = run_item(item, new_process(), on_start=start, **options)
        results.append(result)
        if manifest is not None:
            manifest.write(result)
        if on_done is not None:
            on_done(i, result)
        if result.signal is not None:
            break
    return results


def summarise_items(results: Sequence[ItemResult], total: int, done: str = "denoised") -> str:
    """One line: how many of ``total`` items were done, failed, skipped and not run, and the frames written."""
    count = {s: sum(r.status == s for r in results) for s in STATUSES}
    frames = sum(r.frames for r in results)
    parts = [f"{count['done']} of {total} videos {done} ({frames} frames)"]
    if count["failed"]:
        parts.append(f"{count['failed']} failed")
    if count["skipped"]:
        parts.append(f"{count['skipped']} already done (skipped)")
    stopped = count["interrupted"] + count["cancelled"] + total - len(results)
    if stopped:
        parts.append(f"{stopped} stopped or not started")
    return ", ".join(parts)
