"""``tensorweave.testing``: the helpers and the pytest plugin a user loads in their own suite.

A "wrong backend" is made by patching ``registry.lower`` (what every compared backend goes
through) to perturb one backend's outputs; the numpy reference is untouched.
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

import tensorweave as tw
import tensorweave.ir.namespace as xp
from tensorweave import testing
from tensorweave.backends import registry
from tensorweave.ir import IRError, array_namespace

EXAMPLE = pathlib.Path(__file__).parent / "user_suite_example" / "test_my_model.py"
USER_DOCS = pathlib.Path(__file__).parents[1] / "docs" / "testing.md"


def softmax_and_argmax(x):
    ns = array_namespace(x)
    return {"soft": ns.softmax(x, axis=-1), "arg": ns.argmax(x, axis=-1)}


X = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)


def perturb(monkeypatch, victim, change):
    """Make backend ``victim`` return ``change(outputs)`` (outputs as a list)."""
    real = registry.lower

    def lower(graph, backend=None, **kw):
        prog = real(graph, backend, **kw)
        if registry.resolve(backend) != victim:
            return prog

        def wrong(*args):
            out = prog(*args)
            out = change([np.array(o) for o in (out if isinstance(out, tuple) else (out,))])
            return tuple(out) if len(out) > 1 else out[0]

        wrong.output_names = getattr(prog, "output_names", None)
        return wrong

    monkeypatch.setattr(registry, "lower", lower)


def shift_first(amount):
    def change(outs):
        outs[0] = outs[0] + np.asarray(amount, outs[0].dtype)
        return outs

    return change


# --------------------------------------------------------------------------- backends, CI rule


def test_available_backends():
    names = testing.available_backends()
    assert names[0] == "numpy" and names == registry.available()
    assert testing.available_backends(reference=False) == names[1:]
    assert testing.BACKENDS == list(registry.ALL)  # the suite runs over all of them
    assert testing.NON_REFERENCE == [b for b in testing.BACKENDS if b != "numpy"]


def test_backends_can_be_narrowed_by_the_environment(monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_TEST_BACKENDS", " tf, numpy ")
    assert testing._selected_backends() == ["numpy", "tensorflow"]
    monkeypatch.setenv("TENSORWEAVE_TEST_BACKENDS", "numpy,cuda")
    with pytest.raises(IRError, match="unknown backend 'cuda'"):
        testing._selected_backends()


@pytest.mark.parametrize(
    "value, expected", [("true", True), ("1", True), ("YES", True), ("false", False), ("", False)]
)
def test_in_ci_reads_the_environment_now(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert testing.in_ci() is expected


def test_require_backend_skips_outside_ci_and_fails_in_ci(monkeypatch):
    testing.require_backend("numpy")  # installed: nothing happens
    monkeypatch.setattr(registry, "is_installed", lambda name: False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"pip install 'tensorweave\[torch\]'"):
        testing.require_backend("torch")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is true and backend 'torch' needs torch"):
        testing.require_backend("torch")


def test_require_backend_rejects_unknown_names():
    with pytest.raises(IRError, match="unknown backend"):
        testing.require_backend("cuda")


@testing.parametrize_backends(["np"])
def test_parametrize_backends_passes_each_name(backend):
    assert backend == "numpy"


def test_parametrize_backends_marks_and_checks(monkeypatch):
    def test_fn(backend):
        return backend

    decorated = testing.parametrize_backends(reference=False)(test_fn)
    (mark,) = decorated.pytestmark
    assert mark.args == ("backend", testing.NON_REFERENCE)
    assert decorated(backend="torch") == "torch" or not registry.is_installed("torch")
    monkeypatch.setattr(registry, "is_installed", lambda name: False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        decorated(backend="jax")


# --------------------------------------------------------------------------- assert_parity


def test_assert_parity_checks_every_installed_backend():
    report = testing.assert_parity(softmax_and_argmax, (X,))
    assert report.ok
    assert [(r.backend, r.output) for r in report.rows] == [
        (b, o) for b in testing.available_backends(reference=False) for o in ("soft", "arg")
    ]
    assert testing.assert_parity(tw.function(softmax_and_argmax), X, backends="numpy").ok  # one array


def test_assert_parity_leaves_out_a_missing_backend_except_in_ci(monkeypatch):
    real = registry.is_installed
    monkeypatch.setattr(registry, "is_installed", lambda name: name != "jax" and real(name))
    monkeypatch.delenv("CI", raising=False)
    report = testing.assert_parity(softmax_and_argmax, (X,))
    assert "jax" not in {r.backend for r in report.rows}
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is true and backend 'jax' needs jax"):
        testing.assert_parity(softmax_and_argmax, (X,))


def test_assert_parity_fails_when_a_backend_differs(monkeypatch):
    perturb(monkeypatch, "numpy", shift_first(1e-3))  # the compared numpy side, not the reference
    with pytest.raises(AssertionError, match="backends disagree with the numpy reference") as info:
        testing.assert_parity(softmax_and_argmax, (X,), backends=["numpy"])
    table = str(info.value)
    assert "soft" in table and "FAIL" in table
    # a looser tolerance accepts it; the integer output is still compared exactly
    report = testing.assert_parity(softmax_and_argmax, (X,), atol=2e-3, backends=["numpy"])
    assert report.ok and report.rows[0].max_abs == pytest.approx(1e-3, rel=1e-2)
    with pytest.raises(AssertionError, match="FAIL"):
        testing.assert_parity(softmax_and_argmax, (X,), atol=5e-4, backends=["numpy"])


def test_integer_outputs_stay_exact_whatever_the_tolerance(monkeypatch):
    def bump_arg(outs):
        outs[1] = (outs[1] + 1) % 5
        return outs

    perturb(monkeypatch, "numpy", bump_arg)
    with pytest.raises(AssertionError, match="arg") as info:
        testing.assert_parity(softmax_and_argmax, (X,), atol=1.0, rtol=1.0, backends=["numpy"])
    assert "soft" not in [line.split()[1] for line in str(info.value).splitlines()[2:] if "FAIL" in line]


def test_a_backend_error_is_a_failed_row(monkeypatch):
    def boom(outs):
        raise RuntimeError("kernel missing\nmore text")

    perturb(monkeypatch, "numpy", boom)
    with pytest.raises(AssertionError, match="RuntimeError: kernel missing"):
        testing.assert_parity(softmax_and_argmax, (X,), rtol=1e-3, backends=["numpy"])


def test_assert_parity_rejects_misuse():
    with pytest.raises(IRError, match="unknown backend"):
        testing.assert_parity(softmax_and_argmax, (X,), backends=["cuda"])
    with pytest.raises(TypeError, match="keyword inputs"):
        testing.assert_parity(softmax_and_argmax, {"x": X})


def test_assert_parity_on_a_graph_with_a_tolerance():
    graph = tw.trace(lambda x: xp.exp(x), tw.TensorSpec(("n",), "float32"))
    x = np.linspace(-2, 2, 7, dtype=np.float32)
    assert testing.assert_parity(graph, (x,), rtol=1e-4, backends="numpy").ok


def test_assert_parity_on_a_model(monkeypatch):
    testing.require_backend("torch")
    from tiny_lm import tiny_lm

    _, model = tiny_lm("gpt2", seed=0)
    ids = np.array([[5, 6, 7, 8]], np.int64)
    inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    report = testing.assert_parity(model, inputs, backends=["torch"])
    assert [(r.backend, r.output) for r in report.rows] == [("torch", "logits")]
    perturb(monkeypatch, "torch", shift_first(0.1))
    model._programs.clear()
    with pytest.raises(AssertionError, match="logits"):
        testing.assert_parity(model, (ids, np.ones_like(ids)), backends=["torch"], atol=1e-2)


# --------------------------------------------------------------------------- the plugin, as a user loads it


def test_the_user_example_runs_as_its_own_suite_with_the_plugin(pytester):
    pytester.makeconftest('pytest_plugins = ["tensorweave.testing"]\n')
    pytester.makepyfile(test_users_copy=EXAMPLE.read_text())  # not test_my_model: that one is imported
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    n = len(testing.BACKENDS)
    installed = len(testing.available_backends())
    result.assert_outcomes(passed=1 + installed, skipped=n - installed)
    result.stdout.fnmatch_lines(["tensorweave: backends installed numpy*"])


def test_the_docs_show_the_example_word_for_word():
    blocks = re.findall(r"```python\n(.*?)```", USER_DOCS.read_text(), re.S)
    code = EXAMPLE.read_text().split('"""\n', 1)[1].strip()  # after the module docstring
    assert code in [b.strip() for b in blocks], "docs/testing.md's first example and test_my_model.py differ"


def test_the_plugin_loads_with_dash_p(pytester):
    pytester.makepyfile(
        """
        import numpy as np

        def test_fixtures(rng, framework_backend):
            assert framework_backend != "numpy"
            assert rng.integers(1000) == np.random.default_rng(0).integers(1000)
        """
    )
    result = pytester.runpytest("-p", "tensorweave.testing", "-p", "no:cacheprovider", "-k", "torch")
    result.assert_outcomes(**({"passed": 1} if registry.is_installed("torch") else {"skipped": 1}))


@pytest.mark.parametrize("ci, outcome", [("true", "failed"), ("", "skipped")])
def test_a_missing_backend_skips_or_fails_by_ci(pytester, monkeypatch, ci, outcome):
    pytester.makepyfile(
        """
        from tensorweave.backends import registry
        from tensorweave.testing import require_backend

        def test_needs_torch(monkeypatch):
            monkeypatch.setattr(registry, "is_installed", lambda name: False)
            require_backend("torch")
        """
    )
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(**{outcome: 1})
