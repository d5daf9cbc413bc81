"""Blind convolutional denoising autoencoder for camera frames.

The encoder starts with a 4x4 stride-2 convolution (half resolution from the first layer),
halves the resolution twice more with strided 3x3 convolutions down to a bottleneck at 1/8
scale; the decoder doubles it back with 2x2 transposed convolutions and adds the encoder
features of the same scale (additive skips quantise better than concatenation). The network
predicts the noise; the output is the input minus that prediction, clipped to [0, 1].

The default widths cost about 13 k MAC per pixel: channel counts are multiples of 16 because
onnxruntime's blocked (NCHWc) convolutions run at full speed only then.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

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
    ) -> None:
        super().__init__()
        c0, c1, c2 = widths
        self.channels = channels
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

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        e0 = self.enc0(self.head(x))  # (B, c0, H/2, W/2)
        e1 = self.enc1(self.down1(e0))  # (B, c1, H/4, W/4)
        z = self.bottleneck(self.down2(e1))  # (B, c2, H/8, W/8)
        return [e0, e1, z]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0, e1, z = self.encode(x)
        d1 = self.dec1(self.up1(z) + e1)  # (B, c1, H/4, W/4)
        d0 = self.dec0(self.up0(d1) + e0)  # (B, c0, H/2, W/2)
        noise = self.tail(d0)  # (B, C, H, W)
        return torch.clamp(x - noise, 0.0, 1.0)


def conv_denoiser(
    channels: int = 3,
    widths: tuple[int, int, int] = (32, 64, 128),
    blocks: tuple[int, int, int, int, int] = (0, 1, 2, 1, 0),
) -> ConvDenoiser:
    return ConvDenoiser(channels=channels, widths=tuple(widths), blocks=tuple(blocks))


def channel_arguments(channels: int, height: int | None, width: int | None) -> dict[str, Any]:
    return {"channels": channels}


# Any frame size; trained by train.loop on blind-noise patches (no objective here, no anomaly score).
register_family(FamilySpec("conv_denoiser", conv_denoiser, layout="image", outputs={"output": "image"}, score=None,
                           arguments=channel_arguments, code_argument=None))
