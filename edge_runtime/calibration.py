"""Learn a model's anomaly threshold from normal footage, with the deployed ONNX model itself.

The model (fp32, fp16 or int8: whatever the file holds) scores every normal frame; the threshold is
the score that at most the allowed share of those frames exceed. The threshold and the statistics
of the normal scores go into the card, which is rewritten in place or into a new file, atomically
(``edge_runtime.card_file``). No torch and no onnx package needed: a device can learn its own scene.

Several normal clips (streams) are scored one by one, and leave-one-clip-out tells how the threshold holds
on footage it was not fitted on: each clip is scored against a threshold (and, for the ``scene`` score,
per-cell statistics) fitted on the other clips; the share of its frames flagged is that clip's estimate of
the false-alarm rate on new footage. For ``scene``, statistics fitted on the same frames they score are too
tight (in-sample thresholds undershoot) and thresholds from held-out scores of a few clips overshoot; the
threshold is a weighted geometric mean of the two, in-sample ** 0.4 * held-out ** 0.6 (``HELD_OUT_WEIGHT``). The
weight was chosen with the predictor's default smoothing (the mean of the last 4 scores) on Ped2 clips 09-12 (two
models trained on 01-10, each clip calibrated on the other three at 1 %, objects pasted into 11 and 12;
``python -m benchmarks.anomaly ped2-smoothing``, README; warm-up frames left out): the plain geometric mean (0.5,
the rule before smoothing) then flagged more of the held-out clips' frames than the unsmoothed rule (3.0 and 5.7 %
on average against 2.8 and 3.0 %), 0.6 fewer on the two models together (1.1 and 3.3 %) while catching more of every
pasted object's frames, and 0.7 fewer still (0.6 and 2.3 %) but lost a fast object over busy cells in a test
clip. Smoothed scores need the shift: averaging takes away the single-frame spikes that set an in-sample
threshold, but not a new clip's sustained departures from the fitted statistics, which are what false alarms on
new footage are. A predictor's warm-up frames (``AnomalyResult.warmup``) are left out of everything here.
A predictor with an appearance branch has two error maps; each gets its own per-cell statistics (stored
together in the card's ``anomaly.scene``) and the scene score is the larger of the two maps' scores
(``edge_runtime.anomaly``).

Camera tolerance (``NUISANCES``): every normal stream is also scored as a camera would show it after a change of its
own: exposure 5 % darker and brighter (an auto-exposure or gain step) and the image moved by a quarter of one of the
model's pixels, across and down (a mount settling, vibration). The threshold is at least the one these scores give
at the same allowed share, so such changes alone do not raise alarms. Why: normal footage of a still scene varies by
little more than sensor noise over a few seconds, and a threshold fitted to it sits just above it. The Intel empty
room (``benchmarks.anomaly intel-cli``, 51 frames, 5 s): its normal mse scores spread over 0.5 % and later empty
frames (lighting through the window and on the floor, exposure drifting 1-2 grey levels, a sheet of paper moved)
score 4 % (median) and up to 42 % (away from a person's arrival and departure) above them, so 98 % of them were
flagged; a person scores 7x or more. The tolerance puts that threshold 60 % above the largest normal score (the
quarter-pixel shift down decides; across 18 %, 5 % brighter 14 %; 82 % above in a second training): 7 % of the later
empty frames flagged, in the few frames after a person leaves, no event without a person. On Ped2 (ped2-cli) it
never binds: the thresholds stay as they were. It costs four more runs of the model per normal frame;
``tolerance=False`` (``--no-tolerance``) leaves it out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.anomaly import AnomalyDetector, combined_scene_scores, fit_scenes, scene_table, table_stats
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
STABLE_ALARMS = 10  # a quantile rests on this many normal frames above it before it is worth much
ASPECT_TOLERANCE = 0.1  # relative difference of width/height tolerated between the data and the model
EXPOSURE_STEP = 0.05  # camera tolerance: an exposure change of this share is not an anomaly
SHIFT_PIXELS = 0.25  # camera tolerance: nor a move of the image by this share of one of the model's pixels
HELD_OUT_WEIGHT = 0.6  # scene score, several clips: in-sample ** (1 - w) * leave-one-clip-out ** w (module doc)


@dataclass(frozen=True)
class Nuisance:
    """A change a camera makes on its own (module doc): ``apply(frame, model size (h, w))`` -> the changed frame."""

    name: str
    apply: Callable[[np.ndarray, tuple[int, int]], np.ndarray]


def _exposure(gain: float) -> Callable[[np.ndarray, tuple[int, int]], np.ndarray]:
    def apply(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return cv2.convertScaleAbs(frame, alpha=gain)  # saturates at 255, as a sensor does

    return apply


def _shift(across: float, down: float) -> Callable[[np.ndarray, tuple[int, int]], np.ndarray]:
    def apply(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        h, w = frame.shape[:2]  # the shift is in the model's pixels: the frame is resized to ``size`` for it
        m = np.array([[1, 0, across * w / size[1]], [0, 1, down * h / size[0]]], np.float32)
        return cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    return apply


NUISANCES = (Nuisance(f"exposure -{100 * EXPOSURE_STEP:g} %", _exposure(1 - EXPOSURE_STEP)),
             Nuisance(f"exposure +{100 * EXPOSURE_STEP:g} %", _exposure(1 + EXPOSURE_STEP)),
             Nuisance(f"shift {SHIFT_PIXELS:g} px across", _shift(SHIFT_PIXELS, 0.0)),
             Nuisance(f"shift {SHIFT_PIXELS:g} px down", _shift(0.0, SHIFT_PIXELS)))


@dataclass(frozen=True)
class Calibration:
    """What calibration found; ``card`` is the updated card that was written."""

    threshold: float
    scores: np.ndarray  # the (smoothed) normal scores, in the order read
    stats: dict[str, float]
    card: ModelCard
    written: Path | None
    # leave-one-clip-out: per clip (description, frames, share of its frames above the threshold fitted without it)
    held_out: list[tuple[str, int, float]] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


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


@dataclass
class Clip:
    """What calibration keeps of one normal stream."""

    name: str
    raw: list[float]  # unsmoothed scores
    cells: list[np.ndarray]  # scene score: the cell means of each frame's error maps, (maps, rows, cols) each
    size: tuple[int, int]  # (height, width) of its first frame
    colour: bool  # its first frame has three channels that differ
    # per nuisance (``NUISANCES``, camera tolerance): the raw scores and scene cells of the changed frames
    nuisance_raw: list[list[float]] = dataclasses.field(default_factory=list)
    nuisance_cells: list[list[np.ndarray]] = dataclasses.field(default_factory=list)


def score_normal(detector: AnomalyDetector, data: list[str | int], max_frames: int | None = None,
                 on_frame: Callable[[int], None] | None = None,
                 nuisances: Sequence[tuple[Nuisance, AnomalyDetector]] = ()) -> tuple[list[Clip], np.ndarray]:
    """The raw scores (and scene cells) of every normal frame, stream by stream, and a sample of error-map values.

    ``nuisances``: each with a detector of its own (a stream of changed frames keeps its own state), whose scores
    of the changed frames go into each clip's ``nuisance_raw`` and ``nuisance_cells``."""
    clips: list[Clip] = []
    maps: list[np.ndarray] = []
    rng = np.random.default_rng(0)
    total = 0
    for name, frames in streams(data):
        detector.reset()
        for _, d in nuisances:
            d.reset()
        clip: Clip | None = None
        for frame in frames:
            im = frame.image
            if clip is None:
                colour = im.ndim == 3 and im.shape[2] >= 3 and bool(
                    np.any(im[:, :, 0] != im[:, :, 1]) or np.any(im[:, :, 1] != im[:, :, 2]))
                clip = Clip(name, [], [], (im.shape[0], im.shape[1]), colour,
                            [[] for _ in nuisances], [[] for _ in nuisances])
                clips.append(clip)
            r = detector.score(im)
            changed = [d.score(nuisance.apply(im, d.ae.size)) for nuisance, d in nuisances]
            if r.warmup:  # a predictor's first frames of a stream are never flagged: they set nothing here
                continue
            clip.raw.append(r.raw)
            if detector.base == "scene":
                clip.cells.append(np.stack(r.cells))
            for j, rn in enumerate(changed):
                clip.nuisance_raw[j].append(rn.raw)
                if detector.base == "scene":
                    clip.nuisance_cells[j].append(np.stack(rn.cells))
            flat = r.error_map.ravel()
            maps.append(flat if flat.size <= MAP_SAMPLES else rng.choice(flat, MAP_SAMPLES, replace=False))
            total += 1
            if on_frame is not None:
                on_frame(total)
            if max_frames is not None and total >= max_frames:
                break
        if max_frames is not None and total >= max_frames:
            break
    if not total:
        msg = f"no frames could be read from {', '.join(map(str, data))}"
        raise CalibrationError(msg)
    clips = [c for c in clips if c.raw]
    if not clips:
        msg = (f"{', '.join(map(str, data))}: {total} frame(s), each among the first {detector.past_frames} of its "
               "stream, which the predictor does not score (it has no past yet); give longer normal clips")
        raise CalibrationError(msg)
    return clips, np.concatenate(maps)


def held_out_scene_scores(cells: list[np.ndarray]) -> list[np.ndarray]:
    """Leave-one-clip-out: each clip's scene scores (unsmoothed) from its cell means (N, maps, rows, cols), against
    per-cell statistics fitted on the other clips."""
    return [combined_scene_scores(c, fit_scenes(np.concatenate([o for j, o in enumerate(cells) if j != i])))
            for i, c in enumerate(cells)]


def blend_thresholds(inside: float, held_out: float, weight: float = HELD_OUT_WEIGHT) -> float:
    """The scene threshold from its in-sample and leave-one-clip-out parts: inside ** (1 - weight) *
    held_out ** weight (module doc); the larger of the two when either is not positive."""
    if inside > 0 and held_out > 0:
        return inside ** (1 - weight) * held_out ** weight
    return max(inside, held_out)


def smooth(raw: np.ndarray, k: int) -> np.ndarray:
    """The detector's smoothing of one stream: the mean of the last ``k`` raw scores (fewer at its start)."""
    if k <= 1:
        return np.asarray(raw, np.float64)
    c = np.concatenate([[0.0], np.cumsum(np.asarray(raw, np.float64))])
    i = np.arange(1, len(raw) + 1)
    lo = np.maximum(i - k, 0)
    return (c[i] - c[lo]) / (i - lo)


def data_warnings(clips: list[Clip], det: AnomalyDetector, share: float, frames: int) -> list[str]:
    """One line per way the normal data falls short of what was asked or does not match the model."""
    out: list[str] = []
    if share > 0 and frames * share < STABLE_ALARMS:
        need = math.ceil(STABLE_ALARMS / share)
        out.append(f"normal data is short for {100 * share:g} % false alarms: {frames} frames put only "
                   f"{frames * share:.1f} above the threshold; give {need} frames or more for a stable threshold")
    if len(clips) == 1:
        out.append("one normal clip: no leave-one-clip-out estimate of false alarms on new footage; "
                   "give several clips of the scene")
    h, w = det.ae.size
    card = det.model.card
    for c in clips:
        ch, cw = c.size
        if abs((cw / ch) / (w / h) - 1) > ASPECT_TOLERANCE:
            out.append(f"{c.name}: frames are {cw}x{ch} (aspect {cw / ch:.2f}), the model's input is {w}x{h} "
                       f"(aspect {w / h:.2f}): frames are stretched")
        elif ch < h or cw < w:
            out.append(f"{c.name}: frames are {cw}x{ch}, smaller than the model's input {w}x{h}: they are enlarged")
        if card.input.channels == 3 and not c.colour:
            out.append(f"{c.name}: grey frames, but the model was trained on colour")
    return out


def check_enough(frames: int, full_windows: int, smoothing: int, share: float, source: str = "normal data") -> None:
    """Refuse normal data (``source``, named in the message) too short for what was asked: fewer than ``MIN_FRAMES``
    frames, fewer frames than one false alarm in ``share`` needs, or a smoothing window that fills for fewer than
    half of the frames."""
    if frames < MIN_FRAMES:
        msg = f"{source}: {frames} normal frame(s) are too few to calibrate on; give at least {MIN_FRAMES}"
        raise CalibrationError(msg)
    if share > 0 and frames * share < 1 - 1e-9:
        need = math.ceil(1 / share - 1e-9)
        msg = (f"{source}: {frames} normal frame(s) are too few to calibrate for at most {100 * share:g} % false "
               f"alarms: that needs at least {need} frames; give more normal data or allow more false alarms "
               f"(--max-false-alarm {1 / frames:.3g} or more)")
        raise CalibrationError(msg)
    if smoothing > 1 and 2 * full_windows < frames:
        msg = (f"{source}: smoothing over {smoothing} frames needs longer normal data: only {full_windows} of its "
               f"{frames} frames are scored over a full window (at least half must be); use a smaller --smoothing "
               "or more normal data")
        raise CalibrationError(msg)


def calibrate(model: str | Path, data: list[str | int], max_false_alarm: float | None = None,
              quantile: float | None = None, out: str | Path | None = None, score: str | None = None,
              smoothing: int | None = None, max_frames: int | None = None, device: str = "auto",
              threads: int | None = None, write: bool = True,
              on_frame: Callable[[int], None] | None = None, tolerance: bool = True,
              overwrite: bool = True) -> Calibration:
    """Score normal ``data`` with ``model`` and write the threshold into its card (``out``, default: the model;
    unless ``overwrite``, an existing ``out`` other than the model is refused).

    ``tolerance``: the threshold also covers the normal frames under ``NUISANCES`` (camera tolerance, module doc);
    False: the normal frames as they are only."""
    r = false_alarm_share(max_false_alarm, quantile)
    model_path = Path(model)
    target = Path(out) if out is not None else model_path
    check_not_input(target, data, "{output}: the output is one of the normal data inputs; choose another output")
    m = Model(model_path, device=device, threads=threads)
    det = AnomalyDetector(m, score=score, smoothing=smoothing)
    det.threshold = None
    det.forget_scene()  # the statistics are learned here, from this data
    nuisances = []
    for n in NUISANCES if tolerance else ():
        d = AnomalyDetector(m, score=score, smoothing=smoothing)
        d.threshold = None
        d.forget_scene()
        nuisances.append((n, d))
    clips, map_values = score_normal(det, data, max_frames, on_frame, nuisances)
    k = det.smoothing
    full_windows = sum(max(len(c.raw) - k + 1, 0) for c in clips)
    frames = sum(len(c.raw) for c in clips)
    check_enough(frames, full_windows, k, r, ", ".join(f"camera {d}" if isinstance(d, int) else str(d) for d in data))
    warnings = data_warnings(clips, det, r, frames)
    scene: dict[str, object] | None = None
    held_out: list[tuple[str, int, float]] = []
    blended: tuple[float, float] | None = None  # scene, several clips: (in-sample threshold, held-out threshold)
    if det.base == "scene":
        cells = [np.stack(c.cells) for c in clips]  # (N, maps, rows, cols) each
        fitted = fit_scenes(np.concatenate(cells))
        scene = scene_table(fitted[0][0], fitted[0][1], appearance=fitted[1] if len(fitted) > 1 else None)
        fitted = table_stats(scene)  # as the card stores them (6 digits): the threshold is for the runtime's scores
        per_clip = [smooth(combined_scene_scores(c, fitted), k) for c in cells]
        thr = threshold_for(np.concatenate(per_clip), r)
        floors = [threshold_for(np.concatenate([smooth(combined_scene_scores(np.stack(c.nuisance_cells[j]), fitted), k)
                                                for c in clips]), r) for j in range(len(nuisances))]
        if len(clips) > 1:
            held = [smooth(h, k) for h in held_out_scene_scores(cells)]
            loo = threshold_for(np.concatenate(held), r)
            blended = (thr, loo)
            thr = blend_thresholds(thr, loo)
        normal_thr = thr
        thr = max([thr, *floors])
        if len(clips) > 1:
            held_out = [(c.name, len(h), float(np.mean(h > thr))) for c, h in zip(clips, held, strict=True)]
    else:
        per_clip = [smooth(np.asarray(c.raw), k) for c in clips]
        normal_thr = threshold_for(np.concatenate(per_clip), r)
        changed = [[smooth(np.asarray(c.nuisance_raw[j]), k) for c in clips] for j in range(len(nuisances))]
        floors = [threshold_for(np.concatenate(ch), r) for ch in changed]
        thr = max([normal_thr, *floors])
        if len(clips) > 1:
            for i, c in enumerate(clips):
                others = np.concatenate([p for j, p in enumerate(per_clip) if j != i])
                tolerated = [threshold_for(np.concatenate([q for j, q in enumerate(ch) if j != i]), r)
                             for ch in changed]
                loo = max([threshold_for(others, r), *tolerated])
                held_out.append((c.name, len(per_clip[i]), float(np.mean(per_clip[i] > loo))))
    scores = np.concatenate(per_clip)
    flagged = float(np.mean(scores > thr))
    q = np.percentile(scores, [50, 90, 95, 99])
    stats = {
        "frames": float(scores.size), "mean": float(scores.mean()), "std": float(scores.std()),
        "min": float(scores.min()), "max": float(scores.max()),
        "p50": float(q[0]), "p90": float(q[1]), "p95": float(q[2]), "p99": float(q[3]),
        "max_false_alarm": r, "false_alarm_on_calibration": flagged,
        "map_p99": float(np.percentile(map_values, 99)),
        "threshold_normal_frames": float(normal_thr),  # before the camera tolerance
    }
    if floors:
        stats["threshold_camera_tolerance"] = float(max(floors))  # the largest of the nuisances' thresholds
    if blended is not None:  # the scene threshold's two parts, before their weighted geometric mean (module doc)
        stats["threshold_in_sample"], stats["threshold_held_out"] = float(blended[0]), float(blended[1])
    if held_out:
        stats["false_alarm_held_out_mean"] = float(np.mean([h[2] for h in held_out]))
        stats["false_alarm_held_out_worst"] = float(max(h[2] for h in held_out))
    card = m.card
    names = [c.name for c in clips]
    provenance = {**card.provenance, "calibration": {
        "data": names, "frames": int(scores.size), "precision": card.precision,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}}
    card = dataclasses.replace(
        card, task="anomaly" if card.task == "reconstruct" else card.task,
        anomaly=AnomalySpec(score=det.score_name, threshold=thr, stats=stats, smoothing=det.smoothing, scene=scene),
        provenance=provenance)
    written = write_card(model_path, card, target, overwrite) if write else None
    return Calibration(thr, scores, stats, card, written, held_out, warnings)
