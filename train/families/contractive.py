"""Contractive autoencoder: a dense autoencoder with smooth (sigmoid) encoder units, trained with
reconstruction + lambda * ||J||_F^2 of the encoder's Jacobian (exact; see train.objectives)."""

from __future__ import annotations

import torch
from torch import nn

from train.families._dense import mlp
from train.registry import register_family


class ContractiveAutoencoder(nn.Module):
    """(B, F) -> (B, F); ``encode`` gives the (B, bottleneck) code, sigmoid units."""

    def __init__(self, features: int, bottleneck: int = 64, hidden: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.features, self.bottleneck = features, bottleneck
        self.encoder = mlp([features, *hidden, bottleneck], "sigmoid", last="sigmoid")
        self.decoder = mlp([bottleneck, *reversed(hidden), features], "sigmoid", last="sigmoid")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, Z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, F)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z


@register_family("contractive")
def contractive(features: int = 784, bottleneck: int = 64, hidden: tuple[int, ...] = ()) -> ContractiveAutoencoder:
    return ContractiveAutoencoder(features, bottleneck, tuple(hidden))
