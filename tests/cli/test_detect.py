"""`edge-ae detect` on a real video and a folder of images with a really trained, calibrated model."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.anomaly import AnomalyDetector
from edge_runtime.calibration import calibrate
from edge_runtime.cli import cli
from tests.anomaly_data import _TMP, PED2, scene_model
from tests.helpers import read_frames, shared

pytest.importorskip("torch")


@functools.cache
def calibrated() -> Path:
    out = _TMP / "scene_calibrated.onnx"
    # Without the camera tolerance: this 60-step model scores the grey-level block of _clip_with_intruder only about
    # 8 % above the normal frames' threshold, and the same frames 5 % brighter about 10 % above it, so with the
    # tolerance 16 of the 20 block frames checked below are flagged (issue 14 report, REPORT_INTEL.md).
    calibrate(scene_model(), [str(shared(f"{PED2}/01.mp4"))], max_false_alarm=0.02, out=out, device="cpu",
              threads=1, smoothing=2, tolerance=False)
    return out


def _clip_with_intruder(tmp: Path) -> Path:
    """Ped2 clip 03 with a bright block crossing the scene from frame 40 to 70 (a real video, rewritten)."""
    frames = read_frames(shared(f"{PED2}/03.mp4"), 100)
    out = tmp / "intruder.avi"
    w = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (frames[0].shape[1], frames[0].shape[0]))
    for i, f in enumerate(frames):
        if 40 <= i < 70:
            x = 20 + 8 * (i - 40)
            f = f.copy()
            f[60:180, x : x + 70] = (255, 0, 255)
        w.write(f)
    w.release()
    return out


def _rows(p: Path) -> list[dict[str, str]]:
    with open(p, newline="") as f:
        return list(csv.DictReader(f))


def test_detect_video_writes_every_output(tmp_path: Path) -> None:
    clip = _clip_with_intruder(tmp_path)
    model = calibrated()
    out = {k: tmp_path / v for k, v in dict(scores="scores.csv", events="events.jsonl", video="annotated.mp4",
                                              snaps="snaps", plot="timeline.png").items()}
    res = CliRunner().invoke(cli, ["detect", str(clip), "-m", str(model), "--scores", str(out["scores"]),
                                   "--events", str(out["events"]), "-o", str(out["video"]), "--snapshots",
                                   str(out["snaps"]), "--plot", str(out["plot"]), "--threads", "1"])
    assert res.exit_code == 0, res.output
    rows = _rows(out["scores"])
    assert [int(r["frame"]) for r in rows] == list(range(100))
    assert float(rows[10]["time"]) == pytest.approx(1.0)
    flags = np.array([int(r["flag"]) for r in rows])
    assert flags[45:65].all() and flags[:30].sum() <= 3
    events = [json.loads(line) for line in out["events"].read_text().splitlines()]
    main = [e for e in events if e["start_frame"] <= 45 and e["end_frame"] >= 65]
    assert len(main) == 1 and 40 <= main[0]["peak_frame"] < 72
    assert {"start_time", "end_time", "peak_score", "threshold"} <= set(main[0])
    assert Path(main[0]["snapshot"]).is_file()
    assert len(list(out["snaps"].glob("*.png"))) == 2 * len(events)
    cap = cv2.VideoCapture(str(out["video"]))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, f = cap.read()
    assert ok and n == 100 and f.shape[:2] == (240 + 22, 360)
    plot = cv2.imread(str(out["plot"]))
    assert plot is not None and plot.shape[1] == 1200
    # the same scores frame by frame through the Python API
    det = AnomalyDetector(model, device="cpu", threads=1)
    api = [det.score(f) for f in read_frames(clip)]
    assert [f"{r.score:.6g}" for r in api] == [r["score"] for r in rows]
    assert [int(r.flag) for r in api] == list(flags)


def test_detect_folder_of_images_one_score_each(tmp_path: Path) -> None:
    frames = read_frames(shared(f"{PED2}/04.mp4"), 12)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"img{i:02d}.png"), cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) if i % 2 else f)
    scores = tmp_path / "s.csv"
    res = CliRunner().invoke(cli, ["detect", str(folder), "-m", str(calibrated()), "--scores", str(scores),
                                   "-o", str(tmp_path / "a.mp4"), "--threads", "1"])
    assert res.exit_code == 0, res.output
    rows = _rows(scores)
    assert [r["name"] for r in rows] == [f"img{i:02d}.png" for i in range(12)]
    assert (tmp_path / "a.mp4").is_file()


def test_detect_bad_inputs(tmp_path: Path) -> None:
    clip = str(shared(f"{PED2}/01.mp4"))
    s = str(tmp_path / "s.csv")
    r = CliRunner().invoke(cli, ["detect", clip, "-m", str(scene_model()), "--scores", s])
    assert r.exit_code == 1 and "no anomaly threshold" in r.output and "edge-ae calibrate" in r.output
    r = CliRunner().invoke(cli, ["detect", clip, "--scores", s])
    assert r.exit_code != 0 and "--model" in r.output
    from edge_runtime.model import default_model_path

    r = CliRunner().invoke(cli, ["detect", clip, "-m", str(default_model_path()), "--scores", s])
    assert r.exit_code == 1 and "denoising model cannot score anomalies" in r.output
    r = CliRunner().invoke(cli, ["detect", str(tmp_path / "none.mp4"), "-m", str(calibrated()), "--scores", s])
    assert r.exit_code == 1 and "none.mp4: no such file" in r.output
    r = CliRunner().invoke(cli, ["detect", clip, "-m", str(calibrated())])
    assert r.exit_code != 0 and "nothing to write" in r.output
    r = CliRunner().invoke(cli, ["detect", clip, "-m", str(calibrated()), "--scores", clip])
    assert r.exit_code == 1 and "is an input" in r.output
    r = CliRunner().invoke(cli, ["detect", clip, "-m", str(calibrated()), "--scores", str(tmp_path / "no" / "s.csv")])
    assert r.exit_code == 1 and "does not exist" in r.output
    assert not Path(s).exists()


def test_train_task_anomaly_export_calibrate_detect_chain(tmp_path: Path) -> None:
    """The whole chain through the command line: train on normal video, export, calibrate, detect."""
    clip = str(shared(f"{PED2}/05.mp4"))
    ckpt, model = tmp_path / "scene.pt", tmp_path / "scene.onnx"
    r = CliRunner().invoke(cli, ["train", "--task", "anomaly", clip, "--height", "24", "--width", "36", "--epochs", "1",
                                 "--steps-per-epoch", "5", "--threads", "1", "-o", str(ckpt)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(model)])
    assert r.exit_code == 0, r.output
    from edge_runtime.card_file import read_card

    card = read_card(model)
    assert card.task == "anomaly" and card.family == "predictor" and card.anomaly.threshold is None  # a video
    r = CliRunner().invoke(cli, ["calibrate", str(model), clip, "--max-frames", "40", "--max-false-alarm", "0.05",
                                 "--threads", "1"])
    assert r.exit_code == 0, r.output
    scores = tmp_path / "s.csv"
    r = CliRunner().invoke(cli, ["detect", clip, "-m", str(model), "--scores", str(scores), "--max-frames", "30",
                                 "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert len(_rows(scores)) == 30
    r = CliRunner().invoke(cli, ["train", "--task", "anomaly", "--family", "conv_denoiser", clip, "-o",
                                 str(tmp_path / "denoiser.pt")])
    assert r.exit_code != 0 and "--task anomaly trains one of" in r.output


ARCHIVE = ["2024/cam1/a.avi", "2024/cam2/b.avi", "2025/c.avi"]


def _archive(tmp: Path, frames: int = 30) -> Path:
    """Short cuts of real Ped2 clips in a tree of folders, and a corrupt video among them."""
    root = tmp / "archive"
    for i, name in enumerate(ARCHIVE):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        src = read_frames(shared(f"{PED2}/{i + 3:02d}.mp4"), frames)
        w = cv2.VideoWriter(str(root / name), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                            (src[0].shape[1], src[0].shape[0]))
        for f in src:
            w.write(f)
        w.release()
    (root / "2024" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return root


def _outputs(out: Path, name: str) -> tuple[Path, Path]:
    base = out / Path(name).with_suffix("")
    return base.with_name(base.name + ".scores.csv"), base.with_name(base.name + ".events.jsonl")


def test_detect_archive_writes_scores_and_events_per_video(tmp_path: Path) -> None:
    archive, out, manifest = _archive(tmp_path), tmp_path / "out", tmp_path / "done.jsonl"
    args = ["detect", str(archive), "-m", str(calibrated()), "-o", str(out), "--manifest", str(manifest),
            "--threads", "1"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1, r.output  # the corrupt video failed; the rest were scored
    assert "broken.mp4: FAILED" in r.output and "3 of 4 videos scored (90 frames), 1 failed" in r.output
    for name in ARCHIVE:
        scores, events = _outputs(out, name)
        assert [int(row["frame"]) for row in _rows(scores)] == list(range(30)), name
        assert all(json.loads(line)["threshold"] > 0 for line in events.read_text().splitlines())
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(str(p.relative_to(out)) for name in ARCHIVE for p in _outputs(out, name))
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(Path(x["source"]).name for x in lines) == ["a.avi", "b.avi", "broken.mp4", "c.avi"]
    by_name = {Path(x["source"]).name: x for x in lines}
    assert by_name["broken.mp4"]["status"] == "failed" and by_name["broken.mp4"]["error"]
    for name in ARCHIVE:
        x = by_name[Path(name).name]
        assert x["status"] == "done" and x["frames"] == 30 and x["output"] == str(_outputs(out, name)[0])
        assert {"flagged", "events"} <= set(x["extra"]) and x["extra"]["flagged"] >= 0

    # existing outputs are refused, --skip-existing redoes nothing that finished
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "3 of the 4 outputs already exist" in r.output and "--skip-existing" in r.output
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    r = CliRunner().invoke(cli, [*args, "--skip-existing"])
    assert r.exit_code == 1 and "3 videos already done" in r.output and "broken.mp4: FAILED" in r.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    last = [json.loads(line) for line in manifest.read_text().splitlines()][4:]
    assert sorted(x["status"] for x in last) == ["failed", "skipped", "skipped", "skipped"]
    # -y redoes them
    r = CliRunner().invoke(cli, [*args, "-y"])
    assert r.exit_code == 1 and "3 of 4 videos scored" in r.output
    assert all(p.stat().st_mtime_ns != t for p, t in stamps.items())


def test_detect_archive_shards_cover_every_video_once(tmp_path: Path) -> None:
    archive, out, manifest = _archive(tmp_path, frames=10), tmp_path / "out", tmp_path / "done.jsonl"
    (archive / "2024" / "broken.mp4").unlink()
    for k in (1, 2):
        r = CliRunner().invoke(cli, ["detect", str(archive), "-m", str(calibrated()), "-o", str(out), "--manifest",
                                     str(manifest), "--shard", f"{k}/2", "--threads", "1"])
        assert r.exit_code == 0, r.output
    sources = [json.loads(line)["source"] for line in manifest.read_text().splitlines()]
    assert sorted(Path(s).name for s in sources) == ["a.avi", "b.avi", "c.avi"]  # each once
    for name in ARCHIVE:
        assert len(_rows(_outputs(out, name)[0])) == 10


def test_detect_archive_bad_options(tmp_path: Path) -> None:
    archive = _archive(tmp_path, frames=5)
    base = ["detect", str(archive), "-m", str(calibrated())]
    r = CliRunner().invoke(cli, base)
    assert r.exit_code == 2 and "needs -o FOLDER" in r.output
    r = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "o"), "--ray"])
    assert r.exit_code == 2 and "No such option '--ray'" in r.output  # denoise's; detect shards instead
    r = CliRunner().invoke(cli, ["detect", "--help"])
    assert "--shard" in r.output and "--ray" not in r.output and "--workers" not in r.output
    r = CliRunner().invoke(cli, ["denoise", "--help"])
    assert "--ray" in r.output and "--workers" in r.output
    r = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "o"), "--scores", str(tmp_path / "s.csv")])
    assert r.exit_code == 2 and "for one input" in r.output
    clip = str(archive / ARCHIVE[0])
    r = CliRunner().invoke(cli, ["detect", clip, "-m", str(calibrated()), "--scores", str(tmp_path / "s.csv"),
                                 "--shard", "1/2"])
    assert r.exit_code == 2 and "are for a batch" in r.output
    assert not (tmp_path / "o").exists()
