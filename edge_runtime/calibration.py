"""Learn a model's anomaly threshold from normal footage, with the deployed ONNX model itself.

The model (fp32, fp16 or int8: whatever the file holds) scores every normal frame; the threshold is
the score that at most the allowed share of those frames exceed. The threshold and the statistics
of the normal scores go into the card, which is rewritten in place or into a new file, atomically
(``edge_runtime.card_file``). No torch and no onnx package needed: a device can learn its own scene.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.anomaly import AnomalyDetector
from edge_runtime.card import AnomalySpec, ModelCard
from edge_runtime.card_file import write_card
from edge_runtime.errors import CalibrationError, SourceError
from edge_runtime.files import is_image, is_video
from edge_runtime.model import Model
from edge_runtime.outputs import check_not_input
from edge_runtime.sources import Frame, Source, open_source

DEFAULT_FALSE_ALARM = 0.01
MIN_FRAMES = 10  # fewer normal frames say nothing about the spread of normal scores
MAP_SAMPLES = 4096  # error-map values kept per frame for the heat-map scale


@dataclass(frozen=True)
class Calibration:
    """What calibration found; ``card`` is the updated card that was written."""

    threshold: float
    scores: np.ndarray  # the (smoothed) normal scores, in the order read
    stats: dict[str, float]
    card: ModelCard
    written: Path | None


def threshold_for(scores: np.ndarray, max_false_alarm: float) -> float:
    """The smallest calibration score that at most ``max_false_alarm`` of ``scores`` exceed (strictly)."""
    s = np.sort(np.asarray(scores, np.float64))[::-1]
    if s.size == 0:
        msg = "no scores to calibrate on"
        raise CalibrationError(msg)
    k = math.floor(max_false_alarm * s.size + 1e-9)  # frames allowed above the threshold
    return float(s[min(k, s.size - 1)])


def false_alarm_share(max_false_alarm: float | None, quantile: float | None) -> float:
    """The allowed share of normal frames above the threshold from either option (not both)."""
    if max_false_alarm is not None and quantile is not None:
        msg = "give --quantile or --max-false-alarm, not both"
        raise CalibrationError(msg)
    allowed = DEFAULT_FALSE_ALARM if max_false_alarm is None else max_false_alarm
    r = 1.0 - quantile if quantile is not None else allowed
    if not 0.0 <= r < 1.0:
        what = f"quantile {quantile}" if quantile is not None else f"max false alarm rate {max_false_alarm}"
        msg = f"{what} is out of range; expected a quantile in (0, 1] or a rate in [0, 1)"
        raise CalibrationError(msg)
    return r


def streams(data: list[str | int]) -> Iterator[tuple[str, Iterator[Frame]]]:
    """(description, frames) of each normal stream: a video, an image folder, each video in a folder of videos,
    a stream URL or a camera index. A detector restarts (smoothing, sequence window) at each stream."""
    for spec in data:
        path = Path(str(spec)) if not isinstance(spec, int) else None
        if path is not None and path.is_dir() and not any(is_image(p) for p in path.iterdir() if p.is_file()):
            videos = sorted(p for p in path.rglob("*") if p.is_file() and is_video(p))
            if not videos:
                msg = f"{path}: folder has no images or videos to calibrate on"
                raise SourceError(msg)
            for v in videos:
                yield from _one(v)
        else:
            yield from _one(spec)


def _one(spec: str | int | Path) -> Iterator[tuple[str, Iterator[Frame]]]:
    source = open_source(spec, reconnect=False)
    try:
        yield source.description, _checked(source)
    finally:
        source.close()


def _checked(source: Source) -> Iterator[Frame]:
    """The frames of ``source``; normal data that turns out damaged (an unreadable image, a cut-off video) is
    refused once read, rather than calibrated on in part."""
    yield from source
    if source.problems:
        msg = "; ".join(source.problems) + "; calibration needs normal data that reads completely"
        raise SourceError(msg)


def score_normal(detector: AnomalyDetector, data: list[str | int], max_frames: int | None = None,
                 on_frame: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Smoothed scores of every normal frame, a sample of error-map values, the streams read, and how many
    frames were scored with a full smoothing window."""
    scores: list[float] = []
    maps: list[np.ndarray] = []
    names: list[str] = []
    rng = np.random.default_rng(0)
    full = 0
    for name, frames in streams(data):
        names.append(name)
        detector.reset()
        for i, frame in enumerate(frames):
            r = detector.score(frame.image)
            full += i + 1 >= detector.smoothing
            scores.append(r.score)
            flat = r.error_map.ravel()
            maps.append(flat if flat.size <= MAP_SAMPLES else rng.choice(flat, MAP_SAMPLES, replace=False))
            if on_frame is not None:
                on_frame(len(scores))
            if max_frames is not None and len(scores) >= max_frames:
                break
        if max_frames is not None and len(scores) >= max_frames:
            break
    if not scores:
        msg = f"no frames could be read from {', '.join(map(str, data))}"
        raise CalibrationError(msg)
    return np.asarray(scores, np.float64), np.concatenate(maps), names, full


def check_enough(frames: int, full_windows: int, smoothing: int, share: float) -> None:
    """Refuse normal data too short for what was asked: fewer than ``MIN_FRAMES`` frames, fewer frames than one
    false alarm in ``share`` needs, or a smoothing window that fills for fewer than half of the frames."""
    if frames < MIN_FRAMES:
        msg = f"{frames} normal frame(s) are too few to calibrate on; give at least {MIN_FRAMES}"
        raise CalibrationError(msg)
    if share > 0 and frames * share < 1 - 1e-9:
        need = math.ceil(1 / share - 1e-9)
        msg = (f"{frames} normal frame(s) are too few to calibrate for at most {100 * share:g} % false alarms: "
               f"that needs at least {need} frames; give more normal data or allow more false alarms "
               f"(--max-false-alarm {1 / frames:.3g} or more)")
        raise CalibrationError(msg)
    if smoothing > 1 and 2 * full_windows < frames:
        msg = (f"smoothing over {smoothing} frames needs longer normal data: only {full_windows} of its {frames} "
               f"frames are scored over a full window (at least half must be); use a smaller --smoothing "
               "or more normal data")
        raise CalibrationError(msg)


def calibrate(model: str | Path, data: list[str | int], max_false_alarm: float | None = None,
              quantile: float | None = None, out: str | Path | None = None, score: str | None = None,
              smoothing: int | None = None, max_frames: int | None = None, device: str = "auto",
              threads: int | None = None, write: bool = True,
              on_frame: Callable[[int], None] | None = None) -> Calibration:
    """Score normal ``data`` with ``model`` and write the threshold into its card (``out``, default: the model)."""
    r = false_alarm_share(max_false_alarm, quantile)
    model_path = Path(model)
    target = Path(out) if out is not None else model_path
    check_not_input(target, data, "{output}: the output is one of the normal data inputs; choose another output")
    m = Model(model_path, device=device, threads=threads)
    det = AnomalyDetector(m, score=score, smoothing=smoothing)
    det.threshold = None
    scores, map_values, names, full_windows = score_normal(det, data, max_frames, on_frame)
    check_enough(scores.size, full_windows, det.smoothing, r)
    thr = threshold_for(scores, r)
    flagged = float(np.mean(scores > thr))
    q = np.percentile(scores, [50, 90, 95, 99])
    stats = {
        "frames": float(scores.size), "mean": float(scores.mean()), "std": float(scores.std()),
        "min": float(scores.min()), "max": float(scores.max()),
        "p50": float(q[0]), "p90": float(q[1]), "p95": float(q[2]), "p99": float(q[3]),
        "max_false_alarm": r, "false_alarm_on_calibration": flagged,
        "map_p99": float(np.percentile(map_values, 99)),
    }
    card = m.card
    provenance = {**card.provenance, "calibration": {
        "data": names, "frames": int(scores.size), "precision": card.precision,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}}
    card = dataclasses.replace(
        card, task="anomaly" if card.task == "reconstruct" else card.task,
        anomaly=AnomalySpec(score=det.score_name, threshold=thr, stats=stats, smoothing=det.smoothing),
        provenance=provenance)
    written = write_card(model_path, card, target) if write else None
    return Calibration(thr, scores, stats, card, written)
