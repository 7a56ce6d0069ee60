"""Build the API reference (``make docs``): pdoc renders the public modules' docstrings to HTML.

    .venv/bin/python docs/build.py [OUTPUT_DIR]     # default: docs/api

The build fails (exit status 1) when

- a documented module cannot be imported (pdoc raises, or warns for a submodule);
- pdoc warns about anything else (a type annotation it cannot evaluate, a docstring it cannot read);
- a docstring's cross-reference (``:func:`name```, ``:class:``, ``:data:``, ``:mod:``, ``:meth:``,
  ``:attr:``, ``:exc:``, ``:obj:``, ``:const:``) names a ``tensorweave`` object that is not in the
  reference, resolved the way pdoc links it (the containing class, the module, then the dotted
  name). Names outside ``tensorweave`` (``numpy.random.default_rng``) must be importable.

Each problem is printed as ``docs: error: ...``.
"""

from __future__ import annotations

import importlib
import pathlib
import re
import shutil
import sys
import warnings

import pdoc
import pdoc.doc
import pdoc.extract
import pdoc.render
import pdoc.render_helpers as helpers

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: The public modules; pdoc adds the submodules a package lists in ``__all__``.
MODULES = [
    "tensorweave",
    "tensorweave.testing",
    "tensorweave.parity",
    "tensorweave.errors",
    "tensorweave.generation",
    "tensorweave.models",
    "tensorweave.optim",
    "tensorweave.onnx",
    "tensorweave.export",
    "tensorweave.ir",
]
#: Internals, even where a package re-exports them.
EXCLUDE = [r"!tensorweave\.(backends|frontends)(\..*)?$"]

ROLE = re.compile(r"(?::py)?:(mod|func|data|const|class|meth|attr|exc|obj):`~?([^`]+)`")


def _documented(all_modules: dict[str, pdoc.doc.Module], mod: pdoc.doc.Module, ident: str, ns: str) -> bool:
    """Whether pdoc turns ``ident`` (in ``mod``, inside ``ns``) into a link (render_helpers.linkify)."""
    if ident.startswith("."):  # relative to the package
        base = mod.modulename if mod.is_package else mod.modulename.rpartition(".")[0]
        while ident.startswith(".."):
            ident, base = ident[1:], base.rpartition(".")[0]
        ident = base + ident
    elif any(mod.get(q) for q in helpers.qualname_candidates(ident, ns)):
        return True
    if ident in all_modules:
        return True
    try:
        sources = list(helpers.possible_sources(all_modules, ident))
    except ValueError:
        return False
    for module_name in helpers.module_candidates(ident, mod.modulename):
        module = all_modules.get(module_name)
        if module is not None and any(module.get(q) for _, q in sources if q):
            return True
    return False


def _importable(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def broken_references(all_modules: dict[str, pdoc.doc.Module]) -> list[str]:
    out = []
    for mod in all_modules.values():
        docs: list[pdoc.doc.Doc] = [mod, *mod.flattened_own_members]
        for d in docs:
            ns = "" if isinstance(d, pdoc.doc.Module) else d.qualname
            for kind, target in ROLE.findall(d.docstring or ""):
                ident = target.strip().removesuffix("()")
                if ident.split(".")[0] != "tensorweave" and not ident.startswith("."):
                    if _documented(all_modules, mod, ident, ns) or ("." in ident and _importable(ident)):
                        continue
                elif _documented(all_modules, mod, ident, ns):
                    continue
                out.append(f"{d.fullname}: :{kind}:`{target}` does not resolve to a documented object")
    return out


def minimal_specs() -> list[str]:
    """MODULES without those an earlier one already brings in (pdoc warns about a repeated module)."""
    specs: list[str] = []
    for name in MODULES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # import noise; real problems surface in the build below
            reached = set(pdoc.extract.walk_specs(specs + EXCLUDE)) if specs else set()
        if name not in reached:
            specs.append(name)
    return specs + EXCLUDE


def main(argv: list[str]) -> int:
    out_dir = pathlib.Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "api"
    problems: list[str] = []
    try:
        specs = minimal_specs()
    except Exception as exc:  # a listed module that cannot be imported
        print(f"docs: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    pdoc.render.configure(docformat="restructuredtext", footer_text="tensorweave", search=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            all_modules = {name: pdoc.doc.Module.from_name(name) for name in pdoc.extract.walk_specs(specs)}
            if out_dir.exists():
                shutil.rmtree(out_dir)
            pdoc.pdoc(*specs, output_directory=out_dir)
        except Exception as exc:  # an import error in a listed module
            print(f"docs: error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    for w in caught:  # pdoc's own warnings only, not the frameworks' deprecation noise
        if "/pdoc/" in pathlib.Path(w.filename).as_posix():
            problems.append(f"pdoc: {str(w.message).strip()}")
    problems += broken_references(all_modules)
    for p in dict.fromkeys(problems):
        print(f"docs: error: {p}", file=sys.stderr)
    if problems:
        print(f"docs: {len(problems)} problem(s); the reference in {out_dir} is incomplete", file=sys.stderr)
        return 1
    print(f"docs: {len(all_modules)} modules documented in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
