"""LSTM sequence autoencoder: a bidirectional LSTM reads a sequence of flattened small frames (or
per-frame feature vectors), its final states become one code vector; an LSTM decoder unrolls that code
over the same number of steps and a linear layer maps each step back to a frame.

Input (B, T, F) in [0, 1], any T.

Window centring (``centre=True``, the default): the model subtracts each window's mean frame before the
encoder and adds it back to the decoder's output, so the code and the decoder carry only what changes
over the window, multiplied by ``gain`` (changes are a few grey levels: unscaled, the LSTM gates hardly see
them and training stalls at the window mean). In video the static background is almost every pixel; trained
on raw frames the model learned the background alone and reconstructed real and time-shuffled windows equally
well. Centring is part of the graph, so the exported ONNX file and every runtime path apply it exactly as training
did; the card records it in ``provenance.preset_config.model.centre``. What stays still for a whole
window passes through unchanged, so a centred model scores motion, not appearance (use the
convolutional family for that).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from train.objectives import plain_objective
from train.spec import AUTOENCODER_OUTPUTS, FamilySpec, flat_arguments, register_family


class LSTMAutoencoder(nn.Module):
    def __init__(self, features: int, hidden: int = 128, bottleneck: int = 32, centre: bool = True,
                 gain: float = 20.0) -> None:
        super().__init__()
        self.features, self.bottleneck, self.centre = features, bottleneck, centre
        self.gain = float(gain) if centre else 1.0
        self.encoder = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)
        self.to_code = nn.Linear(2 * hidden, bottleneck)
        self.decoder = nn.LSTM(bottleneck, hidden, batch_first=True)
        # centred: the change from the window mean (signed); raw: the frame itself in [0, 1]
        self.to_frame = nn.Sequential(nn.Linear(hidden, features)) if centre else \
            nn.Sequential(nn.Linear(hidden, features), nn.Sigmoid())

    def window_mean(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, 1, F): what the centred model passes around its code (zeros when not centred)."""
        return x.mean(dim=1, keepdim=True) if self.centre else torch.zeros_like(x[:, :1])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        # h: (2, B, H), the forward and backward final states
        _, (h, _) = self.encoder((x - self.window_mean(x)) * self.gain)
        return self.to_code(torch.cat([h[0], h[1]], dim=1))  # (B, Z)

    def decode(self, z: torch.Tensor, steps: torch.Tensor | int) -> torch.Tensor:
        """Code -> (B, T, F): the change from the window mean (times ``gain``) when centred, else the frames."""
        seq = z.unsqueeze(1).expand(-1, steps, -1)  # (B, T, Z)
        out, _ = self.decoder(seq)  # (B, T, H)
        return self.to_frame(out)  # (B, T, F)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        y = self.decode(z, x.shape[1])
        if self.centre:
            y = torch.clamp(y / self.gain + self.window_mean(x), 0.0, 1.0)  # (B, T, F)
        return y, z


def lstm(features: int = 384, hidden: int = 128, bottleneck: int = 32, centre: bool = True,
         gain: float = 20.0) -> LSTMAutoencoder:
    return LSTMAutoencoder(features, hidden, bottleneck, centre, gain)


def sequence_arguments(channels: int, height: int | None, width: int | None) -> dict[str, Any]:
    # centre is recorded in the checkpoint and the card; a config {"model": {"centre": false}} turns it off
    return {**flat_arguments(channels, height, width), "centre": True}


register_family(FamilySpec("lstm", lstm, layout="NTF", outputs=AUTOENCODER_OUTPUTS, objective=plain_objective,
                           score="sequence", arguments=sequence_arguments))
