"""Generation speed: ``tw.generate`` (fused: prefill + while_loop decode, one program) on each
backend against ``transformers``' PyTorch ``generate()``, in one process on the same weights.

Models: SmolLM2-135M-Instruct in float32 (the packaged GGUF, dequantised by
``tw.models.load("smollm2")``; the transformers ``LlamaForCausalLM`` is built from the same config
and loaded with the same state dict) and GPT-2 124M (random weights from a fixed seed, copied
into tensorweave with ``from_transformers``). Batch 1, a 32-token prompt, exactly 64 new tokens
(``min_new_tokens=64``, so EOS cannot end a row early), greedy and 4-beam search.

llama.cpp (``llama-cpp-python``, built from source by ``make bench-deps`` with AVX2 and without
AVX-512/AMX, which crashed on quantized types on an AMX machine) runs SmolLM2 greedy on the same
GGUF file: as shipped (Q4_1) and converted to F32 (the weights tensorweave runs, dequantised), with
``n_threads`` = all cores; it is skipped, with a line saying so, when llama_cpp is not installed.
tensorweave also runs SmolLM2 with the file's Q4_1 / Q8_0 blocks kept (``--quantized onnx``, the
default: ONNX Runtime's MatMulNBits; the other backends dequantise per call and are slower than
their float32 rows). onnxruntime-genai (``--peers genai``, the default) runs the optimum-style folder tensorweave
exports (``causal-lm-with-past``, with ``genai_config.json``), greedy, both models.

Also reported: the machine (CPU, cores, AVX2/AVX-512/AMX), the re-prompt cost (a warm model given a
prompt of another length and another ``max_new_tokens``: the any-prompt program serves it without
a compile), SmolLM2's first new token in a fresh process (`max_new_tokens=1`: trace, lowering,
the framework's compile, read from its persistent cache where it has one, and the prefill), peak
memory, and a JSON copy of every row in ``benchmarks/results/<date>-<machine>.json``.

Reported per (model, mode, runner): steady tokens/s (new tokens of the returned sequence per
second, best of ``--repeats`` runs after a warm-up call), the first call's extra time (trace +
lower + framework compile, excluded from the steady number), the ratio to transformers and
whether the tokens equal transformers'. The memory-bandwidth roofline is measured bandwidth
(a large numpy copy: read + write bytes / time) divided by the float32 weight bytes one decode
step must read (every parameter once; a tied embedding counted once); beam search reads the
weights once per step for all beams, so its roofline in steps/s is the same.

    python benchmarks/generate.py [--models smollm2,gpt2] [--modes greedy,beam]
                                  [--backends torch,jax,onnx,tensorflow] [--repeats 2] [--peers genai|none]
(add ``numpy`` to ``--backends`` for the reference interpreter; it is slow.)
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import time
import warnings

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorweave as tw  # noqa: E402
import tensorweave.generation as generation_module  # noqa: E402
from tensorweave.backends import registry  # noqa: E402

PROMPT, NEW, BEAMS = 32, 64, 4


def measure_bandwidth(mb: int = 512, repeats: int = 5) -> float:
    """Bytes per second of ``np.copyto`` on a ``mb`` MiB float32 array (read + write counted)."""
    src = np.ones(mb * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeats))
    return 2 * src.nbytes / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def build_smollm2():
    import torch
    import transformers

    ours = tw.models.load("smollm2")
    d = {k: v for k, v in ours.config.to_dict().items() if k not in ("model_type", "architectures")}
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**d)).eval()
    state = {k: torch.from_numpy(v) for k, v in ours.params.items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and hf.config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    hf.tie_weights()
    return ours, hf


def build_gpt2():
    import torch
    import transformers

    from tensorweave.models import from_transformers

    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    return from_transformers(hf), hf


BUILDERS = {"smollm2": build_smollm2, "gpt2": build_gpt2}


def weight_bytes(model) -> int:
    """float32 bytes of the distinct parameters (a tied head is the embedding itself)."""
    return 4 * model.num_parameters()


def run_hf(hf, ids, kw: dict, repeats: int) -> tuple[np.ndarray, float, float]:
    import torch

    t_ids = torch.from_numpy(ids)
    mask = torch.ones_like(t_ids)

    def call():
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return hf.generate(t_ids, attention_mask=mask, **kw).numpy()

    first_t = time.perf_counter()
    out = call()
    first = time.perf_counter() - first_t
    steady = min(_timed(call) for _ in range(repeats))
    return out, first, steady


def run_tw(model, ids, backend: str, kw: dict, repeats: int) -> tuple[np.ndarray, float, float]:
    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tw.generate(model, ids, np.ones_like(ids), backend=backend, **kw)

    first_t = time.perf_counter()
    out = call()
    first = time.perf_counter() - first_t
    steady = min(_timed(call) for _ in range(repeats))
    return out, first, steady


def run_llama_cpp(gguf_path: str, ids, new: int, repeats: int) -> tuple[np.ndarray, float, float]:
    """Greedy decoding of ``new`` tokens with llama.cpp on ``gguf_path`` (EOS ignored, like
    ``min_new_tokens``); returns (sequence, first-call seconds, best steady seconds)."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=gguf_path,
        n_ctx=256,
        n_threads=os.cpu_count() or 1,
        n_batch=64,
        verbose=False,
        logits_all=False,
    )

    def call() -> np.ndarray:
        llm.reset()
        tokens = [int(t) for t in ids[0]]
        llm.eval(tokens)
        out = []
        for _ in range(new):
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            tok = int(np.argmax(logits))
            out.append(tok)
            llm.eval([tok])
        return np.asarray([tokens + out], np.int64)

    first_t = time.perf_counter()
    seq = call()
    first = time.perf_counter() - first_t
    steady = min(_timed(call) for _ in range(repeats))
    return seq, first, steady


def run_genai(model, ids, new: int, repeats: int) -> tuple[np.ndarray, float, float]:
    """Greedy decoding of ``new`` tokens with onnxruntime-genai on the optimum-style folder
    ``tw.export(model, "causal-lm-with-past", "onnx", folder)`` writes (EOS ignored through
    ``min_length``); returns (sequence, first-call seconds incl. loading the folder, best steady
    seconds)."""
    import tempfile

    import onnxruntime_genai as og

    folder = os.path.join(tempfile.mkdtemp(prefix="tw-bench-genai-"), "model")
    tw.export(model, "causal-lm-with-past", "onnx", folder)
    first_t = time.perf_counter()
    gmodel = og.Model(folder)
    length = ids.shape[1] + new

    def call() -> np.ndarray:
        params = og.GeneratorParams(gmodel)
        params.set_search_options(max_length=length, min_length=length, do_sample=False)
        generator = og.Generator(gmodel, params)
        generator.append_tokens(ids)
        while not generator.is_done():
            generator.generate_next_token()
        return np.asarray([generator.get_sequence(0)], np.int64)

    seq = call()
    first = time.perf_counter() - first_t
    steady = min(_timed(call) for _ in range(repeats))
    return seq, first, steady


def peer_row(name: str, label: str, run, hf_ref, hf_tps: float, roof: float, rows: list) -> None:
    """Run a greedy peer (``run() -> (sequence, first s, steady s)``), print its line and add its row;
    a failure is printed and skipped."""
    try:
        out, first, steady = run()
    except Exception as exc:  # report and go on
        print(f"  greedy {label:14s} FAILED: {type(exc).__name__}: {str(exc)[:200]}")
        return
    tps = NEW / steady
    same = out.shape == hf_ref.shape and bool(np.array_equal(out, hf_ref))
    print(
        f"  greedy {label:14s} {tps:8.1f} tok/s   (first call {first:6.2f} s)   x{tps / hf_tps:5.2f} vs "
        f"transformers   {100 * tps / roof:5.1f}% of fp32 roofline   tokens {'identical' if same else 'DIFFER'}"
    )
    rows.append((name, "greedy", label, tps, tps / hf_tps, first - steady, same, tps / roof))


def genai_rows(model, name: str, ids, hf_ref, hf_tps: float, roof: float, repeats: int, rows: list) -> None:
    import importlib.util

    if importlib.util.find_spec("onnxruntime_genai") is None:
        print("  greedy ort-genai      skipped: onnxruntime-genai is not installed (make test installs it)")
        return
    peer_row(name, "ort-genai", lambda: run_genai(model, ids, NEW, repeats), hf_ref, hf_tps, roof, rows)


def f32_gguf(src: str, dst: str) -> str:
    """The same GGUF with every tensor dequantised to F32 (llama.cpp's own requantizer)."""
    import llama_cpp

    if not os.path.exists(dst):
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_ALL_F32
        params.allow_requantize = True
        rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
        if rc != 0:
            raise RuntimeError(f"llama_model_quantize to F32 failed ({rc})")
    return dst


def llama_cpp_rows(ids, hf_ref, hf_tps: float, roof: float, repeats: int, rows: list) -> None:
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        print("  greedy llama.cpp      skipped: llama_cpp is not installed (make bench-deps builds it)")
        return
    import tempfile

    from tensorweave.models import packaged_path

    q41 = packaged_path("smollm2")
    f32 = f32_gguf(q41, os.path.join(tempfile.gettempdir(), "smollm2-f32.gguf"))
    for label, path in (("llama.cpp Q4_1", q41), ("llama.cpp F32", f32)):
        peer_row(
            "smollm2", label, lambda p=path: run_llama_cpp(p, ids, NEW, repeats), hf_ref, hf_tps, roof, rows
        )


def quantized_rows(ids, hf_ref, hf_tps: float, roof: float, repeats: int, rows: list, backends: list) -> None:
    """SmolLM2 greedy with the GGUF's Q4_1 / Q8_0 blocks kept (``load("smollm2", quantized=True)``)
    on each of ``backends``; tokens compared with transformers on the dequantised weights (the
    quantized path computes exactly those weights) and the speed with llama.cpp Q4_1 when it ran."""
    model = tw.models.load("smollm2", quantized=True)
    kw = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
    cpp = [r[3] for r in rows if r[0] == "smollm2" and r[2] == "llama.cpp Q4_1"]
    for b in backends:
        label = f"tw/{b} Q4_1"
        try:
            out, first, steady = run_tw(model, ids, b, kw, repeats)
        except Exception as exc:  # report and go on
            print(f"  greedy {label:14s} FAILED: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        tps = NEW / steady
        same = out.shape == hf_ref.shape and bool(np.array_equal(out, hf_ref))
        vs_cpp = f"x{tps / cpp[0]:5.2f} vs llama.cpp Q4_1" if cpp else "llama.cpp not run"
        print(
            f"  greedy {label:14s} {tps:8.1f} tok/s   (compile {first - steady:6.2f} s)   x{tps / hf_tps:5.2f} vs "
            f"transformers   {vs_cpp}   tokens {'identical' if same else 'DIFFER'}"
        )
        rows.append(("smollm2", "greedy", label, tps, tps / hf_tps, first - steady, same, tps / roof))
    del model


NEW_PROCESS = """
import sys, time, warnings
import numpy as np
import tensorweave as tw
tw.log.disable_progress_bars()
model = tw.models.load(sys.argv[1])
ids = np.random.default_rng(0).integers(100, min(model.config.vocab_size, 30000), size=(1, int(sys.argv[3])))
warnings.simplefilter("ignore")
t = time.perf_counter()
tw.generate(model, ids, np.ones_like(ids), backend=sys.argv[2], max_new_tokens=1, min_new_tokens=1)
print("FIRST", time.perf_counter() - t)
"""


def first_token_new_process(name: str, backend: str) -> float | None:
    """Seconds from a loaded model to its first new token in a fresh process (trace + lower +
    framework compile + prefill; the persistent compile cache is warm from this run), or None."""
    import subprocess
    import sys

    try:
        out = subprocess.run(
            [sys.executable, "-c", NEW_PROCESS, name, backend, str(PROMPT)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        return float(out.stdout.split("FIRST")[-1].split()[0])
    except Exception:  # reported as not measured
        return None


def reprompt_seconds(model, backend: str, vocab: int) -> float:
    """Seconds for a warm model's call with a new prompt length and a new max_new_tokens (8 new
    tokens; no compile where the any-prompt program serves the settings)."""
    ids = np.random.default_rng(1).integers(100, min(vocab, 30000), size=(1, PROMPT + 5)).astype(np.int64)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the measured calls' settings (min_new_tokens=NEW), so only the lengths are new
        tw.generate(model, ids, backend=backend, max_new_tokens=8, min_new_tokens=NEW)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="smollm2,gpt2")
    ap.add_argument("--modes", default="greedy,beam")
    ap.add_argument("--backends", default="torch,jax,onnx,tensorflow")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--peers", default="genai", help="extra comparators: genai (onnxruntime-genai), none")
    ap.add_argument(
        "--quantized", default="onnx", help="backends that also run SmolLM2 with its Q4_1 blocks kept"
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if not registry.is_installed(b):
            raise SystemExit(registry.missing_message(b))
    from tensorweave.bench import machine

    bw = measure_bandwidth()
    print(
        f"machine: {machine()}\nmeasured memory bandwidth (numpy copy, read+write): {bw / 1e9:.2f} GB/s; "
        f"torch threads {torch.get_num_threads()}"
    )
    reprompt: dict = {}
    first_token: dict = {}
    rows: list = []
    for name in args.models.split(","):
        t = time.perf_counter()
        model, hf = BUILDERS[name]()
        wb = weight_bytes(model)
        roof = bw / wb
        print(
            f"\n== {name}: {model.num_parameters() / 1e6:.1f}M parameters, {wb / 2**20:.0f} MiB fp32 "
            f"(built in {time.perf_counter() - t:.1f} s); roofline {roof:.1f} tokens/s (steps/s) "
            f"at {bw / 1e9:.2f} GB/s"
        )
        ids = (
            np.random.default_rng(0)
            .integers(100, min(model.config.vocab_size, 30000), size=(1, PROMPT))
            .astype(np.int64)
        )
        for mode in args.modes.split(","):
            kw = dict(
                max_new_tokens=NEW,
                min_new_tokens=NEW,
                do_sample=False,
                num_beams=BEAMS if mode == "beam" else 1,
            )
            ref, first, steady = run_hf(hf, ids, kw, args.repeats)
            hf_tps = NEW / steady
            print(
                f"  {mode:6s} transformers  {hf_tps:8.1f} tok/s   (first call {first:6.2f} s)   "
                f"{100 * hf_tps / roof:5.1f}% of roofline"
            )
            rows.append((name, mode, "transformers", hf_tps, 1.0, first - steady, True, hf_tps / roof))
            if name == "smollm2" and mode == "greedy":
                llama_cpp_rows(ids, ref, hf_tps, roof, args.repeats, rows)
                quantized_rows(
                    ids, ref, hf_tps, roof, args.repeats, rows, [b for b in backends if b in args.quantized]
                )
            if mode == "greedy" and "genai" in args.peers:
                genai_rows(model, name, ids, ref, hf_tps, roof, args.repeats, rows)
            for b in backends:
                try:
                    out, first, steady = run_tw(model, ids, b, kw, args.repeats)
                except Exception as exc:  # report and go on with the other backends
                    print(f"  {mode:6s} tw/{b:12s} FAILED: {type(exc).__name__}: {str(exc)[:200]}")
                    continue
                tps = NEW / steady
                same = out.shape == ref.shape and bool(np.array_equal(out, ref))
                print(
                    f"  {mode:6s} tw/{b:10s} {tps:8.1f} tok/s   (compile {first - steady:6.2f} s)   "
                    f"x{tps / hf_tps:5.2f} vs transformers   {100 * tps / roof:5.1f}% of roofline   "
                    f"tokens {'identical' if same else 'DIFFER'}"
                )
                rows.append((name, mode, b, tps, tps / hf_tps, first - steady, same, tps / roof))
                if mode == "greedy":
                    reprompt[(name, b)] = reprompt_seconds(model, b, model.config.vocab_size)
                    print(
                        f"         tw/{b:10s} new prompt length + max_new_tokens: {reprompt[(name, b)]:6.2f} s"
                    )
                    if name == "smollm2":
                        ft = first_token_new_process(name, b)
                        first_token[(name, b)] = ft
                        print(
                            f"         tw/{b:10s} first token in a new process (warm persistent cache): "
                            + (f"{ft:6.2f} s" if ft is not None else "not measured")
                        )
        del model, hf
        generation_module.clear_cache()  # free the lowered programs (weight copies)
        gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\npeak memory (max RSS of this process): {peak:.2f} GiB")
    print("\nmodel    mode   runner          tok/s   x transformers  compile s  same tokens  % roofline")
    for name, mode, runner, tps, ratio, comp, same, frac in rows:
        print(
            f"{name:8s} {mode:6s} {runner:14s} {tps:7.1f}   {ratio:6.2f}          {comp:7.2f}    "
            f"{'yes' if same else 'NO':4s}         {100 * frac:5.1f}"
        )
    write_results(rows, reprompt, bw, peak, first_token)


def write_results(rows: list, reprompt: dict, bw: float, peak: float, first_token: dict | None = None) -> str:
    """Every row as JSON in benchmarks/results/<date>-<machine>.json."""
    from tensorweave.bench import machine

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(here, exist_ok=True)
    tag = platform.node().split(".")[0] or "machine"
    path = os.path.join(here, f"{datetime.date.today().isoformat()}-{tag}.json")
    doc = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "bandwidth_gb_s": round(bw / 1e9, 2),
        "peak_rss_gib": round(peak, 2),
        "prompt": PROMPT,
        "new_tokens": NEW,
        "beams": BEAMS,
        "rows": [
            {"model": n, "mode": m, "runner": r, "tok_s": round(t, 2), "x_transformers": round(x, 3),
             "compile_s": round(c, 2), "same_tokens": s, "roofline_fraction": round(f, 3)}
            for n, m, r, t, x, c, s, f in rows
        ],
        "reprompt_s": {f"{n}/{b}": round(v, 2) for (n, b), v in reprompt.items()},
        "first_token_new_process_s": {
            f"{n}/{b}": (None if v is None else round(v, 2)) for (n, b), v in (first_token or {}).items()
        },
    }  # fmt: skip
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"results written to {path}")
    return path


if __name__ == "__main__":
    main()
