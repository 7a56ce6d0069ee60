"""Architecture rules: frontends/ imports no framework or backend; ir/ imports numpy only."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "tensorweave"
FRAMEWORKS = {"torch", "tensorflow", "jax", "jaxlib", "flax", "optax", "keras", "onnx", "onnxruntime"}
IR_ALLOWED = {
    "numpy",
    "ml_dtypes",
    "__future__",
    "typing",
    "dataclasses",
    "enum",
    "re",
    "math",
    "itertools",
    "inspect",
    "functools",
    "json",
    "os",
    "io",
    "struct",
    "base64",
    "tempfile",
    "pathlib",
    "builtins",
    "collections",
    "contextlib",
    "binascii",
    "zlib",
    "hashlib",
    "copy",
    "warnings",
    "sys",
    "weakref",
    "abc",
    "operator",
}


def _imports(path: pathlib.Path):
    """(top-level module, line, absolute module name) of every import; relative ones resolved."""
    pkg = ["tensorweave"] + list(path.relative_to(ROOT).parent.parts)
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                full = ".".join(base + ([node.module] if node.module else []))
            else:
                full = node.module or ""
            yield full.split(".")[0], node.lineno, full


def _files(sub):
    return sorted((ROOT / sub).rglob("*.py"))


@pytest.mark.parametrize("path", _files("frontends"), ids=lambda p: str(p.relative_to(ROOT)))
def test_frontends_import_no_framework_or_backend(path):
    for mod, line, full in _imports(path):
        assert mod not in FRAMEWORKS, f"{path}:{line} imports {mod}"
        if mod == "tensorweave":
            assert full.startswith(("tensorweave.ir", "tensorweave.frontends")), (
                f"{path}:{line} imports {full}; frontends may import only tensorweave.ir"
            )


@pytest.mark.parametrize("path", _files("ir"), ids=lambda p: str(p.relative_to(ROOT)))
def test_ir_imports_numpy_only(path):
    for mod, line, full in _imports(path):
        if mod == "tensorweave":
            assert full.startswith("tensorweave.ir"), f"{path}:{line} imports {full} (outside ir/)"
            continue
        assert mod in IR_ALLOWED, f"{path}:{line} imports {mod} (ir/ may import numpy only)"
