"""Time per AdamW step on ~124M float32 parameters: our adapters vs the frameworks' own AdamW.

    .venv/bin/python benchmarks/optim.py [--params 124e6] [--steps 5] [--only torch,jax] [--no-compile]

In one process, one variant after another on the same parameter shapes (a few tensors summing to
``--params``): torch.optim.AdamW(foreach=True), torch.optim.AdamW(fused=True), our
``tensorweave.optim.torch.AdamW`` (``compile=False``: the eager program; ``compile=True``, which
``compile="auto"`` picks for calls of >= 4M elements); optax.adamw vs our
``tensorweave.optim.optax.adamw`` (both inside one ``jax.jit`` step with donated params and state).
Printed per variant: the first step (tracing / lowering / compiling included), the median of the
timed steps, the ratio to the fastest peer, and the peak resident memory (RSS, sampled every 2 ms
from /proc while the variant runs; torch allocations are invisible to tracemalloc) above the RSS
before the variant. The memory-bandwidth bound is ``7 * 4 bytes * params / bandwidth``: an AdamW
step must read p, g, m, v and write p, m, v; the bandwidth is measured with a large numpy copy
(2 x the array's bytes moved per copy).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import threading
import time
from typing import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shapes_for(total: int) -> list[tuple[int, ...]]:
    """A GPT-2-small-like mix: an embedding, big matrices and one vector taking the remainder."""
    shapes = [(32000, 1024), (3072, 8192), (3072, 8192), (4096, 4096)]
    scale = total / 124_000_000
    if scale != 1:
        shapes = [(max(1, int(a * scale)), b) for a, b in shapes]
    rest = total - sum(a * b for a, b in shapes)
    if rest < 0:
        raise SystemExit(f"--params {total} is too small for the tensor mix; use at least 1e6")
    return shapes + ([(rest,)] if rest else [])


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples RSS in a thread while the ``with`` block runs; ``.peak`` in bytes."""

    def __enter__(self) -> "PeakRSS":
        self.base = rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def bandwidth(nbytes: int = 1 << 30, repeats: int = 5) -> float:
    """Bytes/s of a numpy copy (read + write counted) of an ``nbytes`` array, best of ``repeats``
    (numpy copies on one thread)."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best


def torch_bandwidth(nbytes: int = 1 << 30, repeats: int = 5) -> float | None:
    """The same with ``torch.Tensor.copy_`` (all of torch's intra-op threads); None without torch."""
    try:
        import torch
    except ImportError:
        return None
    src = torch.ones(nbytes // 8, dtype=torch.float64)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t)
    return 2 * src.numel() * 8 / best


def run_variant(name: str, make: Callable[[], Callable[[], None]], steps: int, results: list) -> None:
    gc.collect()
    with PeakRSS() as mem:
        t = time.perf_counter()
        step = make()
        step()  # first step: state allocation, tracing, lowering, compiling
        first = time.perf_counter() - t
        step()
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
    results.append((name, first, statistics.median(times), min(times), mem.peak - mem.base, mem.peak))
    print(
        f"  {name:<40} first {first:8.2f} s   median {statistics.median(times) * 1e3:9.1f} ms   "
        f"min {min(times) * 1e3:9.1f} ms   peak RSS +{(mem.peak - mem.base) / 2**30:5.2f} GiB "
        f"(total {mem.peak / 2**30:5.2f} GiB)",
        flush=True,
    )
    del step
    gc.collect()


def torch_variants(shapes, steps: int, compile: bool, results: list) -> None:
    import torch

    import tensorweave.optim as two

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-2
    kw = dict(lr=1e-3, weight_decay=0.01)

    def stepper(opt) -> Callable[[], None]:
        return opt.step

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    run_variant(
        "torch.optim.AdamW(foreach=True)",
        lambda: stepper(torch.optim.AdamW(params, foreach=True, **kw)),
        steps,
        results,
    )
    run_variant(
        "torch.optim.AdamW(fused=True)",
        lambda: stepper(torch.optim.AdamW(params, fused=True, **kw)),
        steps,
        results,
    )
    run_variant(
        "tensorweave torch AdamW (compile=False)",
        lambda: stepper(two.torch.AdamW(params, no_deprecation_warning=True, compile=False, **kw)),
        steps,
        results,
    )
    if compile:
        run_variant(
            "tensorweave torch AdamW (compile=True)",
            lambda: stepper(two.torch.AdamW(params, no_deprecation_warning=True, compile=True, **kw)),
            steps,
            results,
        )
    params.clear()  # release the tensors before the next variant
    gc.collect()


def jax_variants(shapes, steps: int, results: list) -> None:
    import jax
    import jax.numpy as jnp
    import optax

    import tensorweave.optim as two

    keys = jax.random.split(jax.random.PRNGKey(0), 2 * len(shapes))
    params0 = {f"p{i}": jax.random.normal(keys[i], s, jnp.float32) for i, s in enumerate(shapes)}
    grads = {
        f"p{i}": jax.random.normal(keys[len(shapes) + i], s, jnp.float32) * 1e-2 for i, s in enumerate(shapes)
    }
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}", flush=True)

    def make(tx) -> Callable[[], Callable[[], None]]:
        def build() -> Callable[[], None]:
            box = {"p": jax.tree.map(jnp.copy, params0)}
            box["s"] = tx.init(box["p"])

            def update(p, s, g):
                u, s = tx.update(g, s, p)
                return optax.apply_updates(p, u), s

            update = jax.jit(update, donate_argnums=(0, 1))

            def step() -> None:
                box["p"], box["s"] = update(box["p"], box["s"], grads)
                jax.block_until_ready(box["p"])

            return step

        return build

    run_variant(
        "optax.adamw (jit, donated)", make(optax.adamw(1e-3, eps=1e-6, weight_decay=0.01)), steps, results
    )
    run_variant(
        "tensorweave optax adamw (jit, donated)",
        make(two.optax.adamw(1e-3, weight_decay=0.01)),
        steps,
        results,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=float, default=124e6)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--only", default="torch,jax")
    ap.add_argument(
        "--no-compile", action="store_true", help="skip the torch.compile variant (slow to compile)"
    )
    args = ap.parse_args()
    total = int(args.params)
    shapes = shapes_for(total)
    bw_np = bandwidth()
    bw_torch = torch_bandwidth() if "torch" in args.only else None
    bw = max(bw_np, bw_torch or 0.0)
    bound = 7 * 4 * total / bw
    print(
        f"{total / 1e6:.1f}M float32 parameters in {len(shapes)} tensors {shapes}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"copy bandwidth: numpy {bw_np / 1e9:.2f} GB/s"
        + (f", torch copy_ {bw_torch / 1e9:.2f} GB/s" if bw_torch else "")
        + f" -> AdamW bandwidth bound 7*4*params/max(bw) = {bound * 1e3:.1f} ms (numpy alone: "
        f"{7 * 4 * total / bw_np * 1e3:.1f} ms)",
        flush=True,
    )
    results: list = []
    only = set(args.only.split(","))
    if "torch" in only:
        torch_variants(shapes, args.steps, not args.no_compile, results)
    if "jax" in only:
        jax_variants(shapes, args.steps, results)
    print("\nsummary (median per step; ratio to the faster framework peer; x bound)")
    peers = {
        "torch": [r for r in results if r[0].startswith("torch.optim")],
        "jax": [r for r in results if r[0].startswith("optax")],
    }
    for name, first, med, best, delta, peak in results:
        fam = "torch" if "torch" in name else "jax"
        fastest = min((r[2] for r in peers[fam]), default=med)
        print(
            f"  {name:<40} {med * 1e3:9.1f} ms  {med / fastest:5.2f}x peer  {med / bound:5.2f}x bound  "
            f"+{delta / 2**30:.2f} GiB"
        )


if __name__ == "__main__":
    main()
