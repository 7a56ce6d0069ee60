"""Test helpers and a pytest plugin for suites that check tensorweave code on every backend.

Load the plugin in your own suite with one line in your top-level ``conftest.py``::

    pytest_plugins = ["tensorweave.testing"]

(or run ``pytest -p tensorweave.testing``). It provides these fixtures:

- ``backend``: parametrised over every backend (``numpy``, ``torch``, ``tensorflow``, ``jax``,
  ``onnx``); a test using it runs once per backend;
- ``framework_backend``: the same without the ``numpy`` reference;
- ``rng``: ``numpy.random.default_rng(0)``, a fresh seeded generator per test.

A backend whose framework is not installed is **skipped**, except when the environment variable
``CI`` is true (``1``, ``true`` or ``yes``): there it **fails**, so that a CI job missing a
framework cannot pass by skipping its tests (:func:`require_backend`). Set
``TENSORWEAVE_TEST_BACKENDS=numpy,torch`` to parametrise over fewer backends (for a CI job that
installs only some frameworks).

The helpers work without the plugin:

- :func:`assert_parity` runs a function written against ``array_namespace`` (or a loaded
  ``tensorweave.models.Model``) on every installed backend and compares each result with the
  numpy reference (the tolerances of :data:`tensorweave.parity.TOLERANCES`, or yours);
- :func:`parametrize_backends` is the decorator form of the ``backend`` fixture;
- :func:`available_backends` lists the installed backends.

A complete example::

    import numpy as np
    from tensorweave.ir import array_namespace
    from tensorweave.testing import assert_parity


    def gelu_tanh(x):
        xp = array_namespace(x)
        return 0.5 * x * (1.0 + xp.tanh(0.7978845608 * (x + 0.044715 * x**3)))


    def test_gelu_tanh_matches_numpy_everywhere(rng):
        x = rng.standard_normal((4, 8)).astype(np.float32)
        assert_parity(gelu_tanh, (x,))

This module imports pytest; it is meant for test suites.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np
import pytest

from . import parity
from .backends import registry
from .function import Function
from .ir.graph import Graph
from .ir.trace import trace
from .ir.types import TensorSpec, as_dtype

__all__ = [
    "BACKENDS",
    "IN_CI",
    "NON_REFERENCE",
    "assert_parity",
    "available_backends",
    "backend",
    "framework_backend",
    "in_ci",
    "parametrize_backends",
    "require_backend",
    "rng",
]

_TRUE = ("1", "true", "yes")


def in_ci() -> bool:
    """True when the environment variable ``CI`` is ``1``, ``true`` or ``yes`` (any case), read now."""
    return os.environ.get("CI", "").strip().lower() in _TRUE


def _selected_backends() -> list[str]:
    """Every backend, or those named by ``TENSORWEAVE_TEST_BACKENDS`` (comma-separated, aliases allowed)."""
    env = os.environ.get("TENSORWEAVE_TEST_BACKENDS", "").strip()
    if not env:
        return list(registry.ALL)
    names = [registry.resolve(n.strip()) for n in env.split(",") if n.strip()]
    return [b for b in registry.ALL if b in names]


#: ``CI`` as it was when this module was imported (see :func:`in_ci` for the value now).
IN_CI: bool = in_ci()
#: The backends the ``backend`` fixture runs over: every backend, installed or not (a missing one
#: skips, or fails in CI), unless ``TENSORWEAVE_TEST_BACKENDS`` names fewer.
BACKENDS: list[str] = _selected_backends()
#: :data:`BACKENDS` without the numpy reference (the ``framework_backend`` fixture).
NON_REFERENCE: list[str] = [b for b in BACKENDS if b != "numpy"]


def available_backends(reference: bool = True) -> list[str]:
    """The installed backends in the documented order (``numpy`` first); ``reference=False``
    leaves out the ``numpy`` reference."""
    return [b for b in registry.available() if reference or b != "numpy"]


def require_backend(name: str) -> None:
    """Skip the calling test when ``name``'s framework is not installed, or fail it when ``CI`` is
    true (in CI a missing backend is an error, never a skip). Unknown names raise ``IRError``."""
    if not registry.is_installed(name):
        if in_ci():
            pytest.fail(f"CI is true and {registry.missing_message(name)}", pytrace=False)
        pytest.skip(registry.missing_message(name))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend name in turn (see :data:`BACKENDS`); skips, or fails in CI, when not installed."""
    require_backend(request.param)
    return request.param


@pytest.fixture(params=NON_REFERENCE)
def framework_backend(request: pytest.FixtureRequest) -> str:
    """Each non-reference backend name in turn (see :data:`NON_REFERENCE`)."""
    require_backend(request.param)
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh ``numpy.random.default_rng(0)`` for each test."""
    return np.random.default_rng(0)


def pytest_report_header(config: pytest.Config) -> str:
    """The plugin's line in pytest's header: installed backends and whether ``CI`` is set."""
    return f"tensorweave: backends installed {', '.join(available_backends())}; CI={in_ci()}"


F = TypeVar("F", bound=Callable[..., Any])


def parametrize_backends(
    backends: Sequence[str] | None = None, *, reference: bool = True, argname: str = "backend"
) -> Callable[[F], F]:
    """Run the decorated test once per backend, passing the name as ``argname``::

        @parametrize_backends()  # or parametrize_backends(["torch", "jax"])
        def test_something(backend): ...

    ``backends`` defaults to :data:`BACKENDS` (without ``numpy`` when ``reference=False``). A
    backend that is not installed skips, or fails when ``CI`` is true (:func:`require_backend`).
    Works without the plugin.
    """
    if backends is None:
        names = list(BACKENDS)
    else:
        names = [registry.resolve(b) for b in ([backends] if isinstance(backends, str) else backends)]
    names = [b for b in names if reference or b != "numpy"]

    def decorate(test: F) -> F:
        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> Any:
            require_backend(kwargs[argname])
            return test(*args, **kwargs)

        return pytest.mark.parametrize(argname, names)(run)

    return decorate


# --------------------------------------------------------------------------- parity


def _as_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A tuple or list is the positional inputs, a dict the keyword inputs, anything else one input."""
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def _is_model(obj: Any) -> bool:
    from .models.model import Model  # lazily: models are not needed to check a function

    return isinstance(obj, Model)


def _named(outputs: Any, names: Sequence[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """Outputs as (name, numpy array): a dict's items (tuples inside it as ``name.i``), a program's
    tuple zipped with ``names``, or one array."""
    if isinstance(outputs, Mapping):
        out: list[tuple[str, np.ndarray]] = []
        for k, v in outputs.items():
            if isinstance(v, (tuple, list)):
                out += [(f"{k}.{i}", np.asarray(x)) for i, x in enumerate(v)]
            else:
                out.append((str(k), np.asarray(v)))
        return out
    seq = list(outputs) if isinstance(outputs, tuple) else [outputs]
    labels = list(names) if names is not None else [f"output{i}" for i in range(len(seq))]
    return [(n, np.asarray(o)) for n, o in zip(labels, seq)]


def _row(
    backend: str, name: str, got: np.ndarray, want: np.ndarray, atol: float | None, rtol: float | None
) -> parity.Row:
    """One output compared with the reference: integers and bools exactly, floats within the dtype's
    tolerance with ``atol`` / ``rtol`` replacing its numbers when given."""
    dtype = as_dtype(want.dtype)
    if got.dtype != want.dtype or got.shape != want.shape:
        why = f"got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}"
        return parity.Row(backend, name, dtype, float("inf"), float("inf"), False, why)
    max_abs, max_rel, special_ok = parity.differences(got, want)
    if not special_ok:
        why = "nan/inf in different places"
        return parity.Row(backend, name, dtype, float("inf"), float("inf"), False, why)
    if want.dtype.kind not in "fc" and want.dtype.name != "bfloat16":
        return parity.Row(backend, name, dtype, max_abs, max_rel, bool(np.array_equal(got, want)))
    default_rtol, default_atol = parity.tolerance(dtype)
    rt = default_rtol if rtol is None else rtol
    at = default_atol if atol is None else atol
    g64, w64 = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(w64)
    ok = bool(np.all(np.abs(g64[finite] - w64[finite]) <= at + rt * np.abs(w64[finite])))
    return parity.Row(backend, name, dtype, max_abs, max_rel, ok)


def _compare_runs(
    run: Callable[[str | None], list[tuple[str, np.ndarray]]],
    names: Sequence[str],
    atol: float | None,
    rtol: float | None,
) -> parity.ParityReport:
    """``run(None)`` is the numpy reference; each ``run(name)`` becomes rows (an error: failed rows)."""
    ref = run(None)
    report = parity.ParityReport()
    for name in names:
        try:
            got = run(name)
            if [n for n, _ in got] != [n for n, _ in ref]:
                raise AssertionError(f"outputs {[n for n, _ in got]}, want {[n for n, _ in ref]}")
        except Exception as exc:  # a backend failure is a row, as in parity.compare
            text = str(exc).strip()
            msg = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
            report.rows += [
                parity.Row(name, n, as_dtype(w.dtype), float("inf"), float("inf"), False, msg) for n, w in ref
            ]
            continue
        report.rows += [_row(name, n, g, w, atol, rtol) for (n, w), (_, g) in zip(ref, got)]
    return report


def assert_parity(
    fn_or_model: Any,
    inputs: Any,
    atol: float | None = None,
    rtol: float | None = None,
    backends: Sequence[str] | str | None = None,
    specs: Sequence[TensorSpec] | None = None,
) -> parity.ParityReport:
    """Check that every backend computes what the numpy reference computes; return the report.

    ``fn_or_model`` is one of

    - a function written against ``array_namespace`` (or a ``tw.function``): it is traced with
      the inputs' shapes and dtypes (or ``specs``) and the graph runs on each backend;
    - a ``tensorweave.ir.Graph``: it runs as it is;
    - a loaded model (``tensorweave.models.Model``): ``model(*inputs, backend=name)``.

    ``inputs`` is a tuple or list of arrays (the positional inputs), a dict (keyword inputs, models
    only) or one array. ``backends`` defaults to :data:`NON_REFERENCE`, less those not installed
    (when ``CI`` is true a missing one fails the test instead); naming one that is not installed
    is an error. Integer and bool outputs must be equal; float outputs
    must satisfy ``|actual - reference| <= atol + rtol * |reference|`` elementwise, with nan and
    infinities in the same places, where ``atol`` and ``rtol`` default to the output dtype's entry
    of :data:`tensorweave.parity.TOLERANCES`.

    Raises ``AssertionError`` with the per-backend, per-output table when any backend disagrees.
    """
    args, kwargs = _as_inputs(inputs)
    if backends is None:  # NON_REFERENCE: a missing one is left out, but fails the test in CI
        for b in NON_REFERENCE:
            if in_ci():
                require_backend(b)
        names = [b for b in NON_REFERENCE if registry.is_installed(b)]
    else:
        names = parity._backend_names(backends)
    if isinstance(fn_or_model, Function):  # tw.function(fn): check fn itself
        fn_or_model = fn_or_model.fn
    if not isinstance(fn_or_model, Graph) and _is_model(fn_or_model):
        if specs is not None:
            raise TypeError("assert_parity: specs are only for tracing a function")
        model = fn_or_model
        report = _compare_runs(
            lambda b: _named(model(*args, backend=b or "numpy", **kwargs)), names, atol, rtol
        )
    elif kwargs:
        raise TypeError("assert_parity: keyword inputs (a dict) are for models; pass a tuple of arrays")
    elif atol is None and rtol is None:
        return parity.assert_parity(fn_or_model, *args, backends=names, specs=specs)
    else:
        arrays = [np.asarray(a) for a in args]
        if isinstance(fn_or_model, Graph):
            if specs is not None:
                raise TypeError("assert_parity: specs are only for tracing a function; a Graph has its own")
            graph = fn_or_model
        else:
            sig = (
                list(specs) if specs is not None else [TensorSpec(a.shape, as_dtype(a.dtype)) for a in arrays]
            )
            graph = trace(fn_or_model, *sig)

        def run(b: str | None) -> list[tuple[str, np.ndarray]]:
            # the reference runs on the numpy module itself, each compared backend through lower()
            lowered = registry.get("numpy").lower(graph) if b is None else registry.lower(graph, b)
            return _named(lowered(*arrays), graph.output_names)

        report = _compare_runs(run, names, atol, rtol)
    if not report.ok:
        raise AssertionError("backends disagree with the numpy reference:\n" + str(report))
    return report
