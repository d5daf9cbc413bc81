"""Denoising autoencoder: the undercomplete architecture, trained on corrupted input against the clean
target (masking noise and Gaussian noise; see train.objectives.corrupt_dense)."""

from __future__ import annotations

from train.families.undercomplete import DenseAutoencoder
from train.objectives import denoising_objective
from train.spec import AUTOENCODER_OUTPUTS, FamilySpec, register_family


def denoising(features: int = 784, bottleneck: int = 64, hidden: tuple[int, ...] = (256,),
              activation: str = "relu") -> DenseAutoencoder:
    return DenseAutoencoder(features, bottleneck, tuple(hidden), activation)


register_family(FamilySpec("denoising", denoising, layout="NF", outputs=AUTOENCODER_OUTPUTS,
                           objective=denoising_objective))
