from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.card import CARD_KEY, SCHEMA_VERSION, InputSpec, ModelCard, card_from_metadata
from edge_runtime.errors import ModelCardError, ModelLoadError
from edge_runtime.model import Model

onnx = pytest.importorskip("onnx")


def _card(**kw: object) -> ModelCard:
    base = dict(task="denoise", family="conv_denoiser", input=InputSpec(spatial_multiple=8),
                outputs={"output": "image"})
    base.update(kw)
    return ModelCard(**base)  # type: ignore[arg-type]


def _identity_onnx(path: Path, card_json: str | None) -> Path:
    """A real ONNX file (identity graph) with or without a card string."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3, None, None])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 3, None, None])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if card_json is not None:
        p = model.metadata_props.add()
        p.key, p.value = CARD_KEY, card_json
    onnx.save_model(model, path)
    return path


def test_round_trip_keeps_every_field() -> None:
    card = _card(noise={"gaussian_sigma": [0, 50]}, metrics={"val_psnr": 30.1}, provenance={"commit": "abc"})
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert again.input.value_range == (0.0, 1.0)


def test_round_trip_through_a_real_onnx_file(tmp_path: Path) -> None:
    path = _identity_onnx(tmp_path / "m.onnx", _card().to_json())
    m = Model(path, device="cpu")
    assert m.card == _card()
    x = np.random.rand(1, 3, 8, 8).astype(np.float32)
    np.testing.assert_array_equal(m.run(x), x)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"task": "denoise"}), "no integer 'version'"),
        (json.dumps({**json.loads(_card().to_json()), "version": SCHEMA_VERSION + 1}), "newer than this runtime"),
        (json.dumps({**json.loads(_card().to_json()), "colour": 1}), "unknown field(s) card.colour"),
        (json.dumps({k: v for k, v in json.loads(_card().to_json()).items() if k != "family"}), "'card.family'"),
        (json.dumps({**json.loads(_card().to_json()), "task": "paint"}), "'task' is 'paint'"),
        (json.dumps({**json.loads(_card().to_json()), "precision": "int4"}), "'precision' is 'int4'"),
    ],
)
def test_bad_cards_are_refused_saying_why(text: str, expected: str) -> None:
    with pytest.raises(ModelCardError) as e:
        ModelCard.from_json(text, source="m.onnx")
    assert expected in str(e.value)
    assert str(e.value).startswith("m.onnx: ")


def test_missing_card_is_refused() -> None:
    with pytest.raises(ModelCardError, match="no edge-ae model card"):
        card_from_metadata({}, "m.onnx")


def test_model_without_card_is_refused(tmp_path: Path) -> None:
    path = _identity_onnx(tmp_path / "bare.onnx", None)
    with pytest.raises(ModelCardError, match="bare.onnx: no edge-ae model card"):
        Model(path, device="cpu")


def test_newer_card_in_a_real_file_is_refused(tmp_path: Path) -> None:
    raw = json.loads(_card().to_json())
    raw["version"] = SCHEMA_VERSION + 1
    path = _identity_onnx(tmp_path / "new.onnx", json.dumps(raw))
    with pytest.raises(ModelCardError, match="newer than this runtime supports"):
        Model(path, device="cpu")


def test_non_onnx_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "x.onnx"
    p.write_text("hello")
    with pytest.raises(ModelLoadError, match="x.onnx: not a loadable ONNX model"):
        Model(p, device="cpu")


def test_a_recurrent_model_card_documents_its_state() -> None:
    from edge_runtime.card import StateSpec

    card = _card(family="video_denoiser", outputs={"output": "image", "state_out": "state"}, state=StateSpec())
    back = ModelCard.from_json(card.to_json())
    assert back == card and back.state == StateSpec("state", "state_out", 4, 1, "zeros")
    assert "state" not in json.loads(_card().to_json())  # a card without state reads as before
    for bad, why in [({"empty": "noise"}, "state.empty"), ({"output": "output"}, "state.output"),
                     ({"scale": 2}, "state.scale"), ({"channels": 0}, "state.channels"), ({"input": "input"},
                                                                                            "state.input")]:
        raw = json.loads(card.to_json())
        raw["state"].update(bad)
        with pytest.raises(ModelCardError, match=why):
            ModelCard.from_json(json.dumps(raw))
    raw = json.loads(card.to_json())
    raw["state"]["age"] = 3
    with pytest.raises(ModelCardError, match=r"card\.state\.age"):
        ModelCard.from_json(json.dumps(raw))


def test_a_card_state_missing_from_the_graph_is_refused(tmp_path: Path) -> None:
    from edge_runtime.card import StateSpec

    card = _card(family="video_denoiser", outputs={"output": "image", "state_out": "state"}, state=StateSpec())
    path = _identity_onnx(tmp_path / "m.onnx", card.to_json())
    with pytest.raises(ModelCardError, match="state"):
        Model(path, device="cpu")


@pytest.mark.parametrize(("scene", "expected"), [
    ({"grid": [2, 2], "mean": [0.1] * 4}, "must be an object with the keys grid, mean and std"),
    ({"grid": [2, 0], "mean": [], "std": []}, "grid is [2, 0]"),
    ({"grid": [2, 2], "mean": [0.1] * 3, "std": [0.1] * 4}, "mean must be 4 finite numbers"),
    ({"grid": [1, 2], "mean": [0.1, float("nan")], "std": [0.1, 0.1]}, "mean must be 2 finite numbers"),
    ({"grid": [1, 2], "mean": [0.1, 0.1], "std": [0.1, 0.0]}, "std must be positive"),
])
def test_scene_statistics_are_validated(scene: dict[str, object], expected: str) -> None:
    from edge_runtime.card import AnomalySpec

    good = {"grid": [1, 2], "mean": [0.1, 0.2], "std": [0.01, 0.02]}
    card = _card(task="anomaly", anomaly=AnomalySpec(score="scene", threshold=1.0, scene=good))
    assert ModelCard.from_json(card.to_json()).anomaly.scene == good  # type: ignore[union-attr]
    bad = _card(task="anomaly", anomaly=AnomalySpec(score="scene", threshold=1.0, scene=scene))
    with pytest.raises(ModelCardError, match=r"'anomaly.scene' " + re.escape(expected)):
        ModelCard.from_json(bad.to_json())
    # a card written before the field existed still reads
    old = json.loads(_card(task="anomaly", anomaly=AnomalySpec()).to_json())
    del old["anomaly"]["scene"]
    assert ModelCard.from_json(json.dumps(old)).anomaly.scene is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("appearance", "expected"), [
    ({"mean": [0.1, 0.2]}, "appearance must be an object with the keys mean and std"),
    ({"mean": [0.1], "std": [0.1, 0.1], "weight": 1.0}, "appearance must be an object with the keys mean and std"),
    ({"mean": [0.1], "std": [0.1, 0.1]}, "appearance mean must be 2 finite numbers"),
    ({"mean": [0.1, 0.1], "std": [0.1, -1.0]}, "appearance std must be positive"),
    ([0.1, 0.2], "appearance must be an object with the keys mean and std"),
])
def test_scene_statistics_of_an_appearance_branch_round_trip_and_are_validated(appearance: object,
                                                                              expected: str) -> None:
    """A card written by the new calibration (both error maps' statistics) reads back as written; an older card
    (the prediction's alone) still reads; malformed appearance statistics are refused by name."""
    from edge_runtime.card import AnomalySpec

    both = {"grid": [1, 2], "mean": [0.1, 0.2], "std": [0.01, 0.02],
            "appearance": {"mean": [0.3, 0.4], "std": [0.03, 0.04]}}
    card = _card(task="anomaly", anomaly=AnomalySpec(score="scene", threshold=1.5, scene=both))
    again = ModelCard.from_json(card.to_json())
    assert again == card and again.anomaly.scene == both  # type: ignore[union-attr]
    older = {k: v for k, v in both.items() if k != "appearance"}
    assert ModelCard.from_json(_card(task="anomaly", anomaly=AnomalySpec(score="scene", scene=older)).to_json()) \
        .anomaly.scene == older  # type: ignore[union-attr]
    bad = _card(task="anomaly", anomaly=AnomalySpec(score="scene", threshold=1.0, scene={**older,
                                                                                         "appearance": appearance}))
    with pytest.raises(ModelCardError, match=r"'anomaly.scene' " + re.escape(expected)):
        ModelCard.from_json(bad.to_json())
