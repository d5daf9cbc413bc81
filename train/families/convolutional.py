"""Convolutional autoencoder (the classic image AE): three conv stages that halve the frame (stride 2 on small
frames, conv + max-pool on larger ones) down to a small dense code, three conv + upsampling stages up, a final
conv to the image; trained as a denoising AE on small frames. Inputs are (B, C, H, W) in [0, 1] of the fixed
size the model was built for; it pads them to a multiple of 8 inside and crops the output back.

Why it looks like this (issue 14): the first version (ReLU, 16/8/8 channels, PyTorch's default init, a
Sigmoid output) collapsed on one-class MNIST: most pixels are exact zeros, the cheapest early move is to push
every output towards 0, the Sigmoid saturates (pre-activation about -48) and passes no gradient back, and the
model outputs one black frame for every input. So: LeakyReLU(0.1) (no dead channels), Kaiming-normal init for
it with zero biases (the signal keeps its scale through the layers), no BatchNorm, and a linear output trained
with MSE, clamped to [0, 1] only in eval mode (so in the exported graph, never inside the training loss).

Why stride 2 and denoising on small frames (issue 14, one-class MNIST in a 30 s budget): the stride-2 encoder
makes a step about 1.6 times cheaper than conv + max-pool (the convolutions run on the halved frame), so the
budget buys more steps, and it ranked other digits better at the same time budget. Training on corrupted
inputs (``denoising_objective``: masking or Gaussian noise, against the clean target) stops the network from
learning the identity, so another digit is reconstructed towards the trained one and its error grows; with it a
code of 16 numbers ranked a little better than 8 or 32. The measurements are in the README's One-class MNIST
results.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from train.objectives import ObjectiveConfig, Parts, denoising_objective, plain_objective
from train.spec import AUTOENCODER_OUTPUTS, FamilySpec, register_family

_SLOPE = 0.1


def _act() -> nn.LeakyReLU:
    return nn.LeakyReLU(_SLOPE)


def _down(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    if pool:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), _act(), nn.MaxPool2d(2))
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), _act())


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), _act(), nn.Upsample(scale_factor=2, mode="nearest"))


SMALL_SIDE = 32  # frames up to this size: one object fills the frame (one-class sets like MNIST)


class ConvAutoencoder(nn.Module):
    """``pool``: conv + max-pool stages, else stride-2 convolutions. ``code``: numbers of the dense code (default
    8 for small frames, where one object fills the frame, 32 for larger ones: a scene). Training names both
    (``image_arguments``: stride 2 and a code of 16 on small frames); these defaults rebuild older checkpoints.
    ``dense=False`` puts a 1x1 conv code of ``code`` channels at 1/8 of the frame size instead. ``anomaly_score``
    is the score the exported card names by default: ssim_patch on small frames (ssim times the square root of
    patch: it ranks other digits above the trained one better than ssim, patch or mse), mse on scenes (ssim of a
    scene does not carry over from one normal clip to another: in a test, 15 of 30 normal frames of another clip
    flagged)."""

    def __init__(self, channels: int = 1, height: int = 28, width: int = 28,
                 widths: tuple[int, int, int] = (16, 32, 32), code: int | None = None,
                 dense: bool | None = None, pool: bool = True) -> None:
        super().__init__()
        small = max(height, width) <= SMALL_SIDE
        code = code if code is not None else (8 if small else 32)
        self.anomaly_score = "ssim_patch" if small else "mse"
        self.pool = pool
        c0, c1, c2 = widths
        self.channels, self.height, self.width = channels, height, width
        self.pad_h, self.pad_w = -height % 8, -width % 8
        h8, w8 = (height + self.pad_h) // 8, (width + self.pad_w) // 8
        self.dense = True if dense is None else dense
        if self.dense:
            self.bottleneck = code
            to_code: list[nn.Module] = [nn.Flatten(), nn.Linear(c2 * h8 * w8, code)]  # (B, code), linear
            from_code: list[nn.Module] = [nn.Linear(code, c2 * h8 * w8), _act(), nn.Unflatten(1, (c2, h8, w8))]
        else:
            self.bottleneck = code * h8 * w8
            to_code = [nn.Conv2d(c2, code, 1)]  # (B, code, H/8, W/8), linear
            from_code = [nn.Conv2d(code, c2, 1), _act()]
        self.encoder = nn.Sequential(_down(channels, c0, self.pool), _down(c0, c1, self.pool), _down(c1, c2, self.pool),
                                     *to_code)
        self.decoder = nn.Sequential(*from_code, _up(c2, c2), _up(c2, c1), _up(c1, c0),
                                     nn.Conv2d(c0, channels, 3, padding=1))  # linear output
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=_SLOPE, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, self.pad_w, 0, self.pad_h))  # (B, C, H8, W8), static padding
        return self.encoder(x)  # (B, code)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        y = self.decoder(z)[:, :, : self.height, : self.width]  # (B, C, H, W)
        return y if self.training else y.clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z.flatten(1)


def convolutional(channels: int = 1, height: int = 28, width: int = 28,
                  widths: tuple[int, int, int] = (16, 32, 32), code: int | None = None,
                  dense: bool | None = None, pool: bool = True) -> ConvAutoencoder:
    return ConvAutoencoder(channels, height, width, tuple(widths), code, dense, pool)


def image_arguments(channels: int, height: int | None, width: int | None) -> dict[str, Any]:
    """The arguments training builds the network with: on small frames stride 2 and a code of 16 (issue 14).

    They are named here, not defaulted in the class: a checkpoint stores the arguments it was built with, and
    those written before these existed (max-pool, a code of 8) name neither and rebuild from the defaults."""
    small = max(height or 28, width or 28) <= SMALL_SIDE
    small_frame = {"code": 16} if small else {}
    return {"channels": channels, "height": height, "width": width, "pool": not small, **small_frame}


def convolutional_objective(model: nn.Module, x: torch.Tensor, cfg: ObjectiveConfig,
                            gen: torch.Generator | None) -> tuple[torch.Tensor, Parts]:
    """Denoising on small frames (issue 14), plain reconstruction on larger ones: on a scene (the Intel empty
    room, 54x96, 300 steps) denoising training dropped the AUROC of frames with a person from 0.999 to 0.83."""
    if max(x.shape[-2:]) <= SMALL_SIDE:  # (B, C, H, W)
        return denoising_objective(model, x, cfg, gen)
    return plain_objective(model, x, cfg, gen)


# No --bottleneck: the code size is the model argument `code` (a config file's "model": {"code": N}).
# Default score ssim_patch (small frames; the network's anomaly_score says which one its card names). Small
# frames train on corrupted inputs (the ObjectiveConfig's mask and sigma), see the module's docstring.
register_family(FamilySpec("convolutional", convolutional, layout="NCHW", outputs=AUTOENCODER_OUTPUTS,
                           objective=convolutional_objective, score="ssim_patch", arguments=image_arguments,
                           code_argument=None))
