"""Anomaly scores of frames under an autoencoder trained on normal footage, and the flag they raise.

Scores (the card's ``anomaly.score``; without one, the default follows the model's outputs and layout):

- ``mse``: mean squared reconstruction error of the frame;
- ``ssim``: 1 - mean structural similarity between the frame and its reconstruction;
- ``patch`` (or ``patch:N``): the largest mean squared error over N x N patches (N defaults to a
  quarter of the model's shorter side), so a small anomaly in a large frame still counts;
- ``ssim_patch`` (or ``ssim_patch:N``): ``ssim`` times the square root of ``patch``, the default of still-image
  models on small frames. A product of powers needs no statistics: scaling either score by a constant (another
  digit, brighter data) leaves the ranking as it is, so it ranks the same before and after calibration. ssim
  catches changed strokes and shapes, patch a region reconstructed badly; on one-class MNIST (validation split)
  the product ranked other digits better than either (mean AUROC 0.969 against 0.959 and 0.951; README);
- ``likelihood`` (variational models: outputs with the roles mean and logvar): the negative evidence
  lower bound per input value, from the Bernoulli likelihood of the frame under its reconstruction plus
  KL(q(z|x) || N(0, I));
- ``sequence`` (sequence models: input layout NTF, e.g. LSTM): the mean squared error of the window of
  the last T frames (T from the card), reconstructed together;
- ``scene``: the squared-error map averaged over the cells of a 16 x 24 grid, each cell compared with what
  it normally shows: the worst cell's (error - mean) / (std + mean over cells), with the mean and std per
  cell learned by calibration (``edge-ae calibrate``) and kept in the card. Busy regions (a road, trees)
  then need more error than quiet ones to count; the global term keeps a near-constant cell from turning
  noise into alarms. Before calibration it is the worst cell's mean error.

With a predictor (the card's ``input.past_frames`` = K: the input stacks frames t-K..t), the "reconstruction"
is frame t predicted from the K frames before it and every score above applies to that prediction's error;
the detector keeps the last K frames of its stream (a new stream, after ``reset()``, starts from its first
frame). A predictor with an appearance branch (an output of role ``appearance``: a narrow autoencoder's
reconstruction of frame t itself, issue 14) gives a second error map, which shows what is unlike the normal
scene even when it stands still (copying the last frame predicts it perfectly). Its ``scene`` score is the
larger of the prediction map's scene score and half the appearance map's (``APPEARANCE_WEIGHT``), each map's
cells normalised with their own calibrated statistics (the card's ``anomaly.scene`` holds both). Why: the maps
differ in scale and in where they are busy (the appearance error is high wherever pedestrians pass, the
prediction error where they move), so each needs its own per-cell statistics; on Ped2 clips 11-12 (which the
ped2-cli benchmark neither trains nor evaluates on; ``python -m benchmarks.anomaly ped2-choose``, README) one
score of the summed maps raised false alarms from 1.7 / 8.3 % (the prediction alone) to 36 / 0 %, and
weighting the appearance score up to line up the two scores' 99th percentiles to 28 / 8 %; weights 0.5, 0.75
and 1 kept them at 1.7 / 8.3 % with mean AUROCs of pasted objects of 0.945, 0.942 and 0.921 (the prediction
alone 0.946): clip 11 has a person standing at the frame's edge, which the appearance map rightly finds
unusual, and a larger weight lets it mask the prediction's detections there. A still person-sized object in
the Intel empty room scores about 34 on the appearance map against at most 5.2 on normal frames, so half of it
still counts (tests/cli/test_predictor_appearance.py). Measured after this choice on the ped2-cli benchmark
(one model, clips 13-16): weight 1 ranked the slow bright object better than 0.5 (AUROC 0.856 against 0.819;
the prediction alone 0.804) with the same false alarms; two design clips are little evidence either way. A
card calibrated without appearance statistics (an older edge-ae) is scored as it was calibrated: prediction
only. The other scores and the error map shown use the prediction error plus the appearance error.

Every score is causal: frame t uses frames up to t only. ``smoothing`` k > 1 averages the raw scores
of the last k frames (the current one included); the smoothed score is the one compared with the
threshold. numpy + onnxruntime + OpenCV only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_runtime.autoencoder import Autoencoder
from edge_runtime.card import AnomalySpec, ModelCard
from edge_runtime.errors import ModelCardError, NotCalibratedError
from edge_runtime.model import Model
from edge_runtime.quality import ssim_planes

__all__ = ["AnomalyDetector", "AnomalyResult", "NotCalibratedError", "auroc", "cell_means", "combined_scene_scores",
           "default_score", "fit_scene", "fit_scenes", "max_patch_mean", "parse_score", "scene_grid", "scene_scores",
           "scene_table", "ssim_map", "table_stats"]

BASE_SCORES = ("mse", "ssim", "patch", "ssim_patch", "likelihood", "sequence", "scene")
SCENE_GRID = (16, 24)  # rows, cols of the scene score's cells (fewer on a smaller model input)
_EPS = 1e-6


@dataclass(frozen=True)
class AnomalyResult:
    """The outcome for one frame."""

    score: float  # the (smoothed) score compared with the threshold
    raw: float  # this frame's score before smoothing
    flag: bool | None  # score > threshold; None when the model has no threshold
    error_map: np.ndarray  # float32 (h, w) at the model's size; larger = worse reconstructed
    index: int  # frames scored since the detector started or was reset
    # scene score: the cell means (rows, cols) of each error map it uses (the prediction's, then the appearance's)
    cells: tuple[np.ndarray, ...] = ()
    # a predictor's first frames of a stream (fewer real past frames than it reads): score 0, never flagged
    warmup: bool = False


def _roles(card: ModelCard) -> set[str]:
    return set(card.outputs.values())


def parse_score(name: str, card: ModelCard, size: tuple[int, int]) -> tuple[str, int]:
    """(base score, patch size) for a score name; raises ModelCardError for a score this model cannot give.

    What a model can give follows from its card: 'likelihood' needs the 'mean' and 'logvar' outputs of
    a variational encoder, 'sequence' an input of frame sequences (layout NTF).
    """
    base, _, arg = name.partition(":")
    if base not in BASE_SCORES:
        msg = (f"anomaly score {name!r} is not one of {', '.join(BASE_SCORES)} (patch and ssim_patch may be "
               "written patch:N, ssim_patch:N)")
        raise ModelCardError(msg)
    if base == "likelihood" and not {"mean", "logvar"} <= _roles(card):
        msg = (f"anomaly score 'likelihood' needs a variational model (outputs 'mean' and 'logvar'); "
               f"this one is {card.family!r}")
        raise ModelCardError(msg)
    if base == "sequence" and card.input.layout != "NTF":
        msg = f"anomaly score 'sequence' needs a sequence model (layout NTF, e.g. lstm); this one is {card.family!r}"
        raise ModelCardError(msg)
    patch = max(2, min(size) // 4)
    if arg:
        if base not in ("patch", "ssim_patch") or not arg.isdigit() or not 1 <= int(arg) <= min(size):
            msg = f"anomaly score {name!r}: only patch and ssim_patch take a size, 1..{min(size)} (e.g. patch:8)"
            raise ModelCardError(msg)
        patch = int(arg)
    return base, patch


def default_score(card: ModelCard) -> str:
    """The card's anomaly score; without one, likelihood for variational outputs, sequence for NTF, else mse."""
    if card.anomaly is not None:
        return card.anomaly.score
    if {"mean", "logvar"} <= _roles(card):
        return "likelihood"
    if card.input.layout == "NTF":
        return "sequence"
    return "mse"


def ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (averaged over channels) of two (H, W, C) float images in [0, 1]; Gaussian window 7, sigma 1.5.

    The SSIM of ``edge_runtime.quality`` with a smaller window: anomalies are small, frames are small.
    """
    out = np.zeros(x.shape[:2], np.float64)
    for c in range(x.shape[2]):
        out += ssim_planes(x[:, :, c], y[:, :, c], 1.0, window=7)
    return (out / x.shape[2]).astype(np.float32)


def max_patch_mean(error: np.ndarray, patch: int) -> float:
    """Largest mean of ``error`` (H, W) over every patch x patch window inside it."""
    p = min(patch, *error.shape)
    s = np.zeros((error.shape[0] + 1, error.shape[1] + 1), np.float64)
    s[1:, 1:] = error.astype(np.float64).cumsum(0).cumsum(1)
    sums = s[p:, p:] - s[:-p, p:] - s[p:, :-p] + s[:-p, :-p]
    return float(sums.max() / (p * p))


def scene_grid(size: tuple[int, int]) -> tuple[int, int]:
    """The scene score's grid (rows, cols) for a model input of ``size`` (h, w)."""
    return min(SCENE_GRID[0], size[0]), min(SCENE_GRID[1], size[1])


def cell_means(error: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean of ``error`` (H, W) over each cell of a rows x cols ``grid`` -> (rows, cols) float32 (area-weighted)."""
    return cv2.resize(np.ascontiguousarray(error, np.float32), (grid[1], grid[0]), interpolation=cv2.INTER_AREA)


def fit_scene(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per cell of normal frames' cell means (N, rows, cols); the std is floored at its median over
    the cells, so a cell that barely changes in the normal data cannot make every small change an alarm."""
    c = np.asarray(cells, np.float64)
    mean, std = c.mean(axis=0), c.std(axis=0)
    std = np.maximum(std, float(np.median(std)) + 1e-12)
    return mean.astype(np.float32), std.astype(np.float32)


def scene_scores(cells: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    """The scene score of each frame's cell means (N, rows, cols): worst (cell - mean) / (std + mean of mean);
    without statistics, the worst cell."""
    c = np.asarray(cells, np.float64)
    if mean is None or std is None:
        return c.reshape(len(c), -1).max(axis=1)
    z = (c - mean) / (std + float(np.mean(mean)) + 1e-12)
    return z.reshape(len(c), -1).max(axis=1)


SceneStats = tuple[np.ndarray, np.ndarray]  # one error map's per-cell mean and std (``fit_scene``)
APPEARANCE_WEIGHT = 0.5  # the appearance map's scene score counts half (chosen on Ped2 clips 11-12; module doc)


def fit_scenes(cells: np.ndarray) -> list[SceneStats]:
    """``fit_scene`` of each error map's cells (N, maps, rows, cols): [(mean, std) of map 0, of map 1, ...]."""
    c = np.asarray(cells)
    return [fit_scene(c[:, m]) for m in range(c.shape[1])]


def combined_scene_scores(cells: np.ndarray, stats: list[SceneStats] | None,
                          weights: tuple[float, ...] | None = None) -> np.ndarray:
    """The scene score of frames with several error maps (N, maps, rows, cols): the largest of the maps'
    weighted ``scene_scores``, each with its own statistics (``stats``, from ``fit_scenes``; None: uncalibrated,
    the largest of the maps' worst cells). ``weights``: one per map, by default 1 for the first (the
    prediction) and ``APPEARANCE_WEIGHT`` for the others; other weights are for comparing rules
    (``benchmarks.anomaly ped2-choose``)."""
    c = np.asarray(cells)
    w = weights or (1.0,) + (APPEARANCE_WEIGHT,) * (c.shape[1] - 1)
    per_map = [w[m] * scene_scores(c[:, m], *(stats[m] if stats is not None else (None, None)))
               for m in range(c.shape[1])]
    return np.max(np.stack(per_map), axis=0)


def _cell_table(mean: np.ndarray, std: np.ndarray) -> dict[str, list[float]]:
    return {"mean": [float(f"{v:.6g}") for v in mean.ravel()],
            "std": [float(f"{max(float(v), 1e-12):.6g}") for v in std.ravel()]}


def table_stats(table: dict[str, Any]) -> list[SceneStats]:
    """The per-cell statistics of each error map (the prediction's, then the appearance's when there) from the
    card's form of them (``scene_table``), as float32 arrays of the grid's shape."""
    grid = tuple(table["grid"])
    maps = [table] + ([table["appearance"]] if table.get("appearance") is not None else [])
    return [(np.asarray(m["mean"], np.float32).reshape(grid), np.asarray(m["std"], np.float32).reshape(grid))
            for m in maps]


def scene_table(mean: np.ndarray, std: np.ndarray, appearance: SceneStats | None = None) -> dict[str, object]:
    """The card's form of the per-cell statistics (AnomalySpec.scene); ``appearance``: the statistics of the
    appearance error map (``fit_scenes``), for a predictor with an appearance branch."""
    table: dict[str, object] = {"grid": [int(mean.shape[0]), int(mean.shape[1])], **_cell_table(mean, std)}
    if appearance is not None:
        table["appearance"] = _cell_table(*appearance)
    return table


class AnomalyDetector:
    """Score frames of a scene with an autoencoder trained on normal footage of it.

    ``score(frame)`` is causal and keeps a little state (the recent frames of a sequence model or a
    predictor, the recent scores for smoothing), so one detector follows one stream: give each stream, and each
    thread, its own detector (they may share one ``Model``). ``reset()`` starts a new stream.
    """

    def __init__(self, model: str | Path | Model, device: str = "auto", threads: int | None = None,
                 score: str | None = None, smoothing: int | None = None, threshold: float | None = None) -> None:
        self.model = model if isinstance(model, Model) else Model(model, device=device, threads=threads)
        card = self.model.card
        if card.task == "denoise":
            msg = (f"{self.model.path}: a denoising model cannot score anomalies; train one on normal footage "
                   "with 'edge-ae train --task anomaly'")
            raise ModelCardError(msg)
        self.ae = Autoencoder(self.model)
        spec = card.anomaly or AnomalySpec(score=default_score(card))
        self.score_name = score or spec.score
        self.base, self.patch = parse_score(self.score_name, card, self.ae.size)
        self.smoothing = smoothing if smoothing is not None else (spec.smoothing or 1)
        if self.smoothing < 1:
            msg = f"smoothing is {self.smoothing}; expected at least 1 frame"
            raise ModelCardError(msg)
        # The card's threshold and statistics belong to the score and smoothing they were calibrated for.
        same = self.score_name == spec.score and self.smoothing == (spec.smoothing or 1)
        self.threshold = threshold if threshold is not None else (spec.threshold if same else None)
        self.stats = dict(spec.stats) if same else {}
        self.grid = scene_grid(self.ae.size)
        self.sequence_length = self.ae.sequence_length
        self.past_frames = card.input.past_frames or 0
        # A predictor's appearance branch (issue 14): a second error map, of frame t's own reconstruction.
        self.appearance = bool(self.past_frames) and "appearance" in self.ae.roles
        self.scene_mean: np.ndarray | None = None
        self.scene_std: np.ndarray | None = None
        self.appearance_mean: np.ndarray | None = None
        self.appearance_std: np.ndarray | None = None
        if same and spec.scene is not None and self.base == "scene":
            grid = tuple(spec.scene["grid"])
            if grid != self.grid:
                msg = (f"{self.model.path}: the card's scene statistics are for a {grid} grid; "
                       f"this model uses {self.grid}")
                raise ModelCardError(msg)
            stats = table_stats(spec.scene)
            self.scene_mean, self.scene_std = stats[0]
            if len(stats) > 1:
                self.appearance_mean, self.appearance_std = stats[1]
            else:  # calibrated on the prediction error alone (an older edge-ae): scored as it was calibrated
                self.appearance = False
        inputs = self.model.session.get_inputs()
        self._dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        self._latent = next((i for i in inputs[1:]), None)
        self.reset()

    def reset(self) -> None:
        """Forget earlier frames: the next frame starts a new stream."""
        self._window: deque[np.ndarray] = deque(maxlen=self.past_frames + 1 if self.past_frames
                                                else self.sequence_length)
        self._recent: deque[float] = deque(maxlen=self.smoothing)
        self._count = 0

    @property
    def calibrated(self) -> bool:
        return self.threshold is not None

    def _run(self, x: np.ndarray, roles: list[str]) -> list[np.ndarray]:
        feeds = {self.model.input_name: np.ascontiguousarray(x, dtype=self._dtype)}
        if self._latent is not None:
            feeds[self._latent.name] = np.zeros((0, self._latent.shape[1]), self._dtype)
        outs = self.model.session.run([self.ae.roles[r] for r in roles], feeds)
        return [o.astype(np.float32, copy=False) for o in outs]

    def _hwc(self, v: np.ndarray) -> np.ndarray:
        """One sample in model layout -> (H, W, C) float."""
        h, w = self.ae.size
        if self.ae.layout == "NCHW":
            return v.reshape(-1, h, w).transpose(1, 2, 0)
        return v.reshape(h, w, -1)

    def forget_scene(self) -> None:
        """Drop the scene statistics (calibration learns them anew): scene scores become uncalibrated ones."""
        self.scene_mean = self.scene_std = self.appearance_mean = self.appearance_std = None
        self.appearance = bool(self.past_frames) and "appearance" in self.ae.roles

    def scene_stats(self) -> list[SceneStats] | None:
        """The per-cell (mean, std) of each error map the scene score uses; None before calibration."""
        if self.scene_mean is None or self.scene_std is None:
            return None
        stats: list[SceneStats] = [(self.scene_mean, self.scene_std)]
        if self.appearance:
            if self.appearance_mean is None or self.appearance_std is None:
                return None
            stats.append((self.appearance_mean, self.appearance_std))
        return stats

    def raw_score(self, frame: np.ndarray) -> tuple[float, np.ndarray]:
        """This frame's score before smoothing and its error map (h, w); advances a sequence model's window."""
        value, err, _ = self._raw(frame)
        return value, err

    def _raw(self, frame: np.ndarray) -> tuple[float, np.ndarray, tuple[np.ndarray, ...]]:
        """(score, error map, the scene score's cell means per error map) of this frame before smoothing."""
        x = self.ae.frames_to_array([frame])  # (1, ...) in model layout
        lo, hi = self.ae.spec.value_range
        if self.ae.layout == "NTF":
            self._window.append(x[0])
            seq = np.stack(self._window)[None]  # (1, T, F)
            y = self._run(seq, ["reconstruction"])[0]
            if self.base == "sequence":
                err = (y[0] - seq[0]) ** 2  # (T, F)
                return float(err.mean()), self._hwc(err[-1]).mean(axis=2) / (hi - lo) ** 2, ()
            a, b = self._hwc(seq[0, -1]), self._hwc(y[0, -1])
        elif self.past_frames:
            # A predictor: frames t-K..t stacked (the first frame of a stream stands in for the ones before it).
            self._window.append(x[0])  # (1, H, W)
            stack = [self._window[0]] * (self.past_frames + 1 - len(self._window)) + list(self._window)
            roles = ["reconstruction", "appearance"] if self.appearance else ["reconstruction"]
            outs = self._run(np.concatenate(stack)[None], roles)  # each (1, 1, H, W)
            a, b = self._hwc(x[0]), self._hwc(outs[0][0])
            if self.appearance:
                return self._two_maps(a, b, self._hwc(outs[1][0]))
        elif self.base == "likelihood":
            y, mean, logvar = self._run(x, ["reconstruction", "mean", "logvar"])
            a, b = self._hwc(x[0]), self._hwc(y[0])
            p = np.clip((b - lo) / (hi - lo), _EPS, 1 - _EPS)
            t = np.clip((a - lo) / (hi - lo), 0.0, 1.0)
            nll = -(t * np.log(p) + (1 - t) * np.log1p(-p))  # (H, W, C) Bernoulli
            kl = 0.5 * float(np.sum(mean**2 + np.exp(logvar) - 1.0 - logvar))
            return (float(nll.sum()) + kl) / nll.size, nll.mean(axis=2), ()
        else:
            y = self._run(x, ["reconstruction"])[0]
            a, b = self._hwc(x[0]), self._hwc(y[0])
        a, b = (a - lo) / (hi - lo), (b - lo) / (hi - lo)
        if self.base in ("ssim", "ssim_patch"):
            s = ssim_map(a, b)
            value = float(1.0 - s.mean())
            if self.base == "ssim_patch":
                value *= max_patch_mean(((a - b) ** 2).mean(axis=2), self.patch) ** 0.5
            return value, np.clip(1.0 - s, 0.0, 2.0) / 2.0, ()
        err = ((a - b) ** 2).mean(axis=2)
        return self._value(err, (err,))

    def _two_maps(self, a: np.ndarray, b: np.ndarray,
                  c: np.ndarray) -> tuple[float, np.ndarray, tuple[np.ndarray, ...]]:
        """A predictor with an appearance branch: frame ``a``, its prediction ``b`` and its appearance
        reconstruction ``c`` (H, W, 1). The scene score uses both error maps; the others, and the map shown,
        their sum."""
        lo, hi = self.ae.spec.value_range
        a, b, c = (a - lo) / (hi - lo), (b - lo) / (hi - lo), (c - lo) / (hi - lo)
        pred_err, app_err = ((a - b) ** 2).mean(axis=2), ((a - c) ** 2).mean(axis=2)
        err = pred_err + app_err
        if self.base in ("ssim", "ssim_patch"):
            s = np.minimum(ssim_map(a, b), ssim_map(a, c))
            value = float(1.0 - s.mean())
            if self.base == "ssim_patch":
                value *= max_patch_mean(err, self.patch) ** 0.5
            return value, np.clip(1.0 - s, 0.0, 2.0) / 2.0, ()
        return self._value(err, (pred_err, app_err))

    def _value(self, err: np.ndarray, maps: tuple[np.ndarray, ...]) -> tuple[float, np.ndarray, tuple[np.ndarray, ...]]:
        """The mse, patch or scene score of the error map ``err`` (scene: of each of ``maps``)."""
        if self.base == "patch":
            return max_patch_mean(err, self.patch), err, ()
        if self.base == "scene":
            cells = tuple(cell_means(m, self.grid) for m in maps)
            value = combined_scene_scores(np.stack(cells)[None], self.scene_stats())[0]
            return float(value), err, cells
        return float(err.mean()), err, ()

    def score(self, frame: np.ndarray) -> AnomalyResult:
        """Score one uint8 frame (H x W grey or H x W x 3 BGR) of the stream."""
        raw, error_map, cells = self._raw(frame)
        # A predictor's first past_frames frames of a stream stand the first frame in for the past they lack, so
        # anything that moves is "unpredicted" (on Ped2 they score like anomalies): their score is 0 (nothing to
        # compare yet; ``raw`` keeps their own), they are never flagged, do not enter the smoothing, and
        # calibration leaves them out.
        warmup = self._count < self.past_frames
        if warmup:
            value, flag = 0.0, (None if self.threshold is None else False)
        else:
            self._recent.append(raw)
            value = float(np.mean(self._recent)) if len(self._recent) > 1 else raw
            flag = None if self.threshold is None else bool(value > self.threshold)
        result = AnomalyResult(value, raw, flag, error_map.astype(np.float32, copy=False), self._count, cells, warmup)
        self._count += 1
        return result

    __call__ = score


def auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """Area under the ROC curve of scores (higher = more anomalous), by the Mann-Whitney U statistic.

    Ties count half.
    """
    a = np.asarray(normal, np.float64).ravel()
    b = np.asarray(anomalous, np.float64).ravel()
    if a.size == 0 or b.size == 0:
        msg = "AUROC needs at least one normal and one anomalous score"
        raise ValueError(msg)
    both = np.concatenate([a, b])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(both.size, np.float64)
    sorted_vals = both[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_vals)) + 1]
    ends = np.r_[starts[1:], both.size]
    avg = (starts + ends - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[a.size :].sum() - b.size * (b.size + 1) / 2.0
    return float(u / (a.size * b.size))
