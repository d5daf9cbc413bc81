"""Each family proves its defining property on real data (../shared/data/anomaly), held-out samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.families_data import fit  # noqa: E402
from tests.helpers import DATA, shared  # noqa: E402
from train.objectives import ObjectiveConfig, corrupt_dense, gaussian_kl, jacobian_frobenius_sq  # noqa: E402

DIGITS = str(DATA / "digits.csv.gz")  # committed (CC BY 4.0): these run on a fresh clone too
LSTM_STEPS = 2000  # 1,200 steps passed seeds 0-4 by only 5 % (worst ratio 0.76 against 0.8); 2,000 give ~0.66


def pca_mse(train: np.ndarray, test: np.ndarray, k: int) -> float:
    mu = train.mean(0)
    _, _, vt = np.linalg.svd(train - mu, full_matrices=False)
    p = vt[:k]
    return float((((test - mu) @ p.T @ p + mu - test) ** 2).mean())


def test_undercomplete_beats_pca_at_equal_bottleneck(tmp_path: Path) -> None:
    data = DIGITS
    model, held, ckpt = fit(tmp_path, [data], "undercomplete", 1500, bottleneck=4, lr=3e-3, model={"hidden": [128]})
    payload = torch.load(ckpt, weights_only=True)
    # PCA fitted on exactly the samples the network trained on (the complement of the held-out split).
    from train.data import split
    from train.data_ae import load_images

    samples, _, _ = load_images([data], 1, None, None)
    train, _ = split(samples, 0.2)
    x_train = np.stack([s.image for s in train]).reshape(len(train), -1) / 255.0
    assert payload["data"]["train_samples"] == len(x_train)
    with torch.no_grad():
        ae = float(((model(held)[0] - held) ** 2).mean())
    pca = pca_mse(x_train, held.numpy().astype(np.float64), 4)
    assert ae < 0.8 * pca, (ae, pca)


def _activations(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.encode(x).numpy()


def test_sparse_penalty_makes_activations_sparser(tmp_path: Path) -> None:
    data = [DIGITS]
    arch = {"bottleneck": 128}  # 128 hidden units for 64 inputs: overcomplete
    plain, held, _ = fit(tmp_path, data, "sparse", 500, "plain", objective={"l1": 0.0}, **arch)
    l1, _, _ = fit(tmp_path, data, "sparse", 500, "l1", objective={"l1": 0.001}, **arch)
    kl, _, _ = fit(tmp_path, data, "sparse", 500, "kl", objective={"l1": 0.0, "kl_weight": 0.05, "rho": 0.05}, **arch)
    h0, h1, h2 = (_activations(m, held) for m in (plain, l1, kl))
    assert h1.shape[1] == 128 > held.shape[1]
    for h in (h1, h2):
        assert h.mean() < 0.5 * h0.mean(), (h.mean(), h0.mean())
        assert (h < 0.05).mean() > (h0 < 0.05).mean() + 0.2, ((h < 0.05).mean(), (h0 < 0.05).mean())
    assert abs(h2.mean(axis=0).mean() - 0.05) < abs(h0.mean(axis=0).mean() - 0.05)
    with torch.no_grad():  # the L1 model still reconstructs: clearly better than predicting the mean digit
        base = float(((held - held.mean(0)) ** 2).mean())
        assert float(((l1(held)[0] - held) ** 2).mean()) < 0.8 * base


def test_denoising_output_is_closer_to_clean_than_the_corrupted_input(tmp_path: Path) -> None:
    model, held, _ = fit(tmp_path, [DIGITS], "denoising", 800, bottleneck=32)
    g = torch.Generator().manual_seed(5)
    for kind, cfg in (("mask", ObjectiveConfig(mask_min=0.3, mask_max=0.3)), ("gaussian", ObjectiveConfig(sigma=0.3))):
        noisy = corrupt_dense(held, cfg, g, kind=kind)
        with torch.no_grad():
            out = model(noisy)[0]
        before = float(((noisy - held) ** 2).mean())
        after = float(((out - held) ** 2).mean())
        assert after < 0.6 * before, (kind, after, before)


def test_contractive_penalty_shrinks_the_encoder_jacobian(tmp_path: Path) -> None:
    data = [DIGITS]
    plain, held, _ = fit(tmp_path, data, "contractive", 400, "plain", objective={"contractive": 0.0}, bottleneck=16)
    cae, _, _ = fit(tmp_path, data, "contractive", 400, "cae", objective={"contractive": 0.1}, bottleneck=16)
    with torch.no_grad():
        j0 = jacobian_frobenius_sq(plain.encode, held).sqrt().mean().item()
        j1 = jacobian_frobenius_sq(cae.encode, held).sqrt().mean().item()
    assert j1 < 0.6 * j0, (j1, j0)


def test_jacobian_norm_is_exact() -> None:
    from train.registry import create_model

    torch.manual_seed(0)
    m = create_model("contractive", features=12, bottleneck=5, hidden=[7])
    x = torch.rand(3, 12)
    got = jacobian_frobenius_sq(m.encode, x)
    for i in range(3):
        j = torch.autograd.functional.jacobian(lambda v: m.encode(v[None])[0], x[i])  # (5, 12)
        assert torch.allclose(got[i], j.pow(2).sum(), rtol=1e-5, atol=1e-7)
    got.sum().backward()  # the penalty is differentiable with respect to the weights
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.encoder.parameters())


def test_variational_kl_samples_and_interpolation(tmp_path: Path) -> None:
    """Through the exported ONNX file and the torch-free runtime."""
    from edge_runtime.autoencoder import Autoencoder
    from export.onnx_export import export_checkpoint

    model, held, ckpt = fit(tmp_path, [DIGITS], "variational", 1500, bottleneck=4, lr=3e-3,
                            model={"hidden": [128]})
    with torch.no_grad():
        mean, logvar = model.encode(held)
        assert float(gaussian_kl(mean, logvar).mean()) > 1.0  # the code carries information (no collapse)
    export_checkpoint(ckpt, tmp_path / "vae.onnx")
    ae = Autoencoder(tmp_path / "vae.onnx", device="cpu", threads=1)
    real = held.numpy()
    samples = np.stack(ae.sample(64, seed=3)).reshape(64, -1) / 255.0
    # Noise with exactly the digits' intensities: the held-out digits with their pixels shuffled.
    rng = np.random.default_rng(0)
    noise = np.stack([rng.permutation(r) for r in real])

    def nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ((a[:, None, :] - b[None, :, :]) ** 2).mean(axis=2).min(axis=1)

    to_real, to_noise = nearest(samples, real).mean(), nearest(samples, noise).mean()
    assert to_real < 0.5 * to_noise, (to_real, to_noise)
    spread = lambda a: ((a[:, None] - a[None]) ** 2).mean(axis=2).mean()  # noqa: E731
    assert spread(samples) > 0.3 * spread(real)  # varied samples, not one average blob

    frames = [(r.reshape(8, 8) * 255 + 0.5).astype(np.uint8) for r in real[:2]]
    walk = np.stack(ae.interpolate(frames[0], frames[1], steps=10)).reshape(10, -1) / 255.0
    steps = np.linalg.norm(np.diff(walk, axis=0), axis=1)
    total = np.linalg.norm(walk[-1] - walk[0])
    assert total > 0 and steps.max() < 0.35 * total, (steps, total)  # no jumps: uniform would be 0.11


def test_convolutional_seed_architecture_trains_and_exports(tmp_path: Path) -> None:
    import onnx

    from export.onnx_export import export_checkpoint
    from train.loop_ae import reconstruction_mse
    from train.registry import create_model

    # The 8x8 digits enlarged to 24x24: the three stride-2 stages (small frames) take them to 3x3 and back.
    model, held, ckpt = fit(tmp_path, [DIGITS], "convolutional", 150, batch=32, height=24, width=24)
    untrained = create_model("convolutional", height=24, width=24, pool=False)
    assert reconstruction_mse(model, held) < 0.5 * reconstruction_mse(untrained, held)
    card = export_checkpoint(ckpt, tmp_path / "conv.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "conv.onnx")).graph.node]
    assert ops.count("MaxPool") == 0 and ops.count("Resize") == 3 and ops.count("Conv") == 7
    assert card.input.layout == "NCHW" and (card.input.height, card.input.width) == (24, 24)


def test_convolutional_pools_on_scenes_and_rebuilds_old_checkpoints_with_pooling() -> None:
    """Training names ``pool`` and ``code`` (stride 2 and 16 numbers up to 32 pixels, max-pool above); arguments
    without them (checkpoints written before they existed) rebuild the network they were trained as."""
    from train.families.convolutional import image_arguments
    from train.registry import create_model

    small, scene = image_arguments(1, 28, 28), image_arguments(3, 54, 96)
    assert small["pool"] is False and small["code"] == 16 and scene["pool"] is True and "code" not in scene
    assert create_model("convolutional", **small).bottleneck == 16
    old = create_model("convolutional", height=28, width=28)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in old.modules()) == 3 and old.bottleneck == 8


def test_convolutional_trains_on_corrupted_small_frames_and_clean_scenes() -> None:
    """Denoising training on small frames only: on a scene it cost the Intel benchmark its AUROC (0.999 -> 0.83)."""
    from train.families.convolutional import convolutional_objective
    from train.objectives import denoising_objective, plain_objective
    from train.registry import create_model

    cfg = ObjectiveConfig()
    for (h, w), expected in (((28, 28), denoising_objective), ((40, 48), plain_objective)):
        model = create_model("convolutional", height=h, width=w).eval()  # eval: clamped, deterministic
        x = torch.rand(4, 1, h, w, generator=torch.Generator().manual_seed(0))
        got, _ = convolutional_objective(model, x, cfg, torch.Generator().manual_seed(1))
        want, _ = expected(model, x, cfg, torch.Generator().manual_seed(1))
        other, _ = (plain_objective if expected is denoising_objective else denoising_objective)(
            model, x, cfg, torch.Generator().manual_seed(1))
        assert torch.equal(got, want) and not torch.equal(got, other), (h, w)


def test_lstm_reconstructs_real_order_better_than_shuffled_time(tmp_path: Path) -> None:
    """On a clip never trained on: real windows beat the same frames in another order, and beat the window mean.

    Three comparisons, all on the same frames: (1) every window shuffled inside itself (same frames, same
    window mean: only the order differs, so only a model of motion can tell them apart); (2) the clip's
    frames shuffled before cutting windows; (3) the window mean itself, which is all a centred model
    without a working code would give: the model must reconstruct the moving part, not just pass the
    background through.
    """
    # every Ped2 training clip but 05 (about 2,400 frames): two clips were too few windows to learn motion from
    clips = [str(shared(f"anomaly/ucsd_ped2_train/{i:02d}.mp4")) for i in range(1, 17) if i != 5]
    t = 8
    model, _, _ = fit(tmp_path, clips, "lstm", LSTM_STEPS, seq_len=t, val_share=0.0, batch=16, model={"hidden": 64})
    assert model.centre
    from train.data_ae import read_video_frames

    frames = read_video_frames(shared("anomaly/ucsd_ped2_train/05.mp4"), 1, 16, 24)  # a clip never trained on
    x = torch.from_numpy(frames).float().div(255).flatten(1)  # (N, F)
    n = len(x) // t * t
    g = torch.Generator().manual_seed(1)
    real = x[:n].reshape(-1, t, x.shape[1])  # (W, T, F) back-to-back windows
    in_window = torch.stack([w[torch.randperm(t, generator=g)] for w in real])
    across_clip = x[torch.randperm(len(x), generator=g)][:n].reshape(-1, t, x.shape[1])

    def err(w: torch.Tensor) -> float:
        with torch.no_grad():
            return float(((model(w)[0] - w) ** 2).mean())

    e_real, e_window, e_clip = err(real), err(in_window), err(across_clip)
    e_mean = float(((real - real.mean(dim=1, keepdim=True)) ** 2).mean())
    assert e_real < 0.8 * e_window, (e_real, e_window)
    assert e_real < 0.5 * e_clip, (e_real, e_clip)
    assert e_real < 0.8 * e_mean, (e_real, e_mean)
