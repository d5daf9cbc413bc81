"""edge-ae's video default and single-frame model against ffmpeg's denoisers, on the same noisy frames, in one run.

    python -m benchmarks.ffmpeg_denoise [--sigmas 15 25] [--clips bottle person bikes cockatoo] [--threads 2]

The clips, the noise and the PSNR are those of ``benchmarks.video_denoise`` (held-out clips, AWGN added to the
decoded uint8 frames with the same seeds, mean per-frame PSNR per clip, then the mean over clips). ffmpeg (the
binary of the imageio-ffmpeg package, which edge-ae does not depend on: ``pip install imageio-ffmpeg``; else an
ffmpeg on PATH, or ``--ffmpeg``) reads the noisy frames as raw
BGR from a pipe, converts them to planar RGB (gbrp: no YUV rounding), runs the filter with ``-filter_threads``
threads and writes raw BGR back. Each filter's strength is chosen per sigma from a grid on these same frames,
in the filter's favour. atadenoise and fftdnoiz (prev = next = 1) also read future frames; hqdn3d and nlmeans,
like edge-ae, do not. fps is frames over the wall time of the ffmpeg processes (start-up and pipes included:
rough, but the same for every filter) and, for edge-ae, over the time of the ``Denoiser`` calls.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Callable

import numpy as np

from benchmarks.video_denoise import CLIPS, psnr, read
from edge_runtime.denoiser import Denoiser


def find_ffmpeg(given: str | None) -> str:
    if given:
        return given
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found is None:
            raise SystemExit("no ffmpeg: install imageio-ffmpeg or give --ffmpeg PATH") from None
        return found


def run_ffmpeg(ffmpeg: str, frames: np.ndarray, chain: str, threads: int) -> tuple[np.ndarray, float]:
    """``frames`` (T, H, W, 3) BGR through the filter ``chain`` -> (the filtered frames, seconds)."""
    h, w = frames.shape[1:3]
    cmd = [ffmpeg, "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", "25", "-i", "-",
           "-filter_threads", str(threads), "-vf", f"format=gbrp,{chain},format=bgr24",
           "-f", "rawvideo", "-pix_fmt", "bgr24", "-"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=False)
    seconds = time.perf_counter() - t0
    if r.returncode != 0 or len(r.stdout) != frames.nbytes:
        raise SystemExit(f"ffmpeg failed on {chain!r}: {r.stderr.decode(errors='replace')[-500:]}")
    return np.frombuffer(r.stdout, np.uint8).reshape(frames.shape), seconds


def grids(sigma: float) -> dict[str, list[str]]:
    """Filter settings tried at ``sigma`` (0..255 scale), per filter (repeats dropped)."""
    hq = [round(sigma * f, 1) for f in (0.5, 1.0, 1.8, 2.5, 3.5)]

    def capped(factors: tuple[float, ...]) -> list[float]:
        return list(dict.fromkeys(min(30.0, round(sigma * f, 1)) for f in factors))  # both filters stop at 30

    return {
        # luma_spatial : chroma_spatial : luma_tmp : chroma_tmp in the ratios that did best before (1 : .75 : 1.5 :
        # 1.125); its temporal taps read the past only
        "hqdn3d": [f"hqdn3d={s}:{0.75 * s:.2f}:{1.5 * s:.2f}:{1.125 * s:.2f}" for s in hq],
        "nlmeans": [f"nlmeans=s={s}:p=7:r=15" for s in capped((0.6, 0.8, 1.0))],
        # threshold A stops at 0.3; B above 1 changed nothing in a first run; s = frames averaged (past and future)
        "atadenoise": [f"atadenoise=0a={a}:1a={a}:2a={a}:0b={b}:1b={b}:2b={b}:s={n}"
                       for a, b, n in ((0.2, 0.6, 9), (0.3, 1.0, 9), (0.3, 1.0, 25), (0.3, 0.3, 25))],
        "fftdnoiz": [f"fftdnoiz=sigma={s}:prev=1:next=1" for s in capped((0.6, 1.0, 1.5, 2.0))],
    }


def mean_psnr(outs: dict[str, np.ndarray], clean: dict[str, np.ndarray]) -> float:
    return float(np.mean([np.mean([psnr(o[i], clean[k][i]) for i in range(len(o))]) for k, o in outs.items()]))


def through(make: Callable[[], Callable[[np.ndarray], np.ndarray]], frames: np.ndarray) -> tuple[np.ndarray, float]:
    """``frames`` through a fresh ``make()`` (timed), after one untimed call of another (a first call at a new
    size sets up buffers)."""
    make()(frames[0])
    fn = make()
    t0 = time.perf_counter()
    out = np.stack([fn(f) for f in frames])
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15.0, 25.0])
    ap.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    ap.add_argument("--threads", type=int, default=2, help="threads for ffmpeg's filters and for onnxruntime")
    ap.add_argument("--ffmpeg", help="ffmpeg binary (default: imageio-ffmpeg's)")
    args = ap.parse_args()
    ffmpeg = find_ffmpeg(args.ffmpeg)
    clean = {name: read(*CLIPS[name]) for name in args.clips}
    frames_total = sum(len(v) for v in clean.values())
    single = Denoiser("default", device="cpu", threads=args.threads)
    video = Denoiser("video", device="cpu", threads=args.threads)
    print(f"{ffmpeg}; clips {', '.join(args.clips)} ({frames_total} frames); {args.threads} threads; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for sigma in args.sigmas:
        noisy = {}
        for name, c in clean.items():
            rng = np.random.default_rng(int(sigma) * 1000 + len(name))  # as benchmarks.video_denoise
            noisy[name] = np.clip(np.round(c + rng.normal(0, sigma, c.shape)), 0, 255).astype(np.uint8)
        row: dict[str, tuple[float, float, str]] = {"noisy": (mean_psnr(noisy, clean), float("nan"), "")}
        for label, make in (("edge-ae video (default)", lambda: video.stream().denoise),
                            ("edge-ae single-frame", lambda: single.denoise)):
            outs, secs = {}, 0.0
            for name, n in noisy.items():
                outs[name], s = through(make, n)
                secs += s
            row[label] = (mean_psnr(outs, clean), frames_total / secs, "")
            print(f"σ{sigma:g} {label}: {row[label][0]:.2f} dB, {row[label][1]:.1f} fps", flush=True)
        for family, chains in grids(sigma).items():
            best: tuple[float, float, str] | None = None
            for chain in chains:
                outs, secs = {}, 0.0
                for name, n in noisy.items():
                    outs[name], s = run_ffmpeg(ffmpeg, n, chain, args.threads)
                    secs += s
                got = (mean_psnr(outs, clean), frames_total / secs, chain)
                print(f"σ{sigma:g} {chain}: {got[0]:.2f} dB, {got[1]:.1f} fps", flush=True)
                if best is None or got[0] > best[0]:
                    best = got
            assert best is not None
            if best[2] in (chains[0], chains[-1]):
                print(f"  note: the best {family} setting is at an end of its grid", flush=True)
            row[family] = best
        rows.append((sigma, row))
    keys = list(rows[0][1])
    print()
    print("| σ | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for sigma, row in rows:
        cells = [f"{row['noisy'][0]:.2f}"] + [f"{row[k][0]:.2f} dB, {row[k][1]:.1f} fps" for k in keys[1:]]
        print(f"| {sigma:g} | " + " | ".join(cells) + " |")
    for sigma, row in rows:
        print(f"σ{sigma:g} best settings: " + "; ".join(row[k][2] for k in keys if row[k][2]))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
