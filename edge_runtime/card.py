"""The model card: one versioned JSON document in the ONNX file's metadata_props.

Export writes it; the runtime reads and validates it and refuses a model without a valid
card. This module is the card's only schema.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from edge_runtime.errors import ModelCardError

CARD_KEY = "edge_ae.card"
SCHEMA_VERSION = 1

TASKS = ("denoise", "anomaly", "both", "reconstruct")
# image batch; uint8 frame batch (BGR, conversion inside the graph); flattened fixed-size images;
# sequences of flattened frames
LAYOUTS = ("NCHW", "NHWC", "NF", "NTF")
COLOR_ORDERS = ("RGB", "BGR", "GREY")
PRECISIONS = ("fp32", "fp16", "int8")
GREY_MODES = ("replicate", "native", "none")


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes the model's input tensor."""

    name: str = "input"
    layout: str = "NCHW"
    channels: int = 3
    color_order: str = "RGB"
    dtype: str = "float32"
    value_range: tuple[float, float] = (0.0, 1.0)  # uint8 0..255 maps linearly onto this range
    spatial_multiple: int = 1  # pad H and W up to a multiple of this, crop back after
    height: int | None = None  # fixed input size (None = any)
    width: int | None = None
    grey_frames: str = "replicate"  # how a grey frame feeds a colour model
    sequence_length: int | None = None  # NTF: frames per window the model was trained on (any length runs)
    # NCHW grey predictor: the input stacks the frames t-K..t (K = past_frames) as K + 1 channels, oldest first;
    # the reconstruction output is frame t predicted from the K past ones (the model never reads frame t).
    past_frames: int | None = None
    # A second graph input (float32, shape (1,)) scaling the model's own estimate of the noise level: 1 removes
    # the noise it estimates ("auto"), above 1 more, below 1 less. None: a blind model without one.
    strength: str | None = None


@dataclass(frozen=True)
class AnomalySpec:
    """The anomaly score and its calibration on normal data.

    ``scene`` (score 'scene' only, written by calibration): what each region of the scene normally shows,
    {"grid": [rows, cols], "mean": [...], "std": [...]}: per cell of a rows x cols grid over the error map
    (row-major), the mean and spread of its mean error over the normal frames. Cards without it still read.
    A predictor with an appearance branch adds "appearance": {"mean": [...], "std": [...]}, the same for its
    appearance error map (cards without it still read: the prediction error alone was calibrated).
    """

    score: str = "mse"
    threshold: float | None = None
    stats: dict[str, float] = field(default_factory=dict)
    smoothing: int = 1
    scene: dict[str, Any] | None = None


@dataclass(frozen=True)
class StateSpec:
    """A recurrent model's state: a second graph input fed with the state output of the previous frame.

    The state tensor is (B, channels, H / scale, W / scale) for a (B, C, H, W) frame batch, float32;
    ``empty`` says what it holds before the first frame of a stream ("zeros").
    """

    input: str = "state"
    output: str = "state_out"
    channels: int = 4
    scale: int = 1
    empty: str = "zeros"


STATE_EMPTY = ("zeros",)


@dataclass(frozen=True)
class ModelCard:
    task: str
    family: str
    input: InputSpec
    outputs: dict[str, str]  # output name -> role: "image", "reconstruction", "latent", "mean", "logvar", "decoded",
    # "state" (a recurrent model's next state, see ``state``)
    precision: str = "fp32"
    noise: dict[str, Any] | None = None
    anomaly: AnomalySpec | None = None
    state: StateSpec | None = None  # recurrent models only; absent in older cards
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["state"] is None:  # a card without state reads the same as before (older runtimes accept it)
            del d["state"]
        if d["input"]["strength"] is None:  # likewise a blind model's input
            del d["input"]["strength"]
        return d

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelCard:
        """Parse and validate; every problem raises ModelCardError naming ``source``."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            msg = f"{source}: model card is not valid JSON ({e.msg} at position {e.pos})"
            raise ModelCardError(msg) from None
        if not isinstance(raw, dict):
            msg = f"{source}: model card must be a JSON object, got {type(raw).__name__}"
            raise ModelCardError(msg)
        version = raw.get("version")
        if not isinstance(version, int):
            msg = f"{source}: model card has no integer 'version'"
            raise ModelCardError(msg)
        if version > SCHEMA_VERSION:
            msg = (f"{source}: model card version {version} is newer than this runtime supports "
                   f"({SCHEMA_VERSION}); upgrade edge-ae")
            raise ModelCardError(msg)
        return _build(cls, raw, source, "card")

    def validate(self, source: str = "model") -> None:
        def bad(what: str) -> ModelCardError:
            return ModelCardError(f"{source}: model card field {what}")

        if self.task not in TASKS:
            raise bad(f"'task' is {self.task!r}; expected one of {', '.join(TASKS)}")
        if not self.family or not isinstance(self.family, str):
            raise bad("'family' is empty")
        i = self.input
        if i.layout not in LAYOUTS:
            raise bad(f"'input.layout' is {i.layout!r}; expected one of {', '.join(LAYOUTS)}")
        if i.channels not in (1, 3):
            raise bad(f"'input.channels' is {i.channels!r}; expected 1 or 3")
        if i.color_order not in COLOR_ORDERS:
            raise bad(f"'input.color_order' is {i.color_order!r}; expected one of {', '.join(COLOR_ORDERS)}")
        if (i.channels == 1) != (i.color_order == "GREY"):
            raise bad(f"'input.color_order' {i.color_order!r} does not match {i.channels} channel(s)")
        if i.dtype not in ("float32", "float16", "uint8"):
            raise bad(f"'input.dtype' is {i.dtype!r}; expected float32, float16 or uint8")
        if len(i.value_range) != 2 or not i.value_range[0] < i.value_range[1]:
            raise bad(f"'input.value_range' is {list(i.value_range)!r}; expected [low, high] with low < high")
        if not isinstance(i.spatial_multiple, int) or i.spatial_multiple < 1:
            raise bad(f"'input.spatial_multiple' is {i.spatial_multiple!r}; expected an integer >= 1")
        if i.layout in ("NF", "NTF") and (i.height is None or i.width is None):
            raise bad(f"'input.height'/'input.width' must be set for layout {i.layout}")
        if i.sequence_length is not None and (not isinstance(i.sequence_length, int) or i.sequence_length < 1):
            raise bad(f"'input.sequence_length' is {i.sequence_length!r}; expected an integer >= 1")
        if i.past_frames is not None and (not isinstance(i.past_frames, int) or isinstance(i.past_frames, bool)
                                          or i.past_frames < 1 or i.layout != "NCHW" or i.channels != 1):
            raise bad(f"'input.past_frames' is {i.past_frames!r}; expected an integer >= 1 on a grey NCHW input")
        if i.strength is not None and (not isinstance(i.strength, str) or not i.strength or i.strength == i.name):
            raise bad(f"'input.strength' is {i.strength!r}; expected the name of a graph input other than {i.name!r}")
        if i.grey_frames not in GREY_MODES:
            raise bad(f"'input.grey_frames' is {i.grey_frames!r}; expected one of {', '.join(GREY_MODES)}")
        if self.precision not in PRECISIONS:
            raise bad(f"'precision' is {self.precision!r}; expected one of {', '.join(PRECISIONS)}")
        if not self.outputs:
            raise bad("'outputs' is empty")
        if self.task in ("anomaly", "both") and self.anomaly is None:
            raise bad(f"'anomaly' is missing for task {self.task!r}")
        s = self.state
        if s is not None:
            if not isinstance(s.channels, int) or s.channels < 1:
                raise bad(f"'state.channels' is {s.channels!r}; expected an integer >= 1")
            if s.scale != 1:
                raise bad(f"'state.scale' is {s.scale!r}; this runtime supports 1 (state at the frame's size)")
            if s.empty not in STATE_EMPTY:
                raise bad(f"'state.empty' is {s.empty!r}; expected one of {', '.join(STATE_EMPTY)}")
            if s.output not in self.outputs or self.outputs[s.output] != "state":
                raise bad(f"'state.output' {s.output!r} is not an output of role 'state'")
            if not s.input or s.input == i.name:
                raise bad(f"'state.input' is {s.input!r}; expected a graph input other than {i.name!r}")
            if i.layout not in ("NCHW", "NHWC"):  # NHWC: uint8 frames (--frame-io); the state stays NCHW float32
                raise bad(f"'state' needs image frames (layout NCHW or NHWC), not {i.layout}")
        if self.anomaly is not None and self.anomaly.scene is not None:
            problem = _scene_problem(self.anomaly.scene)
            if problem:
                raise bad(f"'anomaly.scene' {problem}")


def _scene_problem(scene: Any) -> str | None:
    """What is wrong with the per-cell statistics of the scene score, or None."""
    if not isinstance(scene, dict) or not {"grid", "mean", "std"} <= set(scene) <= {"grid", "mean", "std",
                                                                                  "appearance"}:
        return "must be an object with the keys grid, mean and std (and optionally appearance)"
    grid = scene["grid"]
    if (not isinstance(grid, list) or len(grid) != 2
            or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in grid)):
        return f"grid is {grid!r}; expected [rows, cols] of positive integers"
    problem = _cells_problem(scene, grid[0] * grid[1], "")
    if problem or "appearance" not in scene:
        return problem
    app = scene["appearance"]
    if not isinstance(app, dict) or set(app) != {"mean", "std"}:
        return "appearance must be an object with the keys mean and std"
    return _cells_problem(app, grid[0] * grid[1], "appearance ")


def _cells_problem(table: dict[str, Any], cells: int, what: str) -> str | None:
    """What is wrong with one error map's per-cell ``mean`` and ``std`` lists, or None."""
    for key in ("mean", "std"):
        v = table[key]
        if (not isinstance(v, list) or len(v) != cells
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)):
            return f"{what}{key} must be {cells} finite numbers (one per grid cell)"
    if min(table["std"]) <= 0 or min(table["mean"]) < 0:
        return f"{what}std must be positive and mean non-negative"
    return None


def _build(cls: type, raw: dict[str, Any], source: str, where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        msg = f"{source}: model card has unknown field(s) {', '.join(where + '.' + u for u in unknown)}"
        raise ModelCardError(msg)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                msg = f"{source}: model card is missing the required field '{where}.{name}'"
                raise ModelCardError(msg)
            continue
        value = raw[name]
        if name == "input" and cls is ModelCard:
            value = _build(InputSpec, _obj(value, source, "card.input"), source, "card.input")
        elif name == "anomaly" and value is not None:
            value = _build(AnomalySpec, _obj(value, source, "card.anomaly"), source, "card.anomaly")
        elif name == "state" and value is not None:
            value = _build(StateSpec, _obj(value, source, "card.state"), source, "card.state")
        elif name == "value_range":
            value = tuple(value) if isinstance(value, list) else value
        values[name] = value
    try:
        obj = cls(**values)
    except TypeError as e:
        msg = f"{source}: model card is malformed ({e})"
        raise ModelCardError(msg) from None
    if isinstance(obj, ModelCard):
        obj.validate(source)
    return obj


def _obj(value: Any, source: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"{source}: model card field '{where}' must be an object"
        raise ModelCardError(msg)
    return value


def card_from_metadata(metadata: dict[str, str], source: str = "model") -> ModelCard:
    """Read the card from an ONNX file's metadata_props (as onnxruntime returns them)."""
    if CARD_KEY not in metadata:
        msg = (f"{source}: no edge-ae model card (metadata key {CARD_KEY!r}) in this ONNX file; "
               "export models with 'edge-ae export'")
        raise ModelCardError(msg)
    return ModelCard.from_json(metadata[CARD_KEY], source)
