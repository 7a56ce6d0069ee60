"""Every registry op on the numpy reference, against hand-computed or independently computed values.

Expectations come from hand arithmetic or from Python's ``math`` module element by
element, never from the op's own reference implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tensorweave.backends.numpy import run_graph
from tensorweave.ir.graph import Graph, Node, Value
from tensorweave.ir.ops import OPS, check_attrs, get_op, infer_node
from tensorweave.ir.types import DType, IRError, TensorSpec, from_numpy_dtype

nan, inf = math.nan, math.inf
f32, f64, i32, i64, u32 = np.float32, np.float64, np.int32, np.int64, np.uint32
TESTED: set = set()


def run(op: str, *inputs, **attrs):
    """Build a one-node graph for ``op`` and interpret it with the numpy backend."""
    TESTED.add(op)
    arrs = [np.asarray(x) for x in inputs]
    ins = [Value(TensorSpec(a.shape, from_numpy_dtype(a.dtype)), f"x{i}") for i, a in enumerate(arrs)]
    opdef = get_op(op)
    attrs = check_attrs(opdef, attrs)
    specs = infer_node(opdef, [v.spec for v in ins], attrs)
    outs = [Value(s) for s in specs]
    g = Graph(op, ins, outs, [Node(op, ins, outs, attrs)])
    res = run_graph(g, arrs, {})
    for r, s in zip(res, specs):
        assert r.shape == tuple(s.shape), (op, r.shape, s.shape)
        assert r.dtype == s.dtype.to_numpy(), (op, r.dtype, s.dtype)
    return res[0] if len(res) == 1 else res


def eq(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_array_equal(a, b)


def close(a, b, rtol=1e-6, atol=1e-7):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def mathmap(fn, xs):
    return [fn(x) for x in xs]


# ------------------------------------------------------------------ unary float math
X = [-2.0, -0.5, 0.0, 0.5, 3.0]


@pytest.mark.parametrize(
    "op,fn",
    [
        ("exp", math.exp),
        ("tanh", math.tanh),
        ("erf", math.erf),
        ("sin", math.sin),
        ("cos", math.cos),
        ("sigmoid", lambda v: 1 / (1 + math.exp(-v))),
        ("silu", lambda v: v / (1 + math.exp(-v))),
        ("floor", math.floor),
        ("ceil", math.ceil),
    ],
)
def test_unary_float_math(op, fn):
    close(run(op, np.array(X, f64)), mathmap(fn, X), rtol=1e-12)
    close(run(op, np.array(X, f32)), mathmap(fn, X), rtol=1e-6)


def test_log_family_domains():
    close(run("log", np.array([1.0, math.e, 0.0, -1.0], f32)), [0.0, 1.0, -inf, nan])
    close(run("log1p", np.array([0.0, 1e-10, -1.0], f64)), [0.0, 1e-10, -inf], rtol=1e-12)
    close(run("sqrt", np.array([4.0, 0.0, -1.0, inf], f32)), [2.0, 0.0, nan, inf])
    close(run("rsqrt", np.array([4.0, 0.0, 0.25], f32)), [0.5, inf, 2.0])


def test_gelu_both_forms():
    xs = [-1.0, 0.0, 1.0, 2.5]
    exact = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in xs]
    tanh = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in xs]
    close(run("gelu", np.array(xs, f64)), exact, rtol=1e-12)
    close(run("gelu", np.array(xs, f64), approximate="tanh"), tanh, rtol=1e-12)
    with pytest.raises(IRError, match="approximate must be"):
        run("gelu", np.array(xs, f64), approximate="fast")


def test_abs_negative_sign():
    eq(run("abs", np.array([-3, 0, 2, -(2**31)], i32)), np.array([3, 0, 2, -(2**31)], i32))  # wraps
    eq(run("negative", np.array([1, 0], u32)), np.array([2**32 - 1, 0], u32))
    close(run("sign", np.array([-2.0, -0.0, 0.0, 3.0, nan], f32)), [-1, 0, 0, 1, nan])
    eq(run("sign", np.array([-5, 0, 7], i64)), np.array([-1, 0, 1], i64))


def test_isnan_isinf_isfinite_and_logic():
    v = np.array([1.0, nan, inf, -inf], f32)
    eq(run("isnan", v), [False, True, False, False])
    eq(run("isinf", v), [False, False, True, True])
    eq(run("isfinite", v), [True, False, False, False])
    eq(run("isnan", np.array([1, 2], i32)), [False, False])
    eq(run("isfinite", np.array([1], i64)), [True])
    eq(run("isinf", np.array([3], u32)), [False])
    eq(run("logical_not", np.array([True, False])), [False, True])
    eq(run("bitwise_invert", np.array([0, 0xFFFF0000], u32)), np.array([0xFFFFFFFF, 0x0000FFFF], u32))
    eq(run("bitwise_invert", np.array([0, -1], i32)), np.array([-1, 0], i32))


# ------------------------------------------------------------------ binary
def test_arithmetic_with_broadcasting_and_wraparound():
    a = np.array([[1.0], [2.0]], f32)
    b = np.array([10.0, 20.0, 30.0], f32)
    eq(run("add", a, b), np.array([[11, 21, 31], [12, 22, 32]], f32))
    eq(run("subtract", a, b), np.array([[-9, -19, -29], [-8, -18, -28]], f32))
    eq(run("multiply", a, b), np.array([[10, 20, 30], [20, 40, 60]], f32))
    close(run("divide", np.array([1.0, 1.0, 0.0], f32), np.array([4.0, 0.0, 0.0], f32)), [0.25, inf, nan])
    # uint32 wraps modulo 2**32; int32 wraps two's complement
    eq(run("add", np.array([0xFFFFFFFF], u32), np.array([2], u32)), np.array([1], u32))
    eq(run("subtract", np.array([1], u32), np.array([2], u32)), np.array([0xFFFFFFFF], u32))
    eq(run("multiply", np.array([0x10000], u32), np.array([0x10001], u32)), np.array([0x10000], u32))
    eq(run("add", np.array([2**31 - 1], i32), np.array([1], i32)), np.array([-(2**31)], i32))
    eq(run("multiply", np.array([2**62], i64), np.array([4], i64)), np.array([0], i64))


def test_floor_divide_remainder_python_semantics():
    a = np.array([7, -7, 7, -7], i64)
    b = np.array([2, 2, -2, -2], i64)
    eq(run("floor_divide", a, b), [7 // 2, -7 // 2, 7 // -2, -7 // -2])
    eq(run("remainder", a, b), [7 % 2, -7 % 2, 7 % -2, -7 % -2])
    eq(run("floor_divide", np.array([7.5, -7.5], f64), np.array([2.0, 2.0], f64)), [3.0, -4.0])
    eq(run("remainder", np.array([-7.5], f64), np.array([2.0], f64)), [math.fmod(-7.5, 2.0) + 2.0])


def test_pow_maximum_minimum_nan():
    close(
        run("pow", np.array([2.0, 4.0, nan, -8.0], f64), np.array([10.0, 0.5, 0.0, 1 / 3], f64)),
        [1024.0, 2.0, 1.0, nan],
    )
    eq(run("pow", np.array([3, 2], i64), np.array([4, 0], i64)), np.array([81, 1], i64))
    close(run("maximum", np.array([1.0, nan, -inf], f32), np.array([2.0, 0.0, 5.0], f32)), [2.0, nan, 5.0])
    close(run("minimum", np.array([1.0, 0.0], f32), np.array([2.0, nan], f32)), [1.0, nan])
    eq(run("maximum", np.array([0xFFFFFFFF], u32), np.array([1], u32)), np.array([0xFFFFFFFF], u32))


def test_comparisons_with_nan():
    a = np.array([1.0, nan, 2.0], f32)
    b = np.array([1.0, nan, 3.0], f32)
    eq(run("equal", a, b), [True, False, False])
    eq(run("not_equal", a, b), [False, True, True])
    eq(run("less", a, b), [False, False, True])
    eq(run("less_equal", a, b), [True, False, True])
    eq(run("greater", a, b), [False, False, False])
    eq(run("greater_equal", a, b), [True, False, False])
    eq(run("less", np.array([0xFFFFFFFF], u32), np.array([1], u32)), [False])  # unsigned compare


def test_logical_and_bitwise():
    t, f = True, False
    eq(run("logical_and", np.array([t, t, f]), np.array([t, f, f])), [t, f, f])
    eq(run("logical_or", np.array([t, f, f]), np.array([f, f, t])), [t, f, t])
    eq(run("logical_xor", np.array([t, t, f]), np.array([t, f, f])), [f, t, f])
    a, b = np.array([0b1100, 0xF0F0F0F0], u32), np.array([0b1010, 0x0FF00FF0], u32)
    eq(run("bitwise_and", a, b), np.array([0b1000, 0x00F000F0], u32))
    eq(run("bitwise_or", a, b), np.array([0b1110, 0xFFF0FFF0], u32))
    eq(run("bitwise_xor", a, b), np.array([0b0110, 0xFF00FF00], u32))
    eq(
        run("bitwise_left_shift", np.array([0x80000001, 1], u32), np.array([1, 31], u32)),
        np.array([0x00000002, 0x80000000], u32),
    )
    eq(run("bitwise_right_shift", np.array([0x80000000], u32), np.array([31], u32)), np.array([1], u32))
    eq(run("bitwise_right_shift", np.array([-8], i32), np.array([1], i32)), np.array([-4], i32))  # arithmetic


def test_where_clip_astype():
    eq(
        run("where", np.array([[True], [False]]), np.array([1, 2], i64), np.array([9], i64)),
        np.array([[1, 2], [9, 9]], i64),
    )
    close(run("clip", np.array([-5.0, 0.5, 5.0, nan], f32), min=0.0, max=1.0), [0.0, 0.5, 1.0, nan])
    eq(run("clip", np.array([-5, 3], i64), min=-1), np.array([-1, 3], i64))
    eq(run("astype", np.array([1.9, -1.9, 0.0], f32), dtype="int32"), np.array([1, -1, 0], i32))
    eq(run("astype", np.array([2**32 + 5, -1], i64), dtype="uint32"), np.array([5, 2**32 - 1], u32))
    eq(run("astype", np.array([2**31], i64), dtype="int32"), np.array([-(2**31)], i32))
    eq(run("astype", np.array([0.0, nan, -2.0], f32), dtype="bool"), [False, True, True])
    eq(run("astype", np.array([True, False]), dtype="float32"), np.array([1.0, 0.0], f32))
    eq(run("astype", np.array([0xFFFFFFFF], u32), dtype="int64"), np.array([2**32 - 1], i64))
    assert run("astype", np.array([1.0 + 2**-9], f32), dtype="bfloat16").astype(f32)[0] == 1.0  # RNE


# ------------------------------------------------------------------ reductions
def test_sum_prod_mean_keep_dtype_and_axes():
    x = np.arange(6, dtype=i32).reshape(2, 3)
    eq(run("sum", x), np.array(15, i32))
    eq(run("sum", x, axis=(1,)), np.array([3, 12], i32))
    eq(run("sum", x, axis=(0,), keepdims=True), np.array([[3, 5, 7]], i32))
    eq(run("sum", np.zeros((0, 2), f32), axis=(0,)), np.array([0.0, 0.0], f32))
    eq(run("sum", np.array([2**31 - 1, 1], i32)), np.array(-(2**31), i32))  # wraps in the input dtype
    eq(run("prod", np.array([[1, 2], [3, 4]], i64), axis=(1,)), np.array([2, 12], i64))
    eq(run("prod", np.zeros((0,), f32)), np.array(1.0, f32))
    close(run("mean", np.array([[1.0, 2.0], [3.0, 5.0]], f32), axis=(0,)), [2.0, 3.5])
    close(run("mean", np.array([1.0, nan], f32)), nan)


def test_max_min_any_all():
    close(run("max", np.array([[1.0, 5.0], [nan, 2.0]], f32), axis=(1,)), [5.0, nan])
    close(run("min", np.array([[1.0, -inf]], f32)), -inf)
    with pytest.raises(IRError, match="empty axis"):
        run("max", np.zeros((0,), f32))
    eq(run("any", np.array([[False, True], [False, False]]), axis=(1,)), [True, False])
    eq(run("all", np.array([[True, True], [False, True]]), axis=(1,)), [True, False])
    eq(run("all", np.zeros((0,), bool)), np.array(True))
    eq(run("any", np.zeros((0,), bool)), np.array(False))


def test_logsumexp():
    x = [1.0, 2.0, 3.0]
    close(run("logsumexp", np.array(x, f64)), math.log(sum(math.exp(v) for v in x)), rtol=1e-12)
    close(
        run("logsumexp", np.array([[-inf, -inf], [1000.0, 1000.0]], f32), axis=(1,)),
        [-inf, 1000.0 + math.log(2)],
    )
    close(run("logsumexp", np.array([inf, 1.0], f32)), inf)


def test_argmax_argmin_ties_and_nan():
    eq(run("argmax", np.array([[1, 3, 3], [2, 2, 1]], i64), axis=1), np.array([1, 0], i64))
    eq(run("argmin", np.array([[1, 0, 0]], i64), axis=1, keepdims=True), np.array([[1]], i64))
    eq(run("argmax", np.array([1.0, nan, 5.0, nan], f32), axis=0), np.array(1, i64))
    eq(run("argmin", np.array([1.0, -inf, nan], f32), axis=0), np.array(2, i64))


def test_cumulative_sum():
    eq(
        run("cumulative_sum", np.array([[1, 2, 3], [4, 5, 6]], i64), axis=1),
        np.array([[1, 3, 6], [4, 9, 15]], i64),
    )
    eq(run("cumulative_sum", np.array([[1, 2], [3, 4]], i64), axis=0), np.array([[1, 2], [4, 6]], i64))
    eq(run("cumulative_sum", np.array([0xFFFFFFFF, 2], u32), axis=0), np.array([0xFFFFFFFF, 1], u32))


# ------------------------------------------------------------------ linear algebra
def test_matmul_shapes_and_values():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], f32)
    b = np.array([[5.0, 6.0], [7.0, 8.0]], f32)
    eq(run("matmul", a, b), np.array([[19, 22], [43, 50]], f32))
    eq(run("matmul", np.array([1.0, 2.0], f32), b), np.array([19, 22], f32))  # vector @ matrix
    eq(run("matmul", a, np.array([1.0, 1.0], f32)), np.array([3, 7], f32))
    batched = run("matmul", np.ones((3, 1, 2, 4), f32), np.ones((5, 4, 2), f32))
    assert batched.shape == (3, 5, 2, 2) and (batched == 4).all()
    with pytest.raises(IRError, match="contracted dimension"):
        run("matmul", np.ones((2, 3), f32), np.ones((2, 3), f32))


def test_einsum():
    q = np.arange(6, dtype=f64).reshape(1, 2, 3)
    k = np.arange(6, dtype=f64).reshape(1, 2, 3) + 1
    expect = [[[sum(q[0, i, d] * k[0, j, d] for d in range(3)) for j in range(2)] for i in range(2)]]
    close(run("einsum", q, k, subscripts="bid,bjd->bij"), expect, rtol=1e-12)
    close(run("einsum", np.array([1.0, 2.0], f64), subscripts="i->"), 3.0)
    with pytest.raises(IRError, match="must be explicit"):
        run("einsum", q, k, subscripts="bid,bjd")


# ------------------------------------------------------------------ manipulation
def test_creation_ops():
    eq(run("full", shape=(2, 2), fill_value=7, dtype="int32"), np.full((2, 2), 7, i32))
    eq(run("arange", start=2, stop=9, step=3, dtype="int64"), np.array([2, 5, 8], i64))
    eq(run("arange", stop=0), np.zeros((0,), i64))
    eq(run("arange", start=5, stop=0, step=-2, dtype="int32"), np.array([5, 3, 1], i32))


def test_reshape_permute_expand_squeeze_broadcast():
    x = np.arange(6, dtype=i64)
    eq(run("reshape", x, shape=(2, 3)), [[0, 1, 2], [3, 4, 5]])
    with pytest.raises(IRError, match="cannot reshape"):
        run("reshape", x, shape=(4, 2))
    y = np.arange(6, dtype=i64).reshape(1, 2, 3)
    eq(run("permute_dims", y, axes=(2, 0, 1)), [[[0, 3]], [[1, 4]], [[2, 5]]])
    assert run("expand_dims", y, axis=-1).shape == (1, 2, 3, 1)
    assert run("expand_dims", y, axis=1).shape == (1, 1, 2, 3)
    eq(run("squeeze", y, axis=(0,)), [[0, 1, 2], [3, 4, 5]])
    with pytest.raises(IRError, match="has size 2, not 1"):
        run("squeeze", y, axis=(1,))
    eq(run("broadcast_to", np.array([1, 2], i64), shape=(2, 2)), [[1, 2], [1, 2]])


def test_concat_stack_flip_repeat_tile():
    a, b = np.array([[1, 2]], i64), np.array([[3, 4]], i64)
    eq(run("concat", a, b, axis=0), [[1, 2], [3, 4]])
    eq(run("concat", a, b, axis=-1), [[1, 2, 3, 4]])
    eq(run("stack", np.array([1, 2], i64), np.array([3, 4], i64), axis=1), [[1, 3], [2, 4]])
    eq(run("flip", np.array([[1, 2], [3, 4]], i64), axis=(1,)), [[2, 1], [4, 3]])
    eq(run("flip", np.array([[1, 2], [3, 4]], i64)), [[4, 3], [2, 1]])
    eq(run("repeat", np.array([1, 2], i64), repeats=2, axis=0), [1, 1, 2, 2])
    eq(run("repeat", np.array([[1, 2]], i64), repeats=2), [1, 1, 2, 2])
    eq(run("tile", np.array([1, 2], i64), reps=(2, 2)), [[1, 2, 1, 2], [1, 2, 1, 2]])


def test_slice_and_dynamic_slices_clamp():
    x = np.arange(10, dtype=i64)
    eq(run("slice", x, starts=(1,), stops=(8,), steps=(3,)), [1, 4, 7])
    eq(run("slice", x, starts=(4,), stops=(4,), steps=(1,)), np.zeros((0,), i64))
    m = np.arange(12, dtype=i64).reshape(3, 4)
    eq(run("dynamic_slice", m, np.array(1, i64), np.array(2, i64), sizes=(2, 2)), [[6, 7], [10, 11]])
    # starts are clamped to [0, dim - size] (XLA): row start 5 -> 1, col start -3 -> 0
    eq(run("dynamic_slice", m, np.array(5, i64), np.array(-3, i64), sizes=(2, 2)), [[4, 5], [8, 9]])
    u = np.array([[-1, -2]], i64)
    eq(
        run("dynamic_update_slice", m, u, np.array(2, i32), np.array(3, i32)),
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, -1, -2]],
    )


def test_take_take_along_axis_put_along_axis():
    x = np.array([[10, 11, 12], [20, 21, 22]], i64)
    eq(run("take", x, np.array([2, 0], i64), axis=1), [[12, 10], [22, 20]])
    eq(run("take", x, np.array([[1], [0]], i32), axis=0), [[[20, 21, 22]], [[10, 11, 12]]])
    eq(run("take_along_axis", x, np.array([[2], [1]], i64), axis=1), [[12], [21]])
    eq(
        run("put_along_axis", x, np.array([[0], [2]], i64), np.array([[-1], [-2]], i64), axis=1),
        [[-1, 11, 12], [20, 21, -2]],
    )


def test_sort_argsort_top_k_ties_and_nan():
    x = np.array([3.0, 1.0, nan, 3.0, -inf, 1.0], f32)
    eq(run("argsort", x), np.array([4, 1, 5, 0, 3, 2], i64))  # stable, nan last
    eq(run("argsort", x, descending=True), np.array([2, 0, 3, 1, 5, 4], i64))  # nan first, ties by index
    close(run("sort", x), [-inf, 1, 1, 3, 3, nan])
    vals, idx = run("top_k", np.array([[1.0, 5.0, 5.0, 2.0]], f32), k=2)
    eq(idx, np.array([[1, 2]], i64))
    eq(vals, np.array([[5.0, 5.0]], f32))
    eq(
        run("argsort", np.array([5, 5, -(2**63), 2**63 - 1], i64), descending=True),
        np.array([3, 0, 1, 2], i64),
    )
    with pytest.raises(IRError, match="exceeds the last dimension"):
        run("top_k", np.ones((2, 3), f32), k=4)


# ------------------------------------------------------------------ fused numerics
def test_softmax_log_softmax():
    row = [1.0, 2.0, 3.0]
    z = sum(math.exp(v) for v in row)
    close(run("softmax", np.array([row], f64)), [[math.exp(v) / z for v in row]], rtol=1e-12)
    close(run("log_softmax", np.array([row], f64)), [[v - math.log(z) for v in row]], rtol=1e-12)
    close(run("softmax", np.array([[0.0, -inf]], f32)), [[1.0, 0.0]])
    close(run("softmax", np.array([[-inf, -inf]], f32)), [[nan, nan]])


def test_rms_norm_layer_norm():
    x = [1.0, 2.0, 3.0, 4.0]
    w = [1.0, 0.5, 2.0, 1.0]
    b = [0.0, 1.0, 0.0, -1.0]
    eps = 1e-6
    ms = sum(v * v for v in x) / 4
    close(
        run("rms_norm", np.array([x], f64), np.array(w, f64), eps=eps),
        [[v / math.sqrt(ms + eps) * wi for v, wi in zip(x, w)]],
        rtol=1e-12,
    )
    mu = sum(x) / 4
    var = sum((v - mu) ** 2 for v in x) / 4
    close(
        run("layer_norm", np.array([x], f64), np.array(w, f64), np.array(b, f64), eps=1e-5),
        [[(v - mu) / math.sqrt(var + 1e-5) * wi + bi for v, wi, bi in zip(x, w, b)]],
        rtol=1e-12,
    )


def test_half_precision_computes_in_float32_and_rounds():
    x = np.array([0.1, 1.5, -3.25], np.float16)
    expect = np.array([math.exp(float(v)) for v in x], np.float32).astype(np.float16)
    eq(run("exp", x), expect)
    bf = np.array([1.0, 2.0], f32).astype(DType.bfloat16.to_numpy())
    out = run("add", bf, bf)
    assert out.dtype.name == "bfloat16" and out.astype(f32).tolist() == [2.0, 4.0]


# ------------------------------------------------------------------ control flow (reference with callables)
def test_while_loop_and_cond_reference():
    TESTED.update({"while_loop", "cond"})
    wl = OPS["while_loop"].reference
    out = wl(
        np.array(0, i64),
        np.array(1.0, f64),
        np.array(3, i64),
        num_state=2,
        cond=lambda i, acc, n: (i < n,),
        body=lambda i, acc, n: (i + 1, acc * 2),
    )
    assert int(out[0]) == 3 and float(out[1]) == 8.0
    c = OPS["cond"].reference
    assert c(np.array(True), np.array(2.0), then=lambda v: (v + 1,), **{"else": lambda v: (v - 1,)})[0] == 3.0
    assert (
        c(np.array(False), np.array(2.0), then=lambda v: (v + 1,), **{"else": lambda v: (v - 1,)})[0] == 1.0
    )


# ------------------------------------------------------------------ convolution, pooling, resize


def test_conv_by_hand():
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]], f32)  # [N=1, C=1, 4]
    w = np.array([[[1.0, 10.0]]], f32)  # [O=1, C=1, K=2]
    eq(run("conv", x, w, strides=(1,), pads=(0, 0), dilations=(1,)), [[[21.0, 32.0, 43.0]]])
    # bias, stride 2, one zero pad at the start, dilation 2: windows (0, 2), (2, 4) of [0, 1, 2, 3, 4]
    got = run("conv", x, w, np.array([0.5], f32), strides=(2,), pads=(1, 0), dilations=(2,))
    eq(got, [[[0 + 20 + 0.5, 2 + 40 + 0.5]]])
    # two groups: each output channel sees its own input channel
    x2 = np.array([[[1.0, 2.0], [3.0, 4.0]]], f32)
    w2 = np.array([[[1.0]], [[100.0]]], f32)
    eq(
        run("conv", x2, w2, strides=(1,), pads=(0, 0), dilations=(1,), groups=2),
        [[[1.0, 2.0], [300.0, 400.0]]],
    )


def test_pools_by_hand():
    x = np.array([[[3.0, -1.0, 4.0, 1.0, -5.0]]], f32)
    eq(run("max_pool", x, kernel=(2,), strides=(2,), pads=(0, 1)), [[[3.0, 4.0, -5.0]]])
    eq(run("avg_pool", x, kernel=(2,), strides=(2,), pads=(0, 1)), [[[1.0, 2.5, -5.0]]])  # pad not counted
    eq(
        run("avg_pool", x, kernel=(2,), strides=(2,), pads=(0, 1), count_include_pad=True),
        [[[1.0, 2.5, -2.5]]],
    )


def test_resize_by_hand():
    x = np.array([[[0.0, 10.0]]], f32)
    # nearest, asymmetric + floor: out i reads floor(i * 2 / 4)
    eq(run("resize", x, sizes=(4,), mode="nearest"), [[[0.0, 0.0, 10.0, 10.0]]])
    # linear, half-pixel: out i reads (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1]
    eq(run("resize", x, sizes=(4,), mode="linear"), [[[0.0, 2.5, 7.5, 10.0]]])


# ------------------------------------------------------------------ block-quantized weights


def test_dequantize_blocks_by_hand():
    # one row, one block of 8 four-bit codes 0..7 in one word (code i in bits 4i..4i+3)
    word = sum(i << (4 * i) for i in range(8))
    packed = np.array([[[word]]], u32)
    scales, offsets = np.array([[0.5]], f32), np.array([[-1.0]], f32)
    eq(
        run("dequantize_blocks", packed, scales, offsets, bits=4, zero_point=2),
        [[0.5 * (i - 2) - 1.0 for i in range(8)]],
    )
    # eight-bit codes: 4 per word, lowest byte first
    packed8 = np.array([[[0x04030201]]], u32)
    eq(
        run("dequantize_blocks", packed8, scales, np.zeros((1, 1), f32), bits=8, zero_point=3),
        [[-1.0, -0.5, 0.0, 0.5]],
    )


def test_quantized_matmul_by_hand():
    packed = np.array([[[0x04030201]], [[0x01010101]]], u32)  # rows [1, 2, 3, 4] and [1, 1, 1, 1]
    scales = np.array([[1.0], [2.0]], f32)
    offsets = np.array([[0.0], [10.0]], f32)  # row 1: 2 * 1 + 10 = 12 everywhere
    x = np.array([[1.0, 0.0, -1.0, 2.0]], f32)
    eq(run("quantized_matmul", x, packed, scales, offsets, bits=8), [[1 - 3 + 8, 12 * 2.0]])


def test_every_op_is_tested_here():
    """Static check over this file's source: every registry op is run by some test above."""
    import pathlib
    import re

    src = pathlib.Path(__file__).read_text()
    named = set(re.findall(r'run\("([a-z0-9_]+)"', src)) | set(
        re.findall(r'\("([a-z0-9_]+)", (?:math|lambda)', src)
    )
    named |= {"while_loop", "cond"}  # tested through their references above
    missing = sorted(set(OPS) - named)
    assert not missing, f"ops without a numpy test in this file: {missing}"
