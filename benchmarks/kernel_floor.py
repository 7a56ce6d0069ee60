"""The floor under a SmolLM2 decode step on ONNX Runtime: the products alone, against llama.cpp.

One decode step of SmolLM2-135M reads every weight once, in products of one row: per layer the
merged q/k/v product [576 -> 960], o [576 -> 576], the merged gate/up [576 -> 3072] and down
[1536 -> 576], 30 layers, then the tied head [576 -> 49152]. This script runs exactly those
products, chained in one ONNX graph (nothing else: no attention, norms, rotary, cache writes) in
one ``InferenceSession.run``, in the kernels tensorweave's onnx lowering uses:

- float32: ``MatMul`` on the layers (Gemm(transB) on the head), the kernels of the float32 rows;
- Q4_1 as tensorweave lowers it: ``MatMulNBits`` (4 bits, block 32, uint8 zero point, accuracy
  level 0 = float32 activations) plus the Q4_1 block-minimum term (block sums of x @ offsets),
  and the Q8_0 head as a float32 ``Gemm`` (its exact dense form);
- for information, ``MatMulNBits`` at accuracy level 4 (int8 activations per block, llama.cpp's
  scheme for its Q4_1 dot products), which tensorweave does not use (spec/ir.md section 6b).

and, in the same process, llama.cpp's whole decode step (every op, not only the products) on the
packaged GGUF (Q4_1 as shipped) and its F32 conversion, when ``llama_cpp`` is installed. Time per
step is the best of ``--repeats`` runs. When the products alone take longer than llama.cpp's whole
step, no graph around them can match it with these kernels.

    python benchmarks/kernel_floor.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

HIDDEN, INTER, LAYERS, VOCAB, KV = 576, 1536, 30, 49152, 192


def layer_shapes() -> list[tuple[int, int]]:
    """(k, n) of one layer's products after tensorweave merges siblings (q/k/v, gate/up)."""
    return [(HIDDEN, HIDDEN + 2 * KV), (HIDDEN, HIDDEN), (HIDDEN, 2 * INTER), (INTER, HIDDEN)]


class Graph:
    """A chain of products on a [1, 1, HIDDEN] row, built with onnx.helper."""

    def __init__(self) -> None:
        from onnx import numpy_helper

        self.nodes: list = []
        self.inits: list = []
        self.rng = np.random.default_rng(0)
        self._np = numpy_helper
        self.count = 0

    def const(self, arr: np.ndarray) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(self._np.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        out = f"n{len(self.nodes)}"
        domain = "com.microsoft" if op == "MatMulNBits" else ""
        self.nodes.append(helper.make_node(op, inputs, [out], domain=domain, **attrs))
        return out

    def first(self, x: str, k: int) -> str:
        """The first k columns of x (the next product's input width)."""
        i64 = lambda v: self.const(np.asarray([v], np.int64))  # noqa: E731
        return self.node("Slice", [x, i64(0), i64(k), i64(2)])

    def session(self, out: str):
        import onnxruntime as ort
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            self.nodes,
            "floor",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, HIDDEN])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
            self.inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]
        )
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def dense_head(g: Graph, x: str) -> str:
    w = (g.rng.standard_normal((VOCAB, HIDDEN)) * 0.02).astype(np.float32)
    flat = g.node("Reshape", [x, g.const(np.asarray([1, HIDDEN], np.int64))])
    return g.node("Gemm", [flat, g.const(w)], transB=1)


def float32_step() -> tuple:
    g = Graph()
    x = "x"
    for _ in range(LAYERS):
        for k, n in layer_shapes():
            w = (g.rng.standard_normal((k, n)) * 0.02).astype(np.float32)
            x = g.node("MatMul", [g.first(x, k), g.const(w)])
    return g.session(dense_head(g, x)), g


def q4_1_step(level: int) -> tuple:
    g = Graph()
    x = "x"
    for _ in range(LAYERS):
        for k, n in layer_shapes():
            blocks = k // 32
            xin = g.first(x, k)
            blob = g.const(g.rng.integers(0, 256, (n, blocks, 16), dtype=np.uint8))
            scales = g.const((g.rng.random(n * blocks) * 0.01).astype(np.float32))
            zero = g.const(np.zeros(n * ((blocks + 1) // 2), np.uint8))
            y = g.node(
                "MatMulNBits",
                [xin, blob, scales, zero],
                K=k,
                N=n,
                bits=4,
                block_size=32,
                accuracy_level=level,
            )
            sums = g.node(
                "ReduceSum",
                [
                    g.node("Reshape", [xin, g.const(np.asarray([0, 0, blocks, 32], np.int64))]),
                    g.const(np.asarray([-1], np.int64)),
                ],
                keepdims=0,
            )
            offsets = g.const((g.rng.standard_normal((blocks, n)) * 0.01).astype(np.float32))
            x = g.node("Add", [y, g.node("MatMul", [sums, offsets])])
    return g.session(dense_head(g, x)), g


def best_seconds(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def llama_cpp_step(path: str, repeats: int) -> float:
    """llama.cpp's seconds per decode step: 64 greedy steps after a 32-token prompt (the prompt's
    evaluation not counted), best of the runs."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=path, n_ctx=256, n_threads=os.cpu_count() or 1, n_batch=64, verbose=False
    )
    prompt = [int(t) for t in np.random.default_rng(0).integers(100, 30000, 32)]
    best = float("inf")
    for _ in range(max(3, repeats // 10)):
        llm.reset()
        llm.eval(prompt)
        t = time.perf_counter()
        for _ in range(64):
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            llm.eval([int(np.argmax(logits))])
        best = min(best, time.perf_counter() - t)
    return best / 64


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    from tensorweave.bench import machine

    print(machine())
    x = {"x": np.random.default_rng(1).standard_normal((1, 1, HIDDEN)).astype(np.float32)}
    rows = []
    for label, build in (
        ("onnx float32 products", float32_step),
        ("onnx Q4_1 products (level 0, as lowered)", lambda: q4_1_step(0)),
        ("onnx Q4_1 products (level 4, not used)", lambda: q4_1_step(4)),
    ):
        sess, _ = build()
        rows.append((label, best_seconds(lambda s=sess: s.run(None, x), args.repeats)))
        del sess
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        import tempfile

        from generate import f32_gguf

        from tensorweave.models import packaged_path

        q41 = packaged_path("smollm2")
        f32 = f32_gguf(q41, os.path.join(tempfile.gettempdir(), "smollm2-f32.gguf"))
        rows.append(("llama.cpp Q4_1 whole step", llama_cpp_step(q41, args.repeats)))
        rows.append(("llama.cpp F32 whole step", llama_cpp_step(f32, args.repeats)))
    else:
        print("llama.cpp: skipped (llama_cpp is not installed; make bench-deps builds it)")
    for label, sec in rows:
        print(f"  {label:44s} {sec * 1e3:7.2f} ms per step   ({1 / sec:6.1f} steps/s)")


if __name__ == "__main__":
    main()
