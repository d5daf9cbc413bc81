"""Sparse autoencoder: one hidden layer, possibly wider than the input, kept sparse by a penalty on its
activations (L1, or KL divergence towards a target activation rho; see train.objectives)."""

from __future__ import annotations

import torch
from torch import nn

from train.objectives import sparse_objective
from train.spec import AUTOENCODER_OUTPUTS, FamilySpec, register_family


class SparseAutoencoder(nn.Module):
    """(B, F) -> (B, F); ``encode`` gives the (B, hidden) activations in [0, 1] (sigmoid units)."""

    def __init__(self, features: int, hidden: int = 1024) -> None:
        super().__init__()
        self.features, self.bottleneck = features, hidden
        self.encoder = nn.Sequential(nn.Linear(features, hidden), nn.Sigmoid())
        self.decoder = nn.Sequential(nn.Linear(hidden, features), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, H)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)  # (B, F)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encode(x)
        return self.decode(h), h


def sparse(features: int = 784, hidden: int = 1024) -> SparseAutoencoder:
    return SparseAutoencoder(features, hidden)


# --bottleneck sets the hidden width: the code may be wider than the input.
register_family(FamilySpec("sparse", sparse, layout="NF", outputs=AUTOENCODER_OUTPUTS, objective=sparse_objective,
                           code_argument="hidden"))
