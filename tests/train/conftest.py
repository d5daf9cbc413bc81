"""Fixtures of the training tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def register_spec() -> Iterator[Callable[..., str]]:
    """Register family specs for one test; every one is unregistered afterwards."""
    from train.spec import register_family, unregister_family

    names: list[str] = []

    def add(spec: object) -> str:
        register_family(spec)  # type: ignore[arg-type]
        names.append(spec.name)  # type: ignore[attr-defined]
        return names[-1]

    yield add
    for name in names:
        unregister_family(name)
