"""The package's shape, read from its source with ``ast``: data -> law -> posterior -> decide / plan.

These tests fail when a change adds an import circle or an import against
the flow (see docs/architecture.md): a lower layer reaching up, even inside
a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bayesmix"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def import_graph() -> dict[str, set[str]]:
    """module -> the bayesmix modules it imports (anywhere in its body), as dotted names."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module) if node.level else (node.module or "")
                # "from . import io" imports the module bayesmix.io
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t.startswith("bayesmix") and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _is_package_init(module: str) -> bool:
    return (PACKAGE.parent / Path(*module.split(".")) / "__init__.py").exists()


def test_the_graph_is_read():
    g = import_graph()
    assert "bayesmix.posterior" in g["bayesmix.decide.problem"]  # the reader sees relative imports
    assert "bayesmix.laws.base" in g["bayesmix.laws.additive"]


def test_no_import_circles():
    # A package's __init__ re-exports its modules, which import siblings through
    # the package: those edges are not a dependency of the modules on each other.
    g = {m: {d for d in deps if not (_is_package_init(d) and _within(m, d))} for m, deps in import_graph().items()}
    assert not _cycles(g), f"import circles: {_cycles(g)}"


def test_decide_and_plan_import_the_posterior_never_the_reverse():
    g = import_graph()
    for pkg in ("bayesmix.decide", "bayesmix.plan"):
        users = [m for m in g if _within(m, pkg) and "bayesmix.posterior" in g[m]]
        assert users, f"{pkg} should evaluate the law through bayesmix.posterior"
    up = {"bayesmix.decide", "bayesmix.plan", "bayesmix.checks", "bayesmix.commands", "bayesmix.cli", "bayesmix.fit"}
    below = [
        m
        for m in g
        if m == "bayesmix.posterior"
        or _within(m, "bayesmix.data")
        or _within(m, "bayesmix.laws")
        or m in ("bayesmix.model", "bayesmix.design", "bayesmix.inference", "bayesmix.priors")
    ]
    bad = [(m, d) for m in below for d in g[m] if any(_within(d, u) for u in up)]
    assert not bad, f"imports against the flow: {bad}"
    # plan builds on decide; decide never on plan
    assert not [(m, d) for m in g if _within(m, "bayesmix.decide") for d in g[m] if _within(d, "bayesmix.plan")]


def test_laws_import_nothing_above_them():
    g = import_graph()
    allowed = ("bayesmix.laws", "bayesmix.priors")
    bad = [(m, d) for m in g if _within(m, "bayesmix.laws") for d in g[m] if not any(_within(d, a) for a in allowed)]
    assert not bad, f"laws reach above themselves: {bad}"


def test_the_circle_finder_finds_circles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
