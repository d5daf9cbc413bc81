"""Built-in autoencoder families; importing this module registers them."""

from train.families import convdenoiser  # noqa: F401
from train.families import contractive, convolutional, denoising, lstm, sparse, undercomplete, variational  # noqa: F401
