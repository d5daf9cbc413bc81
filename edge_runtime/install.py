"""How to add an optional part ("extra") to this installation, said the way that works where edge-ae runs from."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

__all__ = ["pip_install"]


def _source_tree() -> Path | None:
    """The clone this code runs from (not installed, or installed editable), else None."""
    root = Path(__file__).resolve().parents[1]
    project = root / "pyproject.toml"
    try:
        if 'name = "edge-ae"' in project.read_text(encoding="utf-8"):
            return root
    except OSError:
        pass
    return None


def _editable() -> bool:
    try:
        text = metadata.distribution("edge-ae").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return True  # running from the tree itself: an editable install keeps it that way
    try:
        return bool(text and json.loads(text).get("dir_info", {}).get("editable"))
    except ValueError:
        return False


def pip_install(extra: str) -> str:
    """The pip command that adds ``extra`` (e.g. 'train', 'cpu', 'gpu') to this installation.

    From a clone: ``pip install -e '/path/to/clone[extra]'`` (a path, so it works from any folder);
    otherwise ``pip install 'edge-ae[extra]'``.
    """
    root = _source_tree()
    if root is not None:
        return f"pip install {'-e ' if _editable() else ''}'{root}[{extra}]'"
    return f"pip install 'edge-ae[{extra}]'"
