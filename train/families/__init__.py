"""Built-in autoencoder families; importing this module registers them."""

from train.families import convdenoiser  # noqa: F401
