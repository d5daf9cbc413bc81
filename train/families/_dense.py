"""Dense building blocks shared by the fully connected families."""

from __future__ import annotations

import itertools

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU}


def mlp(sizes: list[int], activation: str = "relu", last: str | None = None) -> nn.Sequential:
    """Linear layers through ``sizes``; ``activation`` between them, ``last`` (or none) after the final one."""
    if activation not in ACTIVATIONS or (last is not None and last not in ACTIVATIONS):
        msg = f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r} / {last!r}"
        raise ValueError(msg)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
        elif last is not None:
            layers.append(ACTIVATIONS[last]())
    return nn.Sequential(*layers)
