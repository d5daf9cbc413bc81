"""Variational autoencoder: encoder to mean and log-variance, reparameterised sampling in training,
ELBO with a beta weight (train.objectives.elbo). In eval and export the mean path is deterministic.

The exported graph takes two inputs, images (B, F) and latents (M, Z) (either batch may be 0), and
gives the reconstruction of the images through the mean, the mean, the log-variance, and the decoded
latents: one ONNX file serves encoding, reconstruction, sampling and interpolation.
"""

from __future__ import annotations

import torch
from torch import nn

from train.families._dense import mlp
from train.objectives import variational_objective
from train.spec import ExtraInput, FamilySpec, register_family


class VariationalAutoencoder(nn.Module):
    def __init__(self, features: int, bottleneck: int = 16, hidden: tuple[int, ...] = (256,)) -> None:
        super().__init__()
        self.features, self.bottleneck = features, bottleneck
        self.body = mlp([features, *hidden], "relu", last="relu")
        width = hidden[-1] if hidden else features
        self.mean = nn.Linear(width, bottleneck)
        self.logvar = nn.Linear(width, bottleneck)
        self.decoder = mlp([bottleneck, *reversed(hidden), features], "relu", last="sigmoid")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)  # (B, H)
        return self.mean(h), self.logvar(h)  # (B, Z) each

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, F)

    def sample_posterior(self, mean: torch.Tensor, logvar: torch.Tensor,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + eps * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """(reconstruction through the mean, mean, logvar, decoded ``z``) - deterministic."""
        mean, logvar = self.encode(x)
        z = mean[:0] if z is None else z
        return self.decode(mean), mean, logvar, self.decode(z)


def variational(features: int = 784, bottleneck: int = 16, hidden: tuple[int, ...] = (256,)) -> VariationalAutoencoder:
    return VariationalAutoencoder(features, bottleneck, tuple(hidden))


register_family(FamilySpec(
    "variational", variational, layout="NF",
    outputs={"reconstruction": "reconstruction", "mean": "mean", "logvar": "logvar", "decoded": "decoded"},
    objective=variational_objective,
    score="likelihood",
    extra_inputs=(ExtraInput("latent", rows="samples", width="bottleneck"),),
    dynamic_axes={"decoded": {0: "samples"}},  # one decoded image per latent row
))
