"""Dispatch overhead: tensorweave's lowered programs vs the same computation written directly.

Two programs, each run on every installed backend in one process:
- "chain": 200 ops, 50 x (matmul, tanh, multiply, add) on a [64, 64] state;
- "loop": a 30-step while_loop of h = tanh(h @ w) + h.
The peer is the same computation written by hand in that framework: torch eager,
a tf.function, a jax.jit function, and an ONNX graph built with onnx.helper run
in its own InferenceSession. Prints time per call, the ratio tensorweave/peer
(lower is better; the target is <= 1.2 for torch, jax and onnx) and trace+lower time.

    python benchmarks/dispatch.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorweave as tw  # noqa: E402
import tensorweave.ir.namespace as xp  # noqa: E402
from tensorweave.ir import TensorSpec  # noqa: E402

N, DIM, STEPS = 50, 64, 30


def chain_ir(h, w):
    for _ in range(N):
        h = xp.tanh(h @ w) * 0.5 + h
    return h


def loop_ir(h, w):
    def body(s):
        i, v = s
        return i + 1, xp.tanh(v @ w) + v

    return xp.while_loop(lambda s: s[0] < STEPS, body, (0, h))[1]


def peers(name):
    """Hand-written (chain, loop, to_native) for one framework."""
    if name == "torch":
        import torch

        def chain(h, w):
            for _ in range(N):
                h = torch.tanh(h @ w) * 0.5 + h
            return h

        def loop(h, w):
            i = 0
            while i < STEPS:
                h = torch.tanh(h @ w) + h
                i += 1
            return h

        return chain, loop, torch.from_numpy
    if name == "tensorflow":
        import tensorflow as tf

        spec = [tf.TensorSpec([None, DIM], tf.float32), tf.TensorSpec([DIM, DIM], tf.float32)]

        @tf.function(input_signature=spec)
        def chain(h, w):
            for _ in range(N):
                h = tf.tanh(h @ w) * 0.5 + h
            return h

        @tf.function(input_signature=spec)
        def loop(h, w):
            return tf.while_loop(
                lambda i, v: i < STEPS,
                lambda i, v: (i + 1, tf.tanh(v @ w) + v),
                (tf.constant(0, tf.int64), h),
            )[1]

        return chain, loop, tf.convert_to_tensor
    if name == "jax":
        import jax
        import jax.numpy as jnp

        @jax.jit
        def chain(h, w):
            for _ in range(N):
                h = jnp.tanh(h @ w) * 0.5 + h
            return h

        @jax.jit
        def loop(h, w):
            return jax.lax.while_loop(
                lambda s: s[0] < STEPS, lambda s: (s[0] + 1, jnp.tanh(s[1] @ w) + s[1]), (0, h)
            )[1]

        return chain, loop, jnp.asarray
    if name == "onnx":
        return onnx_peers()
    return None


def onnx_peers():
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def session(nodes, extra_inits=()):
        g = helper.make_graph(
            nodes,
            "peer",
            [
                helper.make_tensor_value_info("h", TensorProto.FLOAT, ["b", DIM]),
                helper.make_tensor_value_info("w", TensorProto.FLOAT, [DIM, DIM]),
            ],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", DIM])],
            list(extra_inits),
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])

    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes, cur = [], "h"
    for i in range(N):
        nodes += [
            helper.make_node("MatMul", [cur, "w"], [f"m{i}"]),
            helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]),
            helper.make_node("Mul", [f"t{i}", "half"], [f"s{i}"]),
            helper.make_node("Add", [f"s{i}", cur], ["out" if i == N - 1 else f"h{i}"]),
        ]
        cur = f"h{i}"
    chain_sess = session(nodes, [half])
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["v_in", "w"], ["bm"]),
            helper.make_node("Tanh", ["bm"], ["bt"]),
            helper.make_node("Add", ["bt", "v_in"], ["v_out"]),
            helper.make_node("Identity", ["c_in"], ["c_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("it", TensorProto.INT64, []),
            helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, ["b", DIM]),
        ],
        [
            helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["b", DIM]),
        ],
    )
    trips = helper.make_tensor("trips", TensorProto.INT64, [], [STEPS])
    true = helper.make_tensor("true", TensorProto.BOOL, [], [True])
    loop_sess = session([helper.make_node("Loop", ["trips", "true", "h"], ["out"], body=body)], [trips, true])
    del onnx
    return (
        lambda h, w: chain_sess.run(None, {"h": h, "w": w})[0],
        lambda h, w: loop_sess.run(None, {"h": h, "w": w})[0],
        lambda a: a,
    )


def timeit(fn, *args, repeats):
    fn(*args)
    fn(*args)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(*args)
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    h = rng.standard_normal((args.batch, DIM)).astype(np.float32)
    w = (rng.standard_normal((DIM, DIM)) * 0.05).astype(np.float32)
    specs = (TensorSpec(("batch", DIM), "float32", "h"), TensorSpec((DIM, DIM), "float32", "w"))
    print(
        f"dispatch benchmark: batch={args.batch}, dim={DIM}; per-call times are the best of 3 x {args.repeats}"
    )
    print(
        f"{'backend':<11}{'program':<7}{'trace+lower ms':>15}{'tensorweave us':>16}{'peer us':>10}{'ratio':>7}"
    )
    for name in [b for b in tw.backends.available() if b != "numpy"]:
        chain_peer, loop_peer, native = peers(name)
        for label, fn, peer in (("chain", chain_ir, chain_peer), ("loop", loop_ir, loop_peer)):
            t0 = time.perf_counter()
            prog = tw.lower(tw.trace(fn, *specs), backend=name)
            nh, nw = native(h), native(w)
            out = prog(nh, nw)
            t_lower = time.perf_counter() - t0
            ref = peer(nh, nw)
            np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-4, atol=1e-4)
            t_tw = timeit(prog, nh, nw, repeats=args.repeats)
            t_peer = timeit(peer, nh, nw, repeats=args.repeats)
            print(
                f"{name:<11}{label:<7}{t_lower * 1e3:>15.1f}{t_tw * 1e6:>16.1f}{t_peer * 1e6:>10.1f}"
                f"{t_tw / t_peer:>7.2f}"
            )


if __name__ == "__main__":
    main()
