"""`edge-ae train --family video_denoiser`: warm start from a single-frame model, sequence training, going on
from its own checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from edge_runtime.model import Model, default_model_path  # noqa: E402
from tests.helpers import CLEAN_CLIP, read_frames  # noqa: E402
from train.checkpoint import load_checkpoint  # noqa: E402
from train.cli import train_command  # noqa: E402
from train.loop_video import warm_start  # noqa: E402
from train.registry import create_model  # noqa: E402


def test_a_warm_started_model_on_an_empty_state_is_the_single_frame_model() -> None:
    """Before any training, the first frame of a stream (or a still) goes through the bundled model's
    weights unchanged: the state inputs are zero there and the gate is cut off."""
    torch.set_num_threads(1)
    model = create_model("video_denoiser").eval()
    assert "20 of 23 tensors" in warm_start(model, default_model_path())
    frame = read_frames(CLEAN_CLIP, 1)[0][:64, :96, ::-1]
    noisy = np.clip(frame / 255.0 + np.random.default_rng(0).normal(0, 0.1, frame.shape), 0, 1)
    x = np.ascontiguousarray(noisy.transpose(2, 0, 1)[None], dtype=np.float32)
    with torch.no_grad():
        got, state = model(torch.from_numpy(x), model.empty_state(torch.from_numpy(x)))
    expected = Model("default", device="cpu", threads=1).run(x)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)
    assert state.shape == (1, 4, 64, 96)


def test_train_warm_starts_and_goes_on_from_its_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    run = CliRunner().invoke
    first, second = tmp_path / "v1.pt", tmp_path / "v2.pt"
    common = ["--family", "video_denoiser", "--preset", "tiny", str(CLEAN_CLIP), "--threads", "1", "--batch", "2",
              "--seq-len", "3", "--steps-per-epoch", "2"]
    r = run(train_command, [*common, "--init-from", str(tiny_checkpoint), "-o", str(first)])
    assert r.exit_code == 0, r.output
    assert "tensors from" in r.output and "(conv_denoiser)" in r.output  # all but the 3 new ones
    v1, payload = load_checkpoint(first)
    single, _ = load_checkpoint(tiny_checkpoint)
    assert payload["config"]["family"] == "video_denoiser" and payload["data"]["init_from"] == str(tiny_checkpoint)
    r = run(train_command, [*common, "--init-from", str(first), "-o", str(second)])
    assert r.exit_code == 0, r.output
    n = len(v1.state_dict())
    assert f"{n} of {n} tensors" in r.output and "(video_denoiser)" in r.output  # all of them: going on
    r = run(train_command, [str(CLEAN_CLIP), "--family", "undercomplete", "--init-from", str(first), "-o",
                            str(tmp_path / "v3.pt")])
    assert r.exit_code == 1 and "--init-from applies to the image denoisers" in r.output
    assert not torch.equal(v1.state_dict()["down1.0.weight"], single.state_dict()["down1.0.weight"])  # it trained


def test_warm_start_from_the_exported_video_model_goes_on_from_all_of_its_weights() -> None:
    """--init-from the bundled video.onnx: its joined head/tail initializers split back into the named
    tensors, so the network runs as the exported graph does, state included, frame after frame."""
    torch.set_num_threads(1)
    model = create_model("video_denoiser").eval()
    assert "23 of 23 tensors" in warm_start(model, default_model_path("video"))
    onnx_model = Model("video", device="cpu", threads=1)
    frames = read_frames(CLEAN_CLIP, 3)
    rng = np.random.default_rng(0)
    state = model.empty_state(torch.zeros(1, 3, 64, 96))
    for frame in frames:
        clean = frame[:64, :96, ::-1] / 255.0
        noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
        x = np.ascontiguousarray(noisy.transpose(2, 0, 1)[None], dtype=np.float32)
        expected = onnx_model.session.run(None, {"input": x, "state": state.numpy()})
        with torch.no_grad():
            got, state = model(torch.from_numpy(x), state)
        np.testing.assert_allclose(got.numpy(), expected[0], atol=1e-5)
        np.testing.assert_allclose(state.numpy(), expected[1], atol=1e-5)
