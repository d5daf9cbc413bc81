"""Denoising autoencoder: the undercomplete architecture, trained on corrupted input against the clean
target (masking noise and Gaussian noise; see train.objectives.corrupt_dense)."""

from __future__ import annotations

from train.families.undercomplete import DenseAutoencoder
from train.registry import register_family


@register_family("denoising")
def denoising(features: int = 784, bottleneck: int = 64, hidden: tuple[int, ...] = (256,),
              activation: str = "relu") -> DenseAutoencoder:
    return DenseAutoencoder(features, bottleneck, tuple(hidden), activation)
