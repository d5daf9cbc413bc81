"""Benchmark of the autoencoder families on the MNIST development subset (``python -m train.bench_families``).

Trains every family on a fixed split of ../shared/data/anomaly/mnist_train_subset_5k (80 %), measures on
the rest (20 %): reconstruction MSE, bottleneck size, parameters, ONNX size, onnxruntime latency per
sample at batch 1 and 256, and PCA (numpy SVD on the same training split) at each model's code size.
The lstm row reads each digit as a sequence of 28 rows of 28 pixels.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from export.families import export_model
from train.config import build_config
from train.data_ae import read_digit_table
from train.loop_ae import AE_FAMILIES, LAYOUTS, reconstruction_mse
from train.objectives import objective_loss
from train.registry import create_model

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "anomaly" / "mnist_train_subset_5k" / "mnist_5k.csv.gz"
BOTTLENECK = {"undercomplete": 32, "denoising": 32, "contractive": 32, "variational": 32, "lstm": 32, "sparse": 1024}


def pca_mse(train: np.ndarray, test: np.ndarray, k: int) -> float:
    mu = train.mean(0)
    _, _, vt = np.linalg.svd(train - mu, full_matrices=False)
    p = vt[: min(k, vt.shape[0])]
    return float((((test - mu) @ p.T @ p + mu - test) ** 2).mean())


def latency_ms(path: Path, sample: np.ndarray, batch: int, threads: int, repeats: int) -> float:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = {"input": np.ascontiguousarray(np.repeat(sample[:1], batch, axis=0))}
    extra = [i for i in sess.get_inputs() if i.name != "input"]
    for i in extra:
        feeds[i.name] = np.zeros((0, i.shape[1]), np.float32)
    sess.run(None, feeds)
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            sess.run(None, feeds)
        best = min(best, (time.perf_counter() - t) / repeats)
    return best * 1000 / batch


def shape_for(family: str, x: np.ndarray) -> np.ndarray:
    layout = LAYOUTS[family]
    if layout == "NCHW":
        return x.reshape(-1, 1, 28, 28)
    if layout == "NTF":
        return x.reshape(-1, 28, 28)  # rows as time steps
    return x


def run(steps: int, threads: int, families: list[str], data: Path = MNIST) -> list[dict[str, object]]:
    torch.set_num_threads(threads)
    images, _ = read_digit_table(data)
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(0.8 * len(x))
    train, test = x[order[:cut]], x[order[cut:]]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            torch.manual_seed(0)
            cfg = build_config("ae", family=family, batch=64, lr=2e-3)
            args: dict[str, object] = {"features": 28 if family == "lstm" else 784}
            if family == "convolutional":
                args = {"channels": 1, "height": 28, "width": 28}
            elif family == "sparse":
                args["hidden"] = BOTTLENECK[family]
            else:
                args["bottleneck"] = BOTTLENECK[family]
            model = create_model(family, **args)
            xt, xv = torch.from_numpy(shape_for(family, train)), torch.from_numpy(shape_for(family, test))
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            gen = torch.Generator().manual_seed(0)
            start = time.monotonic()
            for step in range(steps):
                for g in opt.param_groups:
                    g["lr"] = 1e-5 + 0.5 * (cfg.lr - 1e-5) * (1 + math.cos(math.pi * step / steps))
                idx = torch.randint(len(xt), (cfg.batch,), generator=gen)
                loss, _ = objective_loss(family, model, xt[idx], cfg.objective, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            train_s = time.monotonic() - start
            mse = reconstruction_mse(model, xv)
            layout = LAYOUTS[family]
            payload = {"config": {**cfg.to_dict(), "family": family, "model": args}, "task": "reconstruct",
                       "input": {"layout": layout, "channels": 1, "height": 1 if layout == "NTF" else 28,
                                 "width": 28, "seq_len": 28 if layout == "NTF" else None},
                       "metrics": {"val_mse": mse}}
            out = Path(tmp) / f"{family}.onnx"
            export_model(model, payload, out)
            z = int(model.bottleneck)
            sample = xv[:1].numpy()
            rows.append({
                "family": family, "mse": mse, "pca_mse": pca_mse(train, test, z), "bottleneck": z,
                "params": sum(p.numel() for p in model.parameters()), "onnx_kb": out.stat().st_size / 1024,
                "ms_b1": latency_ms(out, sample, 1, threads, 50), "ms_b256": latency_ms(out, sample, 256, threads, 3),
                "train_s": train_s,
            })
            print(_row(rows[-1]), flush=True)
    return rows


HEADER = ("| family | recon. MSE (held-out) | PCA MSE, same size | bottleneck | parameters | ONNX KB "
          "| ms/sample batch 1 | ms/sample batch 256 | train s |\n|---|---|---|---|---|---|---|---|---|")


def _row(r: dict[str, object]) -> str:
    return (f"| {r['family']} | {r['mse']:.4f} | {r['pca_mse']:.4f} | {r['bottleneck']} | {r['params']:,} | "
            f"{r['onnx_kb']:.0f} | {r['ms_b1']:.3f} | {r['ms_b256']:.4f} | {r['train_s']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training steps per family (batch 64)")
    ap.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    ap.add_argument("--families", nargs="*", default=list(AE_FAMILIES))
    ap.add_argument("--data", type=Path, default=MNIST)
    a = ap.parse_args()
    if not a.data.is_file():
        raise SystemExit(f"error: {a.data}: MNIST subset not found (it lives in ../shared/data)")
    print(HEADER)
    run(a.steps, a.threads, a.families, a.data)


if __name__ == "__main__":
    main()
