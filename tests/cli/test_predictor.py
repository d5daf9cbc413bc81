"""The causal video predictor through the command line: the default for videos, causal scores, a pasted moving
object flagged in a real clip that is not flagged without it."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.anomaly import AnomalyDetector
from edge_runtime.card_file import read_card
from edge_runtime.cli import cli
from tests.anomaly_data import PED2, predictor_model
from tests.helpers import read_frames, shared, write_video

pytest.importorskip("torch")


def test_videos_train_the_predictor_by_default(tmp_path: Path) -> None:
    clip = str(shared(f"{PED2}/05.mp4"))
    ckpt, model = tmp_path / "p.pt", tmp_path / "p.onnx"
    r = CliRunner().invoke(cli, ["train", "--task", "anomaly", clip, "--epochs", "1", "--steps-per-epoch", "3",
                                 "--threads", "1", "-o", str(ckpt)])
    assert r.exit_code == 0, r.output
    assert CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(model)]).exit_code == 0
    card = read_card(model)
    assert card.family == "predictor" and card.input.past_frames == 4 and card.input.channels == 1
    assert (card.input.height, card.input.width) == (80, 120) and card.anomaly.score == "scene"
    assert card.anomaly.smoothing == 4  # the predictor's default: the mean of the last 4 frames' scores


def test_score_of_frame_t_never_depends_on_later_frames() -> None:
    det = AnomalyDetector(predictor_model(), device="cpu", threads=1, score="mse")
    assert det.smoothing == 4  # the card's default
    frames = read_frames(shared(f"{PED2}/06.mp4"), 30)
    results = [det.score(f) for f in frames]
    full = [r.raw for r in results]
    # the first 4 frames lack a real past: score 0 (raw keeps their own), never part of the smoothing
    assert [r.warmup for r in results[:6]] == [True] * 4 + [False] * 2
    assert all(r.score == 0.0 for r in results[:4]) and any(r.raw > 0 for r in results[1:4])
    for t in (4, 5, 7, 29):  # then the score compared with the threshold is the mean of the last 4 scored frames
        assert results[t].score == pytest.approx(np.mean(full[max(4, t - 3) : t + 1]), rel=1e-9), t
    rng = np.random.default_rng(0)
    for t in (0, 3, 4, 12):
        det.reset()
        changed = frames[: t + 1] + [rng.integers(0, 256, f.shape, np.uint8) for f in frames[t + 1 :]]
        part = [det.score(f).raw for f in changed]
        assert part[: t + 1] == full[: t + 1], t
        assert part[t + 1] != full[t + 1], t  # the change does reach the next frame's score


def _paste(frames: list[np.ndarray], start: int, stop: int) -> list[np.ndarray]:
    """A dark 20x40 ellipse crossing the scene at 6 px/frame between ``start`` and ``stop`` (a cyclist-sized
    object moving faster than the walkers)."""
    out = []
    for i, f in enumerate(frames):
        f = f.copy()
        if start <= i < stop:
            cv2.ellipse(f, (30 + 6 * (i - start), 150), (20, 10), 0, 0, 360, (25, 25, 25), -1, cv2.LINE_AA)
        out.append(f)
    return out


def _flags(path: Path) -> np.ndarray:
    with open(path, newline="") as f:
        return np.array([int(r["flag"]) for r in csv.DictReader(f)])


def test_pasted_moving_object_is_flagged_and_the_clip_without_it_is_not(tmp_path: Path) -> None:
    model = tmp_path / "cal.onnx"
    normal = [str(shared(f"{PED2}/{c:02d}.mp4")) for c in (5, 6, 8)]
    r = CliRunner().invoke(cli, ["calibrate", str(predictor_model()), *normal, "--max-false-alarm", "0.02",
                                 "-o", str(model), "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "leave-one-clip-out estimate" in r.output and "an upper estimate for the scene score" in r.output
    # the scene threshold's rule is said, with its two parts: their weighted geometric mean is the threshold printed
    number = r"([\d.e+-]+)"
    m = re.search(rf"scene threshold {number}: {number} \*\* 0.4 \(.*?\) times {number} \*\* 0.6 \(", r.output)
    assert m is not None, r.output
    thr, inside, held = (float(v) for v in m.groups())
    assert thr == pytest.approx(inside**0.4 * held**0.6, rel=1e-4) and held > inside
    frames = read_frames(shared(f"{PED2}/07.mp4"))
    for name, clip in (("plain", frames), ("object", _paste(frames, 40, 80))):
        write_video(tmp_path / f"{name}.mkv", clip, 10.0)
        r = CliRunner().invoke(cli, ["detect", str(tmp_path / f"{name}.mkv"), "-m", str(model), "--scores",
                                     str(tmp_path / f"{name}.csv"), "--threads", "1"])
        assert r.exit_code == 0, r.output
    plain, pasted = _flags(tmp_path / "plain.csv"), _flags(tmp_path / "object.csv")
    assert plain.mean() <= 0.05
    assert pasted[40:80].mean() >= 0.8
    assert (pasted[:40] == plain[:40]).all()  # causal: nothing before the object changes
    # a stream's first 4 frames have no real past: never flagged, however strange; the 5th is scored as usual
    det = AnomalyDetector(model, device="cpu", threads=1)
    noise = [np.random.default_rng(i).integers(0, 256, frames[0].shape, np.uint8) for i in range(7)]
    for _ in range(2):  # and again after a reset (a reconnect)
        det.reset()
        flags = [det.score(f).flag for f in noise]
        assert flags == [False] * 4 + [True] * 3, flags


def test_detect_restarts_the_predictor_when_a_live_source_reconnects(tmp_path: Path) -> None:
    """A reconnect leaves a gap: the frames before it are no past for the ones after it. The detector's window
    restarts, so the first frames after a reconnect are warm-up frames (never flagged), as at the start."""
    from edge_runtime.calibration import calibrate
    from edge_runtime.detect import detect_stream
    from edge_runtime.sources import VideoSource

    clip = shared(f"{PED2}/07.mp4")
    model = tmp_path / "cal.onnx"
    calibrate(predictor_model(), [str(shared(f"{PED2}/{c:02d}.mp4")) for c in (5, 6)], 0.05, out=model,
              device="cpu", threads=1, tolerance=False)

    class Reconnecting(VideoSource):
        """The real clip, reporting a reconnect before frame 6 as a LiveSource counts one."""

        reconnects = 0
        live = True

        def __iter__(self):  # type: ignore[no-untyped-def]
            for frame in super().__iter__():
                if frame.index == 6:
                    self.reconnects = 1
                yield frame

    seen: list[tuple[int, bool]] = []

    class Recording(AnomalyDetector):
        def score(self, frame: np.ndarray):  # type: ignore[no-untyped-def]
            r = super().score(frame)
            seen.append((r.index, r.warmup))
            return r

        __call__ = score

    src = Reconnecting(clip)
    try:
        detect_stream(Recording(model, device="cpu", threads=1), src, tmp_path / "s.csv", max_frames=12)
    finally:
        src.close()
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
    assert [w for _, w in seen] == ([True] * 4 + [False] * 2) * 2
