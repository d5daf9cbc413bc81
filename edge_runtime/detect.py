"""Flag anomalous frames of a stream: score every frame and write the score log, the events, an annotated
video, event snapshots and a score timeline.

Runs on the pipeline of ``edge_runtime.pipeline`` (decoding, scoring and writing on their own threads;
Ctrl-C and SIGTERM end the run with every output finalised); ``DetectSink`` is what it writes through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_runtime.anomaly import AnomalyDetector, AnomalyResult
from edge_runtime.anomaly_draw import BAR, annotate, timeline
from edge_runtime.errors import NotCalibratedError, OutputError
from edge_runtime.events import HOLD, RELEASE, Event, EventLog, EventTracker, ScoreLog, release_level
from edge_runtime.pipeline import RunReport, run_pipeline
from edge_runtime.sinks import VideoSink, write_image_atomic
from edge_runtime.sources import Frame, Source

__all__ = ["HOLD", "IMAGE_FPS", "RELEASE", "DetectReport", "DetectSink", "detect_stream"]

IMAGE_FPS = 5.0  # frame rate of the annotated video of an image folder


@dataclass
class DetectReport(RunReport):
    """A run report with what detection found: flagged frames, closed events, every frame's score."""

    flagged: int = 0
    events: list[Event] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


class DetectSink:
    """Writes the outputs of a detect run as the scores come: the score log (one row per frame), the event
    log (one line per closed event), the annotated video, a snapshot of each event's peak frame, and, at
    the end, the timeline plot. Fills ``report.flagged``, ``events`` and ``scores`` as it goes."""

    def __init__(self, detector: AnomalyDetector, source: Source, report: DetectReport,
                 scores_path: Path | None = None, events_path: Path | None = None, video_path: Path | None = None,
                 snapshots: Path | None = None, plot_path: Path | None = None, low: float | None = None,
                 hold: int = HOLD, overwrite: bool = True) -> None:
        if detector.threshold is None:
            msg = f"{detector.model.path}: this model has no anomaly threshold; calibrate it first (edge-ae calibrate)"
            raise NotCalibratedError(msg)
        self.threshold = thr = detector.threshold
        self.low = release_level(thr, detector.stats, RELEASE) if low is None else low
        self.tracker = EventTracker(thr, self.low, hold)
        scale = detector.stats.get("map_p99")
        self.scale = 2.0 * scale if scale else None
        self.report, self.source = report, source
        self.paths = (scores_path, events_path, video_path, snapshots, plot_path)
        self.video_path, self.snapshots, self.plot_path = video_path, snapshots, plot_path
        self.title = f"{detector.model.path.name} on {source.description}"
        self.overwrite = overwrite
        self.notes: list[str] = []
        self.video: VideoSink | None = None
        self.peak: tuple[np.ndarray, np.ndarray] | None = None  # (frame, annotated) of the open event's peak
        if snapshots is not None:
            try:
                snapshots.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                msg = f"{snapshots}: cannot create the snapshot folder ({e.strerror})"
                raise OutputError(msg) from None
        self.scores = ScoreLog(scores_path) if scores_path is not None else None
        try:
            self.events = EventLog(events_path, {"score": detector.score_name, "threshold": thr, "low": self.low}) \
                if events_path is not None else None
        except BaseException:
            self._close_logs()
            raise

    def prepare(self, frame: Frame, result: AnomalyResult) -> None:
        """Open the annotated video at the size of the first annotated frame."""
        if self.video_path is not None and self.video is None:
            h, w = frame.image.shape[:2]
            fps = self.source.fps or (IMAGE_FPS if self.source.kind == "images" else 25.0)
            like = (self.source.path or self.source.description) if self.source.kind == "video" else None
            self.video = VideoSink(self.video_path, fps, (w, h + BAR), like=like, timestamps=self.source.live,
                                   overwrite=self.overwrite)

    def write(self, frame: Frame, r: AnomalyResult) -> None:
        report = self.report
        report.scores.append(r.score)
        report.flagged += bool(r.flag)
        if self.scores is not None:
            self.scores.write(frame.index, frame.time, r.score, r.raw, r.flag, frame.name or "")
        pic = None
        if self.video_path is not None or self.snapshots is not None:
            pic = annotate(frame.image, r.error_map, r.score, self.threshold, bool(r.flag), self.scale)
        closed = self.tracker.update(frame.index, frame.time, r.score)
        if self.tracker.peak_frame == frame.index and self.snapshots is not None and pic is not None:
            self.peak = (frame.image.copy(), pic)
        if closed is not None:
            self._close_event(closed)
        if self.video_path is not None and pic is not None:
            self.prepare(frame, r)
            assert self.video is not None
            if (pic.shape[1], pic.shape[0]) != self.video.size:
                pic = cv2.resize(pic, self.video.size, interpolation=cv2.INTER_AREA)
            self.video.write(pic, frame.captured)

    def _close_event(self, ev: Event) -> None:
        extra: dict[str, Any] = {}
        if self.snapshots is not None and self.peak is not None:
            name = f"event_{len(self.report.events) + 1:04d}_frame_{ev.peak_frame:06d}"
            write_image_atomic(self.snapshots / f"{name}.png", self.peak[0])
            write_image_atomic(self.snapshots / f"{name}_heat.png", self.peak[1])
            extra["snapshot"] = str(self.snapshots / f"{name}.png")
        self.report.events.append(ev)
        if self.events is not None:
            self.events.write(ev, **extra)

    def _close_logs(self) -> None:
        for log in (self.scores, getattr(self, "events", None)):
            if log is not None:
                log.close()

    def finish(self) -> list[str]:
        """Close the event still open, the logs and the video; draw the timeline. The outputs written."""
        try:
            last = self.tracker.finish()
            if last is not None:
                self._close_event(last)
        finally:
            self._close_logs()
        if self.video is not None:
            self.video.close()
        report = self.report
        if self.plot_path is not None and report.scores:
            plot = timeline(report.scores, self.threshold, self.low, report.events, title=self.title[-90:],
                            fps=self.source.fps)
            write_image_atomic(self.plot_path, plot)
        scores_path, events_path, video_path, snapshots, plot_path = self.paths
        written = (scores_path, events_path, video_path if self.video else None, snapshots, plot_path)
        return [str(p) for p in written if p is not None]

    def abort(self) -> None:
        self._close_logs()
        if self.video is not None:
            self.video.abort()


def detect_stream(detector: AnomalyDetector, source: Source, scores_path: Path | None = None,
                  events_path: Path | None = None, video_path: Path | None = None, snapshots: Path | None = None,
                  plot_path: Path | None = None, low: float | None = None, hold: int = HOLD,
                  max_frames: int | None = None,
                  on_frame: Callable[[DetectReport], None] | None = None, overwrite: bool = True) -> DetectReport:
    """Score every frame of ``source`` with a calibrated ``detector`` and write the outputs that are given.

    ``low``: the release level of events (default: from the calibration statistics, see
    ``events.release_level``); ``hold``: frames below it that close an event. ``on_frame`` gets the
    report after every frame. Ctrl-C or SIGTERM ends the run after the frame in flight
    (``report.signal`` says which) with every output finalised; see ``edge-ae detect --help``.
    ``overwrite=False``: the annotated video is not written over a file that appeared meanwhile.
    """
    report = DetectReport()
    sink = DetectSink(detector, source, report, scores_path, events_path, video_path, snapshots, plot_path, low, hold,
                      overwrite)
    detector.reset()
    progress = (lambda _: on_frame(report)) if on_frame is not None else None
    # the detector itself (callable, with reset()): the pipeline restarts its window when a live source reconnects
    run_pipeline(source, detector, sink, max_frames=max_frames, on_frame=progress, report=report)
    return report
