"""The predictor's appearance branch (issue 14): a still object that copying the last frame predicts perfectly is
flagged; scores stay causal; models without the branch (and cards calibrated without it) score as before."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime.anomaly import AnomalyDetector
from edge_runtime.calibration import calibrate
from edge_runtime.card_file import read_card
from tests.anomaly_data import PED2, predictor_model
from tests.helpers import read_frames, shared

pytest.importorskip("torch")

NORMAL = (5, 6, 8)  # calibration clips; clip 07 is scored
START, STOP = 40, 90  # frames of clip 07 with the pasted still object


def _still(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A bright 40x20 ellipse (a standing figure's size) that appears at ``START`` and does not move."""
    out = []
    for i, f in enumerate(frames):
        f = f.copy()
        if START <= i < STOP:
            cv2.ellipse(f, (200, 150), (10, 20), 0, 0, 360, (235, 235, 235), -1, cv2.LINE_AA)
        out.append(f)
    return out


def _calibrated(model: Path, tmp_path: Path, name: str) -> AnomalyDetector:
    out = tmp_path / f"{name}.onnx"
    calibrate(model, [str(shared(f"{PED2}/{c:02d}.mp4")) for c in NORMAL], max_false_alarm=0.02, out=out,
              device="cpu", threads=1)
    return AnomalyDetector(out, device="cpu", threads=1)


def _flags(det: AnomalyDetector, frames: list[np.ndarray]) -> np.ndarray:
    det.reset()
    return np.array([bool(det.score(f).flag) for f in frames])


def test_a_still_object_is_flagged_with_the_branch_and_missed_by_the_prediction_alone(tmp_path: Path) -> None:
    frames = read_frames(shared(f"{PED2}/07.mp4"))
    still = _still(frames)
    with_branch = _calibrated(predictor_model(), tmp_path, "branch")
    assert read_card(with_branch.model.path).outputs == {"reconstruction": "reconstruction",
                                                         "appearance": "appearance"}
    assert with_branch.appearance and with_branch.appearance_mean is not None
    alone = _calibrated(predictor_model(appearance=False), tmp_path, "alone")
    alone_card = read_card(alone.model.path)
    assert not alone.appearance and alone_card.outputs == {"reconstruction": "reconstruction"}
    assert alone_card.anomaly.scene.get("appearance") is None  # type: ignore[union-attr]
    settled = slice(START + 5, STOP)  # once the object has stood still for a few frames
    assert _flags(with_branch, frames).mean() <= 0.05
    assert _flags(with_branch, still)[settled].mean() >= 0.9
    assert _flags(alone, still)[settled].mean() <= 0.2  # copying the last frame predicts it: missed


def test_scene_score_with_the_branch_is_causal() -> None:
    det = AnomalyDetector(predictor_model(), device="cpu", threads=1, score="scene")
    assert det.appearance
    frames = read_frames(shared(f"{PED2}/06.mp4"), 20)
    full = [det.score(f).raw for f in frames]
    rng = np.random.default_rng(1)
    for t in (0, 4, 9):
        det.reset()
        changed = frames[: t + 1] + [rng.integers(0, 256, f.shape, np.uint8) for f in frames[t + 1 :]]
        part = [det.score(f).raw for f in changed]
        assert part[: t + 1] == full[: t + 1], t
        assert part[t + 1] != full[t + 1], t


def test_a_card_calibrated_without_appearance_statistics_scores_the_prediction_alone(tmp_path: Path) -> None:
    """A model with the branch whose card has only the prediction's cell statistics (as an older calibration
    writes it) is scored the way it was calibrated: as a model without the branch is."""
    import dataclasses

    from edge_runtime.card_file import write_card

    det = _calibrated(predictor_model(), tmp_path, "both")
    card = read_card(det.model.path)
    scene = {k: v for k, v in card.anomaly.scene.items() if k != "appearance"}  # type: ignore[union-attr]
    older = tmp_path / "older.onnx"
    write_card(det.model.path, dataclasses.replace(card, anomaly=dataclasses.replace(card.anomaly, scene=scene)),
               older)
    old = AnomalyDetector(older, device="cpu", threads=1)
    assert not old.appearance
    frames = read_frames(shared(f"{PED2}/07.mp4"), 15)
    results = [old.score(f) for f in frames]
    assert all(len(r.cells) == 1 for r in results)
    assert all(np.isfinite(r.raw) for r in results)


def test_older_checkpoints_rebuild_without_the_branch_and_training_builds_it() -> None:
    """The switch is a constructor argument whose default is the old network (a checkpoint written before it
    names no ``appearance``); the family's training arguments turn it on."""
    import torch

    from train.registry import create_model, family_spec

    spec = family_spec("predictor")
    old = create_model("predictor", height=16, width=24)
    assert old.appearance is None and not any(k.startswith("appearance.") for k in old.state_dict())
    assert dict(spec.outputs_of(old)) == {"reconstruction": "reconstruction"}
    args = spec.arguments(1, 16, 24)
    assert args["appearance"]
    new = create_model("predictor", **args).eval()
    x = torch.rand(2, 5, 16, 24)
    pred, app = new(x)
    assert pred.shape == app.shape == (2, 1, 16, 24)
    old.load_state_dict({k: v for k, v in new.state_dict().items() if not k.startswith("appearance.")})
    torch.testing.assert_close(old.eval()(x)[0], pred)  # the prediction part is the network it was
