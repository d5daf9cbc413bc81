"""What a family says about itself, once: a ``FamilySpec`` registered beside its network
(train/families/<name>.py). Training, export and the tests read the spec (through train.registry) and
nothing else; this module imports no family, so families can import it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

from train.objectives import Objective

LAYOUTS = ("image", "NF", "NCHW", "NTF")
# as edge_runtime.card names them; "appearance": a predictor's reconstruction of the present frame (issue 14)
ROLES = ("image", "reconstruction", "latent", "mean", "logvar", "decoded", "state", "appearance")
# Dynamic axes of the frame input by layout: an image model runs at any size, the others at the trained size.
INPUT_AXES: dict[str, dict[int, str]] = {
    "image": {0: "batch", 2: "height", 3: "width"},
    "NF": {0: "batch"},
    "NCHW": {0: "batch"},
    "NTF": {0: "batch", 1: "time"},
}
# most families' graph outputs (read-only: every spec that names it shares it)
AUTOENCODER_OUTPUTS: Mapping[str, str] = MappingProxyType({"reconstruction": "reconstruction", "latent": "latent"})
# `edge-ae train` options that only some families take (the rest apply to every family).
STATE_INPUT = "state"  # the graph input of a recurrent family's state
FAMILY_OPTIONS = ("patch", "height", "width", "seq_len", "bottleneck")


def flat_arguments(channels: int, height: int | None, width: int | None) -> dict[str, Any]:
    """Size arguments of a family on flattened frames: the feature count."""
    return {"features": channels * (height or 0) * (width or 0)}


@dataclass(frozen=True)
class ExtraInput:
    """A graph input besides the frames, shaped (rows, width): the variational family's latent codes."""

    name: str
    rows: str  # name of its dynamic first axis
    width: str  # the model attribute that gives its second dimension


@dataclass(frozen=True)
class FamilySpec:
    """What training, export and the model card need to know about one family, said once.

    The network ``build`` returns takes the frame batch (then each extra input) and returns one tensor per
    entry of ``outputs``, in that order; a ``bottleneck`` attribute, when it has one, is recorded in the
    checkpoint's metrics, and each extra input's ``width`` names an attribute of it.
    """

    name: str  # the public name: --family, the checkpoint, the card
    build: Callable[..., nn.Module]  # keyword arguments -> the network
    # "image": (B, C, H, W) frames of any size, trained on noisy patches by train.loop (no fixed size);
    # NF (B, H*W*C), NCHW (B, C, H, W) and NTF (B, T, H*W*C): fixed-size frames, trained by train.loop_ae.
    layout: str
    outputs: Mapping[str, str]  # graph output name -> role, in the order the network returns them
    objective: Objective | None = None  # loss and parts on a clean batch; every fixed-size family has one
    score: str | None = "mse"  # the anomaly score a card names by default; None: no anomaly task
    smoothing: int = 1  # the card's default smoothing of that score: the mean of the last k frames' scores
    arguments: Callable[[int, int | None, int | None], dict[str, Any]] = flat_arguments  # (C, H, W) -> kwargs
    code_argument: str | None = "bottleneck"  # the keyword --bottleneck sets; None: no free code size
    extra_inputs: tuple[ExtraInput, ...] = ()
    dynamic_axes: Mapping[str, Mapping[int, str]] = field(default_factory=dict)  # overrides of ``axes()``
    # > 0: a causal predictor of grey video (NCHW): the input stacks frames t-K..t as K + 1 channels and the
    # reconstruction output is frame t predicted from the K past ones; trained on windows cut from videos.
    past_frames: int = 0
    # Recurrent image families: channels of the state (of a colour model; a network's ``state_channels``
    # attribute, when it has one, gives its own), a graph input named ``state`` shaped like the frame batch
    # (B, state_channels, H, W), returned updated as the output of role "state"; zeros when empty.
    state_channels: int = 0

    def outputs_of(self, model: nn.Module) -> Mapping[str, str]:
        """The graph outputs (name -> role) of this family's network ``model``: its ``output_roles`` attribute,
        when it has one (a constructor switch that adds an output, e.g. the predictor's appearance branch), else
        ``outputs``."""
        return getattr(model, "output_roles", self.outputs)

    def state_channels_of(self, model: nn.Module) -> int:
        """The state channels of this family's network ``model`` (0: not recurrent)."""
        return int(getattr(model, "state_channels", self.state_channels)) if self.state_channels else 0

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            msg = f"family {self.name!r}: layout {self.layout!r} is not one of {', '.join(LAYOUTS)}"
            raise ValueError(msg)
        bad = sorted(set(self.outputs.values()) - set(ROLES))
        if not self.outputs or bad:
            msg = f"family {self.name!r}: output roles {bad or 'missing'}; roles are {', '.join(ROLES)}"
            raise ValueError(msg)
        if (self.state_channels > 0) != ("state" in self.outputs.values()) or (
                self.state_channels and self.layout != "image"):
            msg = f"family {self.name!r}: a state needs an image layout, state_channels and one output of role state"
            raise ValueError(msg)
        if self.past_frames and self.layout != "NCHW":
            msg = f"family {self.name!r}: past_frames needs layout NCHW (the frames stacked as channels)"
            raise ValueError(msg)
        if self.fixed_size and self.objective is None:
            msg = f"family {self.name!r}: a {self.layout} family needs an objective"
            raise ValueError(msg)

    @property
    def fixed_size(self) -> bool:
        """Trained and run at one frame size (train.loop_ae), as opposed to an any-size image model."""
        return self.layout != "image"

    @property
    def card_layout(self) -> str:
        """The layout the model card names (an image model takes NCHW batches)."""
        return "NCHW" if self.layout == "image" else self.layout

    @property
    def options(self) -> frozenset[str]:
        """The family-specific `edge-ae train` options (FAMILY_OPTIONS) that apply to this family."""
        opts = {"height", "width"} if self.fixed_size else {"patch"}
        if self.layout == "NTF" or self.state_channels:
            opts.add("seq_len")
        if self.code_argument is not None:
            opts.add("bottleneck")
        return frozenset(opts)

    def axes(self, outputs: Mapping[str, str] | None = None) -> dict[str, dict[int, str]]:
        """Dynamic axes of the exported graph: the input's by layout, the same on outputs shaped like the
        input, the batch on other outputs, the rows of extra inputs; ``dynamic_axes`` overrides any.
        ``outputs``: the network's own outputs (``outputs_of``), when they differ from the spec's."""
        frame = INPUT_AXES[self.layout]
        axes: dict[str, dict[int, str]] = {"input": dict(frame)}
        axes.update({e.name: {0: e.rows} for e in self.extra_inputs})
        if self.state_channels:
            axes[STATE_INPUT] = dict(frame)
        for name, role in (self.outputs if outputs is None else outputs).items():
            axes[name] = dict(frame) if role in ("image", "reconstruction", "state", "appearance") else {0: "batch"}
        axes.update({name: dict(a) for name, a in self.dynamic_axes.items()})
        return axes


_FAMILIES: dict[str, FamilySpec] = {}


def register_family(spec: FamilySpec) -> FamilySpec:
    """Make ``spec`` buildable by its name (a family module calls this when it is imported)."""
    if spec.name in _FAMILIES:
        msg = f"family {spec.name!r} is registered twice"
        raise ValueError(msg)
    _FAMILIES[spec.name] = spec
    return spec


def unregister_family(name: str) -> None:
    """Forget a family registered at run time (a plug-in or a test that is done with it)."""
    _FAMILIES.pop(name, None)


def registered() -> dict[str, FamilySpec]:
    """Every family registered so far, by name (train.registry also loads the built-in ones first)."""
    return dict(_FAMILIES)
