"""Build autoencoder families by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

_FAMILIES: dict[str, Callable[..., nn.Module]] = {}


class UnknownFamilyError(ValueError):
    """Raised when a family name is not registered."""


def register_family(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model builder under ``name`` (the public family name)."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _FAMILIES:
            msg = f"family {name!r} is registered twice"
            raise ValueError(msg)
        _FAMILIES[name] = builder
        return builder

    return wrap


def list_families() -> list[str]:
    _load_builtin()
    return sorted(_FAMILIES)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the family ``name`` with its keyword arguments."""
    _load_builtin()
    try:
        builder = _FAMILIES[name]
    except KeyError:
        msg = f"unknown family {name!r}; valid families: {', '.join(sorted(_FAMILIES))}"
        raise UnknownFamilyError(msg) from None
    return builder(**kwargs)


def _load_builtin() -> None:
    # Importing the package registers every built-in family.
    import train.families  # noqa: F401
