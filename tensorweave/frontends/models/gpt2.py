"""GPT-2 (and ImageGPT, as config switches) forward pass, written once against ``xp``.

``h = wte[ids] + wpe[pos]``; per block ``h += c_proj(attn(ln_1(h)))``,
``h += mlp(ln_2(h))`` with ``mlp(x) = c_proj(act(c_fc(x)))``; ``logits = ln_f(h) @ wte^T``
(or ``lm_head.weight^T`` when ``tie_word_embeddings`` is false).
Weights use GPT-2's Conv1D layout (``x @ W + b`` with ``W: [in, out]``) and Hugging Face names.

ImageGPT's ``image-classification`` head (``ImageGPTForImageClassification``):
``logits = mean_s(ln_f(h)) @ score.weight^T`` ``[b, num_labels]`` (the mean over every position,
padding included, as Hugging Face; no bias), instead of the language-model head.
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .cache import update_cache
from .config import ACTIVATIONS, GPT2Config
from .weights import ParamView

BASE_PREFIX = "transformer."
# buffers some checkpoints carry that are not parameters (the causal-mask tables of old GPT-2s)
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
#: heads besides the language model (``head=None``), by type
HEADS = {"imagegpt": ("image-classification",)}


def check_head(cfg: GPT2Config, head: str | None) -> str | None:
    """``head`` when the type has it (None: the language model)."""
    if head is not None and head not in HEADS.get(cfg.model_type, ()):
        raise ValueError(
            f"{cfg.model_type} has no head {head!r}; use None (the causal LM)"
            + "".join(f" or {h!r}" for h in HEADS.get(cfg.model_type, ()))
        )
    return head


def parameter_shapes(cfg: GPT2Config, head: str | None = None) -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter ``forward`` reads (with ``head``: that
    head's instead of the language model's)."""
    check_head(cfg, head)
    d = cfg.n_embd
    inner = cfg.n_inner or 4 * d
    shapes = {
        "transformer.wte.weight": (cfg.vocab_size, d),
        "transformer.wpe.weight": (cfg.n_positions, d),
        "transformer.ln_f.weight": (d,),
        "transformer.ln_f.bias": (d,),
    }
    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}."
        shapes.update(
            {
                p + "ln_1.weight": (d,),
                p + "ln_1.bias": (d,),
                p + "ln_2.weight": (d,),
                p + "ln_2.bias": (d,),
                p + "attn.c_attn.weight": (d, 3 * d),
                p + "attn.c_attn.bias": (3 * d,),
                p + "attn.c_proj.weight": (d, d),
                p + "attn.c_proj.bias": (d,),
                p + "mlp.c_fc.weight": (d, inner),
                p + "mlp.c_fc.bias": (inner,),
                p + "mlp.c_proj.weight": (inner, d),
                p + "mlp.c_proj.bias": (d,),
            }
        )
    if not cfg.layer_norm_centred:  # ImageGPT's norms have a weight only
        shapes = {k: v for k, v in shapes.items() if not k.endswith(("ln_1.bias", "ln_2.bias", "ln_f.bias"))}
    if head == "image-classification":
        shapes["score.weight"] = (getattr(cfg, "num_labels", 0), d)
    elif not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.vocab_size - cfg.head_rows_short, d)
    return shapes


def activation(xp: Any, name: str, x: Any) -> Any:
    """gelu (erf), gelu_new / gelu_pytorch_tanh (tanh approximation), relu, or quick_gelu
    (``x * sigmoid(1.702 x)``, ImageGPT's)."""
    if name == "quick_gelu":
        return x * xp.sigmoid(x * 1.702)
    mode = ACTIVATIONS[name]
    if mode == "relu":
        return xp.maximum(x, xp.zeros_like(x))
    return xp.gelu(x, approximate=mode)


def forward(
    params: dict,
    cfg: GPT2Config,
    input_ids: Any,
    attention_mask: Any,
    position_ids: Any,
    cache: Any = None,
    offset: Any = 0,
    output_hidden_states: bool = False,
    head: str | None = None,
) -> tuple:
    """``(logits [b, s, vocab], cache)``; with ``output_hidden_states`` also the tuple of
    ``n_layer + 1`` hidden states (embeddings, each block's output, the last one after ``ln_f``).
    With ``head="image-classification"`` (ImageGPT) the logits are ``[b, num_labels]``.

    ``attention_mask`` covers the key positions (see attention.py), ``position_ids`` the queries,
    ``offset`` is the key position of the first query (0 without a cache)."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    d, nh, hd = cfg.n_embd, cfg.n_head, cfg.head_dim
    eps = cfg.layer_norm_epsilon

    def norm(name: str, x: Any) -> Any:
        """LayerNorm, or ImageGPT's uncentred norm without bias (an RMS norm)."""
        if cfg.layer_norm_centred:
            return xp.layer_norm(x, P[name + ".weight"], P[name + ".bias"], eps=eps)
        return xp.rms_norm(x, P[name + ".weight"], eps=eps)

    scale = default_scale(hd) if cfg.scale_attn_weights else 1.0
    h = xp.take(P["transformer.wte.weight"], input_ids, axis=0) + xp.take(
        P["transformer.wpe.weight"], position_ids, axis=0
    )
    hidden = [h]
    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}."
        x = norm(p + "ln_1", h)
        qkv = xp.matmul(x, P[p + "attn.c_attn.weight"]) + P[p + "attn.c_attn.bias"]
        q = split_heads(qkv[..., :d], nh, hd)
        k = split_heads(qkv[..., d : 2 * d], nh, hd)
        v = split_heads(qkv[..., 2 * d :], nh, hd)
        keys, values, cache = update_cache(cache, i, k, v, offset)
        a = merge_heads(attend(q, keys, values, attention_mask, offset, scale))
        h = h + (xp.matmul(a, P[p + "attn.c_proj.weight"]) + P[p + "attn.c_proj.bias"])
        x = norm(p + "ln_2", h)
        m = activation(
            xp, cfg.activation_function, xp.matmul(x, P[p + "mlp.c_fc.weight"]) + P[p + "mlp.c_fc.bias"]
        )
        h = h + (xp.matmul(m, P[p + "mlp.c_proj.weight"]) + P[p + "mlp.c_proj.bias"])
        hidden.append(h)
    h = norm("transformer.ln_f", h)
    hidden[-1] = h
    if check_head(cfg, head) == "image-classification":
        logits = xp.matmul(xp.mean(h, axis=1), xp.permute_dims(P["score.weight"], (1, 0)))
    else:
        out = P["transformer.wte.weight"] if cfg.tie_word_embeddings else P["lm_head.weight"]
        logits = xp.matmul(h, xp.permute_dims(out, (1, 0)))
    return (logits, cache, tuple(hidden)) if output_hidden_states else (logits, cache)
