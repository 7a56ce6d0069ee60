"""Contrastive search, step-wise: the host loop ``run_contrastive`` around two strategy programs per
step (``propose`` before the candidates run, ``choose`` after), whose traced bodies are
``frontends/generation/contrastive.py``'s ``contrastive_propose`` / ``contrastive_choose``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..frontends.generation import steps
from ..frontends.generation.contrastive import contrastive_choose, contrastive_propose
from ..ir.types import TensorSpec
from .stepwise import StepRun, named


def _programs(run: StepRun, rows: int, prompt: int, L: int, V: int, H: int) -> tuple[Any, Any]:
    from ..ir.trace import trace

    plan = run.plan
    k = plan.top_k
    has_mask = plan.prefix is not None

    def propose(tokens: Any, logits: Any, cur_len: Any, *mask: Any) -> dict:
        import tensorweave.ir.namespace as xp

        procs = steps.with_mask(run.processors, mask[0] if mask else None)
        return contrastive_propose(xp, tokens, logits, cur_len, procs, k, plan.output_scores)

    def choose(
        context: Any, context_mask: Any, candidates: Any, probs: Any, ids: Any, unfinished: Any
    ) -> dict:
        import tensorweave.ir.namespace as xp

        return contrastive_choose(
            xp,
            context,
            context_mask,
            candidates,
            probs,
            ids,
            unfinished,
            penalty_alpha=plan.penalty_alpha,
            pad_token_id=plan.pad,
            eos_token_id=plan.eos,
        )

    p_specs = [
        TensorSpec((rows, L), "int64", "tokens"),
        TensorSpec((rows, V), "float32", "logits"),
        TensorSpec((), "int64", "cur_len"),
    ]
    if has_mask:
        p_specs.append(TensorSpec((rows, V), "float32", "prefix_mask"))
    c_specs = [
        TensorSpec((rows, L, H), "float32", "context"),
        TensorSpec((rows, L), "bool", "context_mask"),
        TensorSpec((rows, k, H), "float32", "candidates"),
        TensorSpec((rows, k), "float32", "top_k_probs"),
        TensorSpec((rows, k), "int64", "top_k_ids"),
        TensorSpec((rows,), "bool", "unfinished"),
    ]
    shapes = (rows, prompt, L, V, H)
    prop = run.program(
        "contrastive-propose", shapes, lambda: trace(propose, *p_specs, name="contrastive_propose")
    )
    cho = run.program(
        "contrastive-choose", shapes, lambda: trace(choose, *c_specs, name="contrastive_choose")
    )
    return prop, cho


def run_contrastive(model: Any, run: StepRun, ids: np.ndarray, mask: np.ndarray) -> dict:
    """Contrastive search, step-wise: the host runs the model (prompt, then ``rows * top_k``
    candidate rows per step over the repeated cache) and keeps the context hidden states; the
    strategy programs propose and choose. Same outputs as ``stepwise.run_sample``."""
    plan = run.plan
    rows, prompt = ids.shape
    L, k = plan.max_length, plan.top_k
    logits, hidden = model.prefill(ids, mask, hidden=True)
    V, H = logits.shape[-1], hidden.shape[-1]
    propose, choose = _programs(run, rows, prompt, L, V, H)
    context = np.zeros((rows, L, H), np.float32)
    context[:, :prompt] = hidden
    context_mask = np.zeros((rows, L), bool)
    context_mask[:, :prompt] = mask != 0
    tokens = np.full((rows, L), plan.pad, np.int64)
    tokens[:, :prompt] = ids
    unfinished = np.ones((rows,), bool)
    full_mask = mask
    expand = np.repeat(np.arange(rows), k)
    base = np.arange(rows) * k
    scores: list = []
    cur_len = prompt
    while cur_len < L and unfinished.any():
        p = named(
            propose,
            propose(tokens, logits, np.asarray(cur_len, np.int64), *run.prefix_mask(tokens, cur_len, V)),
        )
        full_mask = np.concatenate([full_mask, np.ones((rows, 1), np.int64)], axis=1)
        model.reorder(expand)
        c_logits, c_hidden = model.step(
            p["top_k_ids"].reshape(-1).astype(np.int64), np.repeat(full_mask, k, axis=0), hidden=True
        )
        c = named(
            choose,
            choose(
                context,
                context_mask,
                c_hidden.reshape(rows, k, H),
                p["top_k_probs"],
                p["top_k_ids"].astype(np.int64),
                unfinished,
            ),
        )
        pick = base + c["chosen"].astype(np.int64)
        model.reorder(pick)
        logits = c_logits[pick]
        context[:, cur_len] = c_hidden[pick]
        context_mask[:, cur_len] = True
        nxt = c["next_tokens"].astype(np.int64)
        tokens[:, cur_len] = nxt
        unfinished = c["next_unfinished"].astype(bool)
        if plan.output_scores:
            scores.append(p["scores"])
        if run.streamer is not None:
            run.streamer.put(nxt.copy())
        cur_len += 1
    res = {"sequences": tokens, "length": np.asarray(cur_len), "steps": np.asarray(cur_len)}
    if plan.output_scores:
        res["scores"] = np.stack(scores)
    return res
