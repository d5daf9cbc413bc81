"""Quality and speed of a denoiser ONNX file against OpenCV non-local means, in one run.

    python -m benchmarks.denoise_quality [MODEL] --set12 DIR --colour DIR [--ensemble 8] [--json out.json]

Protocol: AWGN added to uint8 images, clipped to [0, 255] and rounded; PSNR on uint8. Grey
images (Set12) go through the model as grey frames. For non-local means the best h from a
small grid is chosen per sigma on the same images (which favours NLM). The model is scored on one view of
each image (``Denoiser.denoise``) and, in the same run, on ``--ensemble`` views (default 8: what
``edge-ae denoise`` does with an image file).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.denoiser import Denoiser
from edge_runtime.files import is_image
from edge_runtime.quality import add_awgn, nlm, psnr, ssim

# brackets the best h, grey and colour
NLM_H = {15: [8, 10, 12, 14, 16], 25: [13, 16, 19, 22, 25], 50: [22, 27, 32, 37, 42]}


def load(folder: Path, names: list[str] | None, grey: bool) -> list[tuple[str, np.ndarray]]:
    files = sorted(p for p in folder.iterdir() if is_image(p))
    if names is not None:
        files = [p for p in files if p.name in set(names)]
    flag = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    return [(p.name, cv2.imread(str(p), flag)) for p in files]


def evaluate(den: Denoiser, images: list[tuple[str, np.ndarray]], sigma: int, with_nlm: bool,
             seed: int = 0, ensemble: int = 1) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    noisy = [add_awgn(img, sigma, rng) for _, img in images]
    clean = [img for _, img in images]
    outs = [den.denoise(n) for n in noisy]
    row = {
        "sigma": sigma,
        "images": len(images),
        "noisy_psnr": statistics.mean(psnr(n, c) for n, c in zip(noisy, clean, strict=True)),
        "model_psnr": statistics.mean(psnr(o, c) for o, c in zip(outs, clean, strict=True)),
        "model_ssim": statistics.mean(ssim(o, c) for o, c in zip(outs, clean, strict=True)),
    }
    if ensemble > 1:
        views = [den.denoise(n, ensemble=ensemble) for n in noisy]
        row["views"] = ensemble
        row["model_views_psnr"] = statistics.mean(psnr(o, c) for o, c in zip(views, clean, strict=True))
    if with_nlm:
        best = max(
            ((h, statistics.mean(psnr(nlm(n, h), c) for n, c in zip(noisy, clean, strict=True))) for h in NLM_H[sigma]),
            key=lambda t: t[1],
        )
        row.update(nlm_h=best[0], nlm_psnr=best[1])
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def speed(den: Denoiser, frame: np.ndarray, runs: int = 30) -> dict[str, float]:
    for _ in range(3):
        den.denoise(frame)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        den.denoise(frame)
        times.append(time.perf_counter() - t)
    nlm_times = []
    for _ in range(5):
        t = time.perf_counter()
        nlm(frame, 10)
        nlm_times.append(time.perf_counter() - t)
    model_ms = 1000 * statistics.median(times)
    nlm_ms = 1000 * statistics.median(nlm_times)
    return {"frame": f"{frame.shape[1]}x{frame.shape[0]}", "denoiser_ms_median": round(model_ms, 2),
            "denoiser_ms_p90": round(1000 * sorted(times)[int(0.9 * len(times))], 2),
            "nlm_coloured_ms": round(nlm_ms, 1), "nlm_over_denoiser": round(nlm_ms / model_ms, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="ONNX model (default: the bundled one)")
    ap.add_argument("--set12", type=Path, help="folder of grey test images (Set12)")
    ap.add_argument("--colour", type=Path, help="folder of colour images; only the model's validation split is used")
    ap.add_argument("--all-colour", action="store_true",
                    help="use every image in --colour, not only the validation split")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--ensemble", type=int, default=8, choices=(1, 2, 4, 8),
                    help="also score the model on this many views of each image (1: one view only)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    den = Denoiser(args.model, device="cpu", threads=args.threads)
    result: dict[str, object] = {"model": str(den.model.path), "provider": den.model.provider}
    if args.set12:
        grey = load(args.set12, None, grey=True)
        result["set12"] = [evaluate(den, grey, s, with_nlm=True, ensemble=args.ensemble) for s in (15, 25, 50)]
        print(json.dumps(result["set12"]), flush=True)
    if args.colour:
        names = None if args.all_colour else den.model.card.provenance.get("data", {}).get("validation_images")
        colour = load(args.colour, names, grey=False)
        result["colour"] = [evaluate(den, colour, s, with_nlm=True, ensemble=args.ensemble)
                            for s in (15, 25, 50)]
        print(json.dumps(result["colour"]), flush=True)
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    if args.colour:
        img = cv2.imread(str(next(p for p in sorted(args.colour.iterdir()) if p.suffix.lower() in (".jpg", ".png"))))
        frame = cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA)
    result["speed"] = speed(den, frame)
    print(json.dumps(result["speed"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
