"""Cross-framework parity: run a function on several backends and compare each with numpy.

``compare(fn, *inputs)`` traces ``fn`` (or takes a Graph), runs it on the numpy reference and on
the chosen backends (default: every installed one) and reports, per backend and output, the
max absolute and max relative difference and whether it is within :data:`TOLERANCES`.
``assert_parity`` raises an ``AssertionError`` carrying the printed table (pytest-friendly).

Tolerances are by dtype (spec/backends.md explains each number):

- bool and integer dtypes: exact;
- float64: rtol 1e-10, atol 1e-12 (different libm implementations of exp/log/erf);
- float32: rtol 1e-5, atol 1e-6 (libm differences and summation order in reductions/matmul);
- float16: rtol 2e-3, atol 1e-3 (computed in float32 and rounded: one float16 ulp is 9.8e-4);
- bfloat16: rtol 1.6e-2, atol 1e-2 (one bfloat16 ulp is 7.8e-3).

NaN must match NaN and infinities must match exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .backends import registry
from .ir.graph import Graph
from .ir.trace import trace
from .ir.types import DType, TensorSpec, as_dtype

TOLERANCES: dict[DType, tuple[float, float]] = {
    DType.bool: (0.0, 0.0), DType.int32: (0.0, 0.0), DType.int64: (0.0, 0.0), DType.uint32: (0.0, 0.0),
    DType.float64: (1e-10, 1e-12), DType.float32: (1e-5, 1e-6), DType.float16: (2e-3, 1e-3),
    DType.bfloat16: (1.6e-2, 1e-2),
}


def tolerance(dtype: Any) -> tuple[float, float]:
    """(rtol, atol) for a dtype."""
    return TOLERANCES[as_dtype(dtype)]


def differences(actual: Any, expected: np.ndarray) -> tuple[float, float, bool]:
    """(max abs diff, max rel diff, special values agree) over finite entries; nan/inf must match."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    if a.shape != e.shape:
        return float("inf"), float("inf"), False
    if e.dtype.kind in "biu" or e.dtype == np.bool_:
        diff = a.astype(np.float64) - e.astype(np.float64) if a.size else np.zeros(0)
        m = float(np.max(np.abs(diff))) if a.size else 0.0
        return m, m, True
    a64 = a.astype(np.float64)
    e64 = e.astype(np.float64)
    special_ok = bool(np.array_equal(np.isnan(a64), np.isnan(e64)) and
                      np.array_equal(np.where(np.isinf(e64), e64, 0), np.where(np.isinf(e64), a64, 0)) and
                      np.array_equal(np.isinf(a64), np.isinf(e64)))
    finite = np.isfinite(e64) & np.isfinite(a64)
    if not finite.any():
        return 0.0, 0.0, special_ok
    d = np.abs(a64[finite] - e64[finite])
    rel = d / np.maximum(np.abs(e64[finite]), np.finfo(np.float64).tiny)
    return float(d.max()), float(rel.max()), special_ok


def within(actual: Any, expected: np.ndarray, dtype: DType) -> bool:
    rtol, atol = TOLERANCES[dtype]
    a = np.asarray(actual)
    e = np.asarray(expected)
    if a.shape != e.shape or a.dtype != e.dtype:
        return False
    if dtype.is_integer or dtype.is_bool:
        return bool(np.array_equal(a, e))
    _, _, special_ok = differences(a, e)
    if not special_ok:
        return False
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    finite = np.isfinite(e64)
    return bool(np.all(np.abs(a64[finite] - e64[finite]) <= atol + rtol * np.abs(e64[finite])))


@dataclass
class Row:
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
            lines.append(f"{r.backend:<11} {r.output:<20} {str(r.dtype):<9} {r.max_abs:>10.2e} {r.max_rel:>10.2e}  {res}")
        return "\n".join(lines)


def compare(fn: Callable | Graph, *inputs: Any, backends: Sequence[str] | None = None,
            specs: Sequence[TensorSpec] | None = None) -> ParityReport:
    """Run ``fn`` (a Python function over xp, or a Graph) on ``backends`` and compare with numpy."""
    arrays = [np.asarray(x) for x in inputs]
    if isinstance(fn, Graph):
        graph = fn
    else:
        specs = list(specs) if specs is not None else [TensorSpec(a.shape, as_dtype(a.dtype)) for a in arrays]
        graph = trace(fn, *specs)
    ref = registry.get("numpy").lower(graph)(*arrays)
    ref = ref if isinstance(ref, tuple) else (ref,)
    names = graph.output_names
    dtypes = [s.dtype for s in graph.output_specs]
    report = ParityReport()
    for name in backends if backends is not None else [b for b in registry.available() if b != "numpy"]:
        try:
            out = registry.lower(graph, name)(*arrays)
            out = out if isinstance(out, tuple) else (out,)
        except Exception as exc:  # a backend failure is a row, not a crash of the report
            for n, dt in zip(names, dtypes):
                report.rows.append(Row(name, n, dt, float("inf"), float("inf"), False, f"{type(exc).__name__}: {exc}"))
            continue
        for n, dt, o, r in zip(names, dtypes, out, ref):
            o = np.asarray(o)
            mabs, mrel, _ = differences(o, r)
            report.rows.append(Row(name, n, dt, mabs, mrel, within(o, r, dt)))
    return report


def assert_parity(fn: Callable | Graph, *inputs: Any, backends: Sequence[str] | None = None,
                  specs: Sequence[TensorSpec] | None = None) -> ParityReport:
    """``compare`` and raise AssertionError with the table when any backend is out of tolerance."""
    report = compare(fn, *inputs, backends=backends, specs=specs)
    if not report.ok:
        raise AssertionError("backends disagree with the numpy reference:\n" + str(report))
    return report
