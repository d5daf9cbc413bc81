"""`edge-ae detect` (flag anomalous frames of a video, folder, stream or camera) and `edge-ae calibrate`."""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click
import numpy as np

from edge_runtime.cli import _user_errors, cli
from edge_runtime.errors import OutputError

HOLD = 5  # frames below the release level that close an event
RELEASE = 0.8  # release level: this share of the way from the normal median score to the threshold
IMAGE_FPS = 5.0  # frame rate of the annotated video of an image folder


@dataclass
class DetectReport:
    frames: int = 0
    flagged: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    events: list[Any] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    interrupted: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class _StopFlag:
    """SIGINT / SIGTERM end the run after the frame in flight, with every output finalised."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:  # second Ctrl-C: stop now (outputs are still finalised)
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        self.source.interrupt()

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _outputs_ok(paths: list[Path | None], inputs: list[str | None]) -> None:
    from edge_runtime.sinks import check_writable, same_file

    given = [p for p in paths if p is not None]
    for p in given:
        for i in inputs:
            if i is not None and Path(i).exists() and same_file(p, Path(i)):
                msg = f"{p}: this output is an input; choose another name so the input is kept"
                raise OutputError(msg)
        check_writable(p)
    resolved = [p.resolve() for p in given]
    if len(set(resolved)) != len(resolved):
        msg = f"two outputs have the same name ({', '.join(map(str, given))})"
        raise OutputError(msg)


def detect_stream(detector: Any, source: Any, scores_path: Path | None = None, events_path: Path | None = None,
                  video_path: Path | None = None, snapshots: Path | None = None, plot_path: Path | None = None,
                  low: float | None = None, hold: int = HOLD, max_frames: int | None = None,
                  on_frame: Any = None) -> DetectReport:
    """Score every frame of ``source`` and write the requested outputs; see ``edge-ae detect --help``."""
    import cv2

    from edge_runtime.anomaly_draw import annotate, timeline
    from edge_runtime.events import EventLog, EventTracker, ScoreLog, release_level
    from edge_runtime.sinks import VideoSink, write_image_atomic

    thr = detector.threshold
    low = release_level(thr, detector.stats, RELEASE) if low is None else low
    tracker = EventTracker(thr, low, hold)
    scale = detector.stats.get("map_p99")
    scale = 2.0 * scale if scale else None
    report = DetectReport()
    if snapshots is not None:
        try:
            snapshots.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            msg = f"{snapshots}: cannot create the snapshot folder ({e.strerror})"
            raise OutputError(msg) from None
    scores = ScoreLog(scores_path) if scores_path is not None else None
    events = EventLog(events_path, {"score": detector.score_name, "threshold": thr, "low": low}) \
        if events_path is not None else None
    video: VideoSink | None = None
    peak: tuple[np.ndarray, np.ndarray] | None = None  # (frame, annotated) of the open event's peak
    detector.reset()

    def close_event(ev: Any) -> None:
        extra: dict[str, Any] = {}
        if snapshots is not None and peak is not None:
            name = f"event_{len(report.events) + 1:04d}_frame_{ev.peak_frame:06d}"
            write_image_atomic(snapshots / f"{name}.png", peak[0])
            write_image_atomic(snapshots / f"{name}_heat.png", peak[1])
            extra["snapshot"] = str(snapshots / f"{name}.png")
        report.events.append(ev)
        if events is not None:
            events.write(ev, **extra)

    start = time.perf_counter()
    ok = False
    try:
        with _StopFlag(source) as stop:
            for frame in source:
                t0 = time.perf_counter()
                r = detector.score(frame.image)
                report.model_seconds += time.perf_counter() - t0
                t = frame.time
                report.scores.append(r.score)
                report.frames += 1
                report.flagged += bool(r.flag)
                if scores is not None:
                    scores.write(frame.index, t, r.score, r.raw, r.flag, frame.name or "")
                need_picture = video is not None or video_path is not None or snapshots is not None
                pic = annotate(frame.image, r.error_map, r.score, thr, bool(r.flag), scale) if need_picture else None
                closed = tracker.update(frame.index, t, r.score)
                if tracker.peak_frame == frame.index and snapshots is not None and pic is not None:
                    peak = (frame.image.copy(), pic)
                if closed is not None:
                    close_event(closed)
                if video_path is not None and pic is not None:
                    if video is None:
                        fps = source.fps or (IMAGE_FPS if source.kind == "images" else 25.0)
                        video = VideoSink(video_path, fps, (pic.shape[1], pic.shape[0]))
                    if (pic.shape[1], pic.shape[0]) != video.size:
                        pic = cv2.resize(pic, video.size, interpolation=cv2.INTER_AREA)
                    video.write(pic)
                report.seconds = time.perf_counter() - start
                if on_frame is not None:
                    on_frame(report)
                if stop.signal is not None or (max_frames is not None and report.frames >= max_frames):
                    break
            report.interrupted = stop.signal
        ok = True
    except KeyboardInterrupt:
        report.interrupted = "SIGINT"
        ok = True
    finally:
        if ok:
            last = tracker.finish()
            if last is not None:
                close_event(last)
        for log in (scores, events):
            if log is not None:
                log.close()
        if video is not None:
            if ok:
                video.close()
            else:
                video.abort()
    report.seconds = time.perf_counter() - start
    if plot_path is not None and report.frames:
        title = f"{detector.model.path.name} on {source.description}"
        write_image_atomic(plot_path, timeline(report.scores, thr, low, report.events, title=title[-90:]))
    report.outputs = [str(p) for p in (scores_path, events_path, video_path if video else None, snapshots, plot_path)
                      if p is not None]
    return report


@cli.command()
@click.argument("input", required=False)
@click.option("--camera", type=int, help="Read camera N instead of INPUT.")
@click.option("-m", "--model", type=click.Path(dir_okay=False), required=False,
              help="Anomaly model: trained with 'edge-ae train --task anomaly', calibrated with 'edge-ae calibrate'.")
@click.option("--scores", "scores_path", type=click.Path(dir_okay=False),
              help="CSV with one row per frame: frame, time, name, score, raw_score, flag.")
@click.option("--events", "events_path", type=click.Path(dir_okay=False),
              help="JSON lines, one per event: start/end frame and time, peak score and frame.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Annotated video: heat map and score bar.")
@click.option("--snapshots", type=click.Path(file_okay=False), help="Folder for the peak frame of each event.")
@click.option("--plot", type=click.Path(dir_okay=False), help="PNG of the score timeline.")
@click.option("--threshold", type=float, help="Use this threshold instead of the calibrated one.")
@click.option("--release", type=click.FloatRange(min=0, max=1), default=RELEASE, show_default=True,
              help="An event closes once the score stays below this share of the way from the median "
                   "normal score (from calibration) to the threshold ...")
@click.option("--hold", type=click.IntRange(min=1), default=HOLD, show_default=True,
              help="... for this many frames in a row.")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames.")
@click.option("--reconnect/--no-reconnect", default=True, show_default=True,
              help="Reopen a camera or stream that stops sending frames, with back-off.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for onnxruntime (default: all cores).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to run: auto uses CUDA when onnxruntime offers it.")
@_user_errors
def detect(input: str | None, camera: int | None, model: str | None, scores_path: str | None, events_path: str | None,
           output: str | None, snapshots: str | None, plot: str | None, threshold: float | None, release: float,
           hold: int, max_frames: int | None, reconnect: bool, threads: int | None, device: str) -> None:
    """Flag anomalous frames of a video, a folder of images, a stream URL or a camera.

    Each frame gets a score (causal: it never uses later frames); frames scoring above the
    model's calibrated threshold are flagged, and runs of them become events (an event closes
    once the score stays below the release level for --hold frames: --release of the way from
    the median normal score to the threshold).

    \b
    Examples:
      edge-ae detect hall.mp4 -m hall.onnx --scores scores.csv --events events.jsonl -o annotated.mp4
      edge-ae detect --camera 0 -m hall.onnx --events events.jsonl --snapshots events/
      edge-ae detect parts/ -m parts.onnx --scores scores.csv --plot timeline.png
    """
    from edge_runtime.anomaly import AnomalyDetector, NotCalibratedError
    from edge_runtime.events import release_level
    from edge_runtime.sources import open_source

    if (input is None) == (camera is None):
        raise click.UsageError("give exactly one of INPUT or --camera N")
    if not any((scores_path, events_path, output, snapshots, plot)):
        raise click.UsageError("nothing to write: give at least one of --scores, --events, -o, --snapshots, --plot")
    if model is None:
        raise click.UsageError("give --model: an anomaly model trained on normal footage ('edge-ae train --task "
                               "anomaly', 'edge-ae export') and calibrated ('edge-ae calibrate MODEL NORMAL_DATA')")
    paths = {k: Path(v) if v else None for k, v in
             dict(scores=scores_path, events=events_path, video=output, plot=plot).items()}
    if paths["video"] is not None and paths["video"].suffix.lower() not in (".mp4", ".m4v", ".mov", ".avi", ".mkv"):
        raise click.UsageError(f"{output}: -o writes a video (.mp4, .avi, .mkv, .mov)")
    if paths["plot"] is not None and paths["plot"].suffix.lower() != ".png":
        raise click.UsageError(f"{plot}: --plot writes a .png image")
    _outputs_ok(list(paths.values()), [input, model])
    det = AnomalyDetector(model, device=device, threads=threads)
    if threshold is not None:
        det.threshold = threshold
    if det.threshold is None:
        msg = (f"{model}: this model has no anomaly threshold yet; calibrate it on normal footage of the scene "
               f"first: edge-ae calibrate {model} NORMAL_DATA (or give --threshold)")
        raise NotCalibratedError(msg)
    source = open_source(camera if camera is not None else str(input), reconnect=reconnect,
                         on_event=lambda m: click.echo(m, err=True))
    click.echo(f"model {det.model.path.name} ({det.model.card.family}, {det.model.card.precision}, score "
               f"{det.score_name}, threshold {det.threshold:.4g}) on {det.model.provider}; input {source.description}",
               err=True)
    last = [0.0]

    def progress(rep: DetectReport) -> None:
        if rep.seconds - last[0] >= (0.5 if sys.stderr.isatty() else 10.0):
            last[0] = rep.seconds
            line = f"{rep.frames} frames {rep.fps:.1f} fps, {rep.flagged} flagged, {len(rep.events)} events closed"
            click.echo("\r" + line if sys.stderr.isatty() else line, err=True, nl=not sys.stderr.isatty())

    try:
        rep = detect_stream(det, source, paths["scores"], paths["events"], paths["video"],
                            Path(snapshots) if snapshots else None, paths["plot"],
                            release_level(det.threshold, det.stats, release), hold,
                            max_frames, progress)
    finally:
        source.close()
    if sys.stderr.isatty() and last[0]:
        click.echo("", err=True)
    state = f"stopped by {rep.interrupted} after" if rep.interrupted else "done:"
    click.echo(f"{state} {rep.frames} frames in {rep.seconds:.1f} s ({rep.fps:.1f} fps, model "
               f"{1000 * rep.model_seconds / max(rep.frames, 1):.1f} ms/frame); {rep.flagged} flagged, "
               f"{len(rep.events)} event(s); wrote {', '.join(rep.outputs)}", err=True)
    if rep.interrupted:
        sys.exit(143 if rep.interrupted == "SIGTERM" else 130)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("normal_data", nargs=-1)
@click.option("--camera", type=int, help="Calibrate on camera N (with --max-frames).")
@click.option("--quantile", type=click.FloatRange(min=0, max=1, min_open=True),
              help="Threshold = this quantile of the normal scores (e.g. 0.99).")
@click.option("--max-false-alarm", type=click.FloatRange(min=0, max=1, max_open=True),
              help="Threshold such that at most this share of normal frames is flagged [default 0.01].")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the calibrated model here (default: replace MODEL, atomically).")
@click.option("--score", help="Score to calibrate: mse, ssim, patch[:N], likelihood (variational), sequence (lstm) "
                              "[default: the card's, else by family].")
@click.option("--smoothing", type=click.IntRange(min=1), help="Average the scores of the last K frames (causal).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Use at most this many normal frames.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for onnxruntime (default: all cores).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to run: auto uses CUDA when onnxruntime offers it.")
@_user_errors
def calibrate(model: str, normal_data: tuple[str, ...], camera: int | None, quantile: float | None,
              max_false_alarm: float | None, output: str | None, score: str | None, smoothing: int | None,
              max_frames: int | None, threads: int | None, device: str) -> None:
    """Learn MODEL's anomaly threshold from NORMAL_DATA (videos, image folders, folders of videos, streams).

    Runs the ONNX model itself (whatever its precision) over the normal frames and writes the
    threshold and the statistics of the normal scores into its card. Needs no torch.

    \b
    Examples:
      edge-ae calibrate hall.onnx normal_day.mp4 --max-false-alarm 0.01
      edge-ae calibrate hall.onnx --camera 0 --max-frames 600 -o hall_cam0.onnx
    """
    from edge_runtime.calibration import calibrate as run_calibration

    data: list[str | int] = [*normal_data, *([camera] if camera is not None else [])]
    if not data:
        raise click.UsageError("give NORMAL_DATA (videos, image folders) or --camera N")
    if camera is not None and max_frames is None:
        raise click.UsageError("--camera needs --max-frames (how many frames to learn from)")
    cal = run_calibration(model, data, max_false_alarm, quantile, output, score, smoothing, max_frames, device, threads)
    s = cal.stats
    click.echo(f"wrote {cal.written}: score {cal.card.anomaly.score} (smoothing {cal.card.anomaly.smoothing}), "
               f"threshold {cal.threshold:.6g} from {int(s['frames'])} normal frames "
               f"(mean {s['mean']:.4g}, p99 {s['p99']:.4g}, max {s['max']:.4g}); "
               f"{100 * s['false_alarm_on_calibration']:.2f} % of them flagged "
               f"(allowed {100 * s['max_false_alarm']:.2f} %)", err=True)
