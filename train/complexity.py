"""Cost of a convolutional model, counted from a real forward pass."""

from __future__ import annotations

import torch
from torch import nn


def macs_per_pixel(model: nn.Module, channels: int = 3, size: int = 64) -> float:
    """Multiply-accumulates per input pixel of the convolutions in ``model``."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        if isinstance(module, nn.ConvTranspose2d):
            total += inputs[0].numel() * kh * kw * module.out_channels // module.groups
        else:
            total += output.numel() * kh * kw * module.in_channels // module.groups

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, size, size))
    finally:
        for h in handles:
            h.remove()
    return total / (size * size)
