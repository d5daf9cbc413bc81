"""Anomaly scores on real data with models the project really trained and exported; events; AUROC."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.anomaly import AnomalyDetector, auroc, max_patch_mean, ssim_map
from edge_runtime.errors import ModelCardError
from edge_runtime.events import EventTracker, find_events, release_level
from tests.anomaly_data import PED2, digit_model, digit_split, scene_model
from tests.helpers import read_frames, shared

pytest.importorskip("torch")


def test_digit_model_scores_other_digits_higher() -> None:
    model = digit_model(0, "variational")
    _, test, labels = digit_split(0)
    pick = np.concatenate([np.flatnonzero(labels == c)[:25] for c in range(10)])
    x, y = test[pick], labels[pick]
    for score in ("mse", "ssim", "patch", "ssim_patch", "likelihood"):
        det = AnomalyDetector(model, device="cpu", threads=1, score=score)
        s = np.array([det.score(im).raw for im in x])
        normal, other = s[y == 0], s[y != 0]
        assert other.mean() > normal.mean(), score
        assert auroc(normal, other) > 0.6, score
    # a result carries an error map at the model's size, and no flag without a threshold
    r = AnomalyDetector(model, device="cpu", threads=1, score="mse").score(x[0])
    assert r.error_map.shape == (28, 28) and r.flag is None
    assert r.score == pytest.approx(float(r.error_map.mean()), rel=1e-5)
    assert AnomalyDetector(model, device="cpu").score_name == "likelihood"  # the card's default for a VAE


def test_ssim_patch_is_ssim_times_the_root_of_patch_and_the_small_frame_default() -> None:
    """The default score of a convolutional model on digits: ssim x sqrt(patch) frame by frame (the same patch
    size), with ssim's error map; a product of powers, so scaling a frame's error scales it, never reorders."""
    model = digit_model(2, "convolutional")
    _, test, labels = digit_split(2)
    x = test[np.concatenate([np.flatnonzero(labels == c)[:3] for c in range(10)])]
    det = AnomalyDetector(model, device="cpu", threads=1)
    assert det.score_name == "ssim_patch" and det.patch == 7  # a quarter of 28
    both = [AnomalyDetector(model, device="cpu", threads=1, score=s) for s in ("ssim", "patch", "ssim_patch:5")]
    assert both[2].patch == 5
    for im in x:
        r, s, p = det.score(im), both[0].score(im), both[1].score(im)
        assert r.raw == pytest.approx(s.raw * p.raw**0.5, rel=1e-6) and r.raw > 0
        np.testing.assert_array_equal(r.error_map, s.error_map)
        small = AnomalyDetector(model, device="cpu", threads=1, score="patch:5").score(im).raw
        assert both[2].score(im).raw == pytest.approx(s.raw * small**0.5, rel=1e-6)
    with pytest.raises(ModelCardError, match="ssim_patch take a size"):
        AnomalyDetector(model, device="cpu", score="ssim_patch:29")


def test_sequence_score_is_causal_and_smoothing_uses_past_frames_only() -> None:
    model = scene_model("lstm", 40)
    frames = read_frames(shared(f"{PED2}/01.mp4"), 30)
    det = AnomalyDetector(model, device="cpu", threads=1, smoothing=4)
    assert det.score_name == "sequence" and det.sequence_length == 6
    full = [det.score(f) for f in frames]
    # changing later frames changes nothing earlier
    det.reset()
    altered = frames[:15] + [255 - f for f in frames[15:]]
    part = [det.score(f) for f in altered]
    assert [r.score for r in full[:15]] == [r.score for r in part[:15]]
    assert part[20].raw != full[20].raw
    raws = [r.raw for r in full]
    assert full[10].score == pytest.approx(np.mean(raws[7:11]))
    assert full[0].score == raws[0]


def test_scene_scores_a_strange_frame_higher() -> None:
    det = AnomalyDetector(scene_model(), device="cpu", threads=1)
    frames = read_frames(shared(f"{PED2}/03.mp4"), 20)
    normal = [det.score(f).score for f in frames]
    inverted = [det.score(255 - f).score for f in frames[:5]]
    assert min(inverted) > max(normal)


def test_bad_score_names_and_models() -> None:
    with pytest.raises(ModelCardError, match="not one of"):
        AnomalyDetector(digit_model(0, "variational"), device="cpu", score="psnr")
    with pytest.raises(ModelCardError, match="variational"):
        AnomalyDetector(scene_model(), device="cpu", score="likelihood")
    with pytest.raises(ModelCardError, match="patch:8"):
        AnomalyDetector(digit_model(0, "variational"), device="cpu", score="mse:3")
    from edge_runtime.model import default_model_path

    with pytest.raises(ModelCardError, match="denoising model cannot score anomalies"):
        AnomalyDetector(default_model_path(), device="cpu")


def test_hysteresis_makes_one_event_of_a_wobbling_run() -> None:
    s = [0, 0, 1.2, 0.8, 1.1, 0.6, 0.4, 0.4, 0.7, 1.3, 0.2, 0.2, 0.2, 0, 0, 2.0, 0.1]
    events = find_events(s, threshold=1.0, low=0.5, hold=3, fps=10.0)
    assert [(e.start_frame, e.end_frame, e.peak_frame) for e in events] == [(2, 9, 9), (15, 15, 15)]
    assert events[0].peak_score == 1.3 and events[0].start_time == pytest.approx(0.2)
    assert events[0].end_time == pytest.approx(0.9) and events[0].frames == 8
    # a car passing: the score crosses the threshold 20 times, hysteresis gives one event
    rng = np.random.default_rng(0)
    car = np.r_[np.zeros(10), 1.0 + 0.3 * np.sin(np.arange(60)) + 0.05 * rng.standard_normal(60), np.zeros(10)]
    crossings = int(np.sum((car[1:] > 1.0) & (car[:-1] <= 1.0)))
    assert crossings >= 10
    assert len(find_events(list(car), threshold=1.0, low=0.5, hold=5)) == 1
    # without hysteresis (release at the threshold, hold 1) it would be many
    assert len(find_events(list(car), threshold=1.0, low=1.0, hold=1)) == crossings + (car[0] > 1.0)


def test_release_level_sits_above_the_normal_score_floor() -> None:
    # reconstruction errors of normal frames hover at a floor (here 0.90 +- 0.01) close to the threshold;
    # two people pass. Released at 0.8 x threshold the first event never closes: one event to the end.
    rng = np.random.default_rng(1)
    s = 0.90 + 0.01 * rng.standard_normal(120)
    s[20:40] += 0.5
    s[80:95] += 0.5
    thr, stats = 1.0, {"p50": 0.90}
    assert len(find_events(list(s), thr, 0.8 * thr, hold=5)) == 1
    low = release_level(thr, stats, 0.8)
    assert low == pytest.approx(0.98)
    events = find_events(list(s), thr, low, hold=5)
    assert [(e.start_frame, e.end_frame) for e in events] == [(20, 39), (80, 94)]
    # without calibration statistics (or a median at or above the threshold) it is 0.8 x threshold
    assert release_level(thr, {}, 0.8) == pytest.approx(0.8)
    assert release_level(thr, {"p50": 1.5}, 0.8) == pytest.approx(0.8)


def test_event_tracker_rejects_bad_levels() -> None:
    with pytest.raises(ValueError, match="above the threshold"):
        EventTracker(1.0, low=2.0)
    with pytest.raises(ValueError, match="hold"):
        EventTracker(1.0, hold=0)


def test_auroc_matches_pairwise_count_and_patch_max() -> None:
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(0, 1, 50), 1)
    b = np.round(rng.normal(1, 1, 40), 1)
    pairs = (b[None, :] > a[:, None]).sum() + 0.5 * (b[None, :] == a[:, None]).sum()
    assert auroc(a, b) == pytest.approx(pairs / (a.size * b.size))
    assert auroc(np.zeros(3), np.ones(2)) == 1.0
    err = np.zeros((20, 30))
    err[5:9, 10:14] = 1.0
    assert max_patch_mean(err, 4) == 1.0 and max_patch_mean(err, 8) == pytest.approx(16 / 64)
    x = rng.random((16, 16, 1))
    assert np.allclose(ssim_map(x, x), 1.0)


def test_timeline_axis_is_in_seconds_with_round_ticks_and_a_legend() -> None:
    from edge_runtime.anomaly_draw import _tick_step, timeline

    # at most 8 ticks, spaced 1, 2 or 5 times a power of ten
    assert [_tick_step(s) for s in (29.9, 0.5, 1200.0, 8.0)] == [5.0, 0.1, 200.0, 1.0]
    scores = list(np.linspace(0.0, 1.0, 300))
    in_seconds = timeline(scores, 0.5, 0.4, [], fps=10.0)
    in_frames = timeline(scores, 0.5, 0.4, [])
    assert in_seconds.shape == in_frames.shape == (320, 1200, 3)
    axis = slice(320 - 36, 320)  # the tick labels and the axis title
    assert not np.array_equal(in_seconds[axis], in_frames[axis])  # 0..29.9 s, not 0..299 frames
    legend = in_seconds[28:100, 1200 - 15 - 150 : 1200 - 15]  # top right of the plot
    event_colour = np.all(legend == (200, 200, 255), axis=2)
    assert event_colour.sum() > 100  # the legend's event swatch, though this plot has no event
