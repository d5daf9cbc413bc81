"""Causal next-frame predictor for video anomaly detection: frames t-K..t-1 in, frame t out.

A small U-Net on grey frames of a fixed size (default 80 x 120: Ped2's 240 x 360 / 3): two convs at full size,
three stride-2 stages, bilinear upsampling with skip connections, LeakyReLU(0.1), Kaiming init, no
normalisation. It predicts a change to the last frame (the output conv starts at zero, so an untrained model
copies the last frame and the capacity goes to motion); clamped to [0, 1] in eval mode. Motion unlike the normal
footage's is not predicted and shows as error. The input stacks K + 1 frames, oldest first, the present last:
the model reads only the K past ones, so the score of frame t uses frames up to t only.

The appearance branch (issue 14, ``appearance`` = its code size; off unless a config names it, e.g.
``"model": {"appearance": 16}``, so older checkpoints rebuild as they were and the default is the predictor
alone, which did better on Ped2): a dense-code autoencoder of the present frame t (the convolutional
family's scene network: stride-2 convolutions down to ``appearance`` numbers and back). Copying the last frame
predicts a person standing still perfectly; a code this narrow, learned on normal footage only, cannot draw
them, so the appearance error shows what motion error misses. Reading frame t for frame t's score keeps the
score causal. The network then returns (prediction, appearance reconstruction), the graph outputs
``reconstruction`` and ``appearance``. The appearance branch trains on whole frames (its code is dense, so
it runs at one size only), the predictor on crops as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from train.families.convolutional import ConvAutoencoder
from train.objectives import ObjectiveConfig, Parts
from train.spec import FamilySpec, register_family

PAST_FRAMES = 4
CROP = (48, 64)  # training windows: random crops of this size (the same place in every frame of a stack)
APPEARANCE_CODE = 16  # numbers in the optional appearance branch's dense code (issue 14; a config names it)
APPEARANCE_WIDTHS = (8, 16, 32)  # its conv channels: (16, 32, 32) doubled the cost of a training step
APPEARANCE_BATCH = 8  # stacks of a batch whose present frame trains the branch (a step then costs about +12 %)
# The card's default smoothing: the score compared with the threshold is the mean of the last 4 frames' scene
# scores (causal). Chosen on Ped2 clips 09-12 with objects pasted into 11 and 12 (README, Anomaly results): a slow
# object's error stays up over frames while normal error mostly does not, so it ranks higher (the mean AUROC of a
# walking-speed object 0.956 -> 0.978 over 1 to 4 frames; 6 gave 0.984 and more false alarms), at a delay of a frame
# or two. Calibration's threshold leans more on the held-out clips so that false alarms stay about as they were
# (edge_runtime.calibration, HELD_OUT_WEIGHT).
SCORE_SMOOTHING = 4
PREDICTION_OUTPUTS: Mapping[str, str] = {"reconstruction": "reconstruction"}
BRANCH_OUTPUTS: Mapping[str, str] = {"reconstruction": "reconstruction", "appearance": "appearance"}


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.LeakyReLU(0.1))


def _up(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class FramePredictor(nn.Module):
    def __init__(self, height: int = 80, width: int = 120, past: int = PAST_FRAMES,
                 widths: tuple[int, int, int, int] = (12, 24, 32, 48), appearance: int | None = None) -> None:
        super().__init__()
        w0, w1, w2, w3 = widths
        self.height, self.width, self.past_frames = height, width, past
        self.e0 = nn.Sequential(_conv(past, w0), _conv(w0, w0))
        self.e1 = nn.Sequential(_conv(w0, w1, 2), _conv(w1, w1))
        self.e2 = nn.Sequential(_conv(w1, w2, 2), _conv(w2, w2))
        self.e3 = nn.Sequential(_conv(w2, w3, 2), _conv(w3, w3))
        self.d2 = _conv(w3 + w2, w2)
        self.d1 = _conv(w2 + w1, w1)
        self.d0 = _conv(w1 + w0, w0)
        self.out = nn.Conv2d(w0, 1, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.out.weight)  # starts as "copy the last frame"
        # Built after the init loop above: the branch has its own (the same Kaiming init, zero biases).
        self.appearance = (ConvAutoencoder(1, height, width, APPEARANCE_WIDTHS, code=appearance, dense=True, pool=False)
                           if appearance else None)
        self.output_roles = BRANCH_OUTPUTS if appearance else PREDICTION_OUTPUTS

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Frame t predicted from the stack (B, K + 1, H, W) (or (B, K, H, W): the past frames only)."""

        past = x[:, : self.past_frames]  # (B, K, H, W): frames t-K..t-1; x[:, K] (frame t) is never read
        s0 = self.e0(past)
        s1 = self.e1(s0)  # (B, w1, H/2, W/2)
        s2 = self.e2(s1)  # (B, w2, H/4, W/4)
        s3 = self.e3(s2)  # (B, w3, H/8, W/8)
        y = self.d2(torch.cat([_up(s3, s2), s2], 1))
        y = self.d1(torch.cat([_up(y, s1), s1], 1))
        y = self.d0(torch.cat([_up(y, s0), s0], 1))
        pred = past[:, -1:] + self.out(y)  # (B, 1, H, W)
        return pred if self.training else pred.clamp(0.0, 1.0)

    def appear(self, x: torch.Tensor) -> torch.Tensor:
        """The appearance branch's reconstruction (B, 1, H, W) of the present frame of the stack (B, K + 1, H, W)."""
        assert self.appearance is not None
        return self.appearance(x[:, self.past_frames : self.past_frames + 1])[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.appearance is None:
            return (self.predict(x),)
        return self.predict(x), self.appear(x)


def predictor(height: int = 80, width: int = 120, past: int = PAST_FRAMES,
              widths: tuple[int, int, int, int] = (12, 24, 32, 48), appearance: int | None = None) -> FramePredictor:
    return FramePredictor(height, width, past, tuple(widths), appearance)


def prediction_objective(model: nn.Module, x: torch.Tensor, cfg: ObjectiveConfig,
                         gen: torch.Generator | None) -> tuple[torch.Tensor, Parts]:
    """L1 error of the predicted present frame, on a random crop of the stacks (the same crop in every frame);
    with the appearance branch, plus the mean squared error of its reconstruction of the whole present frame
    of ``APPEARANCE_BATCH`` of the stacks (the parameters of the two parts are disjoint, and Adam scales each
    parameter's steps, so the two terms need no weights)."""
    full = x
    h, w = x.shape[-2:]
    ch, cw = min(CROP[0], h), min(CROP[1], w)
    i = int(torch.randint(h - ch + 1, (1,), generator=gen))
    j = int(torch.randint(w - cw + 1, (1,), generator=gen))
    x = x[:, :, i : i + ch, j : j + cw]  # (B, K+1, ch, cw)
    pred = model.predict(x)
    loss = (pred - x[:, -1:]).abs().mean()
    if getattr(model, "appearance", None) is None:
        return loss, {"l1": loss.item()}
    full = full[:APPEARANCE_BATCH]  # (b, K+1, H, W): the batch is drawn at random, so any b of it are
    app = (model.appear(full) - full[:, -1:]).pow(2).mean()
    return loss + app, {"l1": loss.item(), "appearance_mse": app.item()}


def frame_arguments(channels: int, height: int | None, width: int | None) -> dict[str, Any]:
    """The arguments training builds the network with. The appearance branch stays off by default: measured
    through ``edge-ae train --task anomaly`` it cost Ped2 more than it gave the Intel room (README, Anomaly
    results); a config file's ``"model": {"appearance": 16}`` turns it on."""
    return {"height": height, "width": width}


register_family(FamilySpec("predictor", predictor, layout="NCHW", outputs={"reconstruction": "reconstruction"},
                           objective=prediction_objective, score="scene", smoothing=SCORE_SMOOTHING,
                           arguments=frame_arguments, code_argument=None, past_frames=PAST_FRAMES))
