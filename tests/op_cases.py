"""Generated inputs for the op x backend parity matrix: every registry op, several cases each.

Covers broadcasting, size-0 and size-1 dims, negative axes (normalised by the tracer, so the IR
sees non-negative ones), nan/inf, uint32 wrap-around, int32/int64 overflow, ties in
sort/argsort/top_k/argmax, float16/bfloat16, symbolic dims and control flow.

Excluded input domains (unspecified by the op semantics, spec/ir.md section 3): shift amounts
outside [0, bits), integer division/remainder by zero, negative integer exponents, float -> int
casts of nan/inf/out-of-range values, out-of-range gather/scatter indices, duplicate scatter indices.
"""
from __future__ import annotations

import numpy as np

from tensorweave.ir import TensorSpec, trace
from tensorweave.ir.graph import Graph, Node, Value
from tensorweave.ir.ops import check_attrs, get_op, infer_node
from tensorweave.ir.types import DType, from_numpy_dtype
import tensorweave.ir.namespace as xp


def one_node(op: str, arrs: list, **attrs) -> Graph:
    """A graph holding a single ``op`` node over inputs shaped like ``arrs``."""
    ins = [Value(TensorSpec(a.shape, DType.bfloat16 if a.dtype.name == "bfloat16" else from_numpy_dtype(a.dtype)),
                 f"x{i}") for i, a in enumerate(arrs)]
    opdef = get_op(op)
    attrs = check_attrs(opdef, attrs)
    specs = infer_node(opdef, [v.spec for v in ins], attrs)
    outs = [Value(s) for s in specs]
    return Graph(op, ins, outs, [Node(op, ins, outs, attrs)])


def _op_cases() -> list:
    rng = np.random.default_rng(0)
    cases: list = []
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 3.0], np.float32)
    u = np.array([0, 1, 0xFFFFFFFF, 0x80000000, 12345, 0xDEADBEEF], np.uint32)
    i32 = np.array([0, 1, -1, 2**31-1, -2**31, 7], np.int32)
    i64 = np.array([0, 1, -1, 2**62, -2**63, 7], np.int64)
    for op in ["abs","negative","sign","exp","log","log1p","sqrt","rsqrt","tanh","erf","sin","cos","floor","ceil","sigmoid","silu","isnan","isinf","isfinite"]:
        cases.append((op, [special], {}))
        cases.append((op, [f(3,4)], {}))
        cases.append((op, [special.astype(np.float16)], {}))
    for op in ["abs","negative","sign","isnan","isinf","isfinite"]:
        cases += [(op,[i32],{}),(op,[i64],{}),(op,[u],{})]
    cases += [("logical_not",[np.array([True,False])],{}),("bitwise_invert",[u],{}),("bitwise_invert",[i32],{}),("gelu",[f(5)],{}),("gelu",[f(5)],{"approximate":"tanh"})]
    for op in ["add","subtract","multiply","maximum","minimum","equal","not_equal","less","less_equal","greater","greater_equal"]:
        cases += [(op,[special, special[::-1].copy()],{}),(op,[f(2,1,3), f(4,1)],{}),(op,[u, u[::-1].copy()],{}),(op,[i32,i32[::-1].copy()],{}),(op,[i64,i64[::-1].copy()],{})]
    cases += [("divide",[special, special[::-1].copy()],{}),("pow",[np.abs(f(5))+0.1, f(5)],{}),("pow",[np.array([2,3,0],np.int64),np.array([3,2,0],np.int64)],{})]
    for op in ["floor_divide","remainder"]:
        cases += [(op,[np.array([7,-7,7,-7],np.int64),np.array([2,2,-2,-2],np.int64)],{}),(op,[f(6)*10,f(6)+3],{}),(op,[np.array([7,5,0xFFFFFFFF],np.uint32),np.array([2,3,7],np.uint32)],{}),(op,[np.array([7,-7],np.int32),np.array([2,-3],np.int32)],{})]
    for op in ["logical_and","logical_or","logical_xor"]:
        cases.append((op,[np.array([True,True,False,False]),np.array([True,False,True,False])],{}))
    for op in ["bitwise_and","bitwise_or","bitwise_xor"]:
        cases += [(op,[u,u[::-1].copy()],{}),(op,[i64,i64[::-1].copy()],{}),(op,[np.array([True,False]),np.array([True,True])],{})]
    cases += [("bitwise_left_shift",[u,np.array([0,1,31,4,13,7],np.uint32)],{}),("bitwise_right_shift",[u,np.array([0,1,31,4,13,7],np.uint32)],{}),
              ("bitwise_left_shift",[i32,np.array([0,1,31,4,13,7],np.int32)],{}),("bitwise_right_shift",[i64,np.array([0,1,63,4,13,7],np.int64)],{})]
    cases += [("where",[f(3,1)>0, f(1,4), f(3,4)],{}),("clip",[special],{"min":-1.0,"max":2.0}),("clip",[i64],{"min":-3}),("clip",[u],{"max":100})]
    for src in [special, i32, i64, u, np.array([True,False])]:
        for dst in ["bool","int32","int64","uint32","float16","bfloat16","float32","float64"]:
            if src.dtype.kind=='f' and dst in ("int32","int64","uint32"):
                cases.append(("astype",[np.array([1.9,-1.9,0.0,100.5],np.float32) if dst!="uint32" else np.array([1.9,0.0,100.5],np.float32)],{"dtype":dst}))
            else:
                cases.append(("astype",[src],{"dtype":dst}))
    for op in ["sum","prod","max","min"]:
        cases += [(op,[f(3,4)],{"axis":(1,)}),(op,[f(2,3,4)],{"axis":(0,2),"keepdims":True}),(op,[f(3,4)],{}),(op,[i32.reshape(2,3)],{"axis":(1,)}),(op,[u.reshape(2,3)],{"axis":(0,)}),(op,[special.reshape(2,4)],{"axis":(1,)})]
    cases += [("sum",[np.zeros((0,3),np.float32)],{"axis":(0,)}),("prod",[np.zeros((0,3),np.float32)],{"axis":(0,)}),("mean",[f(3,4)],{"axis":(1,)}),("mean",[special.astype(np.float16).reshape(2,4)],{"axis":(1,)}),("sum",[special.astype(np.float16)],{})]
    cases += [("any",[f(3,4)>0.5],{"axis":(1,)}),("all",[f(3,4)>-1],{"axis":(0,)}),("any",[np.zeros((0,2),bool)],{"axis":(0,)}),("logsumexp",[f(3,4)],{"axis":(1,)}),("logsumexp",[special.reshape(2,4)],{"axis":(1,)}),("logsumexp",[np.full((2,3),-np.inf,np.float32)],{"axis":(1,)})]
    for op in ["argmax","argmin"]:
        cases += [(op,[np.array([[1,3,3],[2,2,1]],np.int64)],{"axis":1}),(op,[np.array([[1.0,np.nan,5.0,np.nan],[1.0,-np.inf,np.inf,0]],np.float32)],{"axis":1}),(op,[f(3,4)],{"axis":0,"keepdims":True}),(op,[u.reshape(2,3)],{"axis":1})]
    cases += [("cumulative_sum",[i32.reshape(2,3)],{"axis":1}),("cumulative_sum",[f(3,4)],{"axis":0}),("cumulative_sum",[u],{"axis":0})]
    cases += [("matmul",[f(2,3),f(3,4)],{}),("matmul",[f(3),f(3,4)],{}),("matmul",[f(2,1,2,3),f(5,3,2)],{}),("matmul",[np.arange(6,dtype=np.int64).reshape(2,3),np.arange(6,dtype=np.int64).reshape(3,2)],{}),("matmul",[f(2,3).astype(np.float16),f(3,2).astype(np.float16)],{})]
    cases += [("einsum",[f(2,3,4),f(2,5,4)],{"subscripts":"bid,bjd->bij"}),("einsum",[f(3)],{"subscripts":"i->"})]
    cases += [("full",[],{"shape":(2,3),"fill_value":7,"dtype":"int32"}),("full",[],{"shape":(2,),"fill_value":-1,"dtype":"uint32"}),("full",[],{"shape":(2,),"fill_value":float('nan'),"dtype":"float32"}),
              ("arange",[],{"start":2,"stop":9,"step":3,"dtype":"int64"}),("arange",[],{"start":5,"stop":0,"step":-2,"dtype":"int32"}),("arange",[],{"stop":4,"dtype":"uint32"}),("arange",[],{"stop":3,"dtype":"float32"})]
    x234 = f(2,3,4)
    cases += [("reshape",[x234],{"shape":(6,4)}),("permute_dims",[x234],{"axes":(2,0,1)}),("expand_dims",[x234],{"axis":-1}),("squeeze",[f(1,3,1)],{"axis":(0,2)}),("broadcast_to",[f(3,1)],{"shape":(2,3,4)}),
              ("concat",[f(2,3),f(1,3)],{"axis":0}),("stack",[f(2,3),f(2,3)],{"axis":2}),("flip",[x234],{"axis":(0,2)}),("flip",[x234],{}),("repeat",[x234],{"repeats":2,"axis":1}),("repeat",[x234],{"repeats":2}),("tile",[f(2,3)],{"reps":(2,1,2)}),
              ("slice",[np.arange(10,dtype=np.int64)],{"starts":(1,),"stops":(8,),"steps":(3,)}),("slice",[x234],{"starts":(0,1,0),"stops":(2,3,4),"steps":(1,1,2)})]
    m = np.arange(12,dtype=np.int64).reshape(3,4)
    cases += [("dynamic_slice",[m,np.array(1,np.int64),np.array(2,np.int64)],{"sizes":(2,2)}),("dynamic_slice",[m,np.array(5,np.int64),np.array(-3,np.int64)],{"sizes":(2,2)}),
              ("dynamic_update_slice",[m,np.array([[-1,-2]],np.int64),np.array(2,np.int32),np.array(3,np.int32)],{}),("dynamic_update_slice",[f(2,5,3),f(2,1,3),np.array(0,np.int64),np.array(9,np.int64),np.array(0,np.int64)],{})]
    cases += [("take",[f(2,5),np.array([4,0,0],np.int64)],{"axis":1}),("take",[f(3,2),np.array([[1],[0]],np.int32)],{"axis":0}),("take_along_axis",[f(2,5),np.array([[4],[1]],np.int64)],{"axis":1}),("put_along_axis",[f(2,5),np.array([[4],[1]],np.int64),f(2,1)],{"axis":1})]
    tie = np.array([[3.0,1.0,np.nan,3.0,-np.inf,1.0],[0,0,0,1,1,np.inf]],np.float32)
    cases += [("sort",[tie],{}),("sort",[tie],{"descending":True}),("argsort",[tie],{}),("argsort",[tie],{"descending":True}),("argsort",[np.array([5,5,-(2**63),2**63-1],np.int64)],{"descending":True}),("argsort",[u],{}),("sort",[f(3,4)],{"axis":0}),
              ("top_k",[tie],{"k":3}),("top_k",[np.array([[1,5,5,2]],np.int64)],{"k":2}),("top_k",[f(3,6).astype(np.float16)],{"k":2})]
    cases += [("softmax",[f(3,4)],{"axis":1}),("softmax",[np.array([[0.0,-np.inf],[-np.inf,-np.inf]],np.float32)],{"axis":1}),("log_softmax",[f(3,4)],{"axis":0}),("rms_norm",[f(2,4),f(4)],{"eps":1e-6}),("layer_norm",[f(2,4),f(4),f(4)],{"eps":1e-5}),("rms_norm",[f(2,4).astype(np.float16),f(4).astype(np.float16)],{})]
    bf = np.array([1.5, -2.25, 3.0, 0.1], np.float32).astype(DType.bfloat16.to_numpy())
    cases += [("add", [bf, bf], {}), ("exp", [bf], {}), ("matmul", [bf.reshape(2, 2), bf.reshape(2, 2)], {}),
              ("softmax", [bf.reshape(1, 4)], {"axis": 1}), ("sum", [bf], {})]
    return [(f"{op}-{k}", one_node(op, arrs, **attrs), arrs) for k, (op, arrs, attrs) in enumerate(cases)]


def _symbolic_cases() -> list:
    """Graphs with symbolic input dims, each run at two sizes."""
    rng = np.random.default_rng(1)
    out = []

    def attention_like(x, past):
        b, s, h = x.shape
        y = xp.reshape(x, (b, s, 2, h // 2))
        kv = xp.concat([past, xp.permute_dims(y, (0, 2, 1, 3))], axis=2)
        mask = xp.arange(kv.shape[2])[None, :] < xp.full((b, 1), 2, dtype=xp.int64)
        return kv, xp.where(mask, 1.0, 0.0), xp.ones((b, kv.shape[2]), dtype=xp.int32), x[:, -1:, ::2]

    g = trace(attention_like, TensorSpec(("batch", "seq", 4), "float32", "x"),
              TensorSpec(("batch", 2, "past", 2), "float32", "past"))
    for b, s, p in [(1, 3, 0), (2, 1, 4)]:
        out.append((f"symbolic-attention-b{b}s{s}p{p}", g,
                    [rng.standard_normal((b, s, 4)).astype(np.float32), rng.standard_normal((b, 2, p, 2)).astype(np.float32)]))

    def dyn(x, pos):
        upd = xp.dynamic_update_slice(x, xp.ones((x.shape[0], 1), dtype=x.dtype), [0, pos])
        return upd, xp.dynamic_slice(x, [0, pos], (x.shape[0], 2)), xp.tile(x, (1, 2)), xp.repeat(x, 2, axis=0)

    g = trace(dyn, TensorSpec(("rows", "cols"), "float32"), TensorSpec((), "int64"))
    for r, c, p in [(2, 5, 1), (3, 4, 9)]:
        out.append((f"symbolic-dynamic-r{r}c{c}p{p}", g, [rng.standard_normal((r, c)).astype(np.float32), np.array(p)]))
    return out


def _control_cases() -> list:
    out = []

    def loop(x, n):
        def body(i, acc):
            return xp.cond(i % 2 == 0, lambda a: a + x, lambda a: a * 1.5, acc)
        total = xp.fori_loop(0, n, body, xp.zeros_like(x))
        k, v = xp.while_loop(lambda s: s[1] < 50.0, lambda s: (s[0] + 1, s[1] * 2.0 + 1.0), (0, xp.sum(xp.abs(x))))
        return total, k, v

    g = trace(loop, TensorSpec(("n",), "float32"), TensorSpec((), "int64"))
    out.append(("control-loop-cond", g, [np.array([1.0, -2.0, 0.5], np.float32), np.array(5)]))
    out.append(("control-loop-zero-trips", g, [np.array([30.0, 40.0], np.float32), np.array(0)]))
    return out


def _rng_cases() -> list:
    from tensorweave.ir import random

    def draws(key, logits):
        k1, k2 = random.split(key)[0], random.split(key)[1]
        return (random.random_bits(k1, (3, 5)), random.uniform(k2, (4,)), random.categorical(k1, logits),
                random.fold_in(key, 3), random.gumbel(k2, (2, 3)))

    g = trace(draws, TensorSpec((2,), "uint32"), TensorSpec(("batch", 6), "float32"))
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.2, 0.1, 0.1]] * 5, np.float32))
    return [("rng-threefry", g, [random.key(2026), logits])]


def all_cases() -> list:
    """(case id, graph, input arrays) for the parity matrix."""
    return _op_cases() + _symbolic_cases() + _control_cases() + _rng_cases()


def ops_covered() -> set:
    return {n.op for _, g, _ in all_cases() for n in g.walk()}
