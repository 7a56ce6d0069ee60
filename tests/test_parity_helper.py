"""The public parity helper: reports per backend and output, and fails when a backend is wrong.

A "wrong backend" is the numpy backend with its outputs perturbed: ``compare`` runs the
reference through ``registry.get("numpy")`` and every compared backend through
``registry.lower``, so patching ``registry.lower`` changes only the compared side.
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave.backends.numpy as np_backend
import tensorweave.ir.namespace as xp
from tensorweave import parity
from tensorweave.backends import registry
from tensorweave.ir import DType, IRError, TensorSpec, trace


def fn(x):
    return {"soft": xp.softmax(x, axis=-1), "arg": xp.argmax(x, axis=-1), "log": xp.log(x)}


X = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
X[0, 0] = 0.0  # log: -inf;  negative entries: nan


def perturbed(monkeypatch, change):
    """Make the "numpy" compared side return ``change(outputs)``."""

    class Wrong(np_backend.NumpyProgram):
        def _run(self, args, env):
            return change([o.copy() for o in super()._run(args, env)])

    real = registry.lower
    monkeypatch.setattr(
        registry,
        "lower",
        lambda graph, backend=None, **kw: Wrong(graph) if backend == "numpy" else real(graph, backend, **kw),
    )


def test_compare_reports_every_backend_and_output():
    report = parity.compare(fn, X)
    backends = [b for b in registry.available() if b != "numpy"]
    assert [(r.backend, r.output) for r in report.rows] == [
        (b, o) for b in backends for o in ("soft", "arg", "log")
    ]
    assert report.ok, str(report)
    text = str(report)
    assert text.splitlines()[0].split()[:5] == ["backend", "output", "dtype", "max", "abs"]
    assert len(text.splitlines()) == 1 + len(report.rows)
    assert parity.assert_parity(fn, X, backends=["numpy"]).ok


def test_a_wrong_float_output_fails_with_the_table(monkeypatch):
    def shift(outs):
        outs[0] = outs[0] + np.float32(1e-3)
        return outs

    perturbed(monkeypatch, shift)
    report = parity.compare(fn, X, backends=["numpy"])
    assert not report.ok
    (bad,) = report.failures()
    assert bad.output == "soft" and bad.max_abs == pytest.approx(1e-3, rel=1e-2)
    with pytest.raises(AssertionError, match="backends disagree with the numpy reference") as info:
        parity.assert_parity(fn, X, backends=["numpy"])
    assert "soft" in str(info.value) and "FAIL" in str(info.value)


def test_a_difference_inside_the_tolerance_passes(monkeypatch):
    """float32 tolerance: |a - e| <= 1e-6 + 1e-5 |e|; softmax values are <= 1, so 5e-7 is inside."""

    def nudge(outs):
        outs[0] = outs[0] + np.float32(5e-7)
        return outs

    perturbed(monkeypatch, nudge)
    report = parity.compare(fn, X, backends="numpy")
    assert report.ok, str(report)
    assert 4e-7 < report.rows[0].max_abs < 6e-7


def test_a_wrong_index_fails_exactly(monkeypatch):
    def bump(outs):
        outs[1][0] += 1
        return outs

    perturbed(monkeypatch, bump)
    (bad,) = parity.compare(fn, X, backends=["numpy"]).failures()
    assert bad.output == "arg" and bad.max_abs == 1.0


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda o: np.where(np.isnan(o), np.float32(0), o), "a nan became a number"),
        (lambda o: np.where(np.isneginf(o), np.float32(np.inf), o), "-inf became +inf"),
        (lambda o: np.where(np.isneginf(o), np.float32(-3e38), o), "-inf became finite"),
    ],
)
def test_nan_and_inf_must_match(monkeypatch, change, why):
    assert np.isnan(np.log(X)).any() and np.isneginf(np.log(X)).any()

    def apply(outs):
        outs[2] = change(outs[2]).astype(np.float32)
        return outs

    perturbed(monkeypatch, apply)
    (bad,) = parity.compare(fn, X, backends=["numpy"]).failures()
    assert bad.output == "log" and bad.error == "nan/inf in different places", why


def test_wrong_dtype_and_failing_backend_are_rows(monkeypatch):
    def widen(outs):
        outs[0] = outs[0].astype(np.float64)
        return outs

    perturbed(monkeypatch, widen)
    (bad,) = parity.compare(fn, X, backends=["numpy"]).failures()
    assert "float64" in bad.error

    def boom(outs):
        raise RuntimeError("kernel missing\nsecond line")

    perturbed(monkeypatch, boom)
    report = parity.compare(fn, X, backends=["numpy"])
    assert len(report.failures()) == 3 and report.rows[0].error == "RuntimeError: kernel missing"


def test_bad_arguments_fail_before_any_work():
    with pytest.raises(IRError, match="unknown backend 'cuda'; choose one of"):
        parity.compare(fn, X, backends=["cuda"])
    graph = trace(fn, TensorSpec((3, 5), "float32"))
    with pytest.raises(IRError, match="specs are only for tracing"):
        parity.compare(graph, X, specs=[TensorSpec((3, 5), "float32")])
    with pytest.raises(IRError, match="expected a function or a Graph"):
        parity.compare("softmax", X)


def test_graphs_and_symbolic_specs():
    graph = trace(fn, TensorSpec(("batch", 5), "float32"))
    for rows in (X[:1], X):
        assert parity.compare(graph, rows).ok
    report = parity.compare(lambda x: xp.sum(x, axis=0), X, specs=[TensorSpec(("batch", "n"), "float32")])
    assert report.ok and all(r.dtype is DType.float32 for r in report.rows)


def test_differences_and_within():
    a = np.array([1.0, np.nan, np.inf, 0.0], np.float32)
    assert parity.within(a, a.copy(), DType.float32)
    assert parity.differences(a, a.copy()) == (0.0, 0.0, True)
    assert not parity.within(np.array([1.0, 0.0, np.inf, 0.0], np.float32), a, DType.float32)
    assert not parity.within(np.array([1.0, np.nan, -np.inf, 0.0], np.float32), a, DType.float32)
    assert parity.within(np.array([1.0 + 5e-6], np.float32), np.array([1.0], np.float32), DType.float32)
    assert not parity.within(np.array([1.0 + 5e-5], np.float32), np.array([1.0], np.float32), DType.float32)
    assert not parity.within(np.array([1.0], np.float64), np.array([1.0], np.float32), DType.float32)
    assert parity.differences(np.array([0.5], np.float32), np.array([0.0], np.float32))[1] == np.inf
    # integers: exact, and measured without int64 overflow
    assert not parity.within(np.array([2], np.int64), np.array([3], np.int64), DType.int64)
    big = parity.differences(np.array([2**63 - 1], np.int64), np.array([-(2**63)], np.int64))
    assert big[0] == 2.0**64 and big[2]
    assert parity.differences(np.array([0xFFFFFFFF], np.uint32), np.array([0], np.uint32))[0] == 2.0**32 - 1
    bf = DType.bfloat16.to_numpy()
    assert parity.within(np.array([1.0, np.nan], bf), np.array([1.0, np.nan], bf), DType.bfloat16)
    assert parity.tolerance("float16") == (2e-3, 1e-3) and parity.tolerance(np.float64) == (1e-10, 1e-12)
