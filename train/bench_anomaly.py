"""Anomaly benchmarks: one-class MNIST AUROC, UCSD Ped2 false alarms, the Intel empty-room video, detect speed.

Every model is trained with the project's own loop, exported with its own exporter, calibrated with
``edge-ae calibrate``'s code and scored by the runtime's ``AnomalyDetector`` (onnxruntime), so the
numbers are those of the shipped tool chain. One torch thread; each part runs a few minutes at most.

    python -m train.bench_anomaly mnist [--family variational] [--steps 400] [--digits 0,1,...]
    python -m train.bench_anomaly ped2
    python -m train.bench_anomaly intel
    python -m train.bench_anomaly speed
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from edge_runtime.anomaly import AnomalyDetector, auroc
from edge_runtime.calibration import calibrate, threshold_for
from edge_runtime.events import find_events
from export.families import export_family
from train.config import build_config
from train.loop_ae import train_autoencoder

SHARED = Path(os.environ.get("EDGE_AE_SHARED", Path(__file__).resolve().parents[2] / "shared" / "data"))
MNIST = SHARED / "anomaly/mnist_train_subset_5k/mnist_5k.csv.gz"
PED2 = SHARED / "anomaly/ucsd_ped2_train"
INTEL = SHARED / "videos/intel_one-by-one-person-detection.mp4"
# Frames of the Intel video with a person (or part of one) in view, labelled by looking at the frames
# (inclusive ranges; boundaries within about +-3 frames where a person is only partly in view).
INTEL_PEOPLE = [(62, 199), (230, 451), (503, 702), (745, 869), (922, 1198), (1240, 1363)]
INTEL_TRAIN = (0, 50)  # empty room: the training frames (inclusive)


def _train(tmp: Path, name: str, data: list[str], family: str, steps: int, log: bool = False, **over: Any) -> Path:
    torch.set_num_threads(1)
    cfg = build_config("ae", family=family, task="anomaly", epochs=1, steps_per_epoch=steps, threads=1, seed=0,
                       val_every_s=3600.0, **over)
    ckpt = tmp / f"{name}.pt"
    train_autoencoder(cfg, data, ckpt, log=print if log else (lambda s: None))
    out = tmp / f"{name}.onnx"
    export_family(ckpt, out)
    return out


def _cpu() -> float:
    return time.process_time()


def bench_mnist(tmp: Path, family: str, steps: int, digits: list[int], scores: list[str], train_n: int = 400) -> dict[str, Any]:
    """Train on digit k (first ``train_n`` of its 500 images), score the other 100 of every digit."""
    d = np.loadtxt(MNIST, delimiter=",", dtype=np.int64)
    x, y = d[:, :-1].reshape(-1, 28, 28).astype(np.uint8), d[:, -1]
    test_idx = np.concatenate([np.flatnonzero(y == c)[train_n:] for c in range(10)])
    xt, yt = x[test_idx], y[test_idx]
    rows: dict[str, dict[int, float]] = {s: {} for s in scores}
    for k in digits:
        t0, c0 = time.time(), _cpu()
        rows_k = d[y == k][:train_n]
        table = tmp / f"digit{k}.csv"
        np.savetxt(table, rows_k, fmt="%d", delimiter=",")
        model = _train(tmp, f"mnist_{family}_{k}", [str(table)], family, steps, batch=64, val_share=0.0)
        t1 = time.time()
        for s in scores:
            det = AnomalyDetector(model, device="cpu", threads=1, score=s)
            v = np.array([det.score(im).raw for im in xt])
            rows[s][k] = auroc(v[yt == k], v[yt != k])
        print(f"digit {k}: " + ", ".join(f"{s} {rows[s][k]:.4f}" for s in scores)
              + f"  (train+export {t1 - t0:.0f} s, all {time.time() - t0:.0f} s wall, {_cpu() - c0:.0f} s CPU)", flush=True)
    means = {s: float(np.mean(list(v.values()))) for s, v in rows.items()}
    print("mean AUROC: " + ", ".join(f"{s} {m:.4f}" for s, m in means.items()))
    return {"task": "mnist_one_class", "family": family, "steps": steps, "train_per_digit": train_n,
            "test": "the other 100 images of every digit (1000)", "auroc": rows, "mean": means}


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


def bench_ped2(tmp: Path, family: str, steps: int, held_out: str = "16") -> dict[str, Any]:
    """Train on every training clip but one, calibrate on that clip (max false alarm 1 %) and measure on it."""
    clips = sorted(PED2.glob("*.mp4"))
    train = [str(c) for c in clips if c.stem != held_out]
    hold = PED2 / f"{held_out}.mp4"
    over: dict[str, Any] = {"height": 60, "width": 90, "batch": 16} if family != "lstm" else \
        {"height": 24, "width": 36, "seq_len": 8, "batch": 16}
    t0 = time.time()
    model = _train(tmp, f"ped2_{family}", train, family, steps, **over)
    t_train = time.time() - t0
    out: dict[str, Any] = {"task": "ped2_false_alarm", "family": family, "steps": steps, "train_clips": len(train),
                           "held_out": hold.name, "train_s": round(t_train, 1)}
    frames = _frames(hold)
    half = len(frames) // 2
    for smoothing in (1, 3):
        cal_out = tmp / f"ped2_{family}_cal{smoothing}.onnx"
        cal = calibrate(model, [str(hold)], max_false_alarm=0.01, out=cal_out, device="cpu", threads=1,
                        smoothing=smoothing)
        det = AnomalyDetector(cal_out, device="cpu", threads=1)
        flags = [det.score(f).flag for f in frames]
        # honest variant: calibrate on the first half of the held-out clip, measure on the second half
        det.reset()
        s_all = np.array([det.score(f).score for f in frames])
        thr_half = threshold_for(s_all[:half], 0.01)
        out[f"smoothing_{smoothing}"] = {
            "threshold": cal.threshold,
            "false_alarm_same_clip": float(np.mean(flags)),
            "false_alarm_second_half_calibrated_on_first_half": float(np.mean(s_all[half:] > thr_half)),
        }
    print(json.dumps(out, indent=1))
    return out


def bench_intel(tmp: Path, family: str, steps: int) -> dict[str, Any]:
    """Train on the empty room (frames 0-50), score every later frame, AUROC against the hand labels, events."""
    frames = _frames(INTEL)
    labels = np.zeros(len(frames), bool)
    for a, b in INTEL_PEOPLE:
        labels[a : b + 1] = True
    folder = tmp / "intel_empty"
    folder.mkdir(exist_ok=True)
    a, b = INTEL_TRAIN
    for i in range(a, b + 1):
        cv2.imwrite(str(folder / f"{i:04d}.png"), frames[i])
    over: dict[str, Any] = {"height": 54, "width": 96, "batch": 16, "val_share": 0.0}
    if family == "lstm":
        msg = "the intel benchmark trains image families (the training part is a folder of frames)"
        raise SystemExit(msg)
    model = _train(tmp, f"intel_{family}", [str(folder)], family, steps, channels=3, **over)
    # calibrate on the training frames themselves (the only normal footage the deployment would have)
    cal_out = tmp / "intel_cal.onnx"
    calibrate(model, [str(folder)], max_false_alarm=0.0, out=cal_out, device="cpu", threads=1)
    out: dict[str, Any] = {"task": "intel_empty_room", "family": family, "steps": steps,
                           "train_frames": f"{a}-{b}", "people": INTEL_PEOPLE}
    det = AnomalyDetector(cal_out, device="cpu", threads=1)
    s = np.array([det.score(f).score for f in frames])
    test = np.arange(len(frames)) > b
    near = np.zeros(len(frames), bool)
    for lo, hi in INTEL_PEOPLE:
        near[max(lo - 5, 0) : lo + 5] = True
        near[max(hi - 5, 0) : hi + 6] = True
    out["auroc_all_later_frames"] = auroc(s[test & ~labels], s[test & labels])
    out["auroc_without_5_frames_at_boundaries"] = auroc(s[test & ~labels & ~near], s[test & labels & ~near])
    thr = det.threshold
    events = find_events(list(s), thr, 0.8 * thr, 5, fps=10.0)
    out["threshold"] = thr
    out["events"] = [(e.start_frame, e.end_frame, e.peak_frame) for e in events]
    out["false_alarm_empty_later_frames"] = float(np.mean(s[test & ~labels] > thr))
    out["recall_person_frames"] = float(np.mean(s[labels] > thr))
    timing = []
    for lo, hi in INTEL_PEOPLE:
        hit = [e for e in events if e.start_frame <= hi and e.end_frame >= lo]
        timing.append({"person": [lo, hi], "event_start_delay_frames": (hit[0].start_frame - lo) if hit else None,
                       "event_end_minus_leave_frames": (max(e.end_frame for e in hit) - hi) if hit else None,
                       "events": len(hit)})
    out["timing"] = timing
    print(json.dumps(out, indent=1))
    return out


def bench_speed(tmp: Path, model: Path | None, seconds: float = 20.0) -> dict[str, Any]:
    """Frames per second of detect (score + every output) at 360x240 and 640x480 on this machine."""
    from edge_runtime.cli_detect import detect_stream
    from edge_runtime.sources import open_source

    if model is None:
        base = _train(tmp, "speed_conv", [str(PED2 / "01.mp4")], "convolutional", 30, height=60, width=90, batch=8)
        model = tmp / "speed_cal.onnx"
        calibrate(base, [str(PED2 / "01.mp4")], out=model, device="cpu", threads=1)
    src = _frames(PED2 / "02.mp4")[:150]
    out: dict[str, Any] = {"task": "detect_speed", "model": str(model), "cpu_count": os.cpu_count()}
    for w, h in ((360, 240), (640, 480)):
        clip = tmp / f"speed_{w}x{h}.avi"
        vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
        for f in src:
            vw.write(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA))
        vw.release()
        for what in ("scores only", "all outputs"):
            det = AnomalyDetector(model, device="cpu", threads=1)  # one thread: CPU ms per frame -> fps on one core
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
    p.add_argument("part", choices=["mnist", "ped2", "intel", "speed"])
    p.add_argument("--family", default=None, help="mnist: variational; ped2/intel: convolutional")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--scores", default="mse,ssim", help="mnist: scores to report")
    p.add_argument("--model", type=Path, help="speed: a calibrated model (default: train a small one)")
    p.add_argument("--json", type=Path, help="append the result as one JSON line here")
    a = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench_anomaly_") as t:
        tmp = Path(t)
        if a.part == "mnist":
            res = bench_mnist(tmp, a.family or "variational", a.steps or 400,
                              [int(k) for k in a.digits.split(",")], a.scores.split(","))
        elif a.part == "ped2":
            res = bench_ped2(tmp, a.family or "convolutional", a.steps or 400)
        elif a.part == "intel":
            res = bench_intel(tmp, a.family or "convolutional", a.steps or 300)
        else:
            res = bench_speed(tmp, a.model)
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
