"""Benchmark of the autoencoder families on the MNIST development subset (``python -m benchmarks.families``).

Trains every family on a fixed split of ../shared/data/anomaly/mnist_train_subset_5k (80 %), measures on
the rest (20 %): reconstruction MSE, bottleneck size, parameters, ONNX size, onnxruntime latency per
sample at batch 1 and 256, and PCA (numpy SVD on the same training split) at each model's code size.
The lstm row reads each digit as a sequence of 28 rows of 28 pixels, without window centring (a digit's
mean row passed around the code would be 28 numbers the other rows do not get).

numpy's BLAS is held to one thread before numpy loads: on a shared 2-core machine a multi-threaded
OpenBLAS SVD waited on preempted threads and took 250 s of wall time for 1 s of work.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from export.onnx_export import export_model  # noqa: E402
from train.config import build_config  # noqa: E402
from train.data_ae import read_digit_table  # noqa: E402
from train.loop_ae import reconstruction_mse  # noqa: E402
from train.registry import family_spec, list_families  # noqa: E402

MNIST = Path(__file__).resolve().parents[2] / "shared/data/anomaly/mnist_train_subset_5k/mnist_5k.csv.gz"
BOTTLENECK = {"sparse": 1024}  # code size by family where the spec has a code argument; 32 for the others


class PCA:
    """Principal axes of the training split, computed once (eigenvectors of the 784 x 784 covariance)."""

    def __init__(self, train: np.ndarray) -> None:
        x = train.astype(np.float64)
        self.mean = x.mean(0)
        _values, vectors = np.linalg.eigh(np.cov(x - self.mean, rowvar=False))
        self.axes = vectors[:, ::-1].T  # (F, F), strongest first

    def mse(self, test: np.ndarray, k: int) -> float:
        """Held-out reconstruction MSE from the first ``k`` axes."""
        p = self.axes[: min(k, len(self.axes))]
        d = test.astype(np.float64) - self.mean
        return float(((d @ p.T @ p - d) ** 2).mean())


def latency_ms(path: Path, sample: np.ndarray, batch: int, threads: int, calls: int) -> tuple[float, float]:
    """(median, fastest) milliseconds per sample over ``calls`` timed session runs at ``batch``.

    On a shared machine the median includes waiting for a core; the fastest call is closest to the
    model's own cost.
    """
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = {"input": np.ascontiguousarray(np.repeat(sample[:1], batch, axis=0))}
    extra = [i for i in sess.get_inputs() if i.name != "input"]
    for i in extra:
        feeds[i.name] = np.zeros((0, i.shape[1]), np.float32)
    for _ in range(3):
        sess.run(None, feeds)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000 / batch, min(times) * 1000 / batch


def shape_for(family: str, x: np.ndarray) -> np.ndarray:
    layout = family_spec(family).layout
    if layout == "NCHW":
        return x.reshape(-1, 1, 28, 28)
    if layout == "NTF":
        return x.reshape(-1, 28, 28)  # rows as time steps
    return x


def split(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row order, training 80 %, held-out 20 %) of the digit table, as flat float images; a fixed seed."""
    images, _ = read_digit_table(data)
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(0.8 * len(x))
    return order, x[order[:cut]], x[order[cut:]]


def run(steps: int, threads: int, families: list[str], data: Path = MNIST) -> list[dict[str, object]]:
    torch.set_num_threads(threads)
    _, train, test = split(data)
    pca = PCA(train)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            torch.manual_seed(0)
            spec = family_spec(family)
            layout = spec.layout
            cfg = build_config("ae", family=family, batch=64, lr=2e-3)
            args = spec.arguments(1, 1, 28) if layout == "NTF" else spec.arguments(1, 28, 28)  # NTF: a row a step
            if spec.code_argument is not None:
                args[spec.code_argument] = BOTTLENECK.get(family, 32)
            if "centre" in args:
                args["centre"] = False
            model = spec.build(**args)
            objective = spec.objective
            assert objective is not None, family  # every fixed-size family has one
            xt, xv = torch.from_numpy(shape_for(family, train)), torch.from_numpy(shape_for(family, test))
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            gen = torch.Generator().manual_seed(0)
            start, cpu = time.monotonic(), time.process_time()
            for step in range(steps):
                for g in opt.param_groups:
                    g["lr"] = 1e-5 + 0.5 * (cfg.lr - 1e-5) * (1 + math.cos(math.pi * step / steps))
                idx = torch.randint(len(xt), (cfg.batch,), generator=gen)
                loss, _ = objective(model, xt[idx], cfg.objective, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            train_s, train_cpu = time.monotonic() - start, time.process_time() - cpu
            mse = reconstruction_mse(model, xv)
            payload = {"config": {**cfg.to_dict(), "family": family, "model": args}, "task": "reconstruct",
                       "input": {"layout": layout, "channels": 1, "height": 1 if layout == "NTF" else 28,
                                 "width": 28, "seq_len": 28 if layout == "NTF" else None},
                       "metrics": {"val_mse": mse}}
            out = Path(tmp) / f"{family}.onnx"
            export_model(model, payload, out)
            z = int(model.bottleneck)
            sample = xv[:1].numpy()
            rows.append({
                "family": family, "mse": mse, "pca_mse": pca.mse(test, z), "bottleneck": z,
                "params": sum(p.numel() for p in model.parameters()), "onnx_kb": out.stat().st_size / 1024,
                "ms_b1": latency_ms(out, sample, 1, threads, 300), "ms_b256": latency_ms(out, sample, 256, threads, 30),
                "train_s": train_s, "train_cpu_s": train_cpu,
            })
            print(_row(rows[-1]), flush=True)
    return rows


def cli_run(minutes: float, families: list[str], data: Path = MNIST) -> None:
    """Each family through the command line a user runs (``edge-ae train --family F TRAIN.csv --max-minutes M``,
    the defaults otherwise) on the benchmark's training split; held-out MSE against PCA at the model's code size."""
    from click.testing import CliRunner

    from edge_runtime.cli import cli
    from train.checkpoint import load_checkpoint

    images, labels = read_digit_table(data)
    order, train, test = split(data)
    cut = len(train)
    pca = PCA(train)
    print("| family (CLI defaults) | minutes | steps | recon. MSE (held-out) | PCA MSE, same size | ratio |\n"
          "|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "train.csv"
        rows = np.concatenate([images[order[:cut]].reshape(cut, -1), labels[order[:cut], None]], axis=1)
        np.savetxt(table, rows, fmt="%d", delimiter=",")
        for family in families:
            ckpt = Path(tmp) / f"{family}.pt"
            r = CliRunner().invoke(cli, ["train", "--family", family, str(table), "--max-minutes", str(minutes),
                                         "-o", str(ckpt)])
            if r.exit_code != 0:
                raise SystemExit(f"{family}: edge-ae train failed: {r.output}")
            model, payload = load_checkpoint(ckpt)
            mse = reconstruction_mse(model, torch.from_numpy(shape_for(family, test)))
            z = int(model.bottleneck)
            ref = pca.mse(test, z)
            print(f"| {family} | {minutes:g} | {payload['metrics']['steps']} | {mse:.4f} | {ref:.4f} | "
                  f"{mse / ref:.2f} |", flush=True)


HEADER = ("| family | recon. MSE (held-out) | PCA MSE, same size | bottleneck | parameters | ONNX KB "
          "| ms/sample batch 1, median (fastest) | ms/sample batch 256, median (fastest) | train s wall (CPU) |\n"
          "|---|---|---|---|---|---|---|---|---|")


def _row(r: dict[str, object]) -> str:
    pca = "exact (size >= 784)" if r["bottleneck"] >= 784 else f"{r['pca_mse']:.4f}"
    b1, b256 = r["ms_b1"], r["ms_b256"]
    return (f"| {r['family']} | {r['mse']:.4f} | {pca} | {r['bottleneck']} | {r['params']:,} | "
            f"{r['onnx_kb']:.0f} | {b1[0]:.3f} ({b1[1]:.3f}) | {b256[0]:.4f} ({b256[1]:.4f}) | "
            f"{r['train_s']:.0f} ({r['train_cpu_s']:.0f}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="training steps per family (batch 64)")
    ap.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    # every fixed-size autoencoder (not the video predictor: it predicts frames, it does not reconstruct digits)
    ap.add_argument("--families", nargs="*", default=[f for f in list_families()
                                                      if family_spec(f).fixed_size and not family_spec(f).past_frames])
    ap.add_argument("--data", type=Path, default=MNIST)
    ap.add_argument("--cli-minutes", type=float,
                    help="instead: train each family through `edge-ae train --max-minutes M` with its defaults")
    a = ap.parse_args()
    if not a.data.is_file():
        raise SystemExit(f"error: {a.data}: MNIST subset not found (it lives in ../shared/data)")
    if a.cli_minutes:
        cli_run(a.cli_minutes, a.families, a.data)
        return
    print(HEADER, flush=True)
    cpu = time.process_time()
    run(a.steps, a.threads, a.families, a.data)
    print(f"\n{a.steps} steps per family, {a.threads} thread(s); whole run {time.process_time() - cpu:.0f} s of CPU")


if __name__ == "__main__":
    main()
