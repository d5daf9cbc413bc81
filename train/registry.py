"""Families by name: the built-in ones (train/families, imported here, which registers them) and any
registered at run time; an unknown name fails with the list of valid ones."""

from __future__ import annotations

from typing import Any

from torch import nn

import train.families  # noqa: F401  (importing the package registers every built-in family)
from train.errors import UnknownFamilyError
from train.spec import FamilySpec, registered

__all__ = ["UnknownFamilyError", "create_model", "family_spec", "list_families"]


def list_families() -> list[str]:
    return sorted(registered())


def family_spec(name: str) -> FamilySpec:
    """The spec of ``name``; an unknown name fails with the list of valid ones."""
    families = registered()
    try:
        return families[name]
    except KeyError:
        msg = f"unknown family {name!r}; valid families: {', '.join(sorted(families))}"
        raise UnknownFamilyError(msg) from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the family ``name`` with its keyword arguments."""
    return family_spec(name).build(**kwargs)
