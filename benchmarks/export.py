"""Exporting SmolLM2-135M's generation: tensorweave's one-graph greedy generation (ONNX with a
``Loop``, model + static KV cache inside) against ``torch.onnx.export`` of the same weights'
``transformers`` forward pass, and the exported graph's tokens/s in ONNX Runtime against
``transformers``' PyTorch ``generate()``.

- Export time: ``export_generation(model, ..., target="onnx")`` (trace + lower + write) vs
  ``torch.onnx.export`` of ``LlamaForCausalLM`` (forward only, no generation loop; the dynamo
  exporter when onnxscript is installed, else the TorchScript one), both to a temporary directory.
- Answer: the exported graph in a plain ``onnxruntime.InferenceSession`` on the chat prompt
  "What is the capital of France?" (decoded up to the first end-of-turn token).
- Speed: a 32-token prompt and 64 new tokens, batch 1. The graph is exported with the EOS ids in
  ``suppress_tokens`` (an exportable processor), and transformers runs with the same
  ``suppress_tokens``, so both produce all 64 tokens with identical processing; steady tokens/s
  is the best of ``--repeats`` runs after a warm-up (session creation reported apart).

    python benchmarks/export.py [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from generate import build_smollm2  # noqa: E402

from tensorweave.export_generation import export_generation  # noqa: E402

PROMPT, NEW = 32, 64


def torch_onnx_export(hf, path: str) -> tuple[float, str]:
    """``torch.onnx.export`` of the forward (input_ids, attention_mask) -> logits; (seconds, exporter)."""
    import importlib.util

    import torch

    class Forward(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    ids = torch.ones((2, 8), dtype=torch.long)
    dynamo = importlib.util.find_spec("onnxscript") is not None
    t = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
            torch.onnx.export(
                Forward(hf),
                (ids, torch.ones_like(ids)),
                path,
                dynamo=True,
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
            )
        else:
            axes = {0: "batch", 1: "sequence"}
            torch.onnx.export(
                Forward(hf),
                (ids, torch.ones_like(ids)),
                path,
                dynamo=False,
                opset_version=18,
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": axes},
            )
    return time.perf_counter() - t, "dynamo" if dynamo else "torchscript"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--keep", default=None, help="write the exported files here instead of a temporary directory"
    )
    args = ap.parse_args()
    import onnxruntime as ort
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    out_dir = args.keep or tempfile.mkdtemp(prefix="tw-export-bench-")
    os.makedirs(out_dir, exist_ok=True)
    try:
        model, hf = build_smollm2()
        eos = model.config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos)
        print(
            f"SmolLM2-135M fp32: {model.num_parameters() / 1e6:.1f}M parameters; EOS ids {eos}; "
            f"{os.cpu_count()} CPU cores"
        )

        path = os.path.join(out_dir, "smollm2_greedy_generation.onnx")
        t = time.perf_counter()
        export_generation(model, path, target="onnx", max_new_tokens=NEW, suppress_tokens=eos)
        tw_export = time.perf_counter() - t
        size = sum(
            os.path.getsize(os.path.join(out_dir, f))
            for f in os.listdir(out_dir)
            if f.startswith("smollm2_greedy_generation.onnx")
        )
        print(
            f"tensorweave export_generation (greedy loop, cap {NEW} new tokens): {tw_export:6.1f} s, "
            f"{size / 2**20:.0f} MiB"
        )
        try:
            fwd_path = os.path.join(out_dir, "smollm2_forward_torch.onnx")
            torch_export, exporter = torch_onnx_export(hf, fwd_path)
            print(
                f"torch.onnx.export ({exporter}, forward pass only):            {torch_export:6.1f} s   "
                f"-> tensorweave / torch = {tw_export / torch_export:.2f}"
            )
        except Exception as exc:
            print(f"torch.onnx.export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")

        t = time.perf_counter()
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        print(f"ORT session creation: {time.perf_counter() - t:.1f} s")

        def run(ids: np.ndarray, m: int) -> np.ndarray:
            seqs, length = sess.run(
                None,
                {
                    "input_ids": ids,
                    "attention_mask": np.ones_like(ids),
                    "max_new_tokens": np.asarray(m, np.int64),
                },
            )
            return seqs[:, : int(length)]

        tok = model.tokenizer
        chat = np.asarray(
            [
                tok.apply_chat_template(
                    [{"role": "user", "content": "What is the capital of France?"}],
                    tokenize=True,
                    add_generation_prompt=True,
                )
            ],
            np.int64,
        )
        answer = run(chat, 12)[0, chat.shape[1] :]
        with torch.no_grad():
            ref = hf.generate(
                torch.from_numpy(chat),
                attention_mask=torch.ones(chat.shape, dtype=torch.long),
                max_new_tokens=12,
                do_sample=False,
                suppress_tokens=eos,
            ).numpy()[0, chat.shape[1] :]
        print(
            f"exported graph answers: {tok.decode(answer, skip_special_tokens=True)!r} "
            f"(tokens equal transformers: {np.array_equal(answer, ref)})"
        )

        ids = np.random.default_rng(0).integers(100, 30000, size=(1, PROMPT)).astype(np.int64)
        out = run(ids, NEW)
        ort_s = min(_timed(lambda: run(ids, NEW)) for _ in range(args.repeats))
        t_ids = torch.from_numpy(ids)
        kw = dict(
            attention_mask=torch.ones_like(t_ids), max_new_tokens=NEW, do_sample=False, suppress_tokens=eos
        )
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = hf.generate(t_ids, **kw).numpy()
            hf_s = min(_timed(lambda: hf.generate(t_ids, **kw)) for _ in range(args.repeats))
        print(f"\n{PROMPT}-token prompt, {NEW} new tokens, batch 1, greedy:")
        print(f"  exported graph in ORT:          {NEW / ort_s:7.1f} tok/s")
        print(f"  transformers generate():        {NEW / hf_s:7.1f} tok/s")
        print(
            f"  ratio ORT graph / transformers: {hf_s / ort_s:7.2f}   "
            f"(tokens identical: {out.shape == ref.shape and bool(np.array_equal(out, ref))})"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(out_dir, ignore_errors=True)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
