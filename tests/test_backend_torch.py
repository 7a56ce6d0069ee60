"""The torch backend (spec/backends-torch.md): its eager top_k (torch.topk plus the IR's tie rule)
against the numpy reference on long rows with many ties, ints, -inf and nan, and through a lowered
program; the weight layout plan; the rule shape of its table; a ``.pt2`` read back with ``load``."""

from __future__ import annotations

import numpy as np
import pytest

from tensorweave.backends import registry

from conftest import IN_CI

if not registry.is_installed("torch") and not IN_CI:  # in CI a missing backend fails the session
    pytest.skip(registry.missing_message("torch"), allow_module_level=True)

import torch  # noqa: E402

import tensorweave as tw  # noqa: E402
import tensorweave.ir.namespace as xp  # noqa: E402
from tensorweave.backends import base  # noqa: E402
from tensorweave.backends.torch import LOWERINGS, load, top_k  # noqa: E402
from tensorweave.ir import TensorSpec  # noqa: E402
from tensorweave.ir.ops.manipulation import top_k as reference_top_k  # noqa: E402


def rows(kind, shape, rng):
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "ties":
        return rng.integers(0, 4, size=shape).astype(np.float32)
    if kind == "int":
        return rng.integers(-3, 3, size=shape).astype(np.int64)
    if kind == "inf":
        x = rng.integers(0, 3, size=shape).astype(np.float64)
        return np.where(x == 2, -np.inf, x)
    x = rng.standard_normal(shape).astype(np.float32)  # nan: counts as the largest value
    x.flat[rng.integers(0, x.size, size=3)] = np.nan
    return x


@pytest.mark.parametrize("kind", ["normal", "ties", "int", "inf", "nan"])
def test_eager_top_k_equals_the_stable_sort_rule(kind):
    rng = np.random.default_rng(len(kind))
    for trial in range(40):
        n = int(rng.integers(1, 400))
        shape = tuple(int(d) for d in rng.integers(1, 4, size=trial % 3)) + (n,)
        x = rows(kind, shape, rng)
        k = int(rng.integers(1, max(2, n // 9))) if trial % 2 else int(rng.integers(0, n + 1))
        values, indices = top_k(torch.from_numpy(x), k)
        ref_values, ref_indices = reference_top_k(x, k)
        np.testing.assert_array_equal(indices.numpy(), ref_indices, err_msg=f"{shape} k={k}")
        np.testing.assert_array_equal(values.numpy(), ref_values)


def test_top_k_program_on_a_vocabulary_row_with_ties():
    x = np.zeros((2, 5000), np.float32)
    x[0, [10, 4000, 7, 4999]] = 3.0  # four-way tie: lower indices first
    x[1, 123] = 1.0
    prog = tw.lower(tw.trace(lambda a: xp.top_k(a, 3), TensorSpec((2, 5000), "float32")), backend="torch")
    values, indices = prog(x)
    np.testing.assert_array_equal(indices, [[7, 10, 4000], [123, 0, 1]])
    np.testing.assert_array_equal(values, [[3, 3, 3], [1, 0, 0]])


def _loop_program(rows, transposed_weight, n=8):
    """``x <- tanh(x @ W) `` three times in a while_loop, W a constant ([8, n] or used as W^T)."""
    from tensorweave.ir.control import while_loop
    from tensorweave.ir.trace import constant

    w = np.random.default_rng(1).standard_normal((8, n)).astype(np.float32) / 3
    if transposed_weight:
        w = np.ascontiguousarray(w.T)

    def fn(x):
        c = constant(w, name="w")
        op = xp.permute_dims(c, (1, 0)) if transposed_weight else c

        def body(s):
            y = xp.tanh(xp.matmul(s["x"], op))
            return {"i": s["i"] + 1, "x": y[:, :8] + y[:, -8:]}  # back to 8 columns

        return while_loop(lambda s: s["i"] < 3, body, {"i": xp.asarray(0, dtype=xp.int64), "x": x})["x"]

    graph = tw.trace(fn, TensorSpec((rows, 8), "float32", "x"))
    return graph, (w.T if transposed_weight else w)


@pytest.mark.parametrize("rows", [1, 4])
@pytest.mark.parametrize("transposed_weight", [False, True])
@pytest.mark.parametrize("n", [8, 9])
def test_weight_layout_plan_keeps_values_and_picks_the_fast_form(rows, transposed_weight, n):
    graph, w = _loop_program(rows, transposed_weight, n)
    prog = tw.lower(graph, backend="torch")
    x = np.random.default_rng(2).standard_normal((rows, 8)).astype(np.float32)
    want = x
    for _ in range(3):
        y = np.tanh(want @ w)
        want = y[:, :8] + y[:, -8:]
    np.testing.assert_allclose(prog(x), want, rtol=1e-5, atol=1e-6)
    # several rows: (W^T x^T)^T over [N, K] memory; one row: one bmm over blocks of the [N, K]
    # rows when N splits, else x @ W over [K, N] memory (N >= K here)
    assert ("mm_nk(" in prog.source) == (rows > 1)
    assert ("mm_split(" in prog.source) == (rows == 1 and n % 2 == 0)
    shape = (n, 8) if transposed_weight else (8, n)
    consts = [t for t in prog.entry.__globals__.values() if isinstance(t, torch.Tensor) and t.shape == shape]
    assert len(consts) == 1  # stored once, in the chosen layout
    operand = consts[0].t() if transposed_weight else consts[0]
    assert operand.is_contiguous() == (rows == 1 and n % 2 == 1)  # [K, N] rows, else [N, K]


def test_every_lowering_is_one_rule_of_a_site():
    """LOWERINGS is the shared rule table: each entry takes one argument, a Site, and returns
    Python source; called on a node of every op's parity cases through the code generator."""
    import inspect

    from tensorweave.backends.torch import Codegen, TorchSite
    from tensorweave.ir.ops import OPS

    from op_cases import all_cases

    assert isinstance(LOWERINGS, base.Rules) and LOWERINGS.backend == "torch"
    assert set(OPS) <= set(LOWERINGS)
    for op, rule in LOWERINGS.items():
        params = list(inspect.signature(rule).parameters.values())
        assert len(params) == 1 and params[0].kind is params[0].POSITIONAL_OR_KEYWORD, op
    assert issubclass(TorchSite, base.Site)
    seen: dict = {}
    for case in all_cases():
        for node in case.graph.walk():
            seen.setdefault(node.op, (node, case.graph))
    assert set(OPS) <= set(seen)
    for op, (node, graph) in sorted(seen.items()):
        cg = Codegen(export=False, symbols=sorted(graph.symbols))
        site = TorchSite(
            node,
            [f"a{i}" for i in range(len(node.inputs))],
            base.resolve_symbolic_attrs(node, cg.env),
            [f"o{i}" for i in range(len(node.outputs))],
            cg,
        )
        src = LOWERINGS[op](site)
        assert isinstance(src, str), op
        if site.outs:
            assert site.outs[0] in src, op


def test_pt2_written_by_export_loads_and_gives_the_program_outputs(tmp_path):
    """``TorchProgram.export`` writes a .pt2 (no temporary file left); ``load`` runs it on inputs in
    order, with a symbolic batch other than the example size and a uint32 input and output."""
    from tensorweave.io import TMP_MARK

    w = np.random.default_rng(3).standard_normal((8, 5)).astype(np.float32)

    def fn(x, key):
        from tensorweave.ir.trace import constant

        y = xp.tanh(xp.matmul(x, constant(w, name="w")))
        return y, key * xp.asarray(2654435761, dtype=xp.uint32) + key

    graph = tw.trace(fn, TensorSpec(("batch", 8), "float32", "x"), TensorSpec((2,), "uint32", "key"))
    prog = tw.lower(graph, backend="torch")
    path = prog.export(str(tmp_path / "m.pt2"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt2"]
    assert not any(TMP_MARK in p.name for p in tmp_path.iterdir())
    run = load(path, allow_pickle=True)
    x = np.random.default_rng(4).standard_normal((3, 8)).astype(np.float32)
    key = np.array([7, 4294967295], np.uint32)
    want = prog(x, key)
    got = run(x, key)
    assert isinstance(got, tuple) and len(got) == 2
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    assert got[1].dtype == np.uint32
    np.testing.assert_array_equal(got[1], want[1])
    native = run(torch.from_numpy(x), torch.from_numpy(key))  # torch in -> torch out
    assert all(isinstance(t, torch.Tensor) for t in native)
    np.testing.assert_array_equal(native[1].numpy(), want[1])
