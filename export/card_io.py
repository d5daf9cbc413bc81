"""Write the model card into an ONNX file (needs the onnx package)."""

from __future__ import annotations

import onnx

from edge_runtime.card import CARD_KEY, ModelCard


def set_card(model: onnx.ModelProto, card: ModelCard) -> None:
    """Store ``card`` under the card key, replacing any earlier card."""
    card.validate()
    for prop in list(model.metadata_props):
        if prop.key == CARD_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key = CARD_KEY
    entry.value = card.to_json()
