"""The project's import graph, read from the source with ``ast`` (nothing is imported or run):
``python -m tests.architecture.imports`` prints its cycles and its largest modules."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dos2hl", "flows", "tasks")


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the shipped packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _targets(node: ast.AST, name: str, is_pkg: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for a in node.names:
            yield a.name
    elif isinstance(node, ast.ImportFrom):
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        if node.level:
            base = base[: len(base) - node.level + 1]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        yield mod
        for a in node.names:  # ``from pkg import module``
            yield f"{mod}.{a.name}"


def graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports, at the top or inside a function alike."""
    mods = modules()
    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            for target in _targets(node, name, is_pkg):
                if target in mods and target != name:
                    deps.add(target)
        out[name] = deps
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted, between modules that
    are not a package and its own ``__init__`` (a package's face re-exports what lies under it)."""
    def real(a: str, b: str) -> bool:
        return not (b.startswith(a + ".") or a.startswith(b + "."))

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if not real(v, w):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return sorted(found)


def sizes() -> list[tuple[int, str]]:
    """(lines, file) of every shipped module, largest first."""
    return sorted(((len(p.read_text("utf-8").splitlines()), str(p.relative_to(ROOT)))
                   for p in modules().values()),
                  reverse=True)


if __name__ == "__main__":
    found = cycles(graph())
    print(f"import cycles: {len(found)}")
    for c in found:
        print("  " + " <-> ".join(c))
    print("largest modules:")
    for n, f in sizes()[:10]:
        print(f"  {n:5d}  {f}")
