"""Every registered family: its spec, then train a few steps -> export -> run through the runtime -> same as torch.

The sweeps read the registry, not a hand list; a throw-away family defined here (one spec, as one new
file under train/families would) goes the same way. Runs on a fresh clone: the 8x8 digits and the Intel
clip are committed in tests/data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from torch import nn  # noqa: E402

from edge_runtime.autoencoder import Autoencoder  # noqa: E402
from edge_runtime.cli import cli  # noqa: E402
from edge_runtime.model import Model  # noqa: E402
from export.onnx_export import export_checkpoint  # noqa: E402
from tests.families_data import fit, fixed_size_families  # noqa: E402
from tests.helpers import CLEAN_CLIP, DATA  # noqa: E402
from train.config import build_config  # noqa: E402
from train.errors import UnknownFamilyError  # noqa: E402
from train.objectives import ObjectiveConfig, Parts  # noqa: E402
from train.registry import create_model, family_spec, list_families  # noqa: E402
from train.spec import AUTOENCODER_OUTPUTS, ROLES, FamilySpec  # noqa: E402

DIGITS = str(DATA / "digits.csv.gz")


def test_unknown_family_lists_the_registered_ones() -> None:
    with pytest.raises(UnknownFamilyError, match="valid families: .*contractive.*variational"):
        create_model("nope")


@pytest.mark.parametrize("family", list_families())
def test_every_spec_matches_its_network(family: str) -> None:
    """Built by the spec's size rule and code argument, the network takes the spec's inputs in its layout
    and returns one tensor per output role, frame-shaped where the role is image, reconstruction or appearance."""
    spec = family_spec(family)
    assert spec.name == family and set(spec.outputs.values()) <= set(ROLES)
    assert ("seq_len" in spec.options) == (spec.layout == "NTF" or spec.state_channels > 0)
    assert ("patch" in spec.options) != spec.fixed_size
    c, h, w = 1, 8, 8
    args = spec.arguments(c, h, w) if spec.fixed_size else spec.arguments(c, None, None)
    if spec.code_argument:
        args[spec.code_argument] = 5
    model = spec.build(**args).eval()
    x = torch.rand({"image": (2, c, 16, 16), "NF": (2, c * h * w), "NCHW": (2, c + spec.past_frames, h, w),
                    "NTF": (2, 3, c * h * w)}[spec.layout])
    extra = [torch.rand(3, int(getattr(model, e.width))) for e in spec.extra_inputs]
    if spec.state_channels:  # a recurrent image family: the state, shaped like the frame batch
        extra.append(torch.rand(2, spec.state_channels_of(model), 16, 16))
    with torch.no_grad():
        out = model(x, *extra)
    out = (out,) if isinstance(out, torch.Tensor) else out
    outputs = spec.outputs_of(model)  # the spec's, or the network's own (the predictor's appearance branch)
    assert set(outputs.values()) <= set(ROLES) and len(out) == len(outputs)
    for y, role in zip(out, outputs.values(), strict=True):
        if role in ("image", "reconstruction", "appearance"):  # a predictor's: the present frame of the stack
            assert y.shape == (x[:, spec.past_frames :].shape if spec.past_frames else x.shape), role
        if role == "state":
            assert y.shape == extra[-1].shape, role
        if role in ("latent", "mean") and spec.code_argument:
            assert y.shape == (2, 5), role
    if spec.fixed_size:
        loss, parts = spec.objective(model.train(), x, ObjectiveConfig(), torch.Generator().manual_seed(0))
        assert loss.ndim == 0 and torch.isfinite(loss) and parts


def train_export_run(family: str, tmp_path: Path, frames_dir: Path) -> None:
    """Train ``family`` a few steps with the project's loop, export it, and run it through onnxruntime."""
    spec = family_spec(family)
    out = tmp_path / "m.onnx"
    if spec.state_channels:  # a recurrent image model: the sequence loop, then 10 closed-loop frames at two sizes
        from train.checkpoint import load_checkpoint
        from train.loop_video import train_video

        ckpt = tmp_path / "v.pt"
        train_video(build_config("tiny", family=family, threads=1, steps_per_epoch=3, batch=2, seq_len=3),
                    [str(CLEAN_CLIP)], ckpt, log=lambda s: None)
        card = export_checkpoint(ckpt, out)
        assert card.state is not None and card.state.channels == 4 and card.metrics["export_parity_max_abs"] < 1e-4
        model, _ = load_checkpoint(ckpt)
        m = Model(out, device="cpu", threads=1)
        for shape in [(1, 3, 16, 24), (2, 3, 40, 8)]:
            clip = np.random.default_rng(0).random((10, *shape), dtype=np.float32)
            state, t_state = None, model.empty_state(torch.from_numpy(clip[0]))
            for x in clip:
                y, state = m.run_state(x, state)
                with torch.no_grad():
                    t_y, t_state = model(torch.from_numpy(x), t_state)
                np.testing.assert_allclose(y, t_y.numpy(), atol=1e-4)
                np.testing.assert_allclose(state, t_state.numpy(), atol=1e-4)
        return
    if not spec.fixed_size:  # an any-size image model: the denoiser loop, then the runtime's Model at two sizes
        from train.checkpoint import load_checkpoint
        from train.loop import train_denoiser

        ckpt = tmp_path / "d.pt"
        train_denoiser(build_config("tiny", family=family, threads=1, steps_per_epoch=3), [str(frames_dir)], ckpt,
                       log=lambda s: None)
        card = export_checkpoint(ckpt, out)
        assert (card.input.layout, card.outputs, card.anomaly) == (spec.card_layout, dict(spec.outputs), None)
        model, _ = load_checkpoint(ckpt)
        m = Model(out, device="cpu", threads=1)
        for shape in [(1, 3, 16, 24), (2, 3, 40, 8)]:
            x = np.random.default_rng(0).random(shape, dtype=np.float32)
            with torch.no_grad():
                np.testing.assert_allclose(m.run(x), model(torch.from_numpy(x)).numpy(), atol=1e-4)
        return
    task = "anomaly" if spec.score else "reconstruct"
    if spec.past_frames:  # a predictor: stacks of past frames + the present cut from a video
        model, _, ckpt = fit(tmp_path, [str(CLEAN_CLIP)], family, 5, batch=4, task=task, height=16, width=24)
        card = export_checkpoint(ckpt, out)
        assert (card.family, card.input.past_frames, card.input.channels) == (family, spec.past_frames, 1)
        x = np.random.default_rng(0).random((3, spec.past_frames + 1, 16, 24), dtype=np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x))[0].numpy()
        np.testing.assert_allclose(Model(out, device="cpu", threads=1).run(x), expected, atol=1e-5)
        return
    if spec.layout == "NTF":
        model, _, ckpt = fit(tmp_path, [str(CLEAN_CLIP)], family, 5, seq_len=6, batch=4, task=task)
    else:
        model, _, ckpt = fit(tmp_path, [DIGITS], family, 20, task=task)
    card = export_checkpoint(ckpt, out)
    assert card.task == task and card.family == family
    assert (card.input.layout, card.outputs) == (spec.card_layout, dict(spec.outputs))
    assert card.anomaly is None if task != "anomaly" else card.anomaly.score == spec.score
    ae = Autoencoder(out, device="cpu", threads=1)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (8, 8) if spec.layout != "NTF" else (30, 40, 3), dtype=np.uint8) for _ in range(13)]
    x = ae.frames_to_array(frames)
    if spec.layout == "NTF":
        x, _ = ae.sequences(x)
        assert x.shape[1] == 6
    extra = [torch.zeros(0, int(getattr(model, e.width))) for e in spec.extra_inputs]
    with torch.no_grad():
        out_torch = model(torch.from_numpy(x), *extra)
    roles = list(spec.outputs.values())
    np.testing.assert_allclose(ae.reconstruct_batch(x), out_torch[roles.index("reconstruction")].numpy(), atol=1e-5)
    z = out_torch[roles.index("mean" if "mean" in roles else "latent")]
    np.testing.assert_allclose(ae.encode_batch(x), z.reshape(len(z), -1).numpy(), atol=1e-5)
    assert len(ae.reconstruct(frames)) == len(frames)
    errors = ae.errors(x)
    assert errors.shape == (len(x),) and np.all(errors >= 0)


@pytest.mark.parametrize("family", list_families())
def test_family_train_export_runtime_parity(family: str, tmp_path: Path, frames_dir: Path) -> None:
    train_export_run(family, tmp_path, frames_dir)


# ---------------------------------------------------------------- a family added by one spec


class TinyAutoencoder(nn.Module):
    """A throw-away family: one linear layer down to the code, one back up."""

    def __init__(self, features: int, bottleneck: int = 4) -> None:
        super().__init__()
        self.features, self.bottleneck = features, bottleneck
        self.encoder = nn.Linear(features, bottleneck)
        self.decoder = nn.Sequential(nn.Linear(bottleneck, features), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)  # (B, Z)
        return self.decoder(z), z  # (B, F), (B, Z)


def mean_abs_objective(model: nn.Module, x: torch.Tensor, cfg: ObjectiveConfig,
                       gen: torch.Generator | None) -> tuple[torch.Tensor, Parts]:
    pred, _ = model(x)
    loss = (pred - x).abs().mean()
    return loss, {"mae": loss.item()}


TINY = FamilySpec("throwaway_tiny_ae", TinyAutoencoder, layout="NF", outputs=AUTOENCODER_OUTPUTS,
                  objective=mean_abs_objective)


def test_a_family_added_by_one_spec_trains_exports_and_runs(register_spec: Callable[..., str], tmp_path: Path,
                                                            frames_dir: Path) -> None:
    tiny_family = register_spec(TINY)
    assert tiny_family in list_families() and tiny_family in fixed_size_families()
    train_export_run(tiny_family, tmp_path, frames_dir)
    # the command line reads the registry too: the code size option goes to the spec's code argument
    ck, onnx_path = tmp_path / "t.pt", tmp_path / "t.onnx"
    run = CliRunner().invoke
    r = run(cli, ["train", "--family", tiny_family, DIGITS, "--epochs", "1", "--steps-per-epoch", "5",
                  "--bottleneck", "3", "--threads", "1", "-o", str(ck)])
    assert r.exit_code == 0, r.output
    assert " mae " in r.output  # the progress line shows the objective's parts
    r = run(cli, ["export", str(ck), "-o", str(onnx_path)])
    assert r.exit_code == 0, r.output
    assert Autoencoder(onnx_path, device="cpu").encode([np.zeros((8, 8), np.uint8)]).shape == (1, 3)
    r = run(cli, ["train", "--family", tiny_family, DIGITS, "--seq-len", "4", "-o", str(tmp_path / "x.pt")])
    assert r.exit_code == 1
    assert "--seq-len does not apply to family 'throwaway_tiny_ae' (it applies to lstm, video_denoiser)" in r.output
    assert not (tmp_path / "x.pt").exists()


def test_options_a_family_does_not_take_are_refused(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["train", "--family", "convolutional", DIGITS, "--bottleneck", "3",
                                 "-o", str(tmp_path / "c.pt")])
    assert r.exit_code == 1 and r.output.startswith("Error: --bottleneck does not apply to family 'convolutional'")
    assert r.output.count("\n") == 1 and list(tmp_path.iterdir()) == []


def test_lstm_runs_any_sequence_length(tmp_path: Path) -> None:
    model, _, ckpt = fit(tmp_path, [str(CLEAN_CLIP)], "lstm", 3, seq_len=6, batch=4, model={"hidden": 16})
    export_checkpoint(ckpt, tmp_path / "l.onnx")
    ae = Autoencoder(tmp_path / "l.onnx", device="cpu", threads=1)
    for t in (1, 6, 11):
        x = np.random.default_rng(t).random((2, t, model.features), dtype=np.float32)
        with torch.no_grad():
            np.testing.assert_allclose(ae.reconstruct_batch(x), model(torch.from_numpy(x))[0].numpy(), atol=1e-5)


def test_cli_train_export_encode_reconstruct_sample(tmp_path: Path) -> None:
    import cv2

    run = CliRunner().invoke
    ck, onnx_path = tmp_path / "v.pt", tmp_path / "v.onnx"
    r = run(cli, ["train", "--family", "variational", DIGITS, "--epochs", "1", "--steps-per-epoch", "30",
                  "--bottleneck", "3", "--threads", "1", "-o", str(ck)])
    assert r.exit_code == 0, r.output
    assert "validation: reconstruction MSE" in r.output
    r = run(cli, ["export", str(ck), "-o", str(onnx_path)])
    assert r.exit_code == 0, r.output
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(5):
        cv2.imwrite(str(imgs / f"{i}.png"), np.full((8, 8), 40 * i, np.uint8))
    r = run(cli, ["encode", str(onnx_path), str(imgs), "-o", str(tmp_path / "z.npy")])
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "z.npy").shape == (5, 3)
    r = run(cli, ["reconstruct", str(onnx_path), str(imgs), "-o", str(tmp_path / "rec")])
    assert r.exit_code == 0 and sorted(p.name for p in (tmp_path / "rec").iterdir()) == [f"{i}.png" for i in range(5)]
    r = run(cli, ["sample", str(onnx_path), "-n", "6", "--scale", "1", "--columns", "3", "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output
    assert cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED).shape == (2 * 10 + 2, 3 * 10 + 2)
    r = run(cli, ["sample", str(onnx_path), "--interpolate", str(imgs / "0.png"), str(imgs / "4.png"),
                  "--steps", "4", "--scale", "1", "-o", str(tmp_path / "w.png")])
    assert r.exit_code == 0, r.output
    assert cv2.imread(str(tmp_path / "w.png"), cv2.IMREAD_UNCHANGED).shape == (12, 4 * 10 + 2)
    # bad input: one Error line, non-zero exit, the input untouched
    before = (imgs / "0.png").read_bytes()
    r = run(cli, ["reconstruct", str(onnx_path), str(imgs / "0.png"), "-o", str(imgs / "0.png")])
    assert r.exit_code == 1 and "would overwrite the input" in r.output
    assert (imgs / "0.png").read_bytes() == before
    r = run(cli, ["encode", str(onnx_path), str(tmp_path / "missing"), "-o", str(tmp_path / "z2.npy")])
    assert r.exit_code == 1 and "no such file or folder" in r.output and not (tmp_path / "z2.npy").exists()


def test_sampling_needs_a_variational_model(tmp_path: Path) -> None:
    _, _, ckpt = fit(tmp_path, [DIGITS], "undercomplete", 2)
    export_checkpoint(ckpt, tmp_path / "u.onnx")
    r = CliRunner().invoke(cli, ["sample", str(tmp_path / "u.onnx"), "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 1 and "sampling needs a variational model" in r.output
    assert not (tmp_path / "g.png").exists()
