"""Model-level checks behind ``tensorweave parity`` and ``tensorweave bench``.

- :func:`model_parity`: one forward pass and one greedy generation of a real model on each
  backend, compared with the numpy reference: max |logit difference|, tokens identical, time. The
  report's ``ok`` gates a user's CI.
- :func:`generation_benchmark`: greedy tokens/s per backend after a warm-up call (the first call
  traces and compiles), with the machine named. The full comparison against transformers and
  llama.cpp is ``benchmarks/generate.py``; this is the quick table.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

#: test hook: ``TENSORWEAVE_PARITY_PERTURB="torch:0.5"`` adds 0.5 to that backend's logits in
#: :func:`model_parity`, so a test can check that a mismatch fails the command
PERTURB_ENV = "TENSORWEAVE_PARITY_PERTURB"


def release_programs() -> None:
    """Drop the compiled generation programs (each holds a copy of the weights in its framework)
    before the next backend compiles its own, so a run over every backend holds one at a time."""
    import gc

    from .generation import clear_cache

    clear_cache()
    gc.collect()


@dataclass
class ParityRow:
    backend: str
    max_abs_diff: float
    tokens_equal: bool
    seconds: float
    atol: float

    @property
    def ok(self) -> bool:
        return self.tokens_equal and self.max_abs_diff <= self.atol


@dataclass
class ModelParityReport:
    model: str
    rows: list[ParityRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def table(self) -> str:
        lines = [
            f"parity of {self.model} against numpy (forward logits and greedy tokens)",
            f"{'backend':<12}{'max |diff|':>12}{'atol':>10}{'tokens':>9}{'time s':>9}  result",
        ]
        for r in self.rows:
            lines.append(
                f"{r.backend:<12}{r.max_abs_diff:>12.2e}{r.atol:>10.1e}{'equal' if r.tokens_equal else 'DIFFER':>9}"
                f"{r.seconds:>9.1f}  {'ok' if r.ok else 'MISMATCH'}"
            )
        lines.append("all backends agree" if self.ok else "MISMATCH: see the rows above")
        return "\n".join(lines)


def _perturbation(backend: str) -> float:
    spec = os.environ.get(PERTURB_ENV, "")
    for item in filter(None, spec.split(",")):
        name, _, amount = item.partition(":")
        if name.strip() == backend:
            return float(amount or 1.0)
    return 0.0


def _prompt(model: Any, prompt: str) -> np.ndarray:
    if model.tokenizer is not None:
        ids = model.tokenizer.encode(prompt)
    else:  # no tokenizer: a fixed id sequence inside the vocabulary
        ids = list(np.arange(1, 9) % model.config.vocab_size)
    return np.asarray([ids], np.int64)


def model_parity(
    model: Any,
    backends: Sequence[str],
    prompt: str = "The capital of France is",
    max_new_tokens: int = 8,
    atol: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ModelParityReport:
    """Each backend's last-position logits and greedy tokens against numpy's. ``atol`` defaults
    to 1e-3 per layer (float32 summation order drifts with depth)."""
    from .generation import generate

    if not (model.is_decoder or model.is_encoder_decoder):
        raise ValueError(f"parity runs generation: {model.model_type} is not a generative model")
    if atol is None:
        atol = 1e-3 * max(
            1, int(getattr(model.config, "num_hidden_layers", getattr(model.config, "num_layers", 1)))
        )
    ids = _prompt(model, prompt)
    mask = np.ones_like(ids)

    def run(name: str) -> tuple[np.ndarray, np.ndarray, float]:
        start = time.perf_counter()
        if model.is_encoder_decoder:
            dec = np.zeros((1, 1), np.int64)
            logits = np.asarray(model(ids, mask, decoder_input_ids=dec, backend=name)["logits"])[:, -1]
        else:
            logits = np.asarray(model(ids, mask, backend=name)["logits"])[:, -1]
        tokens = np.asarray(generate(model, ids, mask, backend=name, max_new_tokens=max_new_tokens))
        return logits.astype(np.float64), tokens, time.perf_counter() - start

    if progress:
        progress("numpy (reference)")
    ref_logits, ref_tokens, _ = run("numpy")
    report = ModelParityReport(getattr(model, "source", None) or model.model_type)
    for name in backends:
        if name == "numpy":
            continue
        if progress:
            progress(name)
        logits, tokens, seconds = run(name)
        logits = logits + _perturbation(name)
        diff = float(np.max(np.abs(logits - ref_logits)))
        same = tokens.shape == ref_tokens.shape and bool(np.array_equal(tokens, ref_tokens))
        report.rows.append(ParityRow(name, diff, same, seconds, atol))
        release_programs()
    return report


def machine() -> str:
    """CPU model, cores and the instruction-set flags that pick kernels (AVX2 / AVX-512 / AMX)."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu in ("", platform.machine()):
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{cpu}, {os.cpu_count()} cores, {' '.join(isa) or 'no AVX2'}"


def generation_benchmark(
    model: Any,
    backends: Sequence[str],
    prompt_length: int = 32,
    max_new_tokens: int = 32,
    progress: Callable[[str], None] | None = None,
) -> str:
    """A table of greedy tokens/s per backend (best of 2 after a compiling first call)."""
    from .generation import generate

    vocab = int(model.config.vocab_size)
    ids = (np.arange(prompt_length, dtype=np.int64)[None, :] * 7919 + 11) % vocab
    lines = [
        f"{getattr(model, 'source', None) or model.model_type}: greedy, batch 1, {prompt_length}-token prompt, "
        f"{max_new_tokens} new tokens; {machine()}",
        f"{'backend':<12}{'first call s':>14}{'tokens/s':>10}",
    ]
    for name in backends:
        if progress:
            progress(f"bench {name}")
        start = time.perf_counter()
        generate(model, ids, backend=name, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)
        first = time.perf_counter() - start
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            generate(model, ids, backend=name, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)
            best = min(best, time.perf_counter() - start)
        lines.append(f"{name:<12}{first:>14.1f}{max_new_tokens / best:>10.1f}")
        release_programs()
    return "\n".join(lines)
