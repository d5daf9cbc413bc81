"""Convolutional autoencoder (the classic image AE): three conv + max-pool stages down, three
conv + upsampling stages up, a final conv to the image. Inputs are (B, C, H, W) in [0, 1] of the fixed
size the model was built for; it pads them to a multiple of 8 inside and crops the output back.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from train.objectives import plain_objective
from train.spec import AUTOENCODER_OUTPUTS, FamilySpec, register_family


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"))


class ConvAutoencoder(nn.Module):
    def __init__(self, channels: int = 1, height: int = 28, width: int = 28,
                 widths: tuple[int, int, int] = (16, 8, 8)) -> None:
        super().__init__()
        c0, c1, c2 = widths
        self.channels, self.height, self.width = channels, height, width
        self.pad_h, self.pad_w = -height % 8, -width % 8
        self.bottleneck = c2 * (height + self.pad_h) // 8 * (width + self.pad_w) // 8
        self.encoder = nn.Sequential(_down(channels, c0), _down(c0, c1), _down(c1, c2))
        self.decoder = nn.Sequential(_up(c2, c1), _up(c1, c1), _up(c1, c0),
                                     nn.Conv2d(c0, channels, 3, padding=1), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, self.pad_w, 0, self.pad_h))  # (B, C, H8, W8), static padding
        return self.encoder(x)  # (B, c2, H8/8, W8/8)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)[:, :, : self.height, : self.width]  # (B, C, H, W)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z.flatten(1)


def convolutional(channels: int = 1, height: int = 28, width: int = 28,
                  widths: tuple[int, int, int] = (16, 8, 8)) -> ConvAutoencoder:
    return ConvAutoencoder(channels, height, width, tuple(widths))


def image_arguments(channels: int, height: int | None, width: int | None) -> dict[str, Any]:
    return {"channels": channels, "height": height, "width": width}


# No --bottleneck: the code size follows from the widths and the frame size.
register_family(FamilySpec("convolutional", convolutional, layout="NCHW", outputs=AUTOENCODER_OUTPUTS,
                           objective=plain_objective, arguments=image_arguments, code_argument=None))
