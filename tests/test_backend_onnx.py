"""The ONNX backend (spec/backends-onnx.md): the one rule shape, valid standard-domain models with
Loop and If, symbolic dims, atomic saving with and without external data, and ``load``.

Expected values come from the numpy reference interpreter or from the lowered program itself
(a saved and reloaded file must give the program's outputs exactly: same graph, same runtime)."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

from tensorweave.backends import registry

from conftest import IN_CI

if not registry.is_installed("onnx") and not IN_CI:  # in CI a missing backend fails the session
    pytest.skip(registry.missing_message("onnx"), allow_module_level=True)

import onnx  # noqa: E402

import tensorweave.ir.namespace as xp  # noqa: E402
from tensorweave import io  # noqa: E402
from tensorweave.backends import base  # noqa: E402
from tensorweave.backends import onnx as onnx_backend  # noqa: E402
from tensorweave.backends.numpy import lower as lower_numpy  # noqa: E402
from tensorweave.backends.onnx import artefact, rules  # noqa: E402
from tensorweave.ir import IRError, TensorSpec, trace  # noqa: E402
from tensorweave.ir.ops import OPS  # noqa: E402
from tensorweave.ir.trace import constant  # noqa: E402
from tensorweave.parity import differences, within  # noqa: E402


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def assert_matches_reference(graph, prog, args):
    ref = as_tuple(lower_numpy(graph)(*args))
    got = as_tuple(prog(*args))
    assert len(got) == len(ref)
    for k, (g, r, spec) in enumerate(zip(got, ref, graph.output_specs)):
        g = np.asarray(g)
        assert (g.dtype, g.shape) == (r.dtype, r.shape), f"output {k}"
        assert within(g, r, spec.dtype), f"output {k}: {differences(g, r)}"


def assert_equal_outputs(a, b):
    a, b = as_tuple(a), as_tuple(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ------------------------------------------------------------------ the rule table


def test_module_contract():
    module = registry.get("onnx")
    assert module is onnx_backend
    assert module.NAME == "onnx" and module.OPSET == 21
    assert callable(module.lower) and callable(module.load)
    assert isinstance(module.LOWERINGS, base.Rules) and module.LOWERINGS.backend == "onnx"
    assert not sorted(set(OPS) - set(module.LOWERINGS)), "ops without an onnx rule"
    assert not hasattr(module, "U32_MASKED") and not hasattr(rules, "U32_MASKED")  # OPS[op].wraps_uint32


def test_every_rule_takes_one_site():
    for op, rule in onnx_backend.LOWERINGS.items():
        assert callable(rule), op
        params = list(inspect.signature(rule).parameters.values())
        assert len(params) == 1, f"{op}: {rule.__name__}{inspect.signature(rule)}"
        assert params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD), op


def test_uint32_wrap_follows_the_registry():
    """uint32 + wraps modulo 2**32 (wraps_uint32), uint32 >> does not need a mask."""
    graph = trace(lambda a, b: (a + b, a * b, a >> 1), TensorSpec((3,), "uint32"), TensorSpec((3,), "uint32"))
    a = np.array([2**32 - 1, 7, 2**31], np.uint32)
    b = np.array([2, 2**32 - 1, 2**31], np.uint32)
    assert_matches_reference(graph, onnx_backend.lower(graph), [a, b])
    model = onnx_backend.to_model_proto(graph)
    masks = [n for n in model.graph.node if n.op_type == "BitwiseAnd"]
    assert masks, "uint32 results of wrapping ops are masked"


def test_symbolic_attrs_are_computed_in_the_graph():
    """reshape/full/arange with symbolic dims: one model serves every size (resolve_symbolic_attrs
    with DimTensor env values)."""

    def fn(x):
        n = x.shape[0]
        flat = xp.reshape(x, (n * 3,))
        ramp = xp.arange(n * 2 + 1, dtype=xp.int64)
        return flat + xp.ones((n * 3,), dtype=xp.float32), ramp

    graph = trace(fn, TensorSpec(("n", 3), "float32"))
    prog = onnx_backend.lower(graph)
    for n in (1, 2, 5):
        assert_matches_reference(graph, prog, [np.arange(n * 3, dtype=np.float32).reshape(n, 3)])
    dims = [d.dim_param for d in prog.model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "n"


def test_options():
    graph = trace(lambda x: x + 1.0, TensorSpec((2,), "float32"))
    assert onnx_backend.lower(graph, opset=20).model.opset_import[0].version == 20
    with pytest.raises(IRError, match="opset"):
        onnx_backend.lower(graph, compile=True)
    with pytest.raises(IRError, match="opset 19 is too old"):
        onnx_backend.lower(graph, opset=19)


# ------------------------------------------------------------------ Loop and If


def _control(x, n):
    def body(i, acc):
        return xp.cond(i % 2 == 0, lambda a: a + x, lambda a: a * 1.5, acc)

    total = xp.fori_loop(0, n, body, xp.zeros_like(x))
    k, v = xp.while_loop(
        lambda s: s[1] < 50.0, lambda s: (s[0] + 1, s[1] * 2.0 + 1.0), (0, xp.sum(xp.abs(x)))
    )
    return total, k, v


CONTROL = trace(_control, TensorSpec(("n",), "float32"), TensorSpec((), "int64"))


def _subgraph_ops(graph) -> set:
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                ops |= _subgraph_ops(attr.g)
    return ops


def test_loop_and_if_model_passes_the_full_checker():
    model = onnx_backend.to_model_proto(CONTROL)
    assert {"Loop", "If"} <= _subgraph_ops(model.graph)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert {op.domain for op in model.opset_import} == {""}
    prog = onnx_backend.lower(CONTROL)
    for x, n in ((np.array([1.0, -2.0, 0.5], np.float32), 5), (np.array([30.0, 40.0], np.float32), 0)):
        assert_matches_reference(CONTROL, prog, [x, np.array(n)])


def test_loop_carried_static_shapes_are_declared():
    graph = trace(
        lambda x: xp.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, s[1] * 2.0), (0, x))[1],
        TensorSpec((2, 3), "float32"),
    )
    model = onnx_backend.to_model_proto(graph)
    (loop,) = [n for n in model.graph.node if n.op_type == "Loop"]
    body = loop.attribute[0].g
    carried = [[d.dim_value for d in v.type.tensor_type.shape.dim] for v in body.input[2:]]
    assert [2, 3] in carried


# ------------------------------------------------------------------ saving and loading


def _weighted_graph():
    w = np.arange(32 * 32, dtype=np.float32).reshape(32, 32) / 1000.0
    return trace(lambda x: xp.tanh(x @ constant(w, name="w")), TensorSpec(("b", 32), "float32"))


def _x(batch=3):
    return np.random.default_rng(0).standard_normal((batch, 32)).astype(np.float32)


def test_external_data_past_the_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(artefact, "EXTERNAL_DATA_THRESHOLD", 1024)  # the 4 KiB weight crosses it
    prog = onnx_backend.lower(_weighted_graph())
    path = prog.export(str(tmp_path / "m.onnx"))
    assert os.path.isfile(path + ".data")
    assert os.path.getsize(path) < 4096 <= os.path.getsize(path + ".data")
    onnx.checker.check_model(path, full_check=True)
    (w,) = [t for t in onnx.load_model(path, load_external_data=False).graph.initializer if t.name == "w"]
    assert w.data_location == onnx.TensorProto.EXTERNAL
    assert {e.key: e.value for e in w.external_data}["location"] == "m.onnx.data"
    loaded = onnx_backend.load(path)
    assert_equal_outputs(loaded(_x()), prog(_x()))
    assert io.leftovers(str(tmp_path)) == []


def test_reexport_without_external_data_removes_the_stale_data_file(tmp_path, monkeypatch):
    prog = onnx_backend.lower(_weighted_graph())
    path = str(tmp_path / "m.onnx")
    prog.export(path, external_data_threshold=1)
    assert os.path.isfile(path + ".data")
    prog.export(path)  # under the 2 GiB default: one file
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]
    assert_equal_outputs(onnx_backend.load(path)(_x()), prog(_x()))
    # a <name>.data the previous model did not reference is not ours: it stays
    foreign = tmp_path / "m.onnx.data"
    foreign.write_bytes(b"not ours")
    prog.export(path)
    assert foreign.read_bytes() == b"not ours"


@pytest.mark.parametrize("failure", [OSError, KeyboardInterrupt])
@pytest.mark.parametrize("external", [True, False])
def test_failed_save_leaves_no_temp_files_and_the_old_files(tmp_path, monkeypatch, failure, external):
    prog = onnx_backend.lower(_weighted_graph())
    path = str(tmp_path / "m.onnx")
    prog.export(path, external_data_threshold=1)  # the previous export: model + data
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if dst == path:  # the data file (if any) is in place, the model rename fails
            raise failure("simulated failure")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(failure):
        prog.export(path, external_data_threshold=1 if external else None)
    monkeypatch.setattr(os, "replace", real_replace)
    assert io.leftovers(str(tmp_path)) == []
    assert calls[-1] == path
    if external:
        assert calls == [path + ".data", path]  # data first, then the model
    else:
        assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before
    onnx.checker.check_model(path, full_check=True)  # the model on disk still loads


def test_failure_while_writing_data_leaves_nothing(tmp_path, monkeypatch):
    prog = onnx_backend.lower(_weighted_graph())

    def broken(model, data_name):
        yield b"\0" * 10
        raise OSError("disk full")

    monkeypatch.setattr(artefact, "_externalize", broken)
    with pytest.raises(OSError, match="disk full"):
        prog.export(str(tmp_path / "m.onnx"), external_data_threshold=1)
    assert os.listdir(tmp_path) == []


def test_load_round_trip_equals_the_program(tmp_path):
    prog = onnx_backend.lower(CONTROL)
    path = prog.export(str(tmp_path / "control.onnx"))
    loaded = onnx_backend.load(path)
    assert loaded.input_names == prog.input_names and loaded.output_names == prog.output_names
    x, n = np.array([1.0, -2.0, 0.5], np.float32), np.array(5)
    expected = prog(x, n)
    assert_equal_outputs(loaded(x, n), expected)
    assert_equal_outputs(loaded(**dict(zip(prog.input_names, (x, n)))), expected)
    assert_equal_outputs(loaded(x, **{prog.input_names[1]: n}), expected)
    with pytest.raises(IRError, match="missing input"):
        loaded(x)
    with pytest.raises(IRError, match="unknown input"):
        loaded(x, n, bogus=n)


def test_save_model_writes_a_plain_file_atomically(tmp_path):
    model = onnx_backend.to_model_proto(_weighted_graph())
    path = onnx_backend.save_model(model, tmp_path / "sub" / "plain.onnx")
    assert os.path.isabs(path) and os.listdir(tmp_path / "sub") == ["plain.onnx"]
    assert onnx.load_model(path) == model


# ------------------------------------------------------------------ weights: one copy, read in place


def _assert_linear_close(graph, prog, x):
    """A 512-long float32 dot product summed in another order (MLAS vs numpy's BLAS): relative
    differences of a few 1e-6 of the output's magnitude (about 20 here)."""
    for g, r in zip(as_tuple(prog(x)), as_tuple(lower_numpy(graph)(x))):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-5, atol=1e-4)


def _linear_graph(rank: int, loop: bool = False):
    """``x @ W^T`` with a 256 KiB weight ``W [128, 512]`` (large enough to stay out of the proto in a
    session), on a rank-``rank`` ``x``; with ``loop`` also inside a while-loop body, so the prompt graph
    and the body read the same weight."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((128, 512)).astype(np.float32)

    def fn(x):
        W = constant(w, name="lin.weight")
        y = xp.matmul(x, xp.permute_dims(W, (1, 0)))
        if loop:
            from tensorweave.ir import control

            def body(state):
                i, acc = state
                Wb = constant(w, name="lin.weight")  # as a model step in a decode loop reads its weights
                return i + 1, acc + xp.sum(xp.matmul(x, xp.permute_dims(Wb, (1, 0))))

            init = (xp.asarray(0), xp.asarray(0.0))
            _, total = control.while_loop(lambda state: state[0] < 3, body, init)
            return y, total
        return y

    shape = (2, 3, 512)[-rank:] if rank <= 3 else (2, 2, 3, 512)
    return trace(fn, TensorSpec(shape, "float32", "x")), w, rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("rank", [2, 3, 4])
def test_linear_weight_is_read_by_gemm_without_a_transposed_copy(rank):
    graph, w, x = _linear_graph(rank)
    model = onnx_backend.to_model_proto(graph)
    ops = [n.op_type for n in model.graph.node]
    assert "Gemm" in ops and "Transpose" not in ops and "MatMul" not in ops
    assert [i.name for i in model.graph.initializer if list(i.dims) == [128, 512]] == ["lin.weight"]
    assert not [i for i in model.graph.initializer if list(i.dims) == [512, 128]]  # no W^T stored
    _assert_linear_close(graph, onnx_backend.lower(graph), x)


def test_session_reads_the_weights_in_place_and_the_body_shares_them():
    graph, w, x = _linear_graph(2, loop=True)
    prog = onnx_backend.lower(graph)
    held = prog._in_memory
    assert list(held) == ["lin.weight"]  # one initializer for the prompt graph and the loop body
    assert np.shares_memory(held["lin.weight"], next(iter(graph.constants.values())))
    _assert_linear_close(graph, prog, x)
    full = prog.model  # the standalone proto carries the data (what export writes)
    (init,) = [i for i in full.graph.initializer if i.name == "lin.weight"]
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(init), w)
    in_session = onnx_backend.to_model_proto(graph, in_memory={})
    assert in_session.ByteSize() < w.nbytes // 4  # the session's proto holds no weight bytes


@pytest.mark.parametrize("external", [False, True], ids=["one-file", "external-data"])
def test_saving_a_session_proto_writes_the_weights_from_the_arrays(tmp_path, external):
    """save_model(in_memory=...) streams the placeholders' arrays into the file: the saved model
    equals the standalone proto (same initializers, same nodes) and runs the same."""
    graph, w, x = _linear_graph(3, loop=True)
    held: dict = {}
    session_proto = onnx_backend.to_model_proto(graph, in_memory=held)
    path = str(tmp_path / "m.onnx")
    artefact.save_model(session_proto, path, 0 if external else None, in_memory=held)
    assert os.path.isfile(path + ".data") == external
    saved = onnx.load_model(path)
    full = onnx_backend.to_model_proto(graph)
    as_arrays = lambda m: {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}  # noqa: E731
    got, want = as_arrays(saved), as_arrays(full)
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    assert [n.op_type for n in saved.graph.node] == [n.op_type for n in full.graph.node]
    onnx.checker.check_model(path, full_check=True)
    assert_equal_outputs(onnx_backend.load(path)(x), onnx_backend.lower(graph)(x))
