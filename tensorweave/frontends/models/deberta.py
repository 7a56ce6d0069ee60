"""DeBERTa and DeBERTa-v2 (``deberta``, ``deberta-v2``), written once against ``xp``: one module,
the version a class attribute of the config (:class:`~.config.DebertaConfig`,
:class:`~.config.DebertaV2Config`).

Embeddings: ``e = word[ids] (+ pos[p] with position_biased_input) (+ type[tt] when
type_vocab_size > 0)`` of width ``E`` (``embedding_size``), ``embed_proj`` (``[d, E]``, no bias)
when ``E != d``, then ``h0 = LN(e) * m`` (``m`` the padding mask, per token).

Each layer is BERT's post-LayerNorm block with disentangled attention. With ``q, k, v`` per head
(width ``dh``), the relative table ``R`` (``encoder.rel_embeddings``, v2 optionally
``encoder.LayerNorm(R)``), ``s = 1 + #pos_att_type`` and ``idx[i, j] = clip(r(i - j) + S, 0,
2S - 1)`` (``S`` = ``relative_span``; ``r`` the identity, or v2's log buckets when
``position_buckets > 0``)::

    score[i, j] = (q_i . k_j + [c2p] q_i . Kr[idx[i, j]] + [p2c] k_j . Qr[idx[i, j]]) / sqrt(dh * s)

``Kr`` / ``Qr`` are ``R`` through the position projections (v1: ``pos_proj`` without bias,
``pos_q_proj``; v2: ``pos_key_proj``, ``pos_query_proj``, or ``key_proj`` / ``query_proj`` with
``share_att_key``). Query row ``i`` sees key ``j`` only when both are real tokens
(``m_i m_j``); a padding row sees none, which softmax turns into a uniform average (as in
Hugging Face). v1 projects ``q, k, v`` with one ``in_proj`` (rows per head: q, k, v) plus
``q_bias`` / ``v_bias``. v2 with ``conv_kernel_size > 0`` replaces the first layer's output
``h1`` by ``LN(h1 + act(conv1d(h0) * m)) * m`` (``encoder.conv``; ``conv_act``).

Heads: ``default`` ``last_hidden_state``; ``masked-lm`` legacy (``cls.predictions.transform.
{dense, LayerNorm}`` to ``E``, act ``hidden_act``, ``@ word^T + cls.predictions.bias``) or, with
``legacy`` false, the enhanced mask decoder's ``lm_predictions.lm_head.{dense, LayerNorm, bias}``
(``@ word^T``); ``sequence-classification`` / ``multiple-choice`` (v2) ``classifier(act(pooler.
dense(h[:, 0])))`` (act ``pooler_hidden_act``); ``token-classification`` ``classifier(h)``;
``question-answering`` ``qa_outputs(h)``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from ...ir import array_namespace
from .attention import merge_heads, split_heads
from .bert import _act, _layer_norm, _linear, output_block
from .config import DebertaConfig
from .weights import ParamView

BASE_PREFIX = "deberta."
IGNORED_SUFFIXES = ("embeddings.position_ids",)


def check_head(cfg: DebertaConfig, head: str) -> str:
    if head not in cfg.heads:
        raise ValueError(f"{cfg.model_type} has no head {head!r}; use one of {list(cfg.heads)}")
    return head


def _linear_shapes(name: str, out: int, inp: int, bias: bool = True) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {name + ".weight": (out, inp)}
    if bias:
        shapes[name + ".bias"] = (out,)
    return shapes


def _norm_shapes(name: str, width: int) -> dict[str, tuple]:
    return {name + ".weight": (width,), name + ".bias": (width,)}


def _attention_shapes(cfg: DebertaConfig, a: str) -> dict[str, tuple]:
    """The ``attention.self.*`` names of one layer."""
    d, types = cfg.hidden_size, cfg.att_types
    shapes: dict[str, tuple] = {}
    if cfg.version == 1:
        shapes.update({a + "in_proj.weight": (3 * d, d), a + "q_bias": (d,), a + "v_bias": (d,)})
        if "c2p" in types:
            shapes.update(_linear_shapes(a + "pos_proj", d, d, bias=False))
        if "p2c" in types:
            shapes.update(_linear_shapes(a + "pos_q_proj", d, d))
        return shapes
    for name in ("query_proj", "key_proj", "value_proj"):
        shapes.update(_linear_shapes(a + name, d, d))
    if cfg.relative_attention and not cfg.share_att_key:  # type: ignore[attr-defined]
        if "c2p" in types:
            shapes.update(_linear_shapes(a + "pos_key_proj", d, d))
        if "p2c" in types:
            shapes.update(_linear_shapes(a + "pos_query_proj", d, d))
    return shapes


def parameter_shapes(cfg: DebertaConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads."""
    check_head(cfg, head)
    d, ff, emb, n, p = (
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.embedding_dim,
        int(cfg.num_labels or 2),
        BASE_PREFIX,
    )
    e = p + "embeddings."
    shapes: dict[str, tuple] = {e + "word_embeddings.weight": (cfg.vocab_size, emb)}
    if cfg.position_biased_input:
        shapes[e + "position_embeddings.weight"] = (cfg.max_position_embeddings, emb)
    if cfg.token_types:
        shapes[e + "token_type_embeddings.weight"] = (cfg.type_vocab_size, emb)
    if emb != d:
        shapes[e + "embed_proj.weight"] = (d, emb)
    shapes.update(_norm_shapes(e + "LayerNorm", d))
    for i in range(cfg.num_hidden_layers):
        lp = f"{p}encoder.layer.{i}."
        shapes.update(_attention_shapes(cfg, lp + "attention.self."))
        shapes.update(_linear_shapes(lp + "attention.output.dense", d, d))
        shapes.update(_norm_shapes(lp + "attention.output.LayerNorm", d))
        shapes.update(_linear_shapes(lp + "intermediate.dense", ff, d))
        shapes.update(_linear_shapes(lp + "output.dense", d, ff))
        shapes.update(_norm_shapes(lp + "output.LayerNorm", d))
    if cfg.relative_attention:
        shapes[p + "encoder.rel_embeddings.weight"] = (2 * cfg.relative_span, d)
    if cfg.version == 2:
        if cfg.rel_layer_norm:  # type: ignore[attr-defined]
            shapes.update(_norm_shapes(p + "encoder.LayerNorm", d))
        k = cfg.conv_kernel_size  # type: ignore[attr-defined]
        if k > 0:
            shapes.update({p + "encoder.conv.conv.weight": (d, d, k), p + "encoder.conv.conv.bias": (d,)})
            shapes.update(_norm_shapes(p + "encoder.conv.LayerNorm", d))
    if head == "masked-lm":
        if cfg.legacy:
            t = "cls.predictions."
            shapes.update(_linear_shapes(t + "transform.dense", emb, d))
            shapes.update(_norm_shapes(t + "transform.LayerNorm", emb))
            shapes[t + "bias"] = (cfg.vocab_size,)
            if not cfg.tie_word_embeddings:
                shapes[t + "decoder.weight"] = (cfg.vocab_size, emb)
        else:
            if emb != d:
                raise ValueError(
                    "config field `legacy` must be true for masked-lm when `embedding_size` != `hidden_size` "
                    "(the enhanced mask decoder multiplies hidden states by the word embeddings)"
                )
            t = "lm_predictions.lm_head."
            shapes.update(_linear_shapes(t + "dense", d, d))
            shapes.update(_norm_shapes(t + "LayerNorm", d))
            shapes[t + "bias"] = (cfg.vocab_size,)
    elif head in ("sequence-classification", "multiple-choice"):
        shapes.update(_linear_shapes("pooler.dense", d, d))
        shapes.update(_linear_shapes("classifier", n if head == "sequence-classification" else 1, d))
    elif head == "token-classification":
        shapes.update(_linear_shapes("classifier", n, d))
    elif head == "question-answering":
        if n != 2:
            raise ValueError(
                f"config field `num_labels` must be 2 for question-answering (start and end logits), got {n}"
            )
        shapes.update(_linear_shapes("qa_outputs", 2, d))
    return shapes


def bucket_table(cfg: DebertaConfig) -> np.ndarray:
    """``bucket(a)`` for the distances ``a = 0 .. M`` (``M`` = ``max_relative``, ``B/2`` = half
    ``position_buckets``): ``a`` when ``a <= B/2``, else ``ceil(log(a / (B/2)) / log((M - 1) /
    (B/2)) (B/2 - 1)) + B/2``, in float32 as Hugging Face computes it. Computed once on the host:
    a backend that divides by a reciprocal can round the exact ratio at ``a = M - 1`` above 1 and
    move the ceiling. ``bucket(M) >= B``, which every longer distance shares after clipping."""
    mid, top = cfg.position_buckets // 2, cfg.max_relative  # type: ignore[attr-defined]
    a = np.arange(top + 1)
    clipped = np.where(a < mid, mid - 1, a).astype(np.float32)
    denom = np.log(np.float32((top - 1) / mid))
    with np.errstate(divide="ignore", invalid="ignore"):  # only the a <= B/2 entries, replaced below
        logs = np.ceil(np.log(clipped / np.float32(mid)) / denom * np.float32(mid - 1)) + np.float32(mid)
        return np.where(a <= mid, a, logs).astype(np.int64)


def relative_positions(cfg: DebertaConfig, s: Any, xp: Any) -> Any:
    """``r[i, j]``: ``i - j``, or (v2, ``position_buckets`` > 0) its log bucket
    ``sign(i - j) bucket(min(|i - j|, M))`` (:func:`bucket_table`; beyond ``M`` it differs from
    Hugging Face's unclipped bucket, not from the table row both clip it to)."""
    ids = xp.arange(s)
    rel = ids[:, None] - ids[None, :]
    if cfg.version == 1 or cfg.position_buckets <= 0:  # type: ignore[attr-defined]
        return rel
    table = xp.asarray(bucket_table(cfg))
    far = xp.minimum(xp.abs(rel), xp.full_like(rel, cfg.max_relative))
    return xp.sign(rel) * xp.take(table, far, axis=0)


def _position_projections(cfg: DebertaConfig, P: Any, a: str, table: Any, xp: Any) -> tuple[Any, Any]:
    """``(Kr, Qr)``: the relative table through the c2p key / p2c query projections, each
    ``[heads, 2S, dh]`` (None when the term is off)."""
    nh, hd, types = cfg.num_attention_heads, cfg.head_dim, cfg.att_types
    if cfg.version == 1:
        names = {"c2p": (a + "pos_proj", False), "p2c": (a + "pos_q_proj", True)}
    elif cfg.share_att_key:  # type: ignore[attr-defined]
        names = {"c2p": (a + "key_proj", True), "p2c": (a + "query_proj", True)}
    else:
        names = {"c2p": (a + "pos_key_proj", True), "p2c": (a + "pos_query_proj", True)}
    out: list[Any] = []
    for term in ("c2p", "p2c"):
        if term not in types:
            out.append(None)
            continue
        name, bias = names[term]
        x = xp.matmul(table, xp.permute_dims(P[name + ".weight"], (1, 0)))
        if bias:
            x = x + P[name + ".bias"]
        out.append(split_heads(x[None], nh, hd)[0])
    return out[0], out[1]


def _qkv(cfg: DebertaConfig, P: Any, a: str, h: Any, xp: Any) -> tuple[Any, Any, Any]:
    """Per-head ``q, k, v`` ``[b, heads, s, dh]``."""
    nh, hd = cfg.num_attention_heads, cfg.head_dim
    if cfg.version == 2:
        return tuple(
            split_heads(_linear(xp, P, a + n, h), nh, hd) for n in ("query_proj", "key_proj", "value_proj")
        )
    b, s = h.shape[0], h.shape[1]
    qkv = xp.matmul(h, xp.permute_dims(P[a + "in_proj.weight"], (1, 0)))
    qkv = xp.permute_dims(xp.reshape(qkv, (b, s, nh, 3 * hd)), (0, 2, 1, 3))
    q, k, v = qkv[..., :hd], qkv[..., hd : 2 * hd], qkv[..., 2 * hd :]
    q = q + xp.reshape(P[a + "q_bias"], (nh, 1, hd))
    v = v + xp.reshape(P[a + "v_bias"], (nh, 1, hd))
    return q, k, v


def attention(cfg: DebertaConfig, P: Any, a: str, h: Any, pair_mask: Any, idx: Any, table: Any) -> Any:
    """Disentangled self-attention of one layer (module docstring); ``[b, s, d]``."""
    xp = array_namespace(h)
    q, k, v = _qkv(cfg, P, a, h, xp)
    scale = 1.0 / math.sqrt(cfg.head_dim * (1 + len(cfg.att_types)))
    scores = xp.matmul(q, xp.permute_dims(k, (0, 1, 3, 2)))
    if cfg.att_types:
        kr, qr = _position_projections(cfg, P, a, table, xp)
        b, nh, s = q.shape[0], q.shape[1], q.shape[2]
        gather = xp.broadcast_to(idx[None, None], (b, nh, s, s))
        if kr is not None:  # c2p: q_i . Kr[idx[i, j]]
            scores = scores + xp.take_along_axis(
                xp.matmul(q, xp.permute_dims(kr, (0, 2, 1))), gather, axis=-1
            )
        if qr is not None:  # p2c: k_j . Qr[idx[i, j]], gathered per key row then transposed
            kq = xp.matmul(k, xp.permute_dims(qr, (0, 2, 1)))
            by_key = xp.take_along_axis(kq, xp.permute_dims(gather, (0, 1, 3, 2)), axis=-1)
            scores = scores + xp.permute_dims(by_key, (0, 1, 3, 2))
    scores = scores * scale
    scores = xp.where(pair_mask, scores, xp.full_like(scores, xp.finfo(scores.dtype).min))
    return merge_heads(xp.matmul(xp.softmax(scores, axis=-1), v))


def embed(
    cfg: DebertaConfig, P: Any, input_ids: Any, mask_f: Any, token_type_ids: Any, position_ids: Any
) -> Any:
    """``LN(word + pos + type (-> embed_proj)) * m``."""
    xp = array_namespace(input_ids)
    e = BASE_PREFIX + "embeddings."
    h = xp.take(P[e + "word_embeddings.weight"], input_ids, axis=0)
    if cfg.position_biased_input:
        h = h + xp.take(P[e + "position_embeddings.weight"], position_ids, axis=0)
    if cfg.token_types:
        h = h + xp.take(P[e + "token_type_embeddings.weight"], token_type_ids, axis=0)
    if cfg.embedding_dim != cfg.hidden_size:
        h = xp.matmul(h, xp.permute_dims(P[e + "embed_proj.weight"], (1, 0)))
    return _layer_norm(xp, P, e + "LayerNorm", h, cfg.layer_norm_eps) * mask_f


def conv_layer(cfg: DebertaConfig, P: Any, h0: Any, out: Any, mask_f: Any) -> Any:
    """v2's ``encoder.conv``: ``LN(out + act(conv1d(h0) * m)) * m``, a 1-d convolution over the
    sequence (kernel ``K``, zero padding ``(K - 1) / 2``): ``y_t = b + sum_u W[:, :, u] h0_{t + u - (K-1)/2}``."""
    xp = array_namespace(h0)
    c = BASE_PREFIX + "encoder.conv."
    ksize = cfg.conv_kernel_size  # type: ignore[attr-defined]
    pad = (ksize - 1) // 2
    b, s, d = h0.shape
    zeros = xp.zeros((b, pad, d), dtype=h0.dtype)
    padded = xp.concat([zeros, h0, zeros], axis=1)
    w = P[c + "conv.weight"]  # [out, in, K]
    y = P[c + "conv.bias"]
    for u in range(ksize):
        window = xp.dynamic_slice(padded, [0, u, 0], (b, s, d))
        y = y + xp.matmul(window, xp.permute_dims(w[:, :, u], (1, 0)))
    y = _act(xp, cfg.conv_act, y * mask_f)  # type: ignore[attr-defined]
    return _layer_norm(xp, P, c + "LayerNorm", out + y, cfg.layer_norm_eps) * mask_f


def encode(
    params: Mapping[str, Any],
    cfg: DebertaConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, s, d], hidden_states)`` (embeddings, then each layer's output)."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    if token_type_ids is None:
        token_type_ids = xp.zeros((b, s), dtype=xp.int64)
    if position_ids is None:
        position_ids = xp.broadcast_to(xp.arange(s)[None, :], (b, s))
    real = attention_mask != 0
    mask_f = xp.astype(real, xp.float32)[:, :, None]
    pair_mask = (real[:, :, None] & real[:, None, :])[:, None]
    h = embed(cfg, P, input_ids, mask_f, token_type_ids, position_ids)
    idx, table = None, None
    if cfg.att_types:
        span = cfg.relative_span
        idx = xp.clip(relative_positions(cfg, s, xp) + span, 0, 2 * span - 1)
        table = P[BASE_PREFIX + "encoder.rel_embeddings.weight"]
        if cfg.version == 2 and cfg.rel_layer_norm:  # type: ignore[attr-defined]
            table = _layer_norm(xp, P, BASE_PREFIX + "encoder.LayerNorm", table, cfg.layer_norm_eps)
    hidden = [h]
    eps = cfg.layer_norm_eps
    for i in range(cfg.num_hidden_layers):
        lp = f"{BASE_PREFIX}encoder.layer.{i}."
        ctx = attention(cfg, P, lp + "attention.self.", h, pair_mask, idx, table)
        out = output_block(xp, P, lp, ctx, h, cfg.hidden_act, eps)
        if i == 0 and cfg.version == 2 and cfg.conv_kernel_size > 0:  # type: ignore[attr-defined]
            out = conv_layer(cfg, P, hidden[0], out, mask_f)
        h = out
        hidden.append(h)
    return h, tuple(hidden)


def _masked_lm(cfg: DebertaConfig, P: Any, h: Any, xp: Any) -> Any:
    word = P[BASE_PREFIX + "embeddings.word_embeddings.weight"]
    if cfg.legacy:
        t = "cls.predictions."
        x = _act(xp, cfg.hidden_act, _linear(xp, P, t + "transform.dense", h))
        x = _layer_norm(xp, P, t + "transform.LayerNorm", x, cfg.layer_norm_eps)
        dec = word if cfg.tie_word_embeddings else P[t + "decoder.weight"]
        return xp.matmul(x, xp.permute_dims(dec, (1, 0))) + P[t + "bias"]
    t = "lm_predictions.lm_head."
    x = _act(xp, cfg.hidden_act, _linear(xp, P, t + "dense", h))
    x = _layer_norm(xp, P, t + "LayerNorm", x, cfg.layer_norm_eps)
    return xp.matmul(x, xp.permute_dims(word, (1, 0))) + P[t + "bias"]


def forward(
    params: Mapping[str, Any],
    cfg: DebertaConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (module docstring), plus ``hidden_states`` when asked."""
    check_head(cfg, head)
    xp = array_namespace(input_ids)
    P = ParamView(params)
    choices = None
    if head == "multiple-choice":  # [b, c, s] -> [b * c, s]
        b, choices, s = input_ids.shape
        flat = lambda x: None if x is None else xp.reshape(x, (b * choices, s))  # noqa: E731
        input_ids, attention_mask, token_type_ids, position_ids = map(
            flat, (input_ids, attention_mask, token_type_ids, position_ids)
        )
    h, hidden = encode(P, cfg, input_ids, attention_mask, token_type_ids, position_ids)
    if head == "default":
        out = {"last_hidden_state": h}
    elif head == "masked-lm":
        out = {"logits": _masked_lm(cfg, P, h, xp)}
    elif head in ("sequence-classification", "multiple-choice"):
        pooled = _act(xp, cfg.pooler_hidden_act, _linear(xp, P, "pooler.dense", h[:, 0]))
        logits = _linear(xp, P, "classifier", pooled)
        out = {"logits": logits if choices is None else xp.reshape(logits, (-1, choices))}
    elif head == "token-classification":
        out = {"logits": _linear(xp, P, "classifier", h)}
    else:  # question-answering
        se = _linear(xp, P, "qa_outputs", h)
        out = {"start_logits": se[..., 0], "end_logits": se[..., 1]}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
