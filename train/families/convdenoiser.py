"""Blind convolutional denoising autoencoder for camera frames.

The encoder starts with a 4x4 stride-2 convolution (half resolution from the first layer),
halves the resolution twice more with strided 3x3 convolutions down to a bottleneck at 1/8
scale; the decoder doubles it back with 2x2 transposed convolutions and adds the encoder
features of the same scale (additive skips quantise better than concatenation). The network
predicts the noise; the output is the input minus that prediction, clipped to [0, 1].

The default widths cost about 13 k MAC per pixel: channel counts are multiples of 16 because
onnxruntime's blocked (NCHWc) convolutions run at full speed only then.

With ``level=True`` the network also estimates the noise level and lets the caller scale it (a
``strength``; CBDNet's noise-estimation sub-network and FFDNet's level map, made cheap): a 3x3 and a 1x1
convolution on the bottleneck features give a per-block noise sigma (B, 1, H/8, W/8, on the 0..1 scale,
``estimate``); ``strength`` times that map enters the decoder at every scale (a 1x1 convolution added to the
bottleneck and to both skip sums). ``strength`` 1 is the network's own estimate ("auto"); above 1 removes
more, below 1 less. Training (train.loop) feeds the true local level to the decoder on half of the samples
and fits the estimate to it, so the decoder follows the map it is given. About 0.2 k MAC per pixel more.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from train.spec import FamilySpec, register_family


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)


def _stack(channels: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [_conv(channels, channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class ConvDenoiser(nn.Module):
    """U-shaped denoising autoencoder; input and output are (B, C, H, W) in [0, 1], H and W multiples of 8."""

    spatial_multiple = 8

    def __init__(
        self,
        channels: int = 3,
        widths: tuple[int, int, int] = (32, 64, 128),
        blocks: tuple[int, int, int, int, int] = (0, 1, 2, 1, 0),
        level: bool = False,
    ) -> None:
        super().__init__()
        c0, c1, c2 = widths
        self.channels = channels
        self.takes_strength = level
        self.head = nn.Sequential(nn.Conv2d(channels, c0, 4, stride=2, padding=1), nn.ReLU(inplace=True))
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
        self.tail = nn.ConvTranspose2d(c0, channels, 2, stride=2)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        if level:
            self.level_head = nn.Sequential(_conv(c2, 32), nn.ReLU(inplace=True), nn.Conv2d(32, 1, 1))
            nn.init.constant_(self.level_head[2].bias, -3.0)  # softplus(-3) = 0.05: sigma about 12 at the start
            self.level_in = nn.ModuleList(nn.Conv2d(1, c, 1) for c in (c2, c1, c0))
            for conv in self.level_in:  # start as the blind network: the map adds nothing until it learns to
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def estimate(self, z: torch.Tensor) -> torch.Tensor:
        """The noise sigma (0..1 scale) per 8x8 block, (B, 1, H/8, W/8), from the bottleneck features ``z``."""
        return F.softplus(self.level_head(z))

    def decode(self, x: torch.Tensor, feats: list[torch.Tensor], level: torch.Tensor | None = None) -> torch.Tensor:
        """The denoised frame from ``encode``'s features; ``level`` (B, 1, H/8, W/8): the noise map to follow."""
        e0, e1, z = feats
        if level is not None:
            z = z + self.level_in[0](level)
            up = F.interpolate(level, scale_factor=2.0, mode="nearest")
            e1 = e1 + self.level_in[1](up)
            e0 = e0 + self.level_in[2](F.interpolate(up, scale_factor=2.0, mode="nearest"))
        d1 = self.dec1(self.up1(z) + e1)  # (B, c1, H/4, W/4)
        d0 = self.dec0(self.up0(d1) + e0)  # (B, c0, H/2, W/2)
        noise = self.tail(d0)  # (B, C, H, W)
        return torch.clamp(x - noise, 0.0, 1.0)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        e0 = self.enc0(self.head(x))  # (B, c0, H/2, W/2)
        e1 = self.enc1(self.down1(e0))  # (B, c1, H/4, W/4)
        z = self.bottleneck(self.down2(e1))  # (B, c2, H/8, W/8)
        return [e0, e1, z]

    def forward(self, x: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, H, W) in [0, 1]; ``strength`` (1,) or (B,), only with ``level``: how hard (1: as estimated)."""
        feats = self.encode(x)
        if not self.takes_strength:
            return self.decode(x, feats)
        level = self.estimate(feats[2])
        if strength is not None:
            level = level * strength.view(-1, 1, 1, 1)
        return self.decode(x, feats, level)


def conv_denoiser(
    channels: int = 3,
    widths: tuple[int, int, int] = (32, 64, 128),
    blocks: tuple[int, int, int, int, int] = (0, 1, 2, 1, 0),
    level: bool = False,
) -> ConvDenoiser:
    return ConvDenoiser(channels=channels, widths=tuple(widths), blocks=tuple(blocks), level=level)


def channel_arguments(channels: int, height: int | None, width: int | None) -> dict[str, Any]:
    return {"channels": channels}


# Any frame size; trained by train.loop on blind-noise patches (no objective here, no anomaly score).
register_family(FamilySpec("conv_denoiser", conv_denoiser, layout="image", outputs={"output": "image"}, score=None,
                           arguments=channel_arguments, code_argument=None))
