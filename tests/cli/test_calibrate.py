"""Calibration on real normal footage with a real exported model; the card rewrite without the onnx package."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.anomaly import AnomalyDetector
from edge_runtime.calibration import calibrate, threshold_for
from edge_runtime.card import CARD_KEY
from edge_runtime.card_file import fields, read_card, replace_metadata
from edge_runtime.cli import cli
from edge_runtime.errors import ModelLoadError
from tests.anomaly_data import PED2, fresh_copy, scene_model
from tests.helpers import CLEAN_CLIP, read_frames, shared

pytest.importorskip("torch")


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_threshold_flags_at_most_the_share() -> None:
    s = np.arange(100, dtype=float)
    for r in (0.0, 0.01, 0.05, 0.1, 0.333):
        thr = threshold_for(s, r)
        assert np.sum(s > thr) <= r * s.size
        assert np.sum(s > thr) == int(np.floor(r * s.size + 1e-9))
    ties = np.array([1.0] * 50 + [2.0] * 50)
    assert np.sum(ties > threshold_for(ties, 0.1)) <= 10


def test_calibrate_writes_threshold_that_flags_at_most_the_share(tmp_path: Path) -> None:
    model = scene_model()
    clip = shared(f"{PED2}/01.mp4")
    before = _digest(model)
    out = tmp_path / "calibrated.onnx"
    # the quantile itself, without the camera tolerance (which may only raise it: test_camera_tolerance.py)
    cal = calibrate(model, [str(clip)], max_false_alarm=0.05, out=out, device="cpu", threads=1, smoothing=3,
                    tolerance=False)
    assert _digest(model) == before  # the input model is untouched
    card = read_card(out)
    assert card.task == "anomaly" and card.anomaly is not None
    assert card.anomaly.threshold == cal.threshold and card.anomaly.smoothing == 3
    assert card.anomaly.stats["frames"] == 120 and card.anomaly.stats["false_alarm_on_calibration"] <= 0.05
    # re-score the calibration clip with the written file, independently: at most 5 % flagged
    from tests.helpers import read_frames

    det = AnomalyDetector(out, device="cpu", threads=1)
    assert det.threshold == cal.threshold and det.smoothing == 3
    flags = [det.score(f).flag for f in read_frames(clip)]
    assert len(flags) == 120 and 0 < sum(flags) <= 6
    # the weights and graph bytes are kept: only the card entry changed
    a = [(n, w) for n, w, *_ in fields(model.read_bytes()) if n != 14]
    b = [(n, w) for n, w, *_ in fields(out.read_bytes()) if n != 14]
    assert a == b


def test_calibrate_cli_replaces_in_place_and_quantile(tmp_path: Path) -> None:
    model = fresh_copy(scene_model(), "inplace.onnx")
    clip = shared(f"{PED2}/01.mp4")
    res = CliRunner().invoke(cli, ["calibrate", str(model), str(clip), "--quantile", "0.9", "--threads", "1",
                                   "--max-frames", "50"])
    assert res.exit_code == 0, res.output
    assert "threshold" in res.output and "10.00 %" in res.output
    card = read_card(model)
    assert card.anomaly.stats["frames"] == 50 and card.anomaly.stats["max_false_alarm"] == pytest.approx(0.1)
    assert not list(model.parent.glob(".inplace.onnx.*"))  # no temporary file left behind
    # recalibrating replaces the card instead of adding a second one
    res = CliRunner().invoke(cli, ["calibrate", str(model), str(clip), "--max-false-alarm", "0", "--threads", "1",
                                   "--max-frames", "30"])
    assert res.exit_code == 0, res.output
    keys = [f for f in fields(model.read_bytes()) if f[0] == 14]
    assert len(keys) == 1 and read_card(model).anomaly.stats["frames"] == 30


def test_replace_metadata_keeps_other_entries(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(scene_model()))
    extra = proto.metadata_props.add()
    extra.key, extra.value = "other", "kept"
    data = proto.SerializeToString()
    new = replace_metadata(data, CARD_KEY, '{"x": 1}')
    got = onnx.load_from_string(new)
    props = {p.key: p.value for p in got.metadata_props}
    assert props["other"] == "kept" and props[CARD_KEY] == '{"x": 1}' and len(got.metadata_props) == 2
    assert got.graph == proto.graph


def test_calibrate_runs_without_torch_and_onnx(tmp_path: Path) -> None:
    model = scene_model()
    out = tmp_path / "c.onnx"
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
        "from edge_runtime.cli import main\n"
        f"sys.argv = ['edge-ae', 'calibrate', {str(model)!r}, {str(shared(f'{PED2}/01.mp4'))!r}, '-o', {str(out)!r},"
        " '--max-frames', '20', '--max-false-alarm', '0.05', '--threads', '1']\n"
        "main()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(read_card(out).to_json())["anomaly"]["stats"]["frames"] == 20


def test_calibrate_bad_inputs(tmp_path: Path) -> None:
    model = scene_model()
    clip = shared(f"{PED2}/01.mp4")
    r = CliRunner().invoke(cli, ["calibrate", str(model), str(clip), "--quantile", "0.9", "--max-false-alarm", "0.1",
                                 "-o", str(tmp_path / "x.onnx")])
    assert r.exit_code == 1 and "not both" in r.output
    r = CliRunner().invoke(cli, ["calibrate", str(model), str(tmp_path / "nothing.mp4"),
                                 "-o", str(tmp_path / "x.onnx")])
    assert r.exit_code == 1 and "nothing.mp4: no such file" in r.output
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x0a\x05hello" + b"\xff" * 20)
    r = CliRunner().invoke(cli, ["calibrate", str(bad), str(clip)])
    assert r.exit_code == 1 and "bad.onnx: not a loadable ONNX model" in r.output
    with pytest.raises(ModelLoadError, match="truncated"):
        fields(b"\x0a\x50abc")
    r = CliRunner().invoke(cli, ["calibrate", str(model)])
    assert r.exit_code != 0 and "NORMAL_DATA" in r.output
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_calibrate_a_reduced_precision_model(tmp_path: Path, precision: str) -> None:
    pytest.importorskip("onnx")
    from export.precision import make_variant

    clip = shared(f"{PED2}/01.mp4")
    variant = tmp_path / f"scene.{precision}.onnx"
    make_variant(scene_model(), variant, precision, calibration=clip, max_drop=1.0)
    cal = calibrate(variant, [str(clip)], max_false_alarm=0.1, device="cpu", threads=1, max_frames=40)
    card = read_card(variant)
    assert card.precision == precision and card.anomaly.threshold == cal.threshold
    assert card.provenance["calibration"]["precision"] == precision
    det = AnomalyDetector(variant, device="cpu", threads=1)
    from tests.helpers import read_frames

    assert sum(det.score(f).flag for f in read_frames(clip, 40)) <= 4


def test_leave_one_clip_out_estimate_is_the_share_each_clip_gets_from_the_others(tmp_path: Path) -> None:
    """With several normal clips, each clip's estimate is the share of its frames above the threshold that
    calibration on the other clips alone gives (checked here by calibrating on those clips)."""
    clips = [str(shared(f"{PED2}/{c}.mp4")) for c in ("01", "04", "06")]
    model = scene_model()
    cal = calibrate(model, clips, max_false_alarm=0.02, score="mse", device="cpu", threads=1, write=False)
    assert [name for name, _, _ in cal.held_out] == clips
    det = AnomalyDetector(model, device="cpu", threads=1, score="mse")
    for i, (clip, frames, share) in enumerate(cal.held_out):
        others = calibrate(model, clips[:i] + clips[i + 1 :], max_false_alarm=0.02, score="mse", device="cpu",
                           threads=1, write=False)
        det.reset()
        s = np.array([det.score(f).score for f in read_frames(Path(clip))])
        assert len(s) == frames and share == pytest.approx(float(np.mean(s > others.threshold)))
    assert cal.stats["false_alarm_held_out_mean"] == pytest.approx(np.mean([h[2] for h in cal.held_out]))
    r = CliRunner().invoke(cli, ["calibrate", str(model), *clips, "-o", str(tmp_path / "m.onnx"), "--score", "mse",
                                 "--max-false-alarm", "0.02", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "leave-one-clip-out estimate of false alarms on new normal footage: mean" in r.output


def test_scene_score_learns_per_cell_statistics_into_the_card(tmp_path: Path) -> None:
    clips = [str(shared(f"{PED2}/{c}.mp4")) for c in ("01", "04")]
    out = tmp_path / "scene.onnx"
    cal = calibrate(scene_model(), clips, max_false_alarm=0.02, score="scene", out=out, device="cpu", threads=1)
    card = read_card(out)
    assert card.anomaly.score == "scene" and card.anomaly.scene["grid"] == [16, 24]
    assert len(card.anomaly.scene["mean"]) == 16 * 24 and min(card.anomaly.scene["std"]) > 0
    assert len(cal.held_out) == 2
    det = AnomalyDetector(out, device="cpu", threads=1)
    assert det.scene_mean is not None and det.scene_mean.shape == (16, 24)
    frames = read_frames(shared(f"{PED2}/03.mp4"), 20)
    normal = [det.score(f).score for f in frames]
    det.reset()
    inverted = [det.score(255 - f).score for f in frames[:5]]
    assert min(inverted) > max(max(normal), det.threshold)


def test_calibrate_warns_about_short_data_and_a_shape_unlike_the_model(tmp_path: Path) -> None:
    """One line each: too few frames for a stable threshold at the asked rate, a single clip (no estimate on new
    footage), frames of another aspect than the model's input (640x480 into a 36x24 model)."""
    model = fresh_copy(scene_model(), "warned.onnx")
    r = CliRunner().invoke(cli, ["calibrate", str(model), str(CLEAN_CLIP), "--max-false-alarm", "0.05", "--threads",
                                 "1"])
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3, r.output
    assert "normal data is short for 5 % false alarms: 77 frames" in warnings[0]
    assert "one normal clip" in warnings[1]
    assert "frames are 640x480 (aspect 1.33), the model's input is 36x24 (aspect 1.50)" in warnings[2]
    # Ped2 frames have the model's aspect; 2 clips of 300 frames suffice for 5 %
    clips = [str(shared(f"{PED2}/{c}.mp4")) for c in ("01", "04")]
    r = CliRunner().invoke(cli, ["calibrate", str(model), *clips, "--max-false-alarm", "0.05", "--threads", "1"])
    assert r.exit_code == 0 and "warning" not in r.output, r.output
