"""Cross-framework parity: run a function on several backends and compare each with numpy.

``compare(fn, *inputs)`` traces ``fn`` (or takes a Graph), runs it on the numpy reference and on
the chosen backends (default: every installed one) and reports, per backend and output, the
max absolute and max relative difference and whether it is within :data:`TOLERANCES`.
``assert_parity`` raises an ``AssertionError`` carrying the printed table (pytest-friendly).

Tolerances are by dtype (spec/backends.md explains each number); an output ``a`` matches the
reference ``e`` when, elementwise,

- bool and integer dtypes: ``a == e`` (exact, wrap-around included);
- floats: nan exactly where ``e`` is nan, ``+-inf`` exactly where ``e`` is ``+-inf``, and
  elsewhere ``|a - e| <= atol + rtol * |e|`` with

  ========  ======  ======
  dtype     rtol    atol
  ========  ======  ======
  float64   1e-10   1e-12
  float32   1e-5    1e-6
  float16   2e-3    1e-3
  bfloat16  1.6e-2  1e-2
  ========  ======  ======
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .backends import registry
from .ir.graph import Graph
from .ir.trace import trace
from .ir.types import DType, IRError, TensorSpec, as_dtype

TOLERANCES: dict[DType, tuple[float, float]] = {
    DType.bool: (0.0, 0.0),
    DType.int32: (0.0, 0.0),
    DType.int64: (0.0, 0.0),
    DType.uint32: (0.0, 0.0),
    DType.float64: (1e-10, 1e-12),
    DType.float32: (1e-5, 1e-6),
    DType.float16: (2e-3, 1e-3),
    DType.bfloat16: (1.6e-2, 1e-2),
}


def tolerance(dtype: Any) -> tuple[float, float]:
    """(rtol, atol) for a dtype (a DType, a name or a numpy dtype)."""
    return TOLERANCES[as_dtype(dtype)]


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" or a.dtype.name == "bfloat16"


def _int_abs_diff(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """|a - e| for integer/bool arrays as float64, without int64 overflow (via uint64 wrap-around)."""
    a64 = a.astype(np.int64) if a.dtype.kind != "u" else a.astype(np.uint64).astype(np.int64)
    e64 = e.astype(np.int64) if e.dtype.kind != "u" else e.astype(np.uint64).astype(np.int64)
    hi, lo = np.maximum(a64, e64), np.minimum(a64, e64)
    return (hi.view(np.uint64) - lo.view(np.uint64)).astype(np.float64)  # exact modulo 2**64, then rounded


def differences(actual: Any, expected: np.ndarray) -> tuple[float, float, bool]:
    """(max |a - e|, max |a - e| / |e|, nan/inf agree) over entries finite in both arrays.

    nan/inf agree: nan exactly where ``expected`` is nan and the same infinities in the same
    places. A shape mismatch gives ``(inf, inf, False)``; a relative difference against ``e == 0``
    is 0 when ``a == 0`` too and inf otherwise.
    """
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        return float("inf"), float("inf"), False
    if a.size == 0:
        return 0.0, 0.0, True
    if not (_is_float(a) or _is_float(e)):
        d = _int_abs_diff(a, e)
        mag = np.abs(e.astype(np.float64))
        special_ok = True
    else:
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        special_ok = bool(
            np.array_equal(np.isnan(a64), np.isnan(e64))
            and np.array_equal(np.where(np.isinf(e64), e64, 0.0), np.where(np.isinf(a64), a64, 0.0))
        )
        finite = np.isfinite(a64) & np.isfinite(e64)
        d, mag = np.abs(a64[finite] - e64[finite]), np.abs(e64[finite])
        if d.size == 0:
            return 0.0, 0.0, special_ok
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mag > 0, d / np.where(mag > 0, mag, 1.0), np.where(d > 0, np.inf, 0.0))
    return float(d.max()), float(rel.max()), special_ok


def within(actual: Any, expected: np.ndarray, dtype: DType) -> bool:
    """True when ``actual`` has ``expected``'s dtype and shape and matches it within ``TOLERANCES[dtype]``."""
    rtol, atol = TOLERANCES[as_dtype(dtype)]
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape or a.dtype != e.dtype:
        return False
    if not _is_float(e):
        return bool(np.array_equal(a, e))
    _, _, special_ok = differences(a, e)
    if not special_ok:
        return False
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    finite = np.isfinite(e64)
    return bool(np.all(np.abs(a64[finite] - e64[finite]) <= atol + rtol * np.abs(e64[finite])))


@dataclass
class Row:
    """One backend's result for one output."""

    backend: str
    output: str
    dtype: DType
    max_abs: float
    max_rel: float
    ok: bool
    error: str | None = None


@dataclass
class ParityReport:
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def __str__(self) -> str:
        lines = [f"{'backend':<11} {'output':<20} {'dtype':<9} {'max abs':>10} {'max rel':>10}  result"]
        for r in self.rows:
            res = "ok" if r.ok else (f"FAIL: {r.error}" if r.error else "FAIL")
            lines.append(
                f"{r.backend:<11} {r.output:<20} {r.dtype.value:<9} {r.max_abs:>10.2e} {r.max_rel:>10.2e}  {res}"
            )
        return "\n".join(lines)


def _row(backend: str, name: str, dtype: DType, got: Any, want: np.ndarray) -> Row:
    got = np.asarray(got)
    if got.dtype != want.dtype or got.shape != want.shape:
        return Row(
            backend,
            name,
            dtype,
            float("inf"),
            float("inf"),
            False,
            f"got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}",
        )
    mabs, mrel, special_ok = differences(got, want)
    if not special_ok:
        return Row(backend, name, dtype, float("inf"), float("inf"), False, "nan/inf in different places")
    return Row(backend, name, dtype, mabs, mrel, within(got, want, dtype))


def _backend_names(backends: Sequence[str] | str | None) -> list[str]:
    """Canonical names; unknown or uninstalled backends are a one-line error before any work."""
    if backends is None:
        return [b for b in registry.available() if b != "numpy"]
    names = [backends] if isinstance(backends, str) else list(backends)
    out = []
    for b in names:
        registry.get(b)  # raises IRError naming the choices or the pip extra
        out.append(registry.resolve(b))
    return out


def compare(
    fn: Callable | Graph,
    *inputs: Any,
    backends: Sequence[str] | str | None = None,
    specs: Sequence[TensorSpec] | None = None,
) -> ParityReport:
    """Run ``fn`` (a Python function over xp, or a Graph) on ``backends`` and compare with numpy.

    ``specs`` (default: the inputs' exact shapes and dtypes) are the trace signature, so symbolic
    dims can be given. A backend that fails to lower or run gets rows marked with its error.
    """
    names = _backend_names(backends)
    arrays = [np.asarray(x) for x in inputs]
    if isinstance(fn, Graph):
        if specs is not None:
            raise IRError("compare: specs are only for tracing a function; a Graph carries its own")
        graph = fn
    elif callable(fn):
        specs = list(specs) if specs is not None else [TensorSpec(a.shape, as_dtype(a.dtype)) for a in arrays]
        graph = trace(fn, *specs)
    else:
        raise IRError(f"compare: expected a function or a Graph, got {type(fn).__name__}")
    ref = registry.get("numpy").lower(graph)(*arrays)
    ref = list(ref) if isinstance(ref, tuple) else [ref]
    outputs = list(zip(graph.output_names, [s.dtype for s in graph.output_specs], ref))
    report = ParityReport()
    for name in names:
        try:
            out = registry.lower(graph, name)(*arrays)
            out = list(out) if isinstance(out, tuple) else [out]
            if len(out) != len(ref):
                raise IRError(f"returned {len(out)} outputs for {len(ref)}")
        except Exception as exc:  # a backend failure is a row, not a crash of the report
            msg = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            report.rows += [Row(name, n, dt, float("inf"), float("inf"), False, msg) for n, dt, _ in outputs]
            continue
        report.rows += [_row(name, n, dt, o, r) for (n, dt, r), o in zip(outputs, out)]
    return report


def assert_parity(
    fn: Callable | Graph,
    *inputs: Any,
    backends: Sequence[str] | str | None = None,
    specs: Sequence[TensorSpec] | None = None,
) -> ParityReport:
    """``compare`` and raise AssertionError with the table when any backend is out of tolerance."""
    report = compare(fn, *inputs, backends=backends, specs=specs)
    if not report.ok:
        raise AssertionError("backends disagree with the numpy reference:\n" + str(report))
    return report
