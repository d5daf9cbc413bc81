"""Built-in autoencoder families; importing this module registers them (a new family: one new module here)."""

from train.families import (  # noqa: F401
    contractive,
    convdenoiser,
    convolutional,
    denoising,
    lstm,
    sparse,
    undercomplete,
    variational,
)
