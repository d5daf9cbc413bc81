"""Contractive autoencoder: a dense autoencoder with smooth (sigmoid) encoder units, trained with
reconstruction + lambda * ||J||_F^2 of the encoder's Jacobian (exact; see train.objectives)."""

from __future__ import annotations

from train.families._dense import mlp
from train.families.undercomplete import DenseAutoencoder
from train.objectives import contractive_objective
from train.spec import AUTOENCODER_OUTPUTS, FamilySpec, register_family


class ContractiveAutoencoder(DenseAutoencoder):
    """(B, F) -> (B, F); ``encode`` gives the (B, bottleneck) code, sigmoid units."""

    def __init__(self, features: int, bottleneck: int = 64, hidden: tuple[int, ...] = ()) -> None:
        super().__init__(features, bottleneck, hidden, "sigmoid")
        # Sigmoid code units (not the linear code of the undercomplete model).
        self.encoder = mlp([features, *hidden, bottleneck], "sigmoid", last="sigmoid")
        self.decoder = mlp([bottleneck, *reversed(hidden), features], "sigmoid", last="sigmoid")


def contractive(features: int = 784, bottleneck: int = 64, hidden: tuple[int, ...] = ()) -> ContractiveAutoencoder:
    return ContractiveAutoencoder(features, bottleneck, tuple(hidden))


register_family(FamilySpec("contractive", contractive, layout="NF", outputs=AUTOENCODER_OUTPUTS,
                           objective=contractive_objective))
