"""The TensorFlow backend (spec/backends-tensorflow.md): one tf.function with a None-dim input
signature, numpy and native tf.Tensor I/O with exact IR dtypes (uint32 carried as int64 inside),
symbolic sizes without retracing, tf.while_loop / tf.cond, Threefry bits, op edge semantics, XLA,
and a SavedModel round trip in a fresh process.

Expected values come from the numpy reference interpreter, from Python itself, or are worked out
by hand in comments; float comparisons use tensorweave.parity.TOLERANCES (spec/backends.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tensorweave.backends import registry

from conftest import IN_CI

if not registry.is_installed("tensorflow") and not IN_CI:  # in CI a missing backend fails the session
    pytest.skip(registry.missing_message("tensorflow"), allow_module_level=True)

import tensorflow as tf  # noqa: E402

import tensorweave.ir.namespace as xp  # noqa: E402
from tensorweave.backends import tensorflow as tf_backend  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL first)
from tensorweave.backends.numpy import lower as lower_numpy  # noqa: E402
from tensorweave.backends.tensorflow import program as tf_program  # noqa: E402
from tensorweave.errors import ArtefactError  # noqa: E402
from tensorweave.io import MANIFEST, leftovers  # noqa: E402
from tensorweave.ir import IRError, TensorSpec, random, trace  # noqa: E402
from tensorweave.ir.trace import constant  # noqa: E402
from tensorweave.ir.types import DType  # noqa: E402
from tensorweave.parity import differences, within  # noqa: E402

from op_cases import one_node  # noqa: E402

BF16 = DType.bfloat16.to_numpy()
NAN, INF = np.nan, np.inf


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def assert_matches_reference(graph, prog, args):
    """Every output has the reference's dtype and shape and is within the dtype's tolerance."""
    ref = as_tuple(lower_numpy(graph)(*args))
    got = as_tuple(prog(*args))
    assert len(got) == len(ref)
    for k, (g, r, spec) in enumerate(zip(got, ref, graph.output_specs)):
        g = np.asarray(g)
        assert (g.dtype, g.shape) == (r.dtype, r.shape), f"output {k}"
        assert within(g, r, spec.dtype), f"output {k}: {differences(g, r)}\n{g}\n{r}"
    return got


# ------------------------------------------------------------------ dtypes and array kinds


def _dtypes_fn(i, f, u, h):
    return (
        i * 3,
        f / 3.0,
        u + u,
        u * u,
        u >> 3,
        ~u,
        xp.astype(f, xp.float16),
        xp.astype(i, xp.bfloat16),
        i > 0,
        xp.sum(h, axis=0),
    )


DTYPES = trace(
    _dtypes_fn,
    TensorSpec(("n",), "int64", "i"),
    TensorSpec(("n",), "float64", "f"),
    TensorSpec(("n",), "uint32", "u"),
    TensorSpec((2, "n"), "bfloat16", "h"),
)
DTYPES_PROG = tf_backend.lower(DTYPES)


def dtype_args(n):
    h = np.arange(2 * n, dtype=np.float32).reshape(2, n).astype(BF16)
    return [np.arange(n, dtype=np.int64) - 2**40, np.linspace(-1, 1, n), np.full(n, 0x80000003, np.uint32), h]


def test_numpy_in_numpy_out_with_exact_dtypes():
    args = dtype_args(4)
    out = DTYPES_PROG(*args)
    assert all(isinstance(o, np.ndarray) for o in out)
    assert [o.dtype for o in out] == [s.dtype.to_numpy() for s in DTYPES.output_specs]
    np.testing.assert_array_equal(out[0], args[0] * 3)  # int64 beyond 2**32 survives
    np.testing.assert_array_equal(out[2], np.full(4, 6, np.uint32))  # 2 * 0x80000003 wraps to 6
    np.testing.assert_array_equal(out[3], np.full(4, 9, np.uint32))  # 0x80000003**2 = 2**62 + 3*2**32 + 9
    np.testing.assert_array_equal(out[4], np.full(4, 0x10000000, np.uint32))  # logical shift
    np.testing.assert_array_equal(out[5], np.full(4, 0x7FFFFFFC, np.uint32))  # 32-bit invert
    assert_matches_reference(DTYPES, DTYPES_PROG, args)


def test_native_in_native_out():
    args = dtype_args(3)
    native = DTYPES_PROG(*[tf.constant(a) for a in args])
    assert all(isinstance(o, tf.Tensor) for o in native)
    assert [o.dtype.name for o in native] == [
        s.dtype.value for s in DTYPES.output_specs
    ]  # uint32, bfloat16 kept
    as_numpy = DTYPES_PROG(*args)
    for a, b in zip(native, as_numpy):
        np.testing.assert_array_equal(a.numpy(), b)
    mixed = DTYPES_PROG(tf.constant(args[0]), *args[1:])  # not all native -> numpy
    assert all(isinstance(o, np.ndarray) for o in mixed)
    variables = DTYPES_PROG(*[tf.Variable(a) for a in args])  # variables are native too
    assert all(isinstance(o, tf.Tensor) for o in variables)


def test_bad_inputs_are_one_line_errors_before_any_work():
    prog = tf_backend.lower(DTYPES)
    i, f, u, h = dtype_args(3)
    with pytest.raises(
        IRError, match=r"input 'f' has dtype float32, expected float64; cast it with \.astype"
    ):
        prog(i, f.astype(np.float32), u, h)
    with pytest.raises(IRError, match=r"input 'u' has dtype int32, expected uint32"):
        prog(*[tf.constant(a) for a in (i, f)], tf.constant(u.astype(np.int32)), tf.constant(h))
    with pytest.raises(IRError, match=r"input 'u' has dtype uint8, expected uint32"):
        prog(*[tf.constant(a) for a in (i, f)], tf.constant(u.astype(np.uint8)), tf.constant(h))
    with pytest.raises(IRError, match=r"input 'h' has rank 1 but rank 2"):
        prog(i, f, u, h[0])
    with pytest.raises(IRError, match=r"symbol 'n' is already 3"):
        prog(i, f, u, dtype_args(4)[3])
    with pytest.raises(IRError, match=r"takes 4 input"):
        prog(i, f, u)
    assert prog.fn.experimental_get_tracing_count() == 0  # nothing was traced or run
    with pytest.raises(IRError, match="jit_compile=True/False only"):
        tf_backend.lower(DTYPES, compile=True)
    with pytest.raises(IRError, match="must be True or False"):
        tf_backend.lower(DTYPES, jit_compile="yes")


def test_every_registry_op_has_a_lowering():
    from tensorweave.ir.ops import OPS

    assert set(OPS) <= set(tf_backend.LOWERINGS)
    assert all(callable(tf_backend.LOWERINGS[op]) for op in OPS)


# ------------------------------------------------------------------ symbolic sizes


def _kv_fn(x, past, mask, pos):
    b, s, h = x.shape
    kv = xp.concat([past, x], axis=1)  # (batch, past + seq, h)
    n = kv.shape[1]
    causal = xp.arange(n)[None, :] <= xp.arange(past.shape[1], n)[:, None]  # symbolic start and stop
    scores = xp.where(causal[None] & (mask[:, None, :] > 0), xp.einsum("bqh,bkh->bqk", x, kv), -xp.inf)
    flat = xp.reshape(kv, (b * n, h))
    window = xp.dynamic_slice(kv, [0, pos, 0], (b, s, h))
    newest = kv[:, past.shape[1] :, :]  # a slice with a symbolic start
    v, i = xp.top_k(xp.max(scores, axis=1), 1)
    return xp.softmax(scores, axis=-1), flat, window, newest, v, i, xp.full((b, n), 7, dtype=xp.int32)


KV = trace(
    _kv_fn,
    TensorSpec(("batch", "seq", 4), "float32", "x"),
    TensorSpec(("batch", "past", 4), "float32", "past"),
    TensorSpec(("batch", "past + seq"), "int64", "mask"),
    TensorSpec((), "int64", "pos"),
)
KV_PROG = tf_backend.lower(KV)


def kv_args(b, s, p, pos, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((b, p + s), np.int64)
    mask[0, 0] = 0  # left padding in row 0
    return [
        rng.standard_normal((b, s, 4)).astype(np.float32),
        rng.standard_normal((b, p, 4)).astype(np.float32),
        mask,
        np.array(pos, np.int64),
    ]


def _cache_write(cache, update, pos):
    return xp.dynamic_update_slice(cache, update, [0, 0, pos, 0])


CACHE_WRITE = trace(
    _cache_write,
    TensorSpec((2, 3, "cap", 4), "float32", "cache"),
    TensorSpec((2, 3, "seq", 4), "float32", "update"),
    TensorSpec((), "int64", "pos"),
)


@pytest.mark.parametrize("cap,seq,pos", [(8, 1, 5), (8, 3, 0), (8, 3, 7), (8, 3, -2), (6, 6, 2), (5, 0, 1)])
def test_dynamic_update_slice_with_run_time_sizes(cap, seq, pos):
    """A KV-cache write whose cache size and update length are symbolic (an any-prompt program's):
    one scatter of the update's index tuples (no select over the whole cache, few TF ops), starts
    clamped to [0, cap - seq] as in XLA, equal to the numpy reference; one trace for every size."""
    prog = tf_backend.lower(CACHE_WRITE)
    ref = lower_numpy(CACHE_WRITE)
    rng = np.random.default_rng(cap * 10 + seq)
    args = [
        rng.standard_normal((2, 3, cap, 4)).astype(np.float32),
        rng.standard_normal((2, 3, seq, 4)).astype(np.float32),
        np.array(pos, np.int64),
    ]
    np.testing.assert_array_equal(np.asarray(prog(*args)), np.asarray(ref(*args)))
    graph = prog.fn.get_concrete_function().graph
    kinds = [op.type for op in graph.get_operations()]
    assert "TensorScatterUpdate" in kinds and "SelectV2" not in kinds and "Pad" not in kinds, kinds
    assert len(kinds) < 60, len(kinds)


def test_signature_has_none_for_symbolic_dims():
    assert [s.shape.as_list() for s in KV_PROG.signature] == [
        [None, None, 4],
        [None, None, 4],
        [None, None],
        [],
    ]
    assert [s.dtype for s in KV_PROG.signature] == [tf.float32, tf.float32, tf.int64, tf.int64]


@pytest.mark.parametrize("b,s,p,pos", [(1, 3, 2, 1), (3, 1, 5, -4), (2, 2, 0, 99)])
def test_symbolic_sizes_compound_dims_and_clamped_starts(b, s, p, pos):
    """Three sizes through one lowered program; past=0 (empty cache) and out-of-range starts included."""
    args = kv_args(b, s, p, pos)
    out = assert_matches_reference(KV, KV_PROG, args)
    kv = np.concatenate([args[1], args[0]], axis=1)
    start = min(max(pos, 0), p)  # XLA clamping into [0, (p + s) - s]
    np.testing.assert_array_equal(out[2], kv[:, start : start + s])
    np.testing.assert_array_equal(out[3], args[0])


def test_one_concrete_function_serves_every_size():
    prog = tf_backend.lower(KV)
    for size in [(1, 3, 2, 1), (3, 1, 5, 0), (2, 2, 0, 4)]:
        prog(*kv_args(*size))
    prog(*[tf.constant(a) for a in kv_args(4, 2, 1, 0)])
    assert prog.fn.experimental_get_tracing_count() == 1


# ------------------------------------------------------------------ control flow


def _loop_fn(x, n, flag):
    def body(i, acc):
        return xp.cond(i % 2 == 0, lambda a: a + x, lambda a: a * 1.5, acc)

    total = xp.fori_loop(0, n, body, xp.zeros_like(x))
    k, v = xp.while_loop(
        lambda st: st[1] < 50.0, lambda st: (st[0] + 1, st[1] * 2.0 + 1.0), (0, xp.sum(xp.abs(x)))
    )
    picked = xp.cond(flag, lambda a, c: a - c, lambda a, c: a * c, total, x)
    return total, k, v, picked


LOOP = trace(_loop_fn, TensorSpec(("m",), "float32"), TensorSpec((), "int64"), TensorSpec((), "bool"))
LOOP_PROG = tf_backend.lower(LOOP)


@pytest.mark.parametrize(
    "x,n,flag", [([1.0, -2.0, 0.5], 5, True), ([30.0, 40.0], 0, False), ([0.25], 3, False)]
)
def test_while_loop_and_cond_match_reference(x, n, flag):
    args = [np.array(x, np.float32), np.array(n, np.int64), np.array(flag)]
    total, k, v, _ = assert_matches_reference(LOOP, LOOP_PROG, args)
    if n == 0:  # zero trips: the loop returns its initial state
        np.testing.assert_array_equal(total, np.zeros_like(args[0]))
        assert (k, v) == (0, 70.0)


def test_loops_are_tf_while_and_cond_ops():
    graph = LOOP_PROG.fn.get_concrete_function().graph.as_graph_def()
    ops = {n.op for n in graph.node}
    assert ops & {"While", "StatelessWhile"} and ops & {"If", "StatelessIf"}


# ------------------------------------------------------------------ randomness


def _draws(key, logits):
    k1, k2 = random.split(key)[0], random.split(key)[1]
    return (
        random.random_bits(k1, (2, 5)),
        random.fold_in(key, 7),
        random.categorical(k2, logits),
        random.uniform(k2, (3,)),
        *random.threefry2x32(key[0], key[1], random.random_bits(k2, (4,)), random.random_bits(k1, (4,))),
    )


DRAWS = trace(_draws, TensorSpec((2,), "uint32"), TensorSpec(("b", 5), "float32"))


def test_threefry_bits_equal_numpy():
    prog = tf_backend.lower(DRAWS)
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.3, 0.1]] * 4, np.float32))
    for seed in (0, 2026, 2**32 - 1, 2**63 + 5):
        args = [random.key(seed), logits]
        got, ref = prog(*args), lower_numpy(DRAWS)(*args)
        for a, b in zip(got, ref):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)  # bits, keys and tokens are exact; uniforms derive from bits
        native = prog(*[tf.constant(a) for a in args])
        np.testing.assert_array_equal(native[0].numpy(), ref[0])
        assert native[0].dtype == tf.uint32


# ------------------------------------------------------------------ op semantics at the edges


def run_op(op, arrays, jit_compile=False, **attrs):
    g = one_node(op, arrays, **attrs)
    prog = tf_backend.lower(g, jit_compile=jit_compile)
    return assert_matches_reference(g, prog, arrays)


def test_argmax_argmin_first_nan_and_first_tie():
    x = np.array(
        [[1.0, NAN, 5.0, NAN], [2.0, 7.0, 7.0, -1.0], [3.0, -INF, -INF, 9.0], [0.0, -0.0, 0.0, -0.0]],
        np.float32,
    )
    np.testing.assert_array_equal(run_op("argmax", [x], axis=1)[0], [1, 1, 3, 0])
    np.testing.assert_array_equal(run_op("argmin", [x], axis=1)[0], [1, 3, 1, 0])
    np.testing.assert_array_equal(
        run_op("argmax", [np.array([[3, 9, 9], [2, 2, 1]], np.uint32)], axis=1)[0], [1, 0]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF16, np.float64])
def test_sorts_are_stable_with_nan_largest_in_both_directions(dtype):
    x = np.array([[3.0, 1.0, NAN, 3.0, -INF, 1.0, NAN, 0.0, -0.0]], np.float64).astype(dtype)
    # ascending: -inf(4), 0(7), -0(8), 1(1), 1(5), 3(0), 3(3), nan(2), nan(6)   (0 == -0: a tie)
    np.testing.assert_array_equal(run_op("argsort", [x])[0], [[4, 7, 8, 1, 5, 0, 3, 2, 6]])
    # descending keeps the lower index first among equals (not a reversed ascending sort)
    np.testing.assert_array_equal(run_op("argsort", [x], descending=True)[0], [[2, 6, 0, 3, 1, 5, 7, 8, 4]])
    np.testing.assert_array_equal(run_op("top_k", [x], k=4)[1], [[2, 6, 0, 3]])
    run_op("sort", [x], descending=True)
    run_op("sort", [np.concatenate([x, x[:, ::-1]]).T.copy()], axis=0)


def test_sorts_treat_negative_nan_as_nan():
    """0 * inf is x86's default nan, which has the sign bit set; it still sorts above +inf."""
    g = trace(
        lambda x: (
            xp.argsort(x * xp.where(x > 5.0, 0.0, 1.0) * xp.where(x > 5.0, xp.inf, 1.0)),
            xp.top_k(x * xp.where(x > 5.0, 0.0, 1.0) * xp.where(x > 5.0, xp.inf, 1.0), 2)[1],
        ),
        TensorSpec((5,), "float32"),
    )
    x = np.array([1.0, 9.0, 4.0, -INF, 3.0], np.float32)  # index 1 becomes nan
    order, top = assert_matches_reference(g, tf_backend.lower(g), [x])
    np.testing.assert_array_equal(order, [3, 0, 4, 2, 1])
    np.testing.assert_array_equal(top, [1, 2])


def test_integer_sorts_and_top_k_ties():
    x = np.array([[5, -(2**63), 5, 2**63 - 1, 0, 5]], np.int64)
    np.testing.assert_array_equal(run_op("argsort", [x], descending=True)[0], [[3, 0, 2, 5, 4, 1]])
    np.testing.assert_array_equal(run_op("argsort", [x])[0], [[1, 4, 0, 2, 5, 3]])
    u = np.array([[0xFFFFFFFF, 1, 0xFFFFFFFF, 0]], np.uint32)
    np.testing.assert_array_equal(run_op("top_k", [u], k=3)[1], [[0, 2, 1]])


def test_integer_arithmetic_wraps_and_rounds_like_python():
    a = np.array([7, -7, 7, -7, -(2**31)], np.int32)
    b = np.array([2, 2, -2, -2, -1], np.int32)
    np.testing.assert_array_equal(
        run_op("floor_divide", [a, b])[0], [3, -4, -4, 3, -(2**31)]
    )  # -(-2**31) wraps
    np.testing.assert_array_equal(run_op("remainder", [a, b])[0], [1, 1, -1, -1, 0])  # sign of the divisor
    np.testing.assert_array_equal(run_op("multiply", [a, b])[0], [14, -14, -14, 14, -(2**31)])  # wraps
    u = np.array([0xFFFFFFFF, 0x80000000, 3], np.uint32)
    np.testing.assert_array_equal(run_op("subtract", [u[::-1].copy(), u])[0], [4, 0, 0xFFFFFFFC])
    np.testing.assert_array_equal(
        run_op("bitwise_left_shift", [u, np.array([4, 1, 31], np.uint32)])[0], [0xFFFFFFF0, 0, 0x80000000]
    )
    np.testing.assert_array_equal(
        run_op("bitwise_right_shift", [a, np.array([1, 1, 0, 2, 31], np.int32)])[0], [3, -4, 7, -2, -1]
    )  # arithmetic for signed
    np.testing.assert_array_equal(
        run_op("prod", [np.array([2**20, 2**12, 3], np.int32)])[0], 0
    )  # 2**32 wraps to 0
    np.testing.assert_array_equal(
        run_op("clip", [u], min=-2)[0], [0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFE]
    )  # -2 -> 2**32-2
    run_op("cumulative_sum", [u])
    run_op("pow", [np.array([3, -3, 7], np.int64), np.array([41, 41, 0], np.int64)])


def test_integer_matmul_and_einsum_are_exact():
    """Products beyond 2**53 (where a float64 detour would round) wrap exactly."""
    rng = np.random.default_rng(2)
    u = rng.integers(2**31, 2**32, (2, 3, 4), dtype=np.uint64).astype(np.uint32)
    v = rng.integers(2**31, 2**32, (4, 5), dtype=np.uint64).astype(np.uint32)
    out = run_op("matmul", [u, v])[0]
    expect = (u.astype(object) @ v.astype(object)) % 2**32  # Python ints: exact
    np.testing.assert_array_equal(out, expect.astype(np.uint32))
    i = (u.astype(np.int64) << 20) - 2**50
    run_op("matmul", [i[0, 0], i.reshape(4, 6)[:, :2].copy()])
    run_op("einsum", [i, v.astype(np.int64), i[:, :1].copy()], subscripts="bij,jk,bcj->ikc")
    run_op("einsum", [u], subscripts="bij->j")
    run_op("einsum", [u[:1], v.T.copy()], subscripts="bij,bj->bi")  # b: 1 broadcasts against 5


def test_float_floor_divide_and_remainder_follow_python():
    x = np.array([1.0, -1.0, 7.5, -7.5, 0.0, 5.0, 1.0, -1.0, 0.7], np.float64)
    y = np.array([0.1, 0.1, 2.0, 2.0, -3.0, 0.5, INF, INF, -0.1], np.float64)
    for dtype in (np.float64, np.float32):
        (q,) = run_op("floor_divide", [x.astype(dtype), y.astype(dtype)])
        (r,) = run_op("remainder", [x.astype(dtype), y.astype(dtype)])
        if dtype is np.float64:  # Python's float // and % are the specification
            np.testing.assert_array_equal(
                q, [a // b for a, b in zip(x, y)]
            )  # 1.0 // 0.1 == 9.0, not floor(10.0)
            np.testing.assert_array_equal(r, [a % b for a, b in zip(x, y)])
    specials = np.array([INF, -INF, NAN, 3.0, 0.0, -2.0], np.float32)
    run_op("floor_divide", [specials, np.array([2.0, 2.0, 1.0, 0.0, 0.0, 0.0], np.float32)])
    run_op("remainder", [specials, np.array([2.0, 2.0, 1.0, 0.0, 0.0, -0.0], np.float32)])


def test_astype_truncates_wraps_and_rounds_once():
    f = np.array([1.9, -1.9, -0.5, 100.5], np.float32)
    np.testing.assert_array_equal(run_op("astype", [f], dtype="int32")[0], [1, -1, 0, 100])  # toward zero
    np.testing.assert_array_equal(
        run_op("astype", [np.array([-1, 2**32 + 3], np.int64)], dtype="uint32")[0], [0xFFFFFFFF, 3]
    )
    np.testing.assert_array_equal(
        run_op("astype", [np.array([2**31 + 5, 0xFFFFFFFF], np.uint32)], dtype="int32")[0], [-(2**31) + 5, -1]
    )
    # 1 + 2**-11 + 2**-30 is just above the float16 midpoint 1 + 2**-11: it rounds up to 1 + 2**-10.
    # Converting through float32 first would land exactly on the midpoint and round to even (1.0).
    x = np.array(
        [1 + 2**-11 + 2**-30, -(1 + 2**-11 + 2**-30), 2**-25 + 2**-50, 1 + 2**-11, 65519.99, 1e300],
        np.float64,
    )
    (out,) = run_op("astype", [x], dtype="float16")
    np.testing.assert_array_equal(
        out.astype(np.float64), [1 + 2**-10, -(1 + 2**-10), 2**-24, 1.0, 65504.0, INF]
    )
    run_op("astype", [np.array([True, False])], dtype="bfloat16")
    run_op("astype", [np.array([NAN, -0.0, 2.0], np.float32)], dtype="bool")


def test_creation_ops_and_empty_ranges():
    for dtype in ("int32", "uint32", "float32", "bfloat16"):
        g = one_node("arange", [], start=4, stop=2, step=1, dtype=dtype)  # empty, not an error
        assert tf_backend.lower(g)().shape == (0,)
        run_op("arange", [], start=7, stop=-2, step=-3, dtype=dtype)
        run_op("full", [], shape=(2, 3), fill_value=-1, dtype=dtype)
    run_op(
        "full", [], shape=(2,), fill_value=1 + 2**-11 + 2**-30, dtype="float16"
    )  # one rounding, like numpy


def test_unary_math_edges():
    x = np.array([INF, -INF, NAN, 0.0, -0.0, 1e300, -30.0, -6.0, 0.5, 12.0], np.float64)
    np.testing.assert_array_equal(run_op("erf", [x])[0][:2], [1.0, -1.0])  # TF's own float64 erf gives nan
    for dtype in (np.float64, np.float32, np.float16, BF16):
        v = x.astype(dtype) if dtype is np.float64 else np.where(x == 1e300, 3e4, x).astype(dtype)
        run_op("erf", [v])
        run_op("gelu", [v], approximate="none")
        run_op("gelu", [v], approximate="tanh")
        run_op("sign", [v])
        run_op("rsqrt", [np.abs(v)])


def test_gather_scatter_and_dynamic_update_slice():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    idx = np.array([[3, 0], [1, 2], [0, 0]], np.int64)
    (out,) = run_op("put_along_axis", [x, idx[:, :1], np.full((3, 1), -1.0, np.float32)], axis=1)
    np.testing.assert_array_equal(out[:, 3], [-1.0, 7.0, 11.0])
    run_op(
        "put_along_axis", [x.astype(np.uint32), np.array([[2, 0, 1, 1]]), np.ones((1, 4), np.uint32)], axis=0
    )
    run_op("take_along_axis", [x, idx], axis=1)
    run_op("take", [x, np.array([[2, 0]], np.int32)], axis=0)
    (upd,) = run_op(
        "dynamic_update_slice",
        [x, np.ones((2, 2), np.float32), np.array(-3, np.int32), np.array(9, np.int64)],
    )
    np.testing.assert_array_equal(upd[:2, 2:], np.ones((2, 2)))  # starts clamped to (0, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF16])
def test_fused_and_low_precision_math(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5)).astype(dtype)
    w, b = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    run_op("rms_norm", [x, w], eps=1e-6)
    run_op("layer_norm", [x, w, b], eps=1e-5)
    run_op("log_softmax", [x], axis=1)
    run_op("softmax", [np.array([[0.0, -INF], [-INF, -INF]], np.float32).astype(dtype)], axis=1)
    run_op("einsum", [x, x], subscripts="ij,kj->ik")
    run_op("einsum", [x[None, :1], x], subscripts="bij,bj->bi")  # size-1 dims broadcast (tf.einsum's do not)
    run_op("matmul", [x, x.T.copy()])
    run_op(
        "logsumexp", [np.array([[NAN, 1.0], [INF, 1.0], [-INF, -INF]], np.float32).astype(dtype)], axis=(1,)
    )
    run_op("max", [np.array([[NAN, 1.0], [2.0, 1.0]], np.float32).astype(dtype)], axis=(1,))
    run_op("cumulative_sum", [x], axis=1)


# ------------------------------------------------------------------ XLA


def test_jit_compile_matches_reference_and_uses_xla():
    def fn(x, key):
        v, i = xp.top_k(x, 3)
        steps, acc = xp.while_loop(
            lambda st: st[1] < 20.0, lambda st: (st[0] + 1, st[1] * 2.0 + 1.0), (0, xp.max(xp.abs(x)))
        )
        return v, i, xp.argsort(x, axis=0, descending=True), steps, acc, random.random_bits(key, (4,))

    g = trace(fn, TensorSpec(("b", 6), "float32"), TensorSpec((2,), "uint32"))
    prog = tf_backend.lower(g, jit_compile=True)
    for b in (2, 3):  # ties, nan and -0.0 under XLA's sort
        x = np.tile(np.array([[1.0, 3.0, NAN, 3.0, -0.0, 0.0]], np.float32), (b, 1))
        x[-1, 0] = 5.0
        assert_matches_reference(g, prog, [x, random.key(b)])
    assert "while" in prog.fn.experimental_get_compiler_ir(tf.constant(x), tf.constant(random.key(1)))(
        stage="hlo"
    )


# ------------------------------------------------------------------ export

RELOAD = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf  # only tf: the SavedModel carries its weights and control flow
    loaded = tf.saved_model.load(sys.argv[1])
    data = np.load(sys.argv[2])
    serve = loaded.signatures["serving_default"]
    results = {}
    for case in ("a", "b"):
        args = [data[case + "x"], data[case + "mask"], data[case + "key"]]
        outs = loaded.fn(*args)
        results.update({f"{case}{k}": o.numpy() for k, o in enumerate(outs)})
        named = serve(x=tf.constant(args[0]), mask=tf.constant(args[1]), key=tf.constant(args[2]))
        results.update({f"{case}-{name}": o.numpy() for name, o in named.items()})
    np.savez(sys.argv[3], **results)
""")

WEIGHT = np.linspace(-1, 1, 4 * 3).reshape(4, 3).astype(np.float32)


def _export_fn(x, mask, key):
    h = xp.tanh(x @ constant(WEIGHT, name="proj.weight"))  # (batch, seq, 3)
    pad = xp.sum(mask, axis=1)  # mask is (batch, past + seq)
    steps, acc = xp.while_loop(
        lambda st: st[1] < 10.0, lambda st: (st[0] + 1, st[1] * 2.0 + 1.0), (0, xp.max(xp.abs(h)) + 0.5)
    )
    return h, pad, steps, acc, random.random_bits(key, (2, 3))


EXPORT = trace(
    _export_fn,
    TensorSpec(("batch", "seq", 4), "float32", "x"),
    TensorSpec(("batch", "past + seq"), "int64", "mask"),
    TensorSpec((2,), "uint32", "key"),
)


def test_export_reloads_in_a_fresh_process_at_new_sizes(tmp_path, monkeypatch):
    monkeypatch.setattr(
        tf_program, "VARIABLE_BYTES", 32
    )  # the weight becomes a tf.Variable, literals stay constants
    prog = tf_backend.lower(EXPORT)
    assert len(prog.variables) == 1
    rng = np.random.default_rng(3)
    prog(
        rng.standard_normal((1, 2, 4)).astype(np.float32), np.ones((1, 2), np.int64), random.key(0)
    )  # traced
    target = tmp_path / "saved"
    target.mkdir()  # an empty directory is replaced
    path = prog.export(str(target))
    assert path == str(target) and sorted(os.listdir(tmp_path)) == ["saved"]  # no temporary left
    assert "saved_model.pb" in os.listdir(target) and MANIFEST in os.listdir(target)
    (tmp_path / "file").write_text("")
    with pytest.raises(ArtefactError, match="is a file"):
        prog.export(str(tmp_path / "file"))
    assert (tmp_path / "file").read_text() == ""

    cases = {"a": (5, 2, 3, 11), "b": (2, 7, 0, 12)}  # new sizes; past = 0
    arrays, refs = {}, {}
    for name, (b, s, p, seed) in cases.items():
        args = [
            rng.standard_normal((b, s, 4)).astype(np.float32),
            rng.integers(0, 2, (b, p + s)).astype(np.int64),
            random.key(seed),
        ]
        arrays.update({name + "x": args[0], name + "mask": args[1], name + "key": args[2]})
        refs[name] = lower_numpy(EXPORT)(*args)
    np.savez(tmp_path / "in.npz", **arrays)
    (tmp_path / "reload.py").write_text(RELOAD)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "reload.py"),
            path,
            str(tmp_path / "in.npz"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    for name, ref in refs.items():
        for k, (r, spec, out_name) in enumerate(zip(ref, EXPORT.output_specs, prog.tf_output_names)):
            for g in (got[f"{name}{k}"], got[f"{name}-{out_name}"]):
                assert (g.dtype, g.shape) == (r.dtype, r.shape), (name, k)
                assert within(g, r, spec.dtype), (name, k, differences(g, r))


def test_export_refuses_a_directory_of_someone_elses_files(tmp_path):
    """A non-empty directory without tensorweave's manifest is refused before any work, with a
    one-line error naming what is there; nothing in it is touched and no temporary is left."""
    prog = tf_backend.lower(EXPORT)
    target = tmp_path / "project"
    target.mkdir()
    (target / "README.md").write_text("my notes")
    with pytest.raises(
        ArtefactError, match=r"not empty and was not written by tensorweave \(README.md\)"
    ) as info:
        prog.export(str(target))
    assert "\n" not in str(info.value)
    assert sorted(os.listdir(target)) == ["README.md"] and (target / "README.md").read_text() == "my notes"
    assert leftovers(str(tmp_path)) == [] and sorted(os.listdir(tmp_path)) == ["project"]


def test_export_replaces_a_previous_export_and_leaves_no_temporaries(tmp_path):
    prog = tf_backend.lower(EXPORT)
    target = tmp_path / "saved"
    assert prog.export(str(target)) == str(target)  # a new directory
    first = tf_backend.load(str(target))
    assert prog.export(str(target)) == str(target)  # over the previous tensorweave export
    assert leftovers(str(tmp_path)) == [] and sorted(os.listdir(tmp_path)) == ["saved"]
    assert MANIFEST in os.listdir(target)
    args = [np.ones((1, 2, 4), np.float32), np.ones((1, 3), np.int64), random.key(1)]
    ref = lower_numpy(EXPORT)(*args)
    for loaded in (first, tf_backend.load(str(target))):
        got = loaded.fn(*[tf.constant(a) for a in args])
        for g, r, spec in zip(got, ref, EXPORT.output_specs):
            assert within(np.asarray(g.numpy()), r, spec.dtype), differences(np.asarray(g.numpy()), r)
    with pytest.raises(ArtefactError, match="not a directory"):
        tf_backend.load(str(tmp_path / "missing"))


XLA_RUN = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorweave.ir.namespace as xp
    from tensorweave.backends import tensorflow as tf_backend
    from tensorweave.ir import TensorSpec, trace

    graph = trace(lambda x: xp.tanh(x @ xp.permute_dims(x, (1, 0))) * 3.0 + 1.0, TensorSpec(("n", 8), "float32", "x"))
    out = tf_backend.lower(graph, jit_compile=True)(np.linspace(-1, 1, 40, dtype=np.float32).reshape(5, 8))
    np.save(sys.argv[1], np.asarray(out))
    """
)


def test_xla_programs_persist_across_processes_and_a_damaged_entry_is_recompiled(tmp_path):
    """``jit_compile=True`` points TensorFlow's persistent XLA cache at <cache root>/tensorflow-xla:
    a first process writes an entry; a second process finding it damaged (a cut-short file)
    removes it, compiles again and gives the same result, with a warning naming the file."""
    (tmp_path / "run.py").write_text(XLA_RUN)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TENSORWEAVE_CACHE=str(tmp_path / "cache"))
    env.pop("TF_XLA_FLAGS", None)

    def run(name: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(tmp_path / "run.py"), str(tmp_path / name)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)

    first = run("a.npy")
    assert first.returncode == 0, first.stderr[-3000:]
    entries = list((tmp_path / "cache" / "tensorflow-xla").glob("*.pb"))
    assert len(entries) == 1, entries
    entries[0].write_bytes(b"\x01cut short")
    second = run("b.npy")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "is damaged: removed, compiling again" in second.stderr and entries[0].name in second.stderr
    assert not entries[0].exists()
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    x = np.linspace(-1, 1, 40, dtype=np.float32).reshape(5, 8)
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), np.tanh(x @ x.T) * 3 + 1, rtol=1e-5, atol=1e-5)
