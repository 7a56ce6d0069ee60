"""The architecture, enforced (spec/architecture.md): every module is in one room, imports point
down only, and no module imports itself back through others (no cycles, lazy imports included).

Rooms, bottom to top:
- ``errors``, ``io`` and ``log``: leaf modules every room may use (io uses only errors);
- ``ir``: the IR, numpy only;
- ``frontends``: the math written once against ``xp``; imports ir and errors only, no framework;
- ``backends``: one package per framework; imports ir, errors and io, never frontends or the
  public layer;
- the public layer: everything else at the top of ``tensorweave/``; it wires frontends to
  backends and may import every room below it.
"""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "tensorweave"
FRAMEWORKS = {"torch", "tensorflow", "jax", "jaxlib", "flax", "optax", "keras", "onnx", "onnxruntime"}
IR_ALLOWED = {"numpy", "ml_dtypes", *sys.stdlib_module_names}  # ir and the leaves: numpy and the stdlib
LEAVES = {"tensorweave.errors", "tensorweave.io", "tensorweave.log"}
ROOM_MAY_IMPORT = {
    "leaf": {"leaf"},
    "ir": {"ir"},
    "frontends": {"frontends", "ir", "leaf"},
    "backends": {"backends", "ir", "leaf"},
    "public": {"public", "backends", "frontends", "ir", "leaf"},
}


def _module_name(path: pathlib.Path) -> str:
    parts = ["tensorweave", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def room(module: str) -> str:
    if module in LEAVES:
        return "leaf"
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("ir", "frontends", "backends"):
        return parts[1]
    return "public"


def _resolve(module: str, path: pathlib.Path, node: ast.ImportFrom) -> str:
    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    if not node.level:
        return node.module or ""
    base = pkg.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import in ``module``, lazy ones included; ``from pkg
    import name`` counts as importing ``pkg.name`` when that is a module of ours."""
    path = MODULES[module]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            full = _resolve(module, path, node)
            subs = [f"{full}.{a.name}" for a in node.names if f"{full}.{a.name}" in MODULES]
            out += [(s, node.lineno) for s in subs] or [(full, node.lineno)]
    return out


def _ours(name: str) -> str | None:
    """The module of ours an import names (walking up to the package that exists)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for name, _ in imports(m):
            if name.split(".")[0] == "tensorweave":
                target = _ours(name)
                if target and target != m:
                    edges[m].add(target)
    return edges


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    r = room(module)
    for name, line in imports(module):
        top = name.split(".")[0]
        where = f"{MODULES[module].relative_to(ROOT.parent)}:{line}"
        if top == "tensorweave":
            target = _ours(name)
            assert target is not None, f"{where} imports {name}, which does not exist"
            assert room(target) in ROOM_MAY_IMPORT[r], (
                f"{where}: {r} module imports {target} ({room(target)}); spec/architecture.md says {r} may "
                f"import only {sorted(ROOM_MAY_IMPORT[r])}"
            )
        elif r in ("ir", "leaf"):
            assert top in IR_ALLOWED or (r == "leaf" and top == "tqdm"), (
                f"{where} imports {top} ({r} may import numpy and the standard library only)"
            )
        elif r == "frontends":
            assert top not in FRAMEWORKS, f"{where} imports {top}: frontends are written against xp only"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = counter
                counter += 1
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(edges[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return out


def test_no_import_cycles():
    """Package ``__init__`` re-exports count: a submodule importing its own package's
    ``__init__`` (``from . import x`` where ``x`` is not a module, ``from .. import name``) while that
    ``__init__`` imports the submodule is a cycle too."""
    cycles = _cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_a_cycle_and_an_upward_arrow():
    """The rules above can fail: a made-up cycle is found, and an upward arrow is classified."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "public" not in ROOM_MAY_IMPORT[room("tensorweave.frontends.models")]
    assert "frontends" not in ROOM_MAY_IMPORT[room("tensorweave.backends.registry")]
    assert room("tensorweave.io") == "leaf" and room("tensorweave.cli") == "public"
