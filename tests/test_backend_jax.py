"""The JAX/Flax backend (spec/backends-jax.md): exact IR dtypes with 64-bit types on, numpy and
native jax arrays, symbolic sizes, lax control flow, Threefry bits, op edge semantics, a
jax.export round trip in a fresh process, and the Flax module with weights in ``params``.

Expected values come from the numpy reference interpreter or are worked out by hand in comments;
float comparisons use tensorweave.parity.TOLERANCES (spec/backends.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tensorweave.backends import registry

from conftest import IN_CI

if not registry.is_installed("jax") and not IN_CI:  # in CI a missing backend fails the session
    pytest.skip(registry.missing_message("jax"), allow_module_level=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import tensorweave.ir.namespace as xp  # noqa: E402
from tensorweave.backends import jax as jax_backend  # noqa: E402
from tensorweave.backends.jax import rules as jax_rules  # noqa: E402
from tensorweave.backends.numpy import lower as lower_numpy  # noqa: E402
from tensorweave.ir import IRError, TensorSpec, random, trace  # noqa: E402
from tensorweave.ir.trace import constant  # noqa: E402
from tensorweave.ir.types import DType  # noqa: E402
from tensorweave.parity import differences, within  # noqa: E402

from op_cases import one_node  # noqa: E402


def to_jax(a):
    """A jax array with ``a``'s exact dtype (64-bit types need ``jax.enable_x64`` outside the backend)."""
    with jax.enable_x64(True):
        return jnp.asarray(a)


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


# ------------------------------------------------------------------ dtypes and array kinds


def _dtypes_fn(i, f, u, h):
    return (
        i * 3,
        f / 3.0,
        u + u,
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
DTYPES_PROG = jax_backend.lower(DTYPES)


def dtype_args(n):
    h = np.arange(2 * n, dtype=np.float32).reshape(2, n).astype(DType.bfloat16.to_numpy())
    return [np.arange(n, dtype=np.int64) - 2**40, np.linspace(-1, 1, n), np.full(n, 0x80000001, np.uint32), h]


def test_64_bit_and_low_precision_dtypes_are_exact():
    assert not jax.config.jax_enable_x64  # the backend scopes 64-bit types to its own calls
    args = dtype_args(4)
    out = DTYPES_PROG(*args)
    assert [o.dtype for o in out] == [s.dtype.to_numpy() for s in DTYPES.output_specs]
    np.testing.assert_array_equal(out[0], args[0] * 3)  # int64 beyond 2**32 survives
    np.testing.assert_array_equal(out[2], np.full(4, 2, np.uint32))  # 2 * 0x80000001 wraps to 2
    assert_matches_reference(DTYPES, DTYPES_PROG, args)


def test_native_in_native_out_and_numpy_in_numpy_out():
    args = dtype_args(3)
    native = DTYPES_PROG(*[to_jax(a) for a in args])
    assert all(isinstance(o, jax.Array) for o in native)
    assert [np.dtype(o.dtype) for o in native] == [s.dtype.to_numpy() for s in DTYPES.output_specs]
    as_numpy = DTYPES_PROG(*args)
    assert all(isinstance(o, np.ndarray) for o in as_numpy)
    for a, b in zip(native, as_numpy):
        np.testing.assert_array_equal(np.asarray(a), b)
    mixed = DTYPES_PROG(to_jax(args[0]), *args[1:])  # not all native -> numpy
    assert all(isinstance(o, np.ndarray) for o in mixed)


def test_bad_inputs_are_one_line_errors_before_any_work():
    i, f, u, h = dtype_args(3)
    with pytest.raises(
        IRError, match=r"input 'f' has dtype float32, expected float64; cast it with \.astype"
    ):
        DTYPES_PROG(i, f.astype(np.float32), u, h)
    with pytest.raises(IRError, match=r"input 'u' has dtype int32, expected uint32"):
        DTYPES_PROG(*[to_jax(a) for a in (i, f)], to_jax(u.astype(np.int32)), to_jax(h))
    with pytest.raises(IRError, match=r"input 'h' has rank 1 but rank 2"):
        DTYPES_PROG(i, f, u, h[0])
    with pytest.raises(IRError, match=r"symbol 'n' is already 3"):
        DTYPES_PROG(i, f, u, dtype_args(4)[3])
    with pytest.raises(IRError, match=r"takes 4 input"):
        DTYPES_PROG(i, f, u)
    with pytest.raises(IRError, match="takes no options"):
        jax_backend.lower(DTYPES, donate=True)


# ------------------------------------------------------------------ symbolic sizes


def _kv_fn(x, past, mask, pos):
    b, s, h = x.shape
    kv = xp.concat([past, x], axis=1)  # (batch, past + seq, h)
    n = kv.shape[1]
    causal = xp.arange(n)[None, :] <= xp.arange(past.shape[1], n)[:, None]  # symbolic start and stop
    scores = xp.where(causal[None] & (mask[:, None, :] > 0), xp.einsum("bqh,bkh->bqk", x, kv), -xp.inf)
    flat = xp.reshape(kv, (b * n, h))
    window = xp.dynamic_slice(kv, [0, pos, 0], (b, s, h))
    v, i = xp.top_k(xp.max(scores, axis=1), 1)
    return xp.softmax(scores, axis=-1), flat, window, v, i, xp.full((b, n), 7, dtype=xp.int32)


KV = trace(
    _kv_fn,
    TensorSpec(("batch", "seq", 4), "float32", "x"),
    TensorSpec(("batch", "past", 4), "float32", "past"),
    TensorSpec(("batch", "past + seq"), "int64", "mask"),
    TensorSpec((), "int64", "pos"),
)
KV_PROG = jax_backend.lower(KV)


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


@pytest.mark.parametrize("b,s,p,pos", [(1, 3, 2, 1), (3, 1, 5, -4), (2, 2, 0, 99)])
def test_symbolic_sizes_compound_dims_and_clamped_starts(b, s, p, pos):
    """Three sizes through one lowered program; past=0 (empty cache) and out-of-range starts included."""
    args = kv_args(b, s, p, pos)
    assert_matches_reference(KV, KV_PROG, args)
    window = KV_PROG(*args)[2]
    start = min(max(pos, 0), p)  # XLA clamping into [0, (p + s) - s]
    np.testing.assert_array_equal(window, np.concatenate([args[1], args[0]], axis=1)[:, start : start + s])


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
LOOP_PROG = jax_backend.lower(LOOP)


@pytest.mark.parametrize(
    "x,n,flag", [([1.0, -2.0, 0.5], 5, True), ([30.0, 40.0], 0, False), ([0.25], 3, False)]
)
def test_while_loop_and_cond_match_reference(x, n, flag):
    args = [np.array(x, np.float32), np.array(n, np.int64), np.array(flag)]
    assert_matches_reference(LOOP, LOOP_PROG, args)
    if n == 0:  # zero trips: the loop returns its initial state
        total, k, v, _ = LOOP_PROG(*args)
        np.testing.assert_array_equal(total, np.zeros_like(args[0]))
        assert (k, v) == (0, 70.0)


def test_lowered_loops_are_lax_control_flow():
    jaxpr = str(
        jax.make_jaxpr(LOOP_PROG.fn)(
            LOOP_PROG.hoisted_arrays, jnp.ones(2, jnp.float32), to_jax(np.int64(3)), jnp.asarray(True)
        )
    )
    assert "while[" in jaxpr and "cond[" in jaxpr


# ------------------------------------------------------------------ randomness


def test_threefry_bits_equal_numpy_and_jax_own_threefry():
    def draws(key, logits):
        k1, k2 = random.split(key)[0], random.split(key)[1]
        return (
            random.random_bits(k1, (2, 5)),
            random.fold_in(key, 7),
            random.categorical(k2, logits),
            random.uniform(k2, (3,)),
        )

    g = trace(draws, TensorSpec((2,), "uint32"), TensorSpec(("b", 5), "float32"))
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.3, 0.1]] * 4, np.float32))
    prog = jax_backend.lower(g)
    for seed in (0, 2026, 2**63 + 5):
        args = [random.key(seed), logits]
        got, ref = prog(*args), lower_numpy(g)(*args)
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)  # bits, keys and tokens are exact; uniforms derive from bits

    # the block function itself against JAX's implementation (word halves: x0 = count[:n], x1 = count[n:])
    block = trace(
        lambda k, c0, c1: random.threefry2x32(k[0], k[1], c0, c1),
        TensorSpec((2,), "uint32"),
        TensorSpec((6,), "uint32"),
        TensorSpec((6,), "uint32"),
    )
    key = np.array([0x13198A2E, 0x03707344], np.uint32)
    counts = np.array([0, 1, 2, 0xFFFFFFFF, 0x80000000, 12345, 7, 8, 9, 0xDEADBEEF, 1, 0], np.uint32)
    x0, x1 = jax_backend.lower(block)(key, counts[:6], counts[6:])
    from jax.extend.random import threefry_2x32

    expect = np.asarray(threefry_2x32(jnp.asarray(key), jnp.asarray(counts)))
    np.testing.assert_array_equal(np.concatenate([x0, x1]), expect)


# ------------------------------------------------------------------ op semantics at the edges

NAN, INF = np.nan, np.inf


def run_op(op, arrays, **attrs):
    g = one_node(op, arrays, **attrs)
    prog = jax_backend.lower(g)
    assert_matches_reference(g, prog, arrays)
    return prog(*arrays)


def test_argmax_argmin_first_nan_and_first_tie():
    x = np.array([[1.0, NAN, 5.0, NAN], [2.0, 7.0, 7.0, -1.0], [3.0, -INF, -INF, 9.0]], np.float32)
    np.testing.assert_array_equal(run_op("argmax", [x], axis=1), [1, 1, 3])
    np.testing.assert_array_equal(run_op("argmin", [x], axis=1), [1, 3, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float16, DType.bfloat16.to_numpy(), np.float64])
def test_sorts_are_stable_with_nan_largest_in_both_directions(dtype):
    x = np.array([[3.0, 1.0, NAN, 3.0, -INF, 1.0, NAN, 0.0, -0.0]], np.float64).astype(dtype)
    # ascending: -inf(4), 0(7), -0(8), 1(1), 1(5), 3(0), 3(3), nan(2), nan(6)   (0 == -0: a tie)
    np.testing.assert_array_equal(run_op("argsort", [x]), [[4, 7, 8, 1, 5, 0, 3, 2, 6]])
    # descending keeps the lower index first among equals (not a reversed ascending sort)
    np.testing.assert_array_equal(run_op("argsort", [x], descending=True), [[2, 6, 0, 3, 1, 5, 7, 8, 4]])
    values, idx = run_op("top_k", [x], k=4)
    np.testing.assert_array_equal(idx, [[2, 6, 0, 3]])
    run_op("sort", [x], descending=True)


def test_integer_sorts_and_top_k_ties():
    x = np.array([[5, -(2**63), 5, 2**63 - 1, 0, 5]], np.int64)
    np.testing.assert_array_equal(run_op("argsort", [x], descending=True), [[3, 0, 2, 5, 4, 1]])
    u = np.array([[0xFFFFFFFF, 1, 0xFFFFFFFF, 0]], np.uint32)
    np.testing.assert_array_equal(run_op("top_k", [u], k=3)[1], [[0, 2, 1]])


def test_integer_arithmetic_wraps_and_rounds_like_python():
    a = np.array([7, -7, 7, -7, -(2**31)], np.int32)
    b = np.array([2, 2, -2, -2, -1], np.int32)
    np.testing.assert_array_equal(run_op("floor_divide", [a[:4], b[:4]]), [3, -4, -4, 3])  # Python //
    np.testing.assert_array_equal(run_op("remainder", [a[:4], b[:4]]), [1, 1, -1, -1])  # sign of the divisor
    np.testing.assert_array_equal(run_op("multiply", [a, b]), [14, -14, -14, 14, -(2**31)])  # wraps
    u = np.array([0xFFFFFFFF, 0x80000000, 3], np.uint32)
    np.testing.assert_array_equal(run_op("add", [u, u]), [0xFFFFFFFE, 0, 6])
    np.testing.assert_array_equal(
        run_op("bitwise_right_shift", [u, np.array([4, 31, 1], np.uint32)]), [0x0FFFFFFF, 1, 1]
    )  # logical for uint32
    np.testing.assert_array_equal(
        run_op("bitwise_right_shift", [a, np.array([1, 1, 0, 2, 31], np.int32)]), [3, -4, 7, -2, -1]
    )  # arithmetic for signed
    np.testing.assert_array_equal(
        run_op("prod", [np.array([2**20, 2**12, 3], np.int32)]), 0
    )  # 2**32 wraps to 0
    run_op("cumulative_sum", [u])
    run_op("matmul", [np.array([[2**31 - 1, 2]], np.int32), np.array([[2], [1]], np.int32)])


def test_astype_truncates_wraps_and_rounds_once():
    f = np.array([1.9, -1.9, -0.5, 100.5], np.float32)
    np.testing.assert_array_equal(run_op("astype", [f], dtype="int32"), [1, -1, 0, 100])  # toward zero
    np.testing.assert_array_equal(
        run_op("astype", [np.array([-1, 2**32 + 3], np.int64)], dtype="uint32"), [0xFFFFFFFF, 3]
    )
    # 1 + 2**-11 + 2**-30 is just above the float16 midpoint 1 + 2**-11: it rounds up to 1 + 2**-10.
    # Converting through float32 first would land exactly on the midpoint and round to even (1.0).
    x = np.array(
        [1 + 2**-11 + 2**-30, -(1 + 2**-11 + 2**-30), 2**-25 + 2**-50, 1 + 2**-11, 65519.99], np.float64
    )
    out = run_op("astype", [x], dtype="float16")
    np.testing.assert_array_equal(out.astype(np.float64), [1 + 2**-10, -(1 + 2**-10), 2**-24, 1.0, 65504.0])
    run_op("astype", [np.array([True, False])], dtype="bfloat16")


def test_gather_scatter_and_dynamic_update_slice():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    idx = np.array([[3, 0], [1, 2], [0, 0]], np.int64)
    out = run_op("put_along_axis", [x, idx[:, :1], np.full((3, 1), -1.0, np.float32)], axis=1)
    np.testing.assert_array_equal(out[:, 3], [-1.0, 7.0, 11.0])
    run_op("take_along_axis", [x, idx], axis=1)
    run_op("take", [x, np.array([[2, 0]], np.int32)], axis=0)
    ones = np.ones((2, 2), np.float32)
    upd = run_op("dynamic_update_slice", [x, ones, np.array(-3, np.int32), np.array(9, np.int64)])
    np.testing.assert_array_equal(upd[:2, 2:], np.ones((2, 2)))  # starts clamped to (0, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, DType.bfloat16.to_numpy()])
def test_fused_and_low_precision_math(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5)).astype(dtype)
    w, b = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    run_op("gelu", [x], approximate="none")
    run_op("gelu", [x], approximate="tanh")
    run_op("rms_norm", [x, w], eps=1e-6)
    run_op("layer_norm", [x, w, b], eps=1e-5)
    run_op("log_softmax", [x], axis=1)
    run_op("einsum", [x, x], subscripts="ij,kj->ik")
    run_op(
        "logsumexp", [np.array([[NAN, 1.0], [INF, 1.0], [-INF, -INF]], np.float32).astype(dtype)], axis=(1,)
    )


def test_every_registry_op_has_a_lowering():
    from tensorweave.ir.ops import OPS

    assert set(OPS) <= set(jax_backend.LOWERINGS)


# ------------------------------------------------------------------ export

RELOAD = textwrap.dedent("""
    import sys
    import numpy as np
    import jax
    jax.config.update("jax_enable_x64", True)
    from jax import export  # only jax: the artifact carries its weights and control flow
    exported = export.deserialize(bytearray(open(sys.argv[1], "rb").read()))
    data = np.load(sys.argv[2])
    results = {}
    for case in ("a", "b"):
        outs = exported.call(data[case + "x"], data[case + "mask"], data[case + "key"])
        results.update({f"{case}{k}": np.asarray(o) for k, o in enumerate(outs)})
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


def test_export_reloads_in_a_fresh_process_at_new_sizes(tmp_path):
    prog = jax_backend.lower(EXPORT)
    with pytest.raises(IRError, match=r"\['cache'\] are not symbols of this program"):
        prog.export(str(tmp_path / "bad.stablehlo"), allow_zero=["cache"])
    path = prog.export(str(tmp_path / "m.stablehlo"), allow_zero=["past"])
    assert path == str(tmp_path / "m.stablehlo") and sorted(os.listdir(tmp_path)) == [
        "m.stablehlo"
    ]  # no temp left
    rng = np.random.default_rng(3)
    cases = {"a": (5, 2, 3, 11), "b": (2, 7, 0, 12)}  # traced with no sizes at all; past = 0 allowed
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
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    for name, ref in refs.items():
        for k, (r, spec) in enumerate(zip(ref, EXPORT.output_specs)):
            g = got[f"{name}{k}"]
            assert (g.dtype, g.shape) == (r.dtype, r.shape), (name, k)
            assert within(g, r, spec.dtype), (name, k, differences(g, r))


def test_load_reads_an_export_and_refuses_other_files(tmp_path):
    from tensorweave.errors import ArtefactError
    from tensorweave.io import leftovers

    prog = jax_backend.lower(EXPORT)
    path = prog.export(str(tmp_path / "sub" / "m.stablehlo"))  # the parent is created
    path = prog.export(path)  # over the previous file, atomically
    assert leftovers(str(tmp_path / "sub")) == [] and os.listdir(tmp_path / "sub") == ["m.stablehlo"]
    args = [np.ones((2, 3, 4), np.float32), np.ones((2, 5), np.int64), random.key(2)]
    with jax.enable_x64(True):  # the artefact takes int64 inputs; the backend never sets the flag globally
        got = jax_backend.load(path).call(*[jnp.asarray(a) for a in args])
    for g, r, spec in zip(got, lower_numpy(EXPORT)(*args), EXPORT.output_specs):
        assert within(np.asarray(g), r, spec.dtype), differences(np.asarray(g), r)
    (tmp_path / "junk.stablehlo").write_bytes(b"not a program")
    with pytest.raises(ArtefactError, match="not a serialised jax.export program"):
        jax_backend.load(str(tmp_path / "junk.stablehlo"))
    with pytest.raises(ArtefactError, match="cannot read"):
        jax_backend.load(str(tmp_path / "missing.stablehlo"))


# ------------------------------------------------------------------ Flax


def test_flax_module_params_apply_grad_and_optax_step():
    from tensorweave.backends.jax.flax_module import TracedModule, named_constants

    w = np.array([[0.5, -1.0], [2.0, 0.25], [-0.5, 1.5]], np.float32)
    b = np.array([0.1, -0.2], np.float32)

    def dense(x):
        return (
            x @ constant(w, name="dense.kernel")
            + constant(b, name="dense.bias")
            + constant(np.ones(2, np.float32))
        )

    g = trace(dense, TensorSpec(("batch", 3), "float32", "x"))
    module = TracedModule(g)
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], np.float32)
    params = module.init(jax.random.PRNGKey(0), x)
    assert (
        set(params["params"]) == {"dense.kernel", "dense.bias"} == set(named_constants(g))
    )  # unnamed stays fixed
    np.testing.assert_array_equal(params["params"]["dense.kernel"], w)
    out = jax.jit(module.apply)(params, jnp.asarray(x))
    assert within(np.asarray(out), jax_backend.lower(g)(x), DType.float32)

    # d/dW sum(x @ W + b + 1) = x^T @ ones;  d/db = number of rows
    grads = jax.grad(lambda p: jnp.sum(module.apply(p, x)))(params)["params"]
    np.testing.assert_allclose(grads["dense.kernel"], x.T @ np.ones((2, 2), np.float32), rtol=1e-6)
    np.testing.assert_allclose(grads["dense.bias"], [2.0, 2.0], rtol=1e-6)
    # new params change the output: apply uses the given params, not the traced constants
    shifted = jax.tree_util.tree_map(lambda a: a + 1.0, params)
    expect_shift = np.broadcast_to(
        x.sum(1, keepdims=True) + 1.0, (2, 2)
    )  # x @ (W + 1) + (b + 1) - (x @ W + b)
    np.testing.assert_allclose(module.apply(shifted, x) - out, expect_shift, rtol=1e-5)

    import optax

    target = np.zeros((2, 2), np.float32)
    loss = lambda p: jnp.mean((module.apply(p, x) - target) ** 2)  # noqa: E731
    opt = optax.sgd(0.01)
    state = opt.init(params)
    updates, state = opt.update(jax.grad(loss)(params), state)
    assert loss(optax.apply_updates(params, updates)) < loss(params)

    with pytest.raises(IRError, match=r"input 'x' has dtype float64, expected float32"):
        module.apply(params, x.astype(np.float64))
    with pytest.raises(IRError, match=r"rank 1 but rank 2"):
        module.apply(params, x[0])


@pytest.mark.parametrize(
    "kind", ["normal", "ties at the k-th value", "infinities", "nan", "signed zeros", "float16"]
)
def test_top_k_on_long_rows_equals_the_stable_sort_rule(kind):
    """Rows much longer than k take lax.top_k plus the tie check (spec/backends-jax.md); every
    case must still equal the numpy reference (ties -> lower index, nan largest)."""
    from tensorweave.ir.ops.manipulation import top_k as reference_top_k

    rng = np.random.default_rng(7)
    for trial in range(6):
        n = int(rng.integers(100, 3000))
        shape = (int(rng.integers(1, 4)), n)
        x = rng.standard_normal(shape).astype(np.float32)
        if kind == "ties at the k-th value":
            x = rng.integers(0, 6, size=shape).astype(np.float32)
        elif kind == "infinities":
            x = np.where(rng.integers(0, 3, size=shape) == 0, -np.inf, x).astype(np.float32)
            x[:, :2] = np.inf
        elif kind == "nan":
            x.flat[rng.integers(0, x.size, size=2)] = np.nan
        elif kind == "signed zeros":
            x = np.where(rng.integers(0, 2, size=shape) == 1, -0.0, 0.0).astype(np.float32)
            x[:, 5] = 1.0
        elif kind == "float16":
            x = x.astype(np.float16)
        k = int(rng.integers(1, n // 9))
        with jax.enable_x64(True):  # a rule called directly, outside the backend's own x64 scope
            values, indices = jax.jit(lambda a: jax_rules._top_k(a, k))(jnp.asarray(x))
        ref_values, ref_indices = reference_top_k(x, k)
        np.testing.assert_array_equal(np.asarray(indices), ref_indices, err_msg=f"{kind} {shape} k={k}")
        np.testing.assert_array_equal(np.asarray(values), ref_values)


# ------------------------------------------------------------------ persistent compilation cache

_CACHE_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, "tests")
import tensorweave as tw
from tiny_lm import tiny_lm
lm = tiny_lm("gpt2", 3)[1]
out = tw.generate(lm, np.array([[5, 6, 7]]), backend="jax", max_new_tokens=3)
import jax
print(jax.config.jax_compilation_cache_dir, np.asarray(out).tolist())
"""


def _run_cache_script(env_value):
    env = dict(os.environ, TENSORWEAVE_CACHE=env_value)
    proc = subprocess.run([sys.executable, "-c", _CACHE_SCRIPT], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.xdist_group("subprocess")
def test_compiled_programs_persist_across_processes(tmp_path):
    """A new process finds the executables an earlier one compiled under $TENSORWEAVE_CACHE/jax
    (JAX's persistent compilation cache), with the same tokens; ``off`` disables it."""
    first = _run_cache_script(str(tmp_path / "c"))
    entries = sorted(os.listdir(tmp_path / "c" / "jax"))
    assert first.startswith(str(tmp_path / "c" / "jax")) and entries  # written by the first process
    second = _run_cache_script(str(tmp_path / "c"))
    assert second == first  # same cache directory, same tokens
    assert sorted(os.listdir(tmp_path / "c" / "jax")) == entries  # nothing compiled again
    off = _run_cache_script("off")
    assert off.split(" ", 1)[0] == "None" and off.split(" ", 1)[1] == first.split(" ", 1)[1]
