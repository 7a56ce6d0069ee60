"""Generation speed: ``tw.generate`` (fused: prefill + while_loop decode, one program) on each
backend against ``transformers``' PyTorch ``generate()``, in one process on the same weights.

Models: SmolLM2-135M-Instruct in float32 (the packaged GGUF, dequantised by
``tw.models.load("smollm2")``; the transformers ``LlamaForCausalLM`` is built from the same config
and loaded with the same state dict) and GPT-2 124M (random weights from a fixed seed, copied
into tensorweave with ``from_transformers``). Batch 1, a 32-token prompt, exactly 64 new tokens
(``min_new_tokens=64``, so EOS cannot end a row early), greedy and 4-beam search.

Reported per (model, mode, runner): steady tokens/s (new tokens of the returned sequence per
second, best of ``--repeats`` runs after a warm-up call), the first call's extra time (trace +
lower + framework compile, excluded from the steady number), the ratio to transformers and
whether the tokens equal transformers'. The memory-bandwidth roofline is measured bandwidth
(a large numpy copy: read + write bytes / time) divided by the float32 weight bytes one decode
step must read (every parameter once; a tied embedding counted once); beam search reads the
weights once per step for all beams, so its roofline in steps/s is the same.

    python benchmarks/generate.py [--models smollm2,gpt2] [--modes greedy,beam]
                                  [--backends torch,jax,onnx,tensorflow] [--repeats 2]
(add ``numpy`` to ``--backends`` for the reference interpreter; it is slow.)
"""

from __future__ import annotations

import argparse
import gc
import os
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="smollm2,gpt2")
    ap.add_argument("--modes", default="greedy,beam")
    ap.add_argument("--backends", default="torch,jax,onnx,tensorflow")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if not registry.is_installed(b):
            raise SystemExit(registry.missing_message(b))
    bw = measure_bandwidth()
    print(
        f"measured memory bandwidth (numpy copy, read+write): {bw / 1e9:.2f} GB/s; "
        f"{os.cpu_count()} CPU cores; torch threads {torch.get_num_threads()}"
    )
    rows = []
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
        del model, hf
        generation_module.clear_cache()  # free the lowered programs (weight copies)
        gc.collect()
    print("\nmodel    mode   runner        tok/s   x transformers  compile s  same tokens  % roofline")
    for name, mode, runner, tps, ratio, comp, same, frac in rows:
        print(
            f"{name:8s} {mode:6s} {runner:12s} {tps:7.1f}   {ratio:6.2f}          {comp:7.2f}    "
            f"{'yes' if same else 'NO':4s}         {100 * frac:5.1f}"
        )


if __name__ == "__main__":
    main()
