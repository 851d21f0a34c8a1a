"""The import graph of bumps: no circles, no import from a lower layer to a higher one, tasks side by side.

Every ``import bumps...`` / ``from bumps... import`` counts, at module level or inside a function.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "bumps"

# Lowest first. A module may import from its own layer or below; tasks (layer "task") never import each other.
LAYERS = [
    ("base", ["bumps", "bumps.errors"]),
    (
        "core",
        [
            "bumps.stats",
            "bumps.runtime",
            "bumps.threads",
            "bumps.memory",
            "bumps.adamw",
            "bumps.knockout",
            "bumps.io",
            "bumps.recorder",
            "bumps.alignment",
            "bumps.unit_knockout",
            "bumps.stopflag",
            "bumps.registry",
            "bumps.subnormals",
            "bumps.ensemble",
        ],
    ),
    ("detect", ["bumps.detect"]),
    ("task", ["bumps.lowrank", "bumps.modadd", "bumps.digits", "bumps.induction", "bumps.dln"]),
    ("app", ["bumps.report", "bumps.export", "bumps.view"]),
    ("sweep", ["bumps.sweep"]),
    ("cli", ["bumps.cli", "bumps.__main__"]),
]
TASKS = LAYERS[3][1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The bumps module a dotted name refers to (a submodule, or the package/module holding the name)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(mod: str, path: Path, modules: dict[str, Path]) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            if n == "bumps" or n.startswith("bumps."):
                target = resolve(n, modules)
                if target and target != mod:
                    out.add(target)
    return out


def layer_of(mod: str) -> tuple[int, str]:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            inside = mod.startswith(p + ".") and p != "bumps"  # the top package holds only itself
            if (mod == p or inside) and (best is None or len(p) > len(best[1])):
                best = (i, p)
    assert best is not None, f"{mod} is in no layer: add it to LAYERS"
    return best


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def test_every_module_has_a_layer():
    for mod in all_modules():
        layer_of(mod)


def test_no_upward_imports_and_tasks_side_by_side():
    bad = []
    for mod, deps in graph().items():
        (lm, pm) = layer_of(mod)
        for d in deps:
            (ld, pd) = layer_of(d)
            if d == "bumps":  # the top package only holds __version__
                continue
            if ld > lm:
                bad.append(f"{mod} ({LAYERS[lm][0]}) imports {d} ({LAYERS[ld][0]})")
            elif LAYERS[lm][0] == "task" and pm != pd and pd in TASKS:
                bad.append(f"task {mod} imports another task's module {d}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_circles():
    g = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(g.get(m, ())):
            if d == "bumps":
                continue
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d) :] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize(
    "edge",
    [("bumps.detect.bumps", "bumps.lowrank.model"), ("bumps.lowrank.claims", "bumps.modadd.model")],
)
def test_the_check_catches_a_violation(edge, monkeypatch):
    """A planted upward or sideways import is reported (the check can fail)."""
    real = graph()
    planted = {m: set(d) for m, d in real.items()}
    planted[edge[0]].add(edge[1])
    monkeypatch.setattr(sys.modules[__name__], "graph", lambda: planted)
    with pytest.raises(AssertionError, match="imports"):
        test_no_upward_imports_and_tasks_side_by_side()
