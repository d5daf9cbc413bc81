"""Denoisers on REAL camera noise (noisy photo, ground truth = mean of many shots), in one run.

    python -m benchmarks.real_noise [--model PATH ...] [--pairs DIR] [--strength S ...] [--json out.json]

Pairs are ``<name>_real.<ext>`` (noisy) and ``<name>_mean.<ext>`` (ground truth) in DIR; the default DIR is
the PolyU sample in ../shared/data/denoising/realnoise_dev/PolyU (non-commercial licence: read in place,
never copied). Images up to ``--crop`` pixels a side are used whole, larger ones as up to
``--crops-per-pair`` fixed ``--crop`` x ``--crop`` windows spread over the image. PSNR in dB on uint8,
mean over crops. OpenCV non-local means (h grid, then hColor at the best h) and the bilateral filter
(d x sigmaColor x sigmaSpace grid) get their best setting chosen on the same crops (in their favour);
every model runs through ``edge_runtime.Denoiser``.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import cv2
import numpy as np

from edge_runtime.denoiser import Denoiser
from edge_runtime.quality import psnr

SHARED = Path(os.environ.get("EDGE_AE_SHARED", Path(__file__).resolve().parents[2] / "shared" / "data"))
DEFAULT_PAIRS = SHARED / "denoising" / "realnoise_dev" / "PolyU"
SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
NLM_H = [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0]  # real sRGB noise here is sigma 2-7: brackets the best h
# d 13 and d -1 (from sigmaSpace) were no better on PolyU
BILATERAL = [(d, sc, ss) for d in (5, 9) for sc in (10.0, 20.0, 30.0, 45.0, 60.0) for ss in (1.5, 3.0, 5.0)]

Crop = tuple[str, np.ndarray, np.ndarray]  # (name, noisy BGR, clean BGR)


def find_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(noisy, ground truth) files: every ``*_real.*`` with a ``*_mean.*`` of the same stem beside it."""
    pairs = []
    for noisy in sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.stem.endswith("_real")):
        mean = noisy.with_name(noisy.stem[: -len("_real")] + "_mean" + noisy.suffix)
        if mean.is_file():
            pairs.append((noisy, mean))
    return pairs


def windows(h: int, w: int, size: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of up to ``count`` fixed ``size`` windows spread evenly over an h x w image."""
    if h <= size and w <= size:
        return [(0, 0)]
    rows = max(1, round(np.sqrt(count * h / w)))
    cols = max(1, count // rows)
    ys = np.linspace(0, max(h - size, 0), rows).round().astype(int)
    xs = np.linspace(0, max(w - size, 0), cols).round().astype(int)
    return [(int(y), int(x)) for y in ys for x in xs][:count]


def load_crops(pairs: list[tuple[Path, Path]], size: int, count: int) -> list[Crop]:
    crops = []
    for noisy_path, mean_path in pairs:
        noisy, clean = cv2.imread(str(noisy_path), cv2.IMREAD_COLOR), cv2.imread(str(mean_path), cv2.IMREAD_COLOR)
        if noisy is None or clean is None or noisy.shape != clean.shape:
            msg = f"{noisy_path.name}: unreadable, or not the size of {mean_path.name}"
            raise click.ClickException(msg)
        name = noisy_path.stem[: -len("_real")]
        h, w = noisy.shape[:2]
        for y, x in windows(h, w, size, count):
            crops.append((f"{name}@{y},{x}", noisy[y : y + size, x : x + size], clean[y : y + size, x : x + size]))
    return crops


def camera(name: str) -> str:
    """The camera a PolyU name starts with (``Canon5D2_5_160_3200_chair_11`` -> ``Canon5D2``)."""
    return name.split("_")[0]


def scores(crops: list[Crop], method: Callable[[np.ndarray], np.ndarray]) -> dict[str, float]:
    """Mean PSNR of ``method``'s output over all crops and per camera, and seconds per crop."""
    per: dict[str, list[float]] = {}
    t = time.perf_counter()
    for name, noisy, clean in crops:
        value = psnr(method(noisy), clean)
        per.setdefault("all", []).append(value)
        per.setdefault(camera(name), []).append(value)
    out = {k: statistics.mean(v) for k, v in per.items()}
    out["s_per_crop"] = (time.perf_counter() - t) / len(crops)
    return out


def best_of(crops: list[Crop], grid: dict[str, Callable[[np.ndarray], np.ndarray]],
            log: Callable[[str], None]) -> tuple[str, dict[str, float]]:
    """The grid setting with the best mean PSNR on ``crops``; a best setting at an edge of the grid is said."""
    results = {}
    for label, method in grid.items():
        results[label] = scores(crops, method)
        log(f"  {label}: {results[label]['all']:.3f} dB")
    best = max(results, key=lambda k: results[k]["all"])
    labels = list(grid)
    if best in (labels[0], labels[-1]):
        log(f"  note: the best setting {best} is at an end of the grid")
    return best, results[best]


def strength_argument() -> str | None:
    """Where this runtime's Denoiser takes ``strength``: "denoise", "init" or None (not at all)."""
    if "strength" in inspect.signature(Denoiser.denoise).parameters:
        return "denoise"
    if "strength" in inspect.signature(Denoiser.__init__).parameters:
        return "init"
    return None


def _bind(fn: Callable[..., np.ndarray], kwargs: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda frame: fn(frame, **kwargs)


def _nlm_at(h: float, h_colour: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda frame: np.asarray(cv2.fastNlMeansDenoisingColored(frame, None, h, h_colour, 7, 21))


def _bilateral(d: int, sigma_colour: float, sigma_space: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda frame: np.asarray(cv2.bilateralFilter(frame, d, sigma_colour, sigma_space))


def model_methods(paths: list[str | None], strengths: list[float], threads: int | None,
                  ensemble: int = 1) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """One denoising function per model and strength, labelled for the table."""
    where = strength_argument()
    if strengths and where is None:
        click.echo("note: this runtime's Denoiser takes no strength argument; --strength is ignored", err=True)
    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for path in paths:
        base = Denoiser(path, device="cpu", threads=threads)
        label = f"model {base.model.path.name}"
        methods[label] = base.denoise
        if ensemble > 1:  # what edge-ae denoise does with an image file
            methods[f"{label} {ensemble} views"] = _bind(base.denoise, {"ensemble": ensemble})
        for s in strengths if where else []:
            kwargs: dict[str, Any] = {"strength": s}  # passed by name: a runtime without it never gets here
            if where == "denoise":
                methods[f"{label} strength={s:g}"] = _bind(base.denoise, kwargs)
            else:
                methods[f"{label} strength={s:g}"] = Denoiser(path, device="cpu", threads=threads, **kwargs).denoise
    return methods


def _nlm_from(label: str) -> Callable[[np.ndarray], np.ndarray]:
    """The non-local means of a table label: "h=4 hColor=3" or "h=hColor=4"."""
    values = [float(v.split("=")[-1]) for v in label.split()]
    return _nlm_at(values[0], values[-1])


STRIP_WINDOW = 128  # pixels of each crop shown, enlarged 2x


def strip_image(crops: list[Crop], methods: dict[str, Callable[[np.ndarray], np.ndarray]], rows: int = 3) -> np.ndarray:
    """A before/after grid (BGR uint8): for ``rows`` crops spread over the list, the central
    ``STRIP_WINDOW`` pixels of each method's output and of the ground truth, enlarged 2x, labelled. Each method
    sees the whole crop (a window alone would cut its context)."""
    picks = [crops[i] for i in np.linspace(0, len(crops) - 1, min(rows, len(crops))).round().astype(int)]
    labels = [*methods, "ground truth"]
    cells: list[list[np.ndarray]] = []
    for _, noisy, clean in picks:
        h, w = noisy.shape[:2]
        s = min(STRIP_WINDOW, h, w)
        y, x = (h - s) // 2, (w - s) // 2
        outs = [np.asarray(m(noisy)) for m in methods.values()] + [clean]
        cells.append([cv2.resize(o[y : y + s, x : x + s], (2 * s, 2 * s), interpolation=cv2.INTER_NEAREST)
                      for o in outs])
    side = cells[0][0].shape[0]
    header = np.full((28, side * len(labels) + 4 * (len(labels) - 1), 3), 255, np.uint8)
    for i, text in enumerate(labels):
        cv2.putText(header, text[:24], (i * (side + 4) + 4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    gap = np.full((side, 4, 3), 255, np.uint8)
    lines = [header]
    for row in cells:
        parts: list[np.ndarray] = []
        for cell in row:
            parts += [cell, gap]
        lines += [np.hstack(parts[:-1]), np.full((4, header.shape[1], 3), 255, np.uint8)]
    return np.vstack(lines[:-1])


def write_strip(path: Path, crops: list[Crop], methods: dict[str, Callable[[np.ndarray], np.ndarray]]) -> None:
    """``strip_image`` as a PNG at ``path`` (written beside it, then renamed: never a half-written file)."""
    tmp = path.with_name(f".{path.name}.part.png")
    ok, buf = cv2.imencode(".png", strip_image(crops, methods))
    if not ok:  # pragma: no cover - PNG encoding of a valid uint8 image does not fail
        msg = f"{path}: could not encode the strip"
        raise click.ClickException(msg)
    tmp.write_bytes(buf.tobytes())
    tmp.replace(path)


def table(rows: list[tuple[str, str, dict[str, float]]], noisy_psnr: float, cameras: list[str]) -> str:
    head = ["method", "setting", "PSNR all (dB)", "vs noisy", *[f"{c} (dB)" for c in cameras], "s / crop"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, setting, r in rows:
        cells = [method, setting, f"{r['all']:.2f}", f"{r['all'] - noisy_psnr:+.2f}",
                 *[f"{r[c]:.2f}" for c in cameras], f"{r['s_per_crop']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@click.command()
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="ONNX model to test (repeatable; default: the bundled one).")
@click.option("--pairs", type=click.Path(path_type=Path), default=DEFAULT_PAIRS, show_default=True,
              help="Folder of *_real / *_mean image pairs.")
@click.option("--strength", "strengths", multiple=True, type=float,
              help="Also run each model at this strength (repeatable; if the runtime's Denoiser takes one).")
@click.option("--crop", type=int, default=512, show_default=True, help="Crop side in pixels.")
@click.option("--crops-per-pair", type=int, default=4, show_default=True,
              help="Fixed crops per image larger than --crop.")
@click.option("--threads", type=int, help="onnxruntime threads.")
@click.option("--ensemble", type=click.Choice(["1", "2", "4", "8"]), default="8", show_default=True,
              help="Also run each model on this many views of each crop (what edge-ae denoise does with an image).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results.")
@click.option("--strip", "strip_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a before/after PNG: a window of a few crops, one row each (noisy, best non-local "
                   "means, best bilateral, each model, ground truth), enlarged 2x.")
def main(models: tuple[str, ...], pairs: Path, strengths: tuple[float, ...], crop: int, crops_per_pair: int,
         threads: int | None, ensemble: str, json_path: Path | None, strip_path: Path | None) -> None:
    """PSNR on real noisy / ground-truth pairs: noisy, best non-local means, best bilateral, each model."""
    if not pairs.is_dir():
        click.echo(f"skipped: no pairs folder {pairs} (real-noise pairs are not present here)")
        return
    found = find_pairs(pairs)
    if not found:
        msg = f"{pairs}: no <name>_real.<ext> / <name>_mean.<ext> image pairs"
        raise click.ClickException(msg)
    crops = load_crops(found, crop, crops_per_pair)
    cameras = sorted({camera(n) for n, _, _ in crops})
    log = lambda s: click.echo(s, err=True)  # noqa: E731
    log(f"{len(found)} pairs, {len(crops)} crops, cameras {', '.join(cameras)}")
    noisy = scores(crops, np.asarray)
    rows: list[tuple[str, str, dict[str, float]]] = [("noisy", "", noisy)]
    log("non-local means (fastNlMeansDenoisingColored, templateWindowSize 7, searchWindowSize 21), h = hColor:")
    label, r = best_of(crops, {f"h={h:g}": _nlm_at(h, h) for h in NLM_H}, log)
    h = float(label.removeprefix("h="))
    log(f"then hColor at h={h:g}:")  # real chroma noise is weaker than luma noise: a lower hColor may win
    grid = {f"h={h:g} hColor={hc:g}": _nlm_at(h, hc) for hc in (0.5 * h, 0.75 * h, 1.5 * h)}
    grid_best, grid_r = best_of(crops, grid, log)
    label, r = (grid_best, grid_r) if grid_r["all"] > r["all"] else (f"h=hColor={h:g}", r)
    rows.append(("OpenCV non-local means", f"best {label}", r))
    shown: dict[str, Callable[[np.ndarray], np.ndarray]] = {"noisy": np.asarray, "non-local means": _nlm_from(label)}
    log("bilateral filter:")
    bil = {f"d={d} sigmaColor={sc:g} sigmaSpace={ss:g}": _bilateral(d, sc, ss) for d, sc, ss in BILATERAL}
    setting, r = best_of(crops, bil, log)
    rows.append(("OpenCV bilateral", f"best {setting}", r))
    shown["bilateral"] = bil[setting]
    for label, method in model_methods(list(models) or [None], list(strengths), threads, int(ensemble)).items():
        rows.append((label, "", scores(crops, method)))
        shown[label.removeprefix("model ")] = method
        log(f"{label}: {rows[-1][2]['all']:.3f} dB")
    click.echo(f"\nReal noise: {len(found)} pairs in {pairs} ({len(crops)} crops of up to {crop}x{crop}); "
               "PSNR in dB on uint8, mean over crops; grid settings chosen on the same crops.\n")
    click.echo(table(rows, noisy["all"], cameras))
    click.echo("\ncommand: python -m benchmarks.real_noise " + shlex.join(sys.argv[1:]))
    if json_path:
        json_path.write_text(json.dumps({"pairs": str(pairs), "crops": len(crops),
                                         "rows": [{"method": m, "setting": s, **r} for m, s, r in rows]}, indent=2))
    if strip_path:
        write_strip(strip_path, crops, shown)
        click.echo(f"wrote {strip_path}")


if __name__ == "__main__":
    main()
