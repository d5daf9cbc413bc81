"""LSTM sequence autoencoder: a bidirectional LSTM reads a sequence of flattened small frames (or
per-frame feature vectors), its final states become one code vector; an LSTM decoder unrolls that code
over the same number of steps and a linear layer maps each step back to a frame.

Input (B, T, F) in [0, 1], any T.
"""

from __future__ import annotations

import torch
from torch import nn

from train.registry import register_family


class LSTMAutoencoder(nn.Module):
    def __init__(self, features: int, hidden: int = 128, bottleneck: int = 32) -> None:
        super().__init__()
        self.features, self.bottleneck = features, bottleneck
        self.encoder = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)
        self.to_code = nn.Linear(2 * hidden, bottleneck)
        self.decoder = nn.LSTM(bottleneck, hidden, batch_first=True)
        self.to_frame = nn.Sequential(nn.Linear(hidden, features), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.encoder(x)  # h: (2, B, H), forward and backward final states
        return self.to_code(torch.cat([h[0], h[1]], dim=1))  # (B, Z)

    def decode(self, z: torch.Tensor, steps: torch.Tensor | int) -> torch.Tensor:
        seq = z.unsqueeze(1).expand(-1, steps, -1)  # (B, T, Z)
        out, _ = self.decoder(seq)  # (B, T, H)
        return self.to_frame(out)  # (B, T, F)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z, x.shape[1]), z


@register_family("lstm")
def lstm(features: int = 384, hidden: int = 128, bottleneck: int = 32) -> LSTMAutoencoder:
    return LSTMAutoencoder(features, hidden, bottleneck)
