"""The public parity helper: reports per backend and output, and fails when a backend is wrong."""
from __future__ import annotations

import numpy as np
import pytest

import tensorweave.ir.namespace as xp
from tensorweave import parity
from tensorweave.backends import registry
from tensorweave.ir import DType


def fn(x):
    return {"soft": xp.softmax(x, axis=-1), "arg": xp.argmax(x, axis=-1)}


X = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)


def test_compare_reports_every_backend_and_output():
    report = parity.compare(fn, X)
    backends = [b for b in registry.available() if b != "numpy"]
    assert {(r.backend, r.output) for r in report.rows} == {(b, o) for b in backends for o in ("soft", "arg")}
    assert report.ok, str(report)
    text = str(report)
    assert "max abs" in text and "soft" in text
    parity.assert_parity(fn, X, backends=["numpy"])


def test_a_wrong_backend_fails_with_the_table(monkeypatch):
    """Perturb one backend's output: the helper must notice and say which output."""
    import tensorweave.backends.numpy as np_backend

    class Wrong(np_backend.NumpyProgram):
        def _run(self, args, env):
            out = super()._run(args, env)
            return [out[0] + 1e-3, out[1]]

    real_lower = registry.lower

    def fake_lower(graph, backend=None, **kw):
        if backend == "fake":
            return Wrong(graph)
        return real_lower(graph, backend, **kw)

    monkeypatch.setattr(registry, "lower", fake_lower)
    report = parity.compare(fn, X, backends=["fake"])
    assert not report.ok
    bad = report.failures()
    assert [r.output for r in bad] == ["soft"] and bad[0].max_abs == pytest.approx(1e-3, rel=1e-2)
    with pytest.raises(AssertionError, match="backends disagree with the numpy reference"):
        parity.assert_parity(fn, X, backends=["fake"])


def test_within_handles_nan_inf_and_dtypes():
    a = np.array([1.0, np.nan, np.inf], np.float32)
    assert parity.within(a, a.copy(), DType.float32)
    assert not parity.within(np.array([1.0, 0.0, np.inf], np.float32), a, DType.float32)
    assert not parity.within(np.array([1.0, np.nan, -np.inf], np.float32), a, DType.float32)
    assert parity.within(np.array([1.0 + 5e-6], np.float32), np.array([1.0], np.float32), DType.float32)
    assert not parity.within(np.array([1.0 + 5e-5], np.float32), np.array([1.0], np.float32), DType.float32)
    assert not parity.within(np.array([2], np.int64), np.array([3], np.int64), DType.int64)
    assert parity.tolerance("float16") == (2e-3, 1e-3)
