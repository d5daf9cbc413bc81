"""Built-in autoencoder families: importing this package imports every module in it, and each module
registers its family (a new family is one new file here; modules starting with '_' are helpers)."""

from __future__ import annotations

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")
