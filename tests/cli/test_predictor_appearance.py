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
from tests.anomaly_data import PED2, _train_export, predictor_model
from tests.helpers import read_frames, shared, write_video

pytest.importorskip("torch")

NORMAL = (5, 6, 8)  # Ped2 calibration clips
ROOM = "videos/intel_one-by-one-person-detection.mp4"  # frames 0-59: the empty room
START = 25  # the still object stands in the room from this frame on


def _room(tmp: Path) -> tuple[list[np.ndarray], dict[bool, Path]]:
    """The empty-room frames 0-50 (written losslessly as a video: a user's normal footage), and a predictor with
    (True) and without (False) the appearance branch trained on them for a few steps."""
    from train.families.predictor import APPEARANCE_CODE

    frames = read_frames(shared(ROOM), 51)
    video = tmp / "room.mkv"
    write_video(video, frames, 10.0)
    models = {}
    for branch in (True, False):
        extra: dict[str, object] = {"model": {"appearance": APPEARANCE_CODE}} if branch else {}
        model = _train_export(f"room_predictor_{branch}", [str(video)], "predictor", 120, batch=16, **extra)
        out = tmp / f"room_{branch}.onnx"
        calibrate(model, [str(video)], max_false_alarm=0.0, out=out, device="cpu", threads=1)
        models[branch] = out
    return frames, models


def _still(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A dark 70x200 ellipse (a standing figure's size in the 768x432 room, against the wall) that appears at
    ``START`` and stays."""
    out = []
    for i, f in enumerate(frames):
        f = f.copy()
        if i >= START:
            cv2.ellipse(f, (250, 200), (35, 100), 0, 0, 360, (60, 60, 60), -1, cv2.LINE_AA)
        out.append(f)
    return out


def _flags(det: AnomalyDetector, frames: list[np.ndarray]) -> np.ndarray:
    det.reset()
    return np.array([bool(det.score(f).flag) for f in frames])


def test_a_still_object_is_flagged_with_the_branch_and_missed_by_the_prediction_alone(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    frames, models = _room(tmp_path_factory.mktemp("room"))
    still = _still(frames)
    branch, alone = (AnomalyDetector(models[b], device="cpu", threads=1) for b in (True, False))
    assert read_card(models[True]).outputs == {"reconstruction": "reconstruction", "appearance": "appearance"}
    assert branch.appearance and branch.appearance_mean is not None
    alone_card = read_card(models[False])
    assert not alone.appearance and alone_card.outputs == {"reconstruction": "reconstruction"}
    assert alone_card.anomaly.scene.get("appearance") is None  # type: ignore[union-attr]
    settled = slice(START + 3, None)  # once the object has stood still for a few frames
    flags = _flags(branch, still)
    assert not flags[:START].any()  # the frames before it are the normal ones it was calibrated on
    assert flags[settled].mean() >= 0.9
    missed = _flags(alone, still)
    assert missed[START]  # the prediction alone sees it arrive...
    assert missed[settled].mean() <= 0.1  # ...and then copies it from the last frame: missed


def _calibrated(model: Path, tmp_path: Path, name: str) -> AnomalyDetector:
    out = tmp_path / f"{name}.onnx"
    calibrate(model, [str(shared(f"{PED2}/{c:02d}.mp4")) for c in NORMAL], max_false_alarm=0.02, out=out,
              device="cpu", threads=1)
    return AnomalyDetector(out, device="cpu", threads=1)


def test_scene_score_with_the_branch_is_causal() -> None:
    det = AnomalyDetector(predictor_model(appearance=True), device="cpu", threads=1, score="scene")
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

    det = _calibrated(predictor_model(appearance=True), tmp_path, "both")
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


def test_older_checkpoints_rebuild_without_the_branch_and_a_config_builds_it() -> None:
    """The switch is a constructor argument whose default is the old network (a checkpoint written before it
    names no ``appearance``); training builds the predictor alone unless a config names the branch."""
    import torch

    from train.families.predictor import APPEARANCE_CODE
    from train.registry import create_model, family_spec

    spec = family_spec("predictor")
    old = create_model("predictor", height=16, width=24)
    assert old.appearance is None and not any(k.startswith("appearance.") for k in old.state_dict())
    assert dict(spec.outputs_of(old)) == {"reconstruction": "reconstruction"}
    args = spec.arguments(1, 16, 24)
    assert "appearance" not in args  # the default: the predictor alone (it did better on Ped2)
    new = create_model("predictor", **args, appearance=APPEARANCE_CODE).eval()
    x = torch.rand(2, 5, 16, 24)
    pred, app = new(x)
    assert pred.shape == app.shape == (2, 1, 16, 24)
    old.load_state_dict({k: v for k, v in new.state_dict().items() if not k.startswith("appearance.")})
    torch.testing.assert_close(old.eval()(x)[0], pred)  # the prediction part is the network it was
