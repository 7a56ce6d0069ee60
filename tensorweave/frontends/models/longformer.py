"""Longformer (``longformer``), written once against ``xp``: the RoBERTa layout of ``bert.py``
(names under ``longformer.``, positions from the ids, roberta heads) with Longformer's attention,
computed as a masked full attention.

Per layer ``l`` with window ``W_l`` (``attention_window``) and ``w = W_l / 2``; ``real_j`` is the
padding mask and ``g_j`` the global-attention mask (``g`` implies ``real``):

- a query ``i`` that is not global attends, with the layer's ``query`` / ``key`` / ``value``,
  to the keys ``j`` with ``(|i - j| <= w and real_j and not g_j) or g_j``;
- a global query attends to every real key with ``query_global`` / ``key_global`` /
  ``value_global``;
- a padding query's context is zero (before ``attention.output.dense``).

Scores are ``q . k / sqrt(dh)``. Hugging Face pads the sequence to a multiple of the largest window
and computes the band in overlapping chunks; the padded keys are masked, so the masked full
attention here equals it on the real length (the outputs are cut back to it there too).

The global mask is ``global_attention_mask`` when given (:func:`forward`, ``Model`` calls with
``global_attention_mask=``, the ONNX export's input; used as given), else the head's default as in
Hugging Face: ``sequence-classification`` the first token;
``question-answering`` the tokens before the first ``sep_token_id``; ``multiple-choice`` (per
choice) the tokens after the first ``sep_token_id + 1`` positions; the other heads none.
Hugging Face asserts that question-answering / multiple-choice rows hold exactly three separators;
this module does not check.

Heads: ``default`` ``last_hidden_state``, ``pooler_output = tanh(longformer.pooler.dense(h[:, 0]))``;
``masked-lm`` ``lm_head`` (gelu, tied decoder); ``sequence-classification``
``classifier.out_proj(tanh(classifier.dense(h[:, 0])))``; ``multiple-choice`` ``classifier(pooler)``;
``token-classification`` ``classifier(h)``; ``question-answering`` ``qa_outputs(h)``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...ir import array_namespace
from . import bert
from .attention import default_scale, merge_heads, split_heads
from .bert import _act, _layer_norm, _linear, output_block
from .config import LongformerConfig
from .weights import ParamView

BASE_PREFIX = "longformer."
IGNORED_SUFFIXES = bert.IGNORED_SUFFIXES
GLOBAL_NAMES = ("query_global", "key_global", "value_global")
#: optional forward inputs shaped like ``input_ids`` (``Model`` programs and exports carry them)
EXTRA_INPUTS = ("global_attention_mask",)


def check_head(head: str) -> str:
    return bert.check_head(head)


def parameter_shapes(cfg: LongformerConfig, head: str = "default") -> dict[str, tuple]:
    """RoBERTa's names under ``longformer.`` plus ``attention.self.{query,key,value}_global`` per layer."""
    shapes = bert.parameter_shapes(cfg, head)
    d = cfg.hidden_size
    for i in range(cfg.num_hidden_layers):
        for name in GLOBAL_NAMES:
            a = f"{BASE_PREFIX}encoder.layer.{i}.attention.self.{name}"
            shapes.update({a + ".weight": (d, d), a + ".bias": (d,)})
    return shapes


def default_global_mask(cfg: LongformerConfig, input_ids: Any, head: str) -> Any:
    """Hugging Face's global attention when none is given (module docstring); None: no global token."""
    xp = array_namespace(input_ids)
    pos = xp.arange(input_ids.shape[1])[None, :]
    if head == "sequence-classification":
        return xp.broadcast_to(pos == 0, input_ids.shape)
    if head not in ("question-answering", "multiple-choice"):
        return None
    first_sep = xp.argmax(xp.astype(input_ids == cfg.sep_token_id, xp.int32), axis=-1)[:, None]
    return pos < first_sep if head == "question-answering" else pos > first_sep + 1


def _attend(q: Any, k: Any, v: Any, allowed: Any, xp: Any) -> Any:
    """``softmax(where(allowed, q k^T / sqrt(dh), min)) v``."""
    scores = xp.matmul(q, xp.permute_dims(k, (0, 1, 3, 2))) * default_scale(q.shape[-1])
    scores = xp.where(allowed, scores, xp.full_like(scores, xp.finfo(scores.dtype).min))
    return xp.matmul(xp.softmax(scores, axis=-1), v)


def attention(cfg: LongformerConfig, P: Any, a: str, h: Any, real: Any, glob: Any, window: int) -> Any:
    """One layer's local + global self-attention (module docstring); ``[b, s, d]``."""
    xp = array_namespace(h)
    nh, hd = cfg.num_attention_heads, cfg.head_dim
    s = h.shape[1]
    q, k, v = (split_heads(_linear(xp, P, a + n, h), nh, hd) for n in ("query", "key", "value"))
    ids = xp.arange(s)
    band = xp.abs(ids[:, None] - ids[None, :]) <= window // 2  # [s, s]
    keys = real if glob is None else real & ~glob  # [b, s]
    allowed = band[None, :, :] & keys[:, None, :]
    if glob is not None:
        allowed = allowed | glob[:, None, :]
    ctx = _attend(q, k, v, allowed[:, None], xp)
    ctx = xp.where(real[:, None, :, None], ctx, xp.zeros_like(ctx))
    if glob is not None:
        qg, kg, vg = (split_heads(_linear(xp, P, a + n, h), nh, hd) for n in GLOBAL_NAMES)
        ctx_g = _attend(qg, kg, vg, real[:, None, None, :], xp)
        ctx = xp.where(glob[:, None, :, None], ctx_g, ctx)
    return merge_heads(ctx)


def encode(
    params: Mapping[str, Any],
    cfg: LongformerConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    global_attention_mask: Any = None,
) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, s, d], hidden_states)``; ``global_attention_mask`` ``[b, s]``
    (nonzero: global) or None (no global token)."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    if token_type_ids is None:
        token_type_ids = xp.zeros((b, s), dtype=xp.int64)
    if position_ids is None:
        position_ids = bert.default_position_ids(cfg, input_ids)
    real = attention_mask != 0
    glob = None if global_attention_mask is None else (global_attention_mask != 0) & real
    eps, e = cfg.layer_norm_eps, BASE_PREFIX + "embeddings."
    h = (
        xp.take(P[e + "word_embeddings.weight"], input_ids, axis=0)
        + xp.take(P[e + "position_embeddings.weight"], position_ids, axis=0)
        + xp.take(P[e + "token_type_embeddings.weight"], token_type_ids, axis=0)
    )
    h = _layer_norm(xp, P, e + "LayerNorm", h, eps)
    hidden = [h]
    for i, window in enumerate(cfg.windows):
        lp = f"{BASE_PREFIX}encoder.layer.{i}."
        ctx = attention(cfg, P, lp + "attention.self.", h, real, glob, window)
        h = output_block(xp, P, lp, ctx, h, cfg.hidden_act, eps)
        hidden.append(h)
    return h, tuple(hidden)


def forward(
    params: Mapping[str, Any],
    cfg: LongformerConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    head: str = "default",
    output_hidden_states: bool = False,
    global_attention_mask: Any = None,
) -> dict:
    """The ``head``'s outputs (module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(input_ids)
    P = ParamView(params)
    choices = None
    if head == "multiple-choice":  # [b, c, s] -> [b * c, s]
        b, choices, s = input_ids.shape
        flat = lambda x: None if x is None else xp.reshape(x, (b * choices, s))  # noqa: E731
        input_ids, attention_mask, token_type_ids, position_ids, global_attention_mask = map(
            flat, (input_ids, attention_mask, token_type_ids, position_ids, global_attention_mask)
        )
    if global_attention_mask is None:
        global_attention_mask = default_global_mask(cfg, input_ids, head)
    h, hidden = encode(P, cfg, input_ids, attention_mask, token_type_ids, position_ids, global_attention_mask)
    if head in ("default", "multiple-choice"):
        pooler = xp.tanh(_linear(xp, P, BASE_PREFIX + "pooler.dense", h[:, 0]))
    if head == "default":
        out = {"last_hidden_state": h, "pooler_output": pooler}
    elif head == "masked-lm":
        x = _layer_norm(
            xp,
            P,
            "lm_head.layer_norm",
            _act(xp, "gelu", _linear(xp, P, "lm_head.dense", h)),
            cfg.layer_norm_eps,
        )
        dec = (
            P[BASE_PREFIX + "embeddings.word_embeddings.weight"]
            if cfg.tie_word_embeddings
            else P["lm_head.decoder.weight"]
        )
        out = {"logits": xp.matmul(x, xp.permute_dims(dec, (1, 0))) + P["lm_head.bias"]}
    elif head == "sequence-classification":
        x = xp.tanh(_linear(xp, P, "classifier.dense", h[:, 0]))
        out = {"logits": _linear(xp, P, "classifier.out_proj", x)}
    elif head == "multiple-choice":
        out = {"logits": xp.reshape(_linear(xp, P, "classifier", pooler), (-1, choices))}
    elif head == "token-classification":
        out = {"logits": _linear(xp, P, "classifier", h)}
    else:  # question-answering
        se = _linear(xp, P, "qa_outputs", h)
        out = {"start_logits": se[..., 0], "end_logits": se[..., 1]}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
