"""Undercomplete autoencoder: dense encoder -> small linear bottleneck -> dense decoder.

The classic non-linear dimensionality reduction: inputs are flattened fixed-size images (B, F)
in [0, 1]; the bottleneck is smaller than the input, so the network must learn a compact code.
"""

from __future__ import annotations

import torch
from torch import nn

from train.families._dense import mlp
from train.objectives import plain_objective
from train.spec import AUTOENCODER_OUTPUTS, FamilySpec, register_family


class DenseAutoencoder(nn.Module):
    """(B, F) -> (B, F); ``encode`` gives the (B, bottleneck) code."""

    def __init__(self, features: int, bottleneck: int = 32, hidden: tuple[int, ...] = (256,),
                 activation: str = "relu") -> None:
        super().__init__()
        self.features, self.bottleneck = features, bottleneck
        self.encoder = mlp([features, *hidden, bottleneck], activation)  # linear code
        self.decoder = mlp([bottleneck, *reversed(hidden), features], activation, last="sigmoid")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, Z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, F)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z


def undercomplete(features: int = 784, bottleneck: int = 32, hidden: tuple[int, ...] = (256,),
                  activation: str = "relu") -> DenseAutoencoder:
    return DenseAutoencoder(features, bottleneck, tuple(hidden), activation)


register_family(FamilySpec("undercomplete", undercomplete, layout="NF", outputs=AUTOENCODER_OUTPUTS,
                           objective=plain_objective))
