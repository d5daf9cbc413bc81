"""What kind of input a path is, as every command sees it: a folder of images and videos together is refused
(a run takes one kind), and a camera device path is a camera."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
from click.testing import CliRunner

from edge_runtime.cli import cli
from tests.helpers import CLEAN_CLIP, read_frames


def _mixed(tmp_path: Path) -> Path:
    mixed = tmp_path / "mixed"
    (mixed / "clips").mkdir(parents=True)
    cv2.imwrite(str(mixed / "still.png"), read_frames(CLEAN_CLIP, 1)[0][:64, :96])
    shutil.copy(CLEAN_CLIP, mixed / "clips" / "walk.mkv")
    return mixed


def _one_error(output: str, *needles: str) -> None:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    for n in needles:
        assert n in lines[0], lines[0]


def test_a_folder_of_images_and_videos_is_refused_naming_it(tmp_path: Path, tiny_onnx: Path) -> None:
    mixed = _mixed(tmp_path)
    out = tmp_path / "out"
    runs = [["denoise", str(mixed), "-o", str(out)],
            ["denoise", str(mixed), "-o", str(out), "-m", str(tiny_onnx)],
            ["denoise", str(mixed), str(CLEAN_CLIP), "-o", str(out)],  # a batch naming it
            ["detect", str(mixed), "-m", str(tiny_onnx), "--scores", str(tmp_path / "s.csv")],
            ["info", "--for", str(mixed)]]
    for args in runs:
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 1, (args, r.output)
        _one_error(r.stderr, f"{mixed}: holds both images (1, e.g. still.png) and videos (1, e.g. clips/walk.mkv)",
                   "separate folders")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed"]
    # each kind on its own is what it was: the images through default.onnx, the videos through video.onnx
    (mixed / "clips").rename(tmp_path / "clips")
    r = CliRunner().invoke(cli, ["info", "--for", str(mixed)])
    assert r.exit_code == 0 and "bundled model default.onnx" in r.output, r.output
    r = CliRunner().invoke(cli, ["info", "--for", str(tmp_path / "clips")])
    assert r.exit_code == 0 and "bundled model video.onnx" in r.output, r.output


def test_a_camera_device_path_gets_the_video_model() -> None:
    for camera in ("/dev/video0", "/dev/video12", "0"):
        r = CliRunner().invoke(cli, ["info", "--for", camera])
        assert r.exit_code == 0 and f"used for    {camera} -> bundled model video.onnx" in r.output, r.output


def test_a_camera_device_path_is_a_camera(tmp_path: Path) -> None:
    """/dev/videoN is camera N (not "a device cannot be read"): like --camera, it needs -o or --show, and a camera
    that is not there is one clear error with nothing written. (This machine has no camera at that index.)"""
    from edge_runtime.sources import camera_device

    assert camera_device("/dev/video3") == 3 and camera_device("/dev/video") is None
    assert camera_device("/dev/video3x") is None and camera_device("video3") is None
    r = CliRunner().invoke(cli, ["denoise", "/dev/video47"])
    assert r.exit_code == 2 and "needs -o OUTPUT or --show" in r.output
    out = tmp_path / "cam.mp4"
    r = CliRunner().invoke(cli, ["denoise", "/dev/video47", "-o", str(out), "--give-up", "1"])
    assert r.exit_code != 0 and "camera 47: cannot be opened" in r.output, r.output
    assert not out.exists()
