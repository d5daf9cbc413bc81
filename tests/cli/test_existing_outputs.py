"""Every command that writes a file treats an existing one as denoise does: refused without -y (one line naming
it, exit 1, nothing written), replaced with -y; and each writes only its own kind of file (.pt, .onnx, ...).
`calibrate` without -o rewrites its model in place, as documented."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner, Result

from edge_runtime.cli import cli
from edge_runtime.model import Model
from tests.helpers import CLEAN_CLIP, SHARED, read_frames

pytest.importorskip("torch")

PED2_01 = SHARED / "anomaly/ucsd_ped2_train/01.mp4"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def listing(folder: Path) -> dict[str, str]:
    """Name -> digest of everything in ``folder``, hidden temporary files included."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def refused(r: Result, path: Path, *needles: str) -> None:
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def victims(tmp_path: Path, tiny_onnx: Path) -> Path:
    """A folder of files a careless -o could destroy: a PNG, a video, an exported model, a .npy, a checkpoint."""
    d = tmp_path / "work"
    d.mkdir()
    shutil.copy(tiny_onnx, d / "victim.onnx")
    cv2.imwrite(str(d / "victim.png"), read_frames(CLEAN_CLIP, 1)[0][:48, :64])
    shutil.copy(CLEAN_CLIP, d / "victim.mp4")
    (d / "victim.npy").write_bytes(b"codes someone cares about")
    (d / "victim.pt").write_bytes(b"not a checkpoint, but someone's file")
    return d


def test_train_refuses_an_existing_checkpoint_and_other_suffixes(frames_dir: Path, tiny_checkpoint: Path,
                                                                tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    mine = work / "my.pt"
    shutil.copy(tiny_checkpoint, mine)
    (work / "my.onnx").write_bytes(b"an exported model")
    before = listing(work)
    train = ["train", "--preset", "tiny", frames_dir, "--epochs", "1", "--steps-per-epoch", "2", "--threads", "1"]
    refused(run(*train, "-o", mine), mine, "already exists", "-y")
    refused(run(*train, "-o", work / "my.onnx"), work / "my.onnx", "writes a checkpoint", ".pt",
            f"edge-ae export {work / 'my.pt'} -o {work / 'my.onnx'}")
    refused(run(*train, "-o", work / "new.png"), work / "new.png", "ending in .pt")
    assert listing(work) == before
    # going on from its own checkpoint: its weights are read first, then -y lets the run replace it
    r = run(*train, "--init-from", mine, "-o", mine, "-y")
    assert r.exit_code == 0, r.output
    assert "tensors from" in r.output
    from train.checkpoint import load_checkpoint

    _, payload = load_checkpoint(mine)
    assert payload["data"]["init_from"] == str(mine) and payload["complete"] is True
    assert sorted(p.name for p in work.iterdir()) == ["my.onnx", "my.pt"]  # no temporary file left


def test_export_refuses_existing_files_and_non_onnx_names(tiny_checkpoint: Path, victims: Path) -> None:
    before = listing(victims)
    refused(run("export", tiny_checkpoint, "-o", victims / "victim.png"), victims / "victim.png",
            "an ONNX model", "ending in .onnx")
    refused(run("export", tiny_checkpoint, "-o", victims / "victim.onnx"), victims / "victim.onnx",
            "already exists", "-y")
    refused(run("export", tiny_checkpoint, "-o", victims / "new.pt"), victims / "new.pt", "ending in .onnx")
    assert listing(victims) == before
    r = run("export", tiny_checkpoint, "-o", victims / "victim.onnx", "-y")
    assert r.exit_code == 0, r.output
    assert Model(victims / "victim.onnx", device="cpu").card.family == "conv_denoiser"
    assert set(listing(victims)) == set(before)


@pytest.mark.skipif(not PED2_01.exists(), reason="needs ../shared/data/anomaly/ucsd_ped2_train")
def test_calibrate_refuses_existing_outputs_and_still_rewrites_its_model_in_place(victims: Path) -> None:
    from tests.anomaly_data import fresh_copy, scene_model

    model = fresh_copy(scene_model(), "scene_for_outputs.onnx")
    shutil.copy(model, victims / "scene.onnx")
    model = victims / "scene.onnx"
    (victims / "clip.mp4").write_bytes(PED2_01.read_bytes())
    before = listing(victims)
    cal = ["calibrate", model, victims / "clip.mp4", "--max-frames", "40", "--max-false-alarm", "0.05", "--threads",
           "1", "--no-tolerance"]
    refused(run(*cal, "-o", victims / "victim.mp4"), victims / "victim.mp4", "ending in .onnx")
    refused(run(*cal, "-o", victims / "victim.onnx"), victims / "victim.onnx", "already exists", "-y")
    refused(run(*cal, "-o", victims / "clip.mp4"), victims / "clip.mp4", "ending in .onnx")
    assert listing(victims) == before
    r = run(*cal, "-o", victims / "victim.onnx", "-y")
    assert r.exit_code == 0, r.output
    assert Model(victims / "victim.onnx", device="cpu").card.anomaly is not None
    assert listing(victims)["scene.onnx"] == before["scene.onnx"]
    for extra in ([], ["-o", str(model)]):  # without -o, or -o MODEL: the model itself is rewritten, atomically
        r = run(*cal, *extra)
        assert r.exit_code == 0, r.output
        assert Model(model, device="cpu").card.anomaly is not None
        assert set(listing(victims)) == set(before)


def test_calibrate_too_few_frames_names_the_input(victims: Path) -> None:
    if not PED2_01.exists():
        pytest.skip("needs ../shared/data/anomaly/ucsd_ped2_train")
    from tests.anomaly_data import scene_model

    r = run("calibrate", scene_model(), PED2_01, "--max-frames", "8", "-o", victims / "c.onnx", "--threads", "1")
    refused(r, PED2_01, "8 normal frame(s) are too few")
    assert not (victims / "c.onnx").exists()


@pytest.fixture(scope="module")
def vae() -> Path:
    if not (SHARED / "anomaly/mnist_train_subset_5k").exists():
        pytest.skip("needs ../shared/data/anomaly/mnist_train_subset_5k")
    from tests.anomaly_data import digit_model

    return digit_model(0, "variational")


def test_encode_reconstruct_and_sample_refuse_existing_outputs(vae: Path, victims: Path) -> None:
    from tests.anomaly_data import digit_split

    digits = victims / "digits"
    digits.mkdir()
    for i, image in enumerate(digit_split(0)[0][:3]):
        cv2.imwrite(str(digits / f"{i}.png"), image)
    before = listing(victims)
    refused(run("encode", vae, digits, "-o", victims / "victim.npy"), victims / "victim.npy", "already exists")
    refused(run("encode", vae, digits, "-o", victims / "victim.png"), victims / "victim.png", "ending in .npy")
    refused(run("reconstruct", vae, digits / "0.png", "-o", victims / "victim.png"), victims / "victim.png",
            "already exists")
    refused(run("reconstruct", vae, digits, "-o", victims / "victim.mp4"), victims / "victim.mp4", "already exists")
    refused(run("reconstruct", vae, digits, "-o", victims / "victim.onnx"), victims / "victim.onnx",
            "an image or a video")
    refused(run("sample", vae, "-n", "4", "-o", victims / "victim.png"), victims / "victim.png", "already exists")
    refused(run("sample", vae, "-n", "4", "-o", victims / "victim.onnx"), victims / "victim.onnx", "ending in one of")
    out = victims / "rec"
    out.mkdir()
    (out / "1.png").write_bytes(b"an earlier result")
    r = run("reconstruct", vae, digits, "-o", out)
    refused(r, out, "1 of the 3 images", "1.png", "-y")
    assert listing(victims) == before and listing(out) == {"1.png": hashlib.sha256(b"an earlier result").hexdigest()}
    assert listing(digits) == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in digits.iterdir()}
    for args in (["encode", vae, digits, "-o", victims / "victim.npy"],
                 ["reconstruct", vae, digits, "-o", victims / "victim.mp4"],
                 ["reconstruct", vae, digits, "-o", out],
                 ["sample", vae, "-n", "4", "-o", victims / "victim.png"]):
        r = run(*args, "-y")
        assert r.exit_code == 0, r.output
    assert cv2.imread(str(victims / "victim.png")) is not None
    assert cv2.imread(str(out / "1.png")) is not None
    assert set(listing(victims)) == set(before)
