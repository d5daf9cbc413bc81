"""The house's arrows, read from the source: which package may import which, and no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge_runtime", "train", "export", "benchmarks")
# What each package may import of ours (besides itself), anywhere in its code.
ALLOWED = {"edge_runtime": set(), "train": set(), "export": {"train", "edge_runtime"},
           "benchmarks": {"train", "export", "edge_runtime"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules of ours that ``path`` imports (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If) and top_level_only:  # `if TYPE_CHECKING:` blocks do not run
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def test_each_package_imports_only_what_the_design_allows() -> None:
    wrong = []
    for name, path in _sources().items():
        own = name.split(".")[0]
        for target in _imports(path, top_level_only=False):
            if target.split(".")[0] not in ALLOWED[own] | {own}:
                wrong.append(f"{name} imports {target}")
    assert not wrong, wrong


def test_runtime_never_imports_torch_anywhere() -> None:
    for name, path in _sources().items():
        if name.startswith("edge_runtime"):
            tree = ast.parse(path.read_text())
            mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            assert not {m for m in mods if m.split(".")[0] in ("torch", "onnx")}, name


def test_no_import_circles_at_module_level() -> None:
    sources = _sources()
    graph = {name: {t for t in _imports(path, top_level_only=True) if t in sources and t != name}
             for name, path in sources.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # Family registration is the one allowed circle (a family module imports the spec registry, the
    # package imports its family modules); a package importing its own submodule is not a circle.
    real = [c for c in circles if not all(m.startswith("train.families") or m.startswith("train.spec") for m in c)
            and not (len(c) == 3 and c[0] == c[2] and c[1].startswith(c[0] + "."))]
    assert not real, real
