"""Causal recurrent video denoiser: the ``conv_denoiser`` U-Net with a state carried from frame to frame.

Design ("gated recurrent U-Net", warm-started from the bundled single-frame model by train.loop_video):
  * The spatial U-Net of ``ConvDenoiser`` (same module names, so its weights map one to one). Its head
    (4x4 stride-2 conv) takes 3 + 4 + 1 input channels: the noisy frame x_t, the state s_{t-1} =
    [previous output (3), one learned auxiliary map (1)] (the previous output enters as prev - x_t) and a
    motion cue mean_c |x_t - prev|. New input weights start small (std 0.02).
  * The tail (2x2 transposed conv) gives 3 + 2 outputs: the predicted noise n, a per-pixel blend logit g
    and the next auxiliary map a (zero-initialised; gate bias -2.5):
        spatial = x_t - n;  out = clamp(spatial + sigmoid(g) * (prev - spatial), 0, 1);  state = [out, tanh(a)]
  * Cut reset inside the graph (no parameters): the mean change between 8x8 block means of the frame and
    the past above 0.10 (fading out by 0.15) cuts the past off: a spatial-only frame. The empty state
    (zeros, ``empty_state``) always triggers it, so the first frame of a stream and a still are spatial-only.
  * Extra cost over the single-frame model: about 700 MAC per pixel (5 head inputs, 2 tail outputs).

Frames: (B, 3, H, W) RGB float in [0, 1], H and W multiples of 8; grey frames as three equal channels.
The exported graph: inputs ``input`` and ``state`` (B, 4, H, W), outputs ``output`` and ``state_out``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from train.families.convdenoiser import _conv, _stack  # the same blocks, so the warm start maps 1:1
from train.spec import FamilySpec, register_family

STATE_CHANNELS = 4  # of a colour model: previous output RGB (3) + auxiliary recurrent map (1); grey: 2


class VideoDenoiser(nn.Module):
    """forward(frame (B,3,H,W), state (B,4,H,W)) -> (out (B,3,H,W), new_state (B,4,H,W))."""

    spatial_multiple = 8

    def __init__(
        self,
        channels: int = 3,
        widths: tuple[int, int, int] = (32, 64, 128),
        blocks: tuple[int, int, int, int, int] = (0, 1, 2, 1, 0),
        gate_bias: float = -2.5,
        init_std: float = 0.02,
        cut_reset: bool = True,
        cut_threshold: float = 0.10,
    ) -> None:
        super().__init__()
        c0, c1, c2 = widths
        self.channels = channels
        self.state_channels = channels + 1  # previous output + one auxiliary map
        self.cut_reset = cut_reset
        self.cut_threshold = cut_threshold
        # Same module names as ConvDenoiser so the bundled weights map one to one.
        self.head = nn.Sequential(nn.Conv2d(channels, c0, 4, stride=2, padding=1), nn.ReLU(inplace=True))
        # New weights for the head's extra inputs: the state (4) and the motion cue |x - prev| (1); applied as
        # one conv with the head's (concatenated). Small random init (not zero) so that the gate, whose tail
        # weights start at zero, gets a gradient from the first step on.
        self.head_state = nn.Parameter(torch.randn(c0, channels + 2, 4, 4) * init_std)
        n_enc0, n_enc1, n_mid, n_dec1, n_dec0 = blocks
        self.enc0 = _stack(c0, n_enc0)
        self.down1 = nn.Sequential(_conv(c0, c1, stride=2), nn.ReLU(inplace=True))
        self.enc1 = _stack(c1, n_enc1)
        self.down2 = nn.Sequential(_conv(c1, c2, stride=2), nn.ReLU(inplace=True))
        self.bottleneck = _stack(c2, n_mid)
        self.up1 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.dec1 = _stack(c1, n_dec1)
        self.up0 = nn.ConvTranspose2d(c1, c0, 2, stride=2)
        self.dec0 = _stack(c0, n_dec0)
        self.tail = nn.ConvTranspose2d(c0, channels, 2, stride=2)  # predicted noise
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        # New tail outputs (gate logit, aux map); applied as one transposed conv with the tail's.
        self.tail_ctrl_weight = nn.Parameter(torch.zeros(c0, 2, 2, 2))
        self.tail_ctrl_bias = nn.Parameter(torch.tensor([gate_bias, 0.0]))

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters that the single-frame model does not have (trained with a higher rate)."""
        return [self.head_state, self.tail_ctrl_weight, self.tail_ctrl_bias]

    def empty_state(self, frame: torch.Tensor) -> torch.Tensor:
        """The state before the first frame: zeros (B, C + 1, H, W)."""
        b, _, h, w = frame.shape
        return frame.new_zeros(b, self.state_channels, h, w)

    def forward(self, frame: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.channels
        prev = state[:, :c]  # (B, 3, H, W) previous output
        aux_in = state[:, c:]
        if self.cut_reset:
            # Frame-level reset (no parameters): the mean change between 8x8 block averages of the frame
            # and the past is ~0 for aligned content, a few 0.01 under motion, and large after a hard cut
            # or against the empty (zero) state; r goes 0 -> 1 between threshold and threshold + 0.05.
            # Where r = 1 the past is cut off entirely (state inputs and gate), i.e. a spatial-only frame.
            score = (F.avg_pool2d(frame, 8) - F.avg_pool2d(prev, 8)).abs().mean((1, 2, 3), keepdim=True)  # (B,1,1,1)
            keep = 1.0 - torch.clamp((score - self.cut_threshold) / 0.05, 0.0, 1.0)
            prev = frame + keep * (prev - frame)
            aux_in = aux_in * keep
        else:
            keep = None
        cue = (frame - prev).abs().mean(1, keepdim=True)  # (B, 1, H, W) per-pixel change vs the past
        w_head = torch.cat([self.head[0].weight, self.head_state], 1)  # (c0, C + (C + 1) + 1, 4, 4)
        # The past enters as its difference to the frame (zero-mean where aligned, so the random init of
        # head_state barely perturbs the pretrained head), plus aux and the cue.
        inp = torch.cat([frame, prev - frame, aux_in, cue], 1)  # (B, 8, H, W)
        h = F.relu(F.conv2d(inp, w_head, self.head[0].bias, stride=2, padding=1))  # (B, c0, H/2, W/2)
        e0 = self.enc0(h)
        e1 = self.enc1(self.down1(e0))  # (B, c1, H/4, W/4)
        z = self.bottleneck(self.down2(e1))  # (B, c2, H/8, W/8)
        d1 = self.dec1(self.up1(z) + e1)  # (B, c1, H/4, W/4)
        d0 = self.dec0(self.up0(d1) + e0)  # (B, c0, H/2, W/2)
        w_tail = torch.cat([self.tail.weight, self.tail_ctrl_weight], 1)  # (c0, C + 2, 2, 2)
        b_tail = torch.cat([self.tail.bias, self.tail_ctrl_bias])
        t = F.conv_transpose2d(d0, w_tail, b_tail, stride=2)  # (B, C + 2, H, W): noise, gate logit, aux
        spatial = frame - t[:, :c]
        w = torch.sigmoid(t[:, c : c + 1])  # (B, 1, H, W) weight on the past
        if keep is not None:
            w = w * keep
        out = torch.clamp(spatial + w * (prev - spatial), 0.0, 1.0)
        aux = torch.tanh(t[:, c + 1 : c + 2])
        return out, torch.cat([out, aux], 1)

    def run_sequence(self, frames: torch.Tensor,
                     state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, 3, H, W) -> outputs (B, T, 3, H, W), last state."""
        if state is None:
            state = self.empty_state(frames[:, 0])
        outs = []
        for t in range(frames.shape[1]):
            o, state = self(frames[:, t], state)
            outs.append(o)
        return torch.stack(outs, 1), state


def video_denoiser(
    channels: int = 3,
    widths: tuple[int, int, int] = (32, 64, 128),
    blocks: tuple[int, int, int, int, int] = (0, 1, 2, 1, 0),
    cut_reset: bool = True,
    cut_threshold: float = 0.10,
) -> VideoDenoiser:
    return VideoDenoiser(channels=channels, widths=tuple(widths), blocks=tuple(blocks), cut_reset=cut_reset,
                         cut_threshold=cut_threshold)


def channel_arguments(channels: int, height: int | None, width: int | None) -> dict[str, Any]:
    return {"channels": channels}


# Any frame size; trained by train.loop_video on noisy clips (sequences), warm-started from a conv_denoiser.
register_family(FamilySpec("video_denoiser", video_denoiser, layout="image",
                           outputs={"output": "image", "state_out": "state"}, score=None,
                           arguments=channel_arguments, code_argument=None, state_channels=STATE_CHANNELS))
