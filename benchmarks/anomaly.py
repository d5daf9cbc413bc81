"""Anomaly benchmarks: one-class MNIST AUROC, UCSD Ped2 false alarms, the Intel empty-room video, detect speed.

Every model is trained with the project's own loop, exported with its own exporter, calibrated with
``edge-ae calibrate``'s code and scored by the runtime's ``AnomalyDetector`` (onnxruntime), so the
numbers are those of the shipped tool chain. One torch thread; each part runs a few minutes at most.

    python -m benchmarks.anomaly mnist-cli [--minutes 0.5] [--digits 0,1,...]   (the README's default path)
    python -m benchmarks.anomaly ped2-cli [--minutes 10]   (train 01-12, calibrate on 13-16 leaving one out)
    python -m benchmarks.anomaly ped2-choose [--minutes 5] [--model m.onnx]   (train 01-10, choose on 11-12)
    python -m benchmarks.anomaly ped2-smoothing [--minutes 10] [--model m.onnx]   (train 01-10, choose on 09-12)
    python -m benchmarks.anomaly mnist [--family variational] [--steps 400] [--digits 0,1,...] [--split val]
    python -m benchmarks.anomaly ped2 [--held-out 16 | --held-out 15,16]
    python -m benchmarks.anomaly intel [--train-frames 0-50] [--cal-frames 0-50]
    python -m benchmarks.anomaly intel-cli [--minutes 2]   (the empty-room frames 0-50 as a video, CLI defaults)
    python -m benchmarks.anomaly bottle-cli [--minutes 2]   (three bottles, frames 0-166 as a video, CLI defaults)
    python -m benchmarks.anomaly speed [--model calibrated.onnx]

Choose a configuration with ``mnist --split val`` (images 301-400 of each digit, trained on 1-300)
and only then run it once on the test split (images 401-500, trained on 1-400).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from edge_runtime.anomaly import (
    APPEARANCE_WEIGHT,
    AnomalyDetector,
    auroc,
    combined_scene_scores,
    fit_scene,
    fit_scenes,
    scene_scores,
)
from edge_runtime.calibration import blend_thresholds, calibrate, held_out_scene_scores, smooth, threshold_for
from edge_runtime.card_file import read_card
from edge_runtime.events import find_events, release_level
from export.onnx_export import export_checkpoint
from train.checkpoint import load_checkpoint
from train.config import build_config
from train.data import video_frames
from train.loop_ae import train_autoencoder
from train.registry import family_spec

SHARED = Path(os.environ.get("EDGE_AE_SHARED", Path(__file__).resolve().parents[2] / "shared" / "data"))
MNIST = SHARED / "anomaly/mnist_train_subset_5k/mnist_5k.csv.gz"
PED2 = SHARED / "anomaly/ucsd_ped2_train"
INTEL = SHARED / "videos/intel_one-by-one-person-detection.mp4"
# Frames of the Intel video with a person (or part of one: hair at the bottom edge, a foot at the right
# edge) in view, inclusive, checked frame by frame at full resolution. Shadows on the floor that stay a
# few frames after a person has left are not counted. A first labelling by eye at reduced size,
# INTEL_PEOPLE_FIRST, started up to 6 frames late; both are reported.
INTEL_PEOPLE = [(60, 199), (227, 449), (502, 700), (744, 870), (921, 1200), (1234, 1361)]
INTEL_PEOPLE_FIRST = [(62, 199), (230, 451), (503, 702), (745, 869), (922, 1198), (1240, 1363)]
INTEL_TRAIN = (0, 50)  # empty room: the training frames (inclusive)
BOTTLE = SHARED / "videos/intel_bottle-detection.mp4"  # 640x360, 29.83 fps, 1,189 frames, static camera, CC BY 4.0
# Frames of the bottle video that are anomalous, inclusive: any part of a hand or arm in view, fewer than three
# bottles standing, or a bottle moving (between the spans three bottles stand still and no hand is in view).
# Made by eye: contact sheets of every 10th frame for the spans, then each boundary frame by frame at full
# resolution (crops of the edge the hand crosses, enlarged); a faint reddish fingertip at the top edge counts
# (867), the hand's shadow on the wall alone does not (it leads the hand by 4 frames at 167-170 and trails it
# by a few frames). Every bottle that comes back stands a few pixels from where it stood in frames 0-166
# (phase correlation of each bottle's crop, median frames of the span against frames 0-166): left bottle
# +9 px after the first span; left -8 px, middle +5 px after the second; also the right one +6 px after the
# third. So every normal frame after the first span shows a changed (but normal) scene: BOTTLE_MOVED.
BOTTLE_ANOMALOUS = [(171, 404), (472, 867), (921, 1096)]
BOTTLE_MOVED = [(405, 471), (868, 920), (1097, 1188)]
BOTTLE_TRAIN = (0, 166)  # three bottles, no hand and no shadow yet: the training (and calibration) frames


def _cli(args: list[str]) -> str:
    """``edge-ae ARGS`` in this process; its output, or exit with it when the command fails."""
    from click.testing import CliRunner

    from edge_runtime.cli import cli

    r = CliRunner().invoke(cli, args)
    if r.exit_code != 0:
        raise SystemExit(r.output)
    return r.output


def _train_cli(data: list[str], minutes: float, ckpt: Path, model: Path, keep: Path | None,
               trained: Path | None) -> tuple[Path, dict[str, Any]]:
    """``edge-ae train --task anomaly DATA --max-minutes M`` and ``edge-ae export`` (the model kept in ``keep``);
    or, with ``trained`` (an exported model of an earlier run), that model. Returns the model and its metadata."""
    if trained is not None:
        card = read_card(trained)
        return trained, {"config": {"family": card.family, "model": None}, "metrics": card.metrics}
    _cli(["train", "--task", "anomaly", *data, "--max-minutes", str(minutes), "-o", str(ckpt)])
    _cli(["export", str(ckpt), "-o", str(model)])
    _keep(model, keep)
    return model, load_checkpoint(ckpt)[1]


def _train(tmp: Path, name: str, data: list[str], family: str, steps: int, log: bool = False, **over: Any) -> Path:
    torch.set_num_threads(1)
    cfg = build_config("ae", family=family, task="anomaly", epochs=1, steps_per_epoch=steps, threads=1, seed=0,
                       val_every_s=3600.0, **over)
    ckpt = tmp / f"{name}.pt"
    train_autoencoder(cfg, data, ckpt, log=print if log else (lambda s: None))
    out = tmp / f"{name}.onnx"
    export_checkpoint(ckpt, out)
    return out


def _keep(model: Path, keep: Path | None) -> None:
    """Copy ``model`` into the folder ``keep`` (--keep), when one is given."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        (keep / model.name).write_bytes(model.read_bytes())


def _cpu() -> float:
    return time.process_time()


def mnist_split(y: np.ndarray, k: int, split: str, train_n: int = 400,
                val_n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(training rows of digit k, evaluation rows of every digit) for ``split``.

    test: train on the first ``train_n`` images of digit k, evaluate on the other ``500 - train_n`` of
    every digit (the test split). val: only the first ``train_n`` of each digit are used; train on the
    first ``train_n - val_n`` of digit k, evaluate on the last ``val_n`` of each digit's first ``train_n``
    (a validation split, for choosing a configuration without looking at the test split).
    """
    per = [np.flatnonzero(y == c) for c in range(10)]
    if split == "test":
        return per[k][:train_n], np.concatenate([p[train_n:] for p in per])
    if split == "val":
        return per[k][: train_n - val_n], np.concatenate([p[train_n - val_n : train_n] for p in per])
    msg = f"split {split!r}: expected test or val"
    raise ValueError(msg)


def bench_mnist(tmp: Path, family: str, steps: int, digits: list[int], scores: list[str], split: str = "test",
                over: dict[str, Any] | None = None, keep: Path | None = None) -> dict[str, Any]:
    """One-class MNIST: train on digit k, AUROC of k against every other digit on the evaluation split."""
    d = np.loadtxt(MNIST, delimiter=",", dtype=np.int64)
    x, y = d[:, :-1].reshape(-1, 28, 28).astype(np.uint8), d[:, -1]
    over = {"batch": 64, **(over or {})}
    rows: dict[str, dict[int, float]] = {s: {} for s in scores}
    cpu_s: dict[int, float] = {}
    for k in digits:
        t0, c0 = time.time(), _cpu()
        tr_idx, ev_idx = mnist_split(y, k, split)
        xt, yt = x[ev_idx], y[ev_idx]
        table = tmp / f"digit{k}.csv"
        np.savetxt(table, d[tr_idx], fmt="%d", delimiter=",")
        model = _train(tmp, f"mnist_{family}_{k}", [str(table)], family, steps, val_share=0.0, **over)
        _keep(model, keep)
        t1, c1 = time.time(), _cpu()
        for s in scores:
            det = AnomalyDetector(model, device="cpu", threads=1, score=s)
            v = np.array([det.score(im).raw for im in xt])
            rows[s][k] = auroc(v[yt == k], v[yt != k])
        cpu_s[k] = round(_cpu() - c0, 1)
        print(f"digit {k}: " + ", ".join(f"{s} {rows[s][k]:.4f}" for s in scores)
              + f"  (train+export {t1 - t0:.0f} s wall {c1 - c0:.0f} s CPU; all {time.time() - t0:.0f} s wall,"
              f" {cpu_s[k]:.0f} s CPU)", flush=True)
    means = {s: float(np.mean(list(v.values()))) for s, v in rows.items()}
    print(f"mean AUROC ({split} split): " + ", ".join(f"{s} {m:.4f}" for s, m in means.items()), flush=True)
    train_n = len(mnist_split(y, digits[0], split)[0])
    return {"task": "mnist_one_class", "split": split, "family": family, "steps": steps, "overrides": over,
            "train_per_digit": train_n,
            "evaluation": ("images 401-500 of every digit (1000, the test split)" if split == "test" else
                           "images 301-400 of every digit (1000, validation; test split untouched)"),
            "auroc": rows, "mean": means, "cpu_s_per_digit": cpu_s}


def bench_mnist_cli(tmp: Path, minutes: float, digits: list[int], extra_scores: list[str]) -> dict[str, Any]:
    """One-class MNIST through the command line with default options: for each digit k, ``edge-ae train --task
    anomaly DIGIT_K.csv --max-minutes M``, ``edge-ae export``, then AUROC of the card's default score (and
    ``extra_scores``) of digit k against every other digit on the test split (images 401-500 of each digit)."""
    d = np.loadtxt(MNIST, delimiter=",", dtype=np.int64)
    x, y = d[:, :-1].reshape(-1, 28, 28).astype(np.uint8), d[:, -1]
    rows: dict[str, dict[int, float]] = {}
    steps: dict[int, int] = {}
    default = ""
    for k in digits:
        tr_idx, ev_idx = mnist_split(y, k, "test")
        table = tmp / f"digit{k}.csv"
        np.savetxt(table, d[tr_idx], fmt="%d", delimiter=",")
        ckpt, model = tmp / f"digit{k}.pt", tmp / f"digit{k}.onnx"
        t0 = time.time()
        for args in (["train", "--task", "anomaly", str(table), "--max-minutes", str(minutes), "-o", str(ckpt)],
                     ["export", str(ckpt), "-o", str(model)]):
            _cli(args)
        steps[k] = int(load_checkpoint(ckpt)[1]["metrics"]["steps"])
        det = AnomalyDetector(model, device="cpu", threads=1)
        default = det.score_name
        xt, yt = x[ev_idx], y[ev_idx]
        for s in [default, *[e for e in extra_scores if e != default]]:
            det = AnomalyDetector(model, device="cpu", threads=1, score=s)
            v = np.array([det.score(im).raw for im in xt])
            rows.setdefault(s, {})[k] = auroc(v[yt == k], v[yt != k])
        print(f"digit {k}: {steps[k]} steps; " + ", ".join(f"{s} {rows[s][k]:.4f}" for s in rows)
              + f"  ({time.time() - t0:.0f} s wall, load average {os.getloadavg()[0]:.1f})", flush=True)
    means = {s: float(np.mean(list(v.values()))) for s, v in rows.items()}
    print(f"mean AUROC (default score {default}): " + ", ".join(f"{s} {m:.4f}" for s, m in means.items()), flush=True)
    return {"task": "mnist_one_class_cli_defaults", "minutes": minutes, "default_score": default, "auroc": rows,
            "mean": means, "steps": steps, "evaluation": "images 401-500 of every digit (1000, the test split)"}


def paste_object(frames: list[np.ndarray], kind: str, speed: int, start: int, stop: int,
                 seed: int = 0) -> list[np.ndarray]:
    """``frames`` with a 40x20 elliptic object (bright 235, dark 25) crossing the scene horizontally at ``speed``
    px/frame, with a slight vertical wobble, in frames ``start`` to ``stop`` - 1: labelled anomalous footage."""
    rng = np.random.default_rng(seed)
    h, w = frames[0].shape[:2]
    y0 = int(rng.integers(h // 3, 2 * h // 3))
    x0 = int(rng.integers(20, max(21, w - 20 - speed * (stop - start))))  # stays inside the frame
    level = {"bright": 235, "dark": 25}[kind]
    out = []
    for i, f in enumerate(frames):
        f = f.copy()
        if start <= i < stop:
            x = x0 + speed * (i - start)
            y = y0 + round(3 * float(np.sin(i / 3)))
            cv2.ellipse(f, (x, y), (20, 10), 0, 0, 360, (level, level, level), -1, cv2.LINE_AA)
        out.append(f)
    return out


def bench_ped2_cli(tmp: Path, minutes: float, keep: Path | None = None, trained: Path | None = None,
                   tolerance: bool = True, smoothing_option: int | None = None) -> dict[str, Any]:
    """Ped2 through the command line with default options: ``edge-ae train --task anomaly 01.mp4 ... 12.mp4
    --max-minutes M`` (a video: the predictor), ``edge-ae export``; then for each of clips 13-16: ``edge-ae
    calibrate`` on the other three at 1 %, false alarms on the held-out clip, and AUROC of its frames against the
    same clip with a pasted moving object (causal raw scores, and scores min-max normalised per clip).
    ``trained``: an exported model of an earlier run (``--keep``) to calibrate and score instead of training;
    ``smoothing_option``: calibrate with ``--smoothing`` (default: the card's). AUROCs are of the scores the
    threshold applies to (smoothed as the card says) and, ``_unsmoothed``, of each frame's own score."""

    clips = [PED2 / f"{c:02d}.mp4" for c in range(1, 17)]
    ckpt, model = tmp / "ped2.pt", tmp / "ped2.onnx"
    t0 = time.time()
    model, meta = _train_cli([*map(str, clips[:12])], minutes, ckpt, model, keep, trained)
    train_s = time.time() - t0
    objects = [("bright", 6), ("dark", 6), ("dark", 3), ("bright", 2)]
    held = clips[12:]
    fa: dict[str, float] = {}
    loo_estimate: dict[str, float] = {}
    # per object: one (normal frames' scores, object frames' scores) pair per held-out clip; "score" is the one
    # compared with the threshold (smoothed as the card says), "unsmoothed" each frame's own
    pairs: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {
        which: {f"{k}@{v}": [] for k, v in objects} for which in ("score", "unsmoothed")}
    recall: dict[str, list[float]] = {f"{k}@{v}": [] for k, v in objects}
    score_name = ""
    smoothing = 1

    def run(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, unsmoothed score, flag) of each frame after a predictor's warm-up (its first frames of a
        stream: score 0, never flagged), and of every frame for other models."""
        det.reset()
        r = [x for x in (det.score(f) for f in frames) if not x.warmup]
        return np.array([x.score for x in r]), np.array([x.raw for x in r]), np.array([bool(x.flag) for x in r])

    for i, clip in enumerate(held):
        cal = tmp / f"cal_{clip.stem}.onnx"
        out = _cli(["calibrate", str(model), *[str(c) for c in held if c != clip], "--max-false-alarm", "0.01",
                   "-o", str(cal), *([] if tolerance else ["--no-tolerance"]),
                   *([] if smoothing_option is None else ["--smoothing", str(smoothing_option)])])
        print(out.strip(), flush=True)
        det = AnomalyDetector(cal, device="cpu", threads=1)
        score_name, smoothing = det.score_name, det.smoothing
        loo_estimate[clip.stem] = float(det.stats.get("false_alarm_held_out_mean", float("nan")))
        frames = _frames(clip)
        normal = run(frames)
        fa[clip.stem] = float(np.mean(normal[2]))  # the frames flagged, as detect flags them
        n = len(frames)
        start, stop = n // 3, n // 3 + 40
        skip = n - len(normal[0])  # warm-up frames left out (before the object)
        for kind, speed in objects:
            obj = run(paste_object(frames, kind, speed, start, stop, seed=i))
            key = f"{kind}@{speed}"
            for j, which in enumerate(("score", "unsmoothed")):
                pairs[which][key].append((normal[j], obj[j][start - skip:stop - skip]))
            recall[key].append(float(np.mean(obj[2][start - skip:stop - skip])))
        print(f"clip {clip.stem}: false alarms {100 * fa[clip.stem]:.2f} % (calibrated on the other three at 1 %)",
              flush=True)

    def aurocs(p: dict[str, list[tuple[np.ndarray, np.ndarray]]]) -> tuple[dict[str, float], dict[str, float]]:
        """AUROC of each object's frames against every held-out clip's normal frames, pooled as they are and
        after normalising each clip by its own range (its normal frames and the object's frames)."""
        pooled, per_clip = {}, {}
        for k, ps in p.items():
            pooled[k] = auroc(np.concatenate([a for a, _ in ps]), np.concatenate([b for _, b in ps]))
            ns, os_ = [], []
            for s_n, s_o in ps:
                both = np.concatenate([s_n, s_o])
                lo, hi = both.min(), both.max()
                ns.append((s_n - lo) / (hi - lo + 1e-12))
                os_.append((s_o - lo) / (hi - lo + 1e-12))
            per_clip[k] = auroc(np.concatenate(ns), np.concatenate(os_))
        return pooled, per_clip

    auroc_raw, auroc_norm = aurocs(pairs["score"])
    unsmoothed_raw, unsmoothed_norm = aurocs(pairs["unsmoothed"])
    res = {"task": "ped2_cli_defaults", "minutes": minutes, "train_s": round(train_s, 1),
           "family": meta["config"]["family"], "steps": meta["metrics"].get("steps"), "score": score_name,
           "smoothing": smoothing,
           "false_alarm_held_out": fa, "false_alarm_mean": float(np.mean(list(fa.values()))),
           "loo_estimate_at_calibration": loo_estimate, "auroc_raw": auroc_raw, "auroc_per_clip_normalised": auroc_norm,
           "object_frames_flagged": {k: float(np.mean(v)) for k, v in recall.items()},
           "auroc_raw_unsmoothed": unsmoothed_raw, "auroc_per_clip_normalised_unsmoothed": unsmoothed_norm,
           "camera_tolerance": tolerance, "load_average": os.getloadavg()[0]}
    print(json.dumps(res, indent=1), flush=True)
    return res


SCENE_RULES = ("max", "max_unweighted", "weighted_max", "sum", "prediction", "appearance")


def rule_scorer(rule: str, cal: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The scene scores of frames' cells (N, 2, rows, cols: prediction and appearance cell means) with statistics
    fitted on the calibration frames ``cal``, under one way of using the two maps: the larger of the
    prediction's score and ``APPEARANCE_WEIGHT`` times the appearance's (``max``, the runtime's), the same
    with weight 1 (``max_unweighted``) or with the appearance score weighted onto the prediction's scale (their
    99th percentiles on the calibration frames line up: ``weighted_max``), one score of the summed map
    (``sum``), or one map alone."""
    if rule in ("max", "max_unweighted", "weighted_max"):
        fit = fit_scenes(cal)
        w = {"max": APPEARANCE_WEIGHT, "max_unweighted": 1.0}.get(rule, 1.0)
        if rule == "weighted_max":  # the appearance score times the ratio of the two scores' 99th percentiles
            tops = [float(np.percentile(scene_scores(cal[:, m], *fit[m]), 99)) for m in (0, 1)]
            w = tops[0] / tops[1]
        return lambda c: combined_scene_scores(c, fit, (1.0, w))
    one = {"sum": lambda c: c.sum(axis=1), "prediction": lambda c: c[:, 0], "appearance": lambda c: c[:, 1]}[rule]
    mean, std = fit_scene(one(cal))
    return lambda c: scene_scores(one(c), mean, std)


def rule_threshold(rule: str, clips: list[np.ndarray], share: float = 0.01) -> tuple[Callable[..., np.ndarray], float]:
    """The scorer of ``rule`` fitted on every calibration clip's cells and its threshold as ``edge-ae calibrate``
    set it for the scene score when this comparison was made (README): the plain geometric mean of the in-sample
    and the leave-one-clip-out thresholds, unsmoothed scores (now the mean of the last 4 and a weight of 0.6 on the
    held-out threshold: ``ped2-smoothing``)."""
    score = rule_scorer(rule, np.concatenate(clips))
    inside = threshold_for(np.concatenate([score(c) for c in clips]), share)
    held = [rule_scorer(rule, np.concatenate([o for j, o in enumerate(clips) if j != i]))(c)
            for i, c in enumerate(clips)]
    loo = threshold_for(np.concatenate(held), share)
    return score, (math.sqrt(inside * loo) if inside > 0 and loo > 0 else max(inside, loo))


def bench_ped2_choose(tmp: Path, minutes: float, model: Path | None, keep: Path | None = None) -> dict[str, Any]:
    """Choose how the scene score uses a predictor's two error maps on data the ped2-cli benchmark does not
    evaluate on (clips 13-16): train the predictor with its optional appearance branch (a code of 16) on Ped2
    clips 01-10 for ``minutes`` (otherwise ``--task anomaly`` defaults, one thread); then, as ped2-cli does, for
    each of clips 11 and 12: statistics and a 1 % threshold from the other three of clips 09-12 (09 and 10 were
    trained on), false alarms on it, and AUROC of its normal frames against the same clip with each pasted object
    (ped2-cli's objects, raw causal scores), for each rule of ``rule_scorer``."""
    if model is None:
        torch.set_num_threads(1)
        cfg = build_config("predictor", task="anomaly", epochs=10**6, max_minutes=minutes, threads=1, seed=0,
                           model={"appearance": 16})
        ckpt = tmp / "choose.pt"
        train_autoencoder(cfg, [str(PED2 / f"{c:02d}.mp4") for c in range(1, 11)], ckpt, log=lambda s: None)
        steps = load_checkpoint(ckpt)[1]["metrics"]["steps"]
        model = tmp / "choose.onnx"
        export_checkpoint(ckpt, model)
        _keep(model, keep)
    else:
        steps = None
    det = AnomalyDetector(model, device="cpu", threads=1, score="scene")
    det.forget_scene()
    if not det.appearance:
        msg = f"{model}: no appearance output; ped2-choose compares ways of using both error maps"
        raise SystemExit(msg)

    def cells(frames: list[np.ndarray]) -> np.ndarray:
        det.reset()
        return np.stack([np.stack(det.score(f).cells) for f in frames])  # (N, 2, rows, cols)

    objects = [("bright", 6), ("dark", 6), ("dark", 3), ("bright", 2)]
    names = ("09", "10", "11", "12")
    clips = {c: _frames(PED2 / f"{c}.mp4") for c in names}
    normal = {c: cells(f) for c, f in clips.items()}
    pasted: dict[str, dict[str, np.ndarray]] = {}
    for i, c in enumerate(("11", "12")):
        n = len(clips[c])
        start, stop = n // 3, n // 3 + 40
        pasted[c] = {f"{k}@{v}": cells(paste_object(clips[c], k, v, start, stop, seed=i))[start:stop]
                     for k, v in objects}
    out: dict[str, Any] = {"task": "ped2_choose_scene_rule", "minutes": minutes, "steps": steps, "model": str(model),
                           "train_clips": "01-10", "evaluated_clips": "11, 12 (each calibrated on the other three "
                           "of 09-12)", "rules": {}}
    for rule in SCENE_RULES:
        res: dict[str, Any] = {}
        for ev in ("11", "12"):
            score, thr = rule_threshold(rule, [normal[c] for c in names if c != ev])
            s_normal = score(normal[ev])
            res[f"false_alarm_{ev}"] = float(np.mean(s_normal > thr))
            for key, obj in pasted[ev].items():
                s_obj = score(obj)
                res[f"auroc_{ev}_{key}"] = auroc(s_normal, s_obj)
                res[f"recall_{ev}_{key}"] = float(np.mean(s_obj > thr))
        res["false_alarm_mean"] = float(np.mean([v for k, v in res.items() if k.startswith("false_alarm_")]))
        res["auroc_mean"] = float(np.mean([v for k, v in res.items() if k.startswith("auroc_")]))
        res["auroc_min"] = float(min(v for k, v in res.items() if k.startswith("auroc_") and k != "auroc_mean"))
        out["rules"][rule] = res
        print(f"{rule}: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()), flush=True)
    out["load_average"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1), flush=True)
    return out


SMOOTHING_GRID = (1, 2, 3, 4, 6)  # ped2-smoothing: frames averaged
WEIGHT_GRID = (0.5, 0.6, 0.7, 0.8, 1.0)  # ped2-smoothing: weights of the held-out threshold


def bench_ped2_smoothing(tmp: Path, minutes: float, model: Path | None, keep: Path | None = None,
                         placements: int = 4) -> dict[str, Any]:
    """Choose the predictor's score smoothing and calibration's weight on the held-out threshold on data the
    ped2-cli benchmark does not evaluate on: ``edge-ae train --task anomaly`` on Ped2 clips 01-10 for ``minutes``
    (or ``model``); each of clips 09-12 calibrated on the other three at 1 % (per-cell statistics, in-sample and
    leave-one-clip-out thresholds as ``edge-ae calibrate`` makes them, without the camera tolerance, which does
    not bind on Ped2); false alarms on it; and for 11 and 12 (not trained on), ped2-cli's four objects each
    pasted at ``placements`` places and times: the share of the object's frames above the threshold and AUROC
    against the clip's normal frames. Every (smoothing, weight) pair of the grids is scored from the same cell
    means, so the model runs once per frame."""
    if model is None:
        ckpt, model = tmp / "design.pt", tmp / "design.onnx"
        model, _ = _train_cli([str(PED2 / f"{c:02d}.mp4") for c in range(1, 11)], minutes, ckpt, model, keep, None)
    det = AnomalyDetector(model, device="cpu", threads=1, score="scene")
    det.forget_scene()

    def cells(frames: list[np.ndarray]) -> np.ndarray:
        """(N, maps, rows, cols) of every frame after the predictor's warm-up (never flagged, left out of
        calibration)."""
        det.reset()
        return np.stack([np.stack(r.cells) for r in (det.score(f) for f in frames) if not r.warmup])

    objects = [("bright", 6), ("dark", 6), ("dark", 3), ("bright", 2)]
    names = ("09", "10", "11", "12")
    clips = {c: _frames(PED2 / f"{c}.mp4") for c in names}
    normal = {c: cells(f) for c, f in clips.items()}
    skip = det.past_frames  # the warm-up frames left out at the start of each clip
    pasted: dict[str, list[tuple[str, np.ndarray, int]]] = {"11": [], "12": []}
    for ev in pasted:
        n = len(clips[ev])
        for kind, speed in objects:
            for p in range(placements):
                start = n // 3 if p == 0 else int(np.random.default_rng(100 + p).integers(5, n - 45))
                obj = paste_object(clips[ev], kind, speed, start, start + 40, seed=p + 10 * int(ev))
                pasted[ev].append((f"{kind}@{speed}", cells(obj), start - skip))
    # per evaluated clip, what no (smoothing, weight) pair changes: the statistics of the other three, their
    # in-sample and leave-one-clip-out scores, and the clip's own scores and its objects' (all unsmoothed)
    parts = {}
    for ev in names:
        cal = [normal[c] for c in names if c != ev]
        fit = fit_scenes(np.concatenate(cal))
        parts[ev] = ([combined_scene_scores(c, fit) for c in cal], held_out_scene_scores(cal),
                     combined_scene_scores(normal[ev], fit),
                     [(key, combined_scene_scores(c, fit), start) for key, c, start in pasted.get(ev, [])])
    rows = []
    for k in SMOOTHING_GRID:
        for w in WEIGHT_GRID:
            fa: dict[str, float] = {}
            flagged: dict[str, list[float]] = {}
            aurocs: dict[str, list[float]] = {}
            for ev, (inside_scores, held, own, objects_scores) in parts.items():
                inside = threshold_for(np.concatenate([smooth(v, k) for v in inside_scores]), 0.01)
                loo = threshold_for(np.concatenate([smooth(v, k) for v in held]), 0.01)
                thr = blend_thresholds(inside, loo, w)
                s_normal = smooth(own, k)
                fa[ev] = float(np.mean(s_normal > thr))
                for key, v, start in objects_scores:
                    s_obj = smooth(v, k)[start:start + 40]
                    flagged.setdefault(key, []).append(float(np.mean(s_obj > thr)))
                    aurocs.setdefault(key, []).append(auroc(s_normal, s_obj))
            row: dict[str, Any] = {"smoothing": k, "held_out_weight": w, "false_alarm": fa,
                   "false_alarm_mean": float(np.mean(list(fa.values()))), "false_alarm_worst": max(fa.values()),
                   "object_frames_flagged": {key: float(np.mean(v)) for key, v in flagged.items()},
                   "auroc": {key: float(np.mean(v)) for key, v in aurocs.items()}}
            rows.append(row)
            print(f"smoothing {k} weight {w}: false alarms " + " / ".join(f"{100 * v:.1f}" for v in fa.values())
                  + f" % (mean {100 * row['false_alarm_mean']:.2f}); flagged "
                  + ", ".join(f"{key} {v:.3f}" for key, v in row["object_frames_flagged"].items())
                  + "; AUROC " + ", ".join(f"{key} {v:.3f}" for key, v in row["auroc"].items()), flush=True)
    out = {"task": "ped2_choose_smoothing", "minutes": minutes, "model": str(model),
           "steps": read_card(model).metrics.get("steps"), "rows": rows, "load_average": os.getloadavg()[0]}
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}), flush=True)
    return out


def _frames(path: Path) -> list[np.ndarray]:
    return [f for _, f in video_frames(path)]


def bench_ped2(tmp: Path, family: str, steps: int, held_out: list[str], keep: Path | None = None) -> dict[str, Any]:
    """Train on every training clip but the held-out ones, calibrate on the first held-out clip (max false
    alarm 1 %) and measure the false alarms on it; also calibrate on its first half and measure on the
    second half, and (with two held-out clips) calibrate on the first clip and measure on the second."""
    clips = sorted(PED2.glob("*.mp4"))
    train = [str(c) for c in clips if c.stem not in held_out]
    hold = [PED2 / f"{h}.mp4" for h in held_out]
    over: dict[str, Any] = {"height": 60, "width": 90, "batch": 16} if family_spec(family).layout != "NTF" else \
        {"height": 24, "width": 36, "seq_len": 8, "batch": 16}
    t0, c0 = time.time(), _cpu()
    model = _train(tmp, f"ped2_{family}", train, family, steps, **over)
    out: dict[str, Any] = {"task": "ped2_false_alarm", "family": family, "steps": steps, "overrides": over,
                           "train_clips": len(train), "held_out": [h.name for h in hold],
                           "train_s": round(time.time() - t0, 1), "train_cpu_s": round(_cpu() - c0, 1),
                           "allowed_false_alarm": 0.01}
    frames = _frames(hold[0])
    half = len(frames) // 2
    for smoothing in (1, 3):
        cal_out = tmp / f"ped2_{family}_cal{smoothing}.onnx"
        cal = calibrate(model, [str(hold[0])], max_false_alarm=0.01, out=cal_out, device="cpu", threads=1,
                        smoothing=smoothing)
        _keep(cal_out, keep)
        det = AnomalyDetector(cal_out, device="cpu", threads=1)
        flags = [det.score(f).flag for f in frames]
        # honest variant: calibrate on the first half of the held-out clip, measure on the second half
        det.reset()
        s_all = np.array([det.score(f).score for f in frames])
        thr_half = threshold_for(s_all[:half], 0.01)
        res: dict[str, Any] = {
            "threshold": cal.threshold,
            "frames": len(frames),
            "false_alarm_same_clip": float(np.mean(flags)),
            "false_alarm_second_half_calibrated_on_first_half": float(np.mean(s_all[half:] > thr_half)),
            "second_half_frames": len(frames) - half,
        }
        for other in hold[1:]:
            det.reset()
            s_o = np.array([det.score(f).score for f in _frames(other)])
            res[f"false_alarm_on_{other.name}_calibrated_on_{hold[0].name}"] = float(np.mean(s_o > cal.threshold))
            res[f"{other.name}_frames"] = len(s_o)
        out[f"smoothing_{smoothing}"] = res
    print(json.dumps(out, indent=1), flush=True)
    return out


def _span(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(lo), int(hi)


def _intel_metrics(s: np.ndarray, people: list[tuple[int, int]], after: int, thr: float,
                   stats: dict[str, float], fps: float = 10.0,
                   changed: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """AUROC, false alarms, recall and event timing of scores ``s`` of the Intel video against ``people``
    (any labelled anomalous spans); ``changed``: spans of normal frames of a changed scene, whose false alarms
    are also reported apart (with those of the other later normal frames)."""
    n = len(s)
    labels = np.zeros(n, bool)
    near = np.zeros(n, bool)
    for lo, hi in people:
        labels[lo : hi + 1] = True
        near[max(lo - 5, 0) : lo + 5] = True
        near[max(hi - 5, 0) : hi + 6] = True
    test = np.arange(n) > after
    low = release_level(thr, stats)  # as edge-ae detect does by default (release 0.8, hold 5)
    events = find_events(list(s), thr, low, 5, fps=fps)
    out: dict[str, Any] = {
        "threshold": thr, "release_level": low,
        "auroc_all_later_frames": auroc(s[test & ~labels], s[test & labels]),
        "auroc_without_5_frames_at_boundaries": auroc(s[test & ~labels & ~near], s[test & labels & ~near]),
        "false_alarm_empty_later_frames": float(np.mean(s[test & ~labels] > thr)),
        "recall_person_frames": float(np.mean(s[labels] > thr)),
        "events": [(e.start_frame, e.end_frame, e.peak_frame) for e in events],
        "events_without_person": sum(1 for e in events
                                     if not any(e.start_frame <= hi and e.end_frame >= lo for lo, hi in people)),
    }
    if changed is not None:
        moved = np.zeros(n, bool)
        for lo, hi in changed:
            moved[lo : hi + 1] = True
        out["false_alarm_changed_normal_frames"] = float(np.mean(s[test & moved & ~labels] > thr))
        out["changed_normal_frames"] = int(np.sum(test & moved & ~labels))
        same = test & ~moved & ~labels
        out["false_alarm_unchanged_later_normal_frames"] = float(np.mean(s[same] > thr)) if same.any() else None
        out["unchanged_later_normal_frames"] = int(np.sum(same))
    timing = []
    flags = s > thr
    prev_hi = -1
    for lo, hi in people:
        hit = [e for e in events if e.start_frame <= hi and e.end_frame >= lo]
        first = next((i for i in range(lo, hi + 1) if flags[i]), None)
        timing.append({
            "person": [lo, hi],
            # the first frame with the person in view that is flagged, counted from the person's first frame
            "first_flag_delay_frames": None if first is None else first - lo,
            # start of the first event overlapping the person, from the person's first frame (negative: it opened
            # before, e.g. on a shadow, or it is the previous person's event still open)
            "event_start_minus_enter_frames": (hit[0].start_frame - lo) if hit else None,
            "event_open_since_previous_person": bool(hit and hit[0].start_frame <= prev_hi),
            # end of the last overlapping event, from the person's last frame (positive: it closes after they left)
            "event_end_minus_leave_frames": (max(e.end_frame for e in hit) - hi) if hit else None,
            "events": len(hit)})
        prev_hi = hi
    out["timing"] = timing
    return out


def bench_intel(tmp: Path, family: str, steps: int, train_frames: str = "0-50", cal_frames: str | None = None,
                keep: Path | None = None) -> dict[str, Any]:
    """Train on empty-room frames, calibrate (max false alarm 0) on empty-room frames, score every frame;
    AUROC against the hand labels, false alarms and event timing (10 fps: 1 frame = 0.1 s)."""
    frames = _frames(INTEL)
    a, b = _span(train_frames)
    ca, cb = _span(cal_frames or train_frames)
    last_empty = INTEL_PEOPLE[0][0] - 1
    if b > last_empty or cb > last_empty:
        msg = f"training and calibration frames must be empty-room frames (0-{last_empty})"
        raise SystemExit(msg)

    def folder(name: str, lo: int, hi: int) -> Path:
        f = tmp / name
        f.mkdir(exist_ok=True)
        for i in range(lo, hi + 1):
            cv2.imwrite(str(f / f"{i:04d}.png"), frames[i])
        return f

    if family_spec(family).layout == "NTF":
        msg = "the intel benchmark trains frame families, not sequence ones (the training part is a folder of frames)"
        raise SystemExit(msg)
    over: dict[str, Any] = {"height": 54, "width": 96, "batch": 16, "val_share": 0.0}
    t0, c0 = time.time(), _cpu()
    model = _train(tmp, f"intel_{family}", [str(folder("intel_train", a, b))], family, steps, channels=3, **over)
    train_s, train_cpu = time.time() - t0, _cpu() - c0
    cal_out = tmp / "intel_cal.onnx"
    calibrate(model, [str(folder("intel_cal", ca, cb))], max_false_alarm=0.0, out=cal_out, device="cpu", threads=1)
    _keep(cal_out, keep)
    det = AnomalyDetector(cal_out, device="cpu", threads=1)
    s = np.array([det.score(f).score for f in frames])
    after = max(b, cb)
    out: dict[str, Any] = {"task": "intel_empty_room", "family": family, "steps": steps, "overrides": over,
                           "train_frames": f"{a}-{b}", "calibration_frames": f"{ca}-{cb} (max false alarm 0)",
                           "evaluated": f"frames {after + 1}-{len(frames) - 1}", "threshold": det.threshold,
                           "train_s": round(train_s, 1), "train_cpu_s": round(train_cpu, 1),
                           "people": INTEL_PEOPLE, **_intel_metrics(s, INTEL_PEOPLE, after, det.threshold, det.stats),
                           "first_labels": {"people": INTEL_PEOPLE_FIRST,
                                            **_intel_metrics(s, INTEL_PEOPLE_FIRST, after, det.threshold, det.stats)}}
    # How events depend on the threshold: the calibrated one times a margin (a sensitivity table, not a tuned value).
    margins = {}
    for m in (1.05, 1.1, 1.2, 1.5):
        r = _intel_metrics(s, INTEL_PEOPLE, after, m * det.threshold, det.stats)
        margins[str(m)] = {k: r[k] for k in ("false_alarm_empty_later_frames", "recall_person_frames", "events",
                                               "events_without_person")}
        margins[str(m)]["timing"] = [(t["first_flag_delay_frames"], t["event_start_minus_enter_frames"],
                                      t["event_end_minus_leave_frames"], t["events"]) for t in r["timing"]]
    out["threshold_margin_sensitivity"] = margins
    out["normal_score_stats"] = {k: det.stats[k] for k in ("p50", "p99", "max") if k in det.stats}
    print(json.dumps(out, indent=1), flush=True)
    return out


def write_lossless(path: Path, frames: list[np.ndarray], fps: float) -> int:
    """Write ``frames`` as an FFV1 video (lossless) and read it back; the largest pixel difference (0)."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        vw.write(f)
    vw.release()
    back = _frames(path)
    if len(back) != len(frames):
        msg = f"{path}: wrote {len(frames)} frames, read {len(back)} back"
        raise SystemExit(msg)
    return max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(frames, back, strict=True))


def _static_scene_cli(tmp: Path, name: str, video: str, frames: list[np.ndarray], span: tuple[int, int], fps: float,
                      minutes: float, family: str | None, keep: Path | None, trained: Path | None,
                      tolerance: bool) -> tuple[AnomalyDetector, np.ndarray, dict[str, Any], float, int]:
    """A still scene through the CLI defaults: ``frames[span]`` (inclusive) written losslessly as ``video``.mkv at
    ``fps``, ``edge-ae train --task anomaly`` on it (or ``trained``), ``edge-ae calibrate`` on the same video with
    ``--max-false-alarm 0`` (``--no-tolerance`` unless ``tolerance``), then every frame scored in order.
    Returns (detector, scores, training metadata, training seconds, max pixel difference after writing)."""
    a, b = span
    scene = tmp / f"{video}.mkv"
    diff = write_lossless(scene, frames[a : b + 1], fps)
    ckpt, model, cal = tmp / f"{name}.pt", tmp / f"{name}.onnx", tmp / f"{name}_cal.onnx"
    t0 = time.time()
    chosen = ["--family", family] if family else []  # default: the family --task anomaly picks
    model, meta = _train_cli([str(scene), *chosen], minutes, ckpt, model, keep, trained)
    train_s = time.time() - t0
    print(_cli(["calibrate", str(model), str(scene), "--max-false-alarm", "0", "-o", str(cal),
               *([] if tolerance else ["--no-tolerance"])]).strip(), flush=True)
    _keep(cal, keep)
    det = AnomalyDetector(cal, device="cpu", threads=1)
    return det, np.array([det.score(f).score for f in frames]), meta, train_s, diff


def bench_intel_cli(tmp: Path, minutes: float, train_frames: str = "0-50", family: str | None = None,
                    keep: Path | None = None, trained: Path | None = None, tolerance: bool = True) -> dict[str, Any]:
    """The Intel empty room through the command line with default options, as a user with a camera would do
    it: the empty-room frames (decoded from the mp4, written losslessly as an FFV1 .mkv at the video's 10 fps:
    a video, so ``--task anomaly`` picks the predictor; a folder of PNGs would pick the convolutional family),
    ``edge-ae train --task anomaly ROOM.mkv --max-minutes M``, ``edge-ae export``, ``edge-ae calibrate`` on
    the same video with ``--max-false-alarm 0`` (51 frames are too few for the default 1 %), then every frame
    of the video scored in order by one detector (causal scores, as ``edge-ae detect`` gives them): AUROC
    against the hand labels (the frames after the training ones), false alarms and event timing.
    ``trained``: an exported model of an earlier run (``--keep``) to calibrate and score instead of training."""

    frames = _frames(INTEL)
    a, b = _span(train_frames)
    if b >= INTEL_PEOPLE[0][0]:
        msg = f"training frames must be empty-room frames (0-{INTEL_PEOPLE[0][0] - 1})"
        raise SystemExit(msg)
    det, s, meta, train_s, diff = _static_scene_cli(tmp, "intel", "empty_room", frames, (a, b), 10.0, minutes,
                                                    family, keep, trained, tolerance)
    out: dict[str, Any] = {"task": "intel_empty_room_cli_defaults", "minutes": minutes, "train_s": round(train_s, 1),
                           "family": meta["config"]["family"], "model": meta["config"]["model"],
                           "steps": meta["metrics"].get("steps"), "score": det.score_name,
                           "outputs": sorted(det.model.card.outputs.values()),
                           "train_frames": f"{a}-{b} (FFV1 video, max pixel difference after writing: {diff})",
                           "evaluated": f"frames {b + 1}-{len(frames) - 1}",
                           **_intel_metrics(s, INTEL_PEOPLE, b, det.threshold, det.stats),
                           "first_labels": {"people": INTEL_PEOPLE_FIRST,
                                            **_intel_metrics(s, INTEL_PEOPLE_FIRST, b, det.threshold, det.stats)},
                           "normal_score_stats": {k: det.stats[k] for k in ("p50", "p99", "max") if k in det.stats},
                           "camera_tolerance": tolerance, "load_average": os.getloadavg()[0]}
    for r in (out, out["first_labels"]):
        r.pop("timing", None)  # the event table is long; the AUROC and counts are the figures
    print(json.dumps(out, indent=1), flush=True)
    return out


# _intel_metrics' keys named for the bottle video (its anomalies are hands and missing or moving bottles)
_BOTTLE_KEYS = {"false_alarm_empty_later_frames": "false_alarm_later_normal_frames",
                "recall_person_frames": "recall_anomalous_frames",
                "events_without_person": "events_without_anomaly"}


def bench_bottle_cli(tmp: Path, minutes: float, family: str | None = None, keep: Path | None = None,
                     trained: Path | None = None, tolerance: bool = True) -> dict[str, Any]:
    """A second static camera through the command line with default options, as ``intel-cli`` does it: Intel's
    bottle video (three water bottles on a table; a hand takes bottles away and puts them back). The frames
    before the first hand (``BOTTLE_TRAIN``: 0-166, 5.6 s) are written losslessly as an FFV1 .mkv at the video's
    29.83 fps, ``edge-ae train --task anomaly BOTTLES.mkv --max-minutes M`` (the family it picks), ``edge-ae
    export``, ``edge-ae calibrate`` on the same video with ``--max-false-alarm 0``: 167 frames at the default
    1 % put one or two frames above the threshold, far from the 10 the command asks for a stable threshold (it
    warns), and a rate with 10 above it (6 %) would be a false alarm every half second; so, as with Intel's 51
    frames, the threshold is the largest normal score. Then every frame scored in order by one detector
    (causal scores, as ``edge-ae detect`` gives them): AUROC of the later frames against ``BOTTLE_ANOMALOUS``,
    the share of anomalous frames flagged, of the later normal frames flagged (all of them, the changed scene
    ``BOTTLE_MOVED``, and the few others), events (``detect``'s release 0.8 and hold 5) against the spans.
    ``trained``: an exported model of an earlier run (``--keep``) to calibrate and score instead of training;
    ``tolerance``: False calibrates with ``--no-tolerance``."""
    cap = cv2.VideoCapture(str(BOTTLE))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    cap.release()
    frames = _frames(BOTTLE)
    a, b = BOTTLE_TRAIN
    det, s, meta, train_s, diff = _static_scene_cli(tmp, "bottle", "bottles", frames, (a, b), fps, minutes, family,
                                                    keep, trained, tolerance)
    m = _intel_metrics(s, BOTTLE_ANOMALOUS, b, det.threshold, det.stats, fps=fps, changed=BOTTLE_MOVED)
    m = {_BOTTLE_KEYS.get(k, k): v for k, v in m.items()}
    m["timing"] = [{("span" if k == "person" else k.replace("person", "span")): v for k, v in row.items()}
                   for row in m["timing"]]
    out: dict[str, Any] = {"task": "bottle_scene_cli_defaults", "minutes": minutes, "train_s": round(train_s, 1),
                           "family": meta["config"]["family"], "model": meta["config"]["model"],
                           "steps": meta["metrics"].get("steps"), "score": det.score_name,
                           "model_input_hw": list(det.ae.size),
                           "train_frames": f"{a}-{b} (FFV1 video at {fps:.2f} fps, max pixel difference after "
                                           f"writing: {diff})",
                           "evaluated": f"frames {b + 1}-{len(frames) - 1}", "anomalous": BOTTLE_ANOMALOUS,
                           "moved": BOTTLE_MOVED, **m,
                           "normal_score_stats": {k: det.stats[k] for k in ("p50", "p99", "max") if k in det.stats},
                           "camera_tolerance": tolerance, "load_average": os.getloadavg()[0]}
    print(json.dumps({k: v for k, v in out.items() if k != "timing"}, indent=1), flush=True)
    print("timing (span, first flag delay, event start - enter, event end - leave, events):",
          [(r["span"], r["first_flag_delay_frames"], r["event_start_minus_enter_frames"],
            r["event_end_minus_leave_frames"], r["events"]) for r in out["timing"]], flush=True)
    return out


def bench_speed(tmp: Path, model: Path | None, seconds: float = 20.0) -> dict[str, Any]:
    """Frames per second of detect (score + every output) at 360x240 and 640x480 on this machine."""
    from edge_runtime.detect import detect_stream
    from edge_runtime.sources import open_source

    if model is None:  # the default video model (the predictor, grey 80x120, scene score); speed needs no training
        base = _train(tmp, "speed_predictor", [str(PED2 / "01.mp4")], "predictor", 30, batch=16)
        model = tmp / "speed_cal.onnx"
        calibrate(base, [str(PED2 / "01.mp4"), str(PED2 / "03.mp4")], out=model, device="cpu", threads=1)
    src = _frames(PED2 / "02.mp4")[:150] * 4  # 600 frames: the clip four times
    out: dict[str, Any] = {"task": "detect_speed", "model": str(model), "cpu_count": os.cpu_count()}
    for w, h in ((360, 240), (640, 480)):
        clip = tmp / f"speed_{w}x{h}.avi"
        vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
        for f in src:
            vw.write(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA))
        vw.release()
        for what in ("scores only", "all outputs"):
            det = AnomalyDetector(model, device="cpu", threads=1)  # one thread: CPU ms per frame -> fps on one core
            out["model_input_hw"] = list(det.ae.size)  # frames are resized to this before the model
            source = open_source(str(clip))
            kw: dict[str, Any] = {"scores_path": tmp / "s.csv"}
            if what == "all outputs":
                kw.update(events_path=tmp / "e.jsonl", video_path=tmp / "a.mp4", snapshots=tmp / "snaps",
                          plot_path=tmp / "t.png")
            c0 = _cpu()
            rep = detect_stream(det, source, **kw)
            source.close()
            out[f"{w}x{h} {what}"] = {"frames": rep.frames, "fps_wall": round(rep.fps, 1),
                                      "cpu_ms_per_frame": round(1000 * (_cpu() - c0) / rep.frames, 2),
                                      "fps_one_core_from_cpu_time": round(rep.frames / max(_cpu() - c0, 1e-9), 1),
                                      "model_ms_per_frame_wall": round(1000 * rep.model_seconds / rep.frames, 2)}
            print(f"{w}x{h} {what}: {out[f'{w}x{h} {what}']}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=["mnist-cli", "ped2-cli", "ped2-choose", "ped2-smoothing", "mnist", "ped2",
                                     "intel", "intel-cli", "bottle-cli", "speed"])
    p.add_argument("--minutes", type=float, default=None,
                   help="mnist-cli / ped2-cli / intel-cli / bottle-cli / ped2-choose / ped2-smoothing: --max-minutes "
                        "of each training run [0.5 / 10 / 2 / 2 / 5 / 10]")
    p.add_argument("--family", default=None, help="mnist: variational; ped2/intel: convolutional; "
                                                  "intel-cli, bottle-cli: given to edge-ae train "
                                                  "[the one --task anomaly picks]")
    p.add_argument("--steps", type=int, default=None, help="mnist 400, ped2 400, intel 300")
    p.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--scores", default=None,
                   help="mnist: scores to report [mse,ssim,patch,ssim_patch (+likelihood for variational)]")
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="mnist: test (train on images 1-400 of digit k, evaluate on 401-500 of every digit) or val "
                        "(train on 1-300, evaluate on 301-400: for choosing a configuration)")
    p.add_argument("--lr", type=float, help="mnist: learning rate [preset ae: 2e-3]")
    p.add_argument("--batch", type=int, help="mnist: batch size [64]")
    p.add_argument("--bottleneck", type=int, help="mnist: code size of dense families")
    p.add_argument("--model-args", help='mnist: family arguments as JSON, e.g. \'{"widths": [32, 16, 8]}\'')
    p.add_argument("--held-out", default="16",
                   help="ped2: held-out clip(s); with two (e.g. 15,16) also calibrate on the first, "
                        "measure on the second")
    p.add_argument("--train-frames", default="0-50", help="intel: empty-room training frames")
    p.add_argument("--cal-frames", default=None, help="intel: empty-room calibration frames [the training frames]")
    p.add_argument("--model", type=Path, help="speed: a calibrated model (default: train a small one); "
                                               "ped2-choose, ped2-smoothing, ped2-cli, intel-cli, bottle-cli: a "
                                               "trained model (default: train one)")
    p.add_argument("--no-tolerance", action="store_true",
                   help="ped2-cli / intel-cli / bottle-cli: calibrate with --no-tolerance (the normal frames only)")
    p.add_argument("--smoothing", type=int, help="ped2-cli: calibrate with --smoothing K [the card's]")
    p.add_argument("--keep", type=Path, help="copy the trained (calibrated) models into this folder")
    p.add_argument("--json", type=Path, help="append the result as one JSON line here")
    a = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="benchmarks_anomaly_") as t:
        tmp = Path(t)
        if a.part == "mnist-cli":
            res = bench_mnist_cli(tmp, a.minutes or 0.5, [int(k) for k in a.digits.split(",")],
                                  (a.scores or "mse,ssim,patch").split(","))
        elif a.part == "ped2-cli":
            res = bench_ped2_cli(tmp, a.minutes or 10.0, a.keep, a.model, not a.no_tolerance, a.smoothing)
        elif a.part == "mnist":
            family = a.family or "variational"
            likelihood = family_spec(family).score == "likelihood"
            scores = a.scores or ("mse,ssim,patch,ssim_patch" + (",likelihood" if likelihood else ""))
            over: dict[str, Any] = {k: v for k, v in (("lr", a.lr), ("batch", a.batch), ("bottleneck", a.bottleneck))
                                    if v is not None}
            if a.model_args:
                over["model"] = json.loads(a.model_args)
            res = bench_mnist(tmp, family, a.steps or 400, [int(k) for k in a.digits.split(",")], scores.split(","),
                              a.split, over, a.keep)
        elif a.part == "ped2":
            res = bench_ped2(tmp, a.family or "convolutional", a.steps or 400, a.held_out.split(","), a.keep)
        elif a.part == "ped2-smoothing":
            res = bench_ped2_smoothing(tmp, a.minutes or 10.0, a.model, a.keep)
        elif a.part == "ped2-choose":
            res = bench_ped2_choose(tmp, a.minutes or 5.0, a.model, a.keep)
        elif a.part == "intel-cli":
            res = bench_intel_cli(tmp, a.minutes or 2.0, a.train_frames, a.family, a.keep, a.model,
                                  not a.no_tolerance)
        elif a.part == "bottle-cli":
            res = bench_bottle_cli(tmp, a.minutes or 2.0, a.family, a.keep, a.model, not a.no_tolerance)
        elif a.part == "intel":
            res = bench_intel(tmp, a.family or "convolutional", a.steps or 300, a.train_frames, a.cal_frames, a.keep)
        else:
            res = bench_speed(tmp, a.model)
    res["command"] = "python -m benchmarks.anomaly " + " ".join(sys.argv[1:])
    res["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
