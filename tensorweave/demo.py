"""`make demo`: one sampling step written once, traced to the IR, run on every backend.

The step is what a language model's decode loop does per token: temperature,
top-k filtering, softmax and a seeded categorical draw from the IR's counter
RNG, plus a greedy argmax. It is traced once with a symbolic batch, printed,
then lowered to every installed backend; the tokens must be identical.
"""
from __future__ import annotations

import sys
import time

import numpy as np

import tensorweave as tw
from tensorweave.ir import TensorSpec, array_namespace, random


def sampling_step(logits, key):
    """Temperature 0.7, keep the top 5 logits, sample with Gumbel-max; also return the greedy token."""
    xp = array_namespace(logits)
    scaled = logits / 0.7
    top_vals, _ = xp.top_k(scaled, 5)
    kth = top_vals[:, -1:]
    filtered = xp.where(scaled < kth, xp.full_like(scaled, -xp.inf), scaled)
    probs = xp.softmax(filtered, axis=-1)
    sampled = random.categorical(key, filtered)
    greedy = xp.argmax(logits, axis=-1)
    return {"sampled": sampled, "greedy": greedy, "probs": probs}


def main() -> int:
    vocab = 32
    graph = tw.trace(sampling_step, TensorSpec(("batch", vocab), "float32", "logits"),
                     TensorSpec((2,), "uint32", "key"))
    print("IR of one sampling step (traced once, batch is symbolic):\n")
    print(graph)
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, vocab)).astype(np.float32) * 3
    key = random.key(42)
    print(f"\nrunning at batch=4 on: {', '.join(tw.backends.available())}\n")
    results = {}
    print("(lower = import the framework + lower the graph; first call includes compilation)")
    print(f"{'backend':<12}{'lower ms':>10}{'1st call ms':>13}{'call us':>10}  {'sampled':<18}{'greedy':<18}max|dprobs|")
    for name in tw.backends.available():
        t0 = time.perf_counter()
        prog = tw.lower(graph, backend=name)
        t1 = time.perf_counter()
        out = prog(logits, key)
        t2 = time.perf_counter()
        for _ in range(20):
            prog(logits, key)
        t3 = time.perf_counter()
        results[name] = out
        ref = results["numpy"]
        diff = float(np.max(np.abs(out[2] - ref[2])))
        print(f"{name:<12}{(t1 - t0) * 1e3:>10.1f}{(t2 - t1) * 1e3:>13.1f}{(t3 - t2) / 20 * 1e6:>10.0f}  "
              f"{str(out[0].tolist()):<18}{str(out[1].tolist()):<18}{diff:.1e}")
    same = all(np.array_equal(r[0], results["numpy"][0]) and np.array_equal(r[1], results["numpy"][1])
               for r in results.values())
    print(f"\ntokens identical on every backend: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
