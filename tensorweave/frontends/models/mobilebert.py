"""MobileBERT and its task heads, written once against ``xp``.

``N(x)`` is the configured norm: ``NoNorm`` ``x * w + b`` (``normalization_type`` ``no_norm``, the
default) or LayerNorm. ``H`` = ``hidden_size``, ``E`` = ``embedding_size``, ``B`` = the inner width
(``intra_bottleneck_size`` with ``use_bottleneck``, else ``H``).

Embeddings: ``x = word[ids] [b, s, E]``; with ``trigram_input`` ``x = concat(x[t + 1], x[t],
x[t - 1])`` over the feature axis (zero rows past either end, ``3E`` wide); then
``x = embedding_transformation(x)`` (to ``H``; skipped without trigrams when ``E == H``) and
``h = N(x + pos[p] + type[tt])`` (LayerNorm eps 1e-5 here, as Hugging Face builds it).

Per layer, from ``h [b, s, H]``:

- bottleneck (``use_bottleneck``): ``l = N(bottleneck.input(h)) [B]``; query/key/value inputs
  are ``l, l, l`` (``use_bottleneck_attention``), ``c, c, h`` with ``c = N(bottleneck.attention(h))``
  (``key_query_shared_bottleneck``), else ``h, h, h``; without the bottleneck ``l`` and all three are ``h``;
- ``a = N(attention.output.dense(attn(q, k, v)) + l)`` (BERT's bidirectional attention, ``B``
  wide);
- ``num_feedforward_networks - 1`` extra MLPs: ``a = N(ffn.j.output.dense(act(ffn.j.intermediate.dense(a))) + a)``;
- ``o = N(output.dense(act(intermediate.dense(a))) + a)`` (LayerNorm eps 1e-5), and with the
  bottleneck ``h = N(output.bottleneck.dense(o) + h)`` back to ``H``, else ``h = o``.

Pooler (default, sequence classification, multiple choice): ``tanh(pooler.dense(h[:, 0]))``,
or ``h[:, 0]`` without ``classifier_activation``. Masked LM: ``t = LN(act(dense(h)))`` (``H``
wide) and ``logits = t @ concat(word^T [E, V], cls.predictions.dense.weight [H - E, V]) +
cls.predictions.bias``. The other heads are BERT's (``classifier(pooler)``, ``classifier(h)``,
``qa_outputs(h)``). Names are those of ``MobileBertFor*`` (``mobilebert.`` prefix).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .bert import _layer_norm, _linear, check_head
from .config import MobileBertConfig
from .encoder_heads import flatten_choices, labels, pooled_head_shapes, pooled_heads
from .gpt2 import activation
from .weights import ParamView

BASE_PREFIX = "mobilebert."
IGNORED_SUFFIXES = ("position_ids",)
TORCH_LN_EPS = 1e-5  # the LayerNorms Hugging Face builds without the config's eps


def _lin(name: str, out: int, inp: int) -> dict[str, tuple]:
    return {name + ".weight": (out, inp), name + ".bias": (out,)}


def _norm(name: str, d: int) -> dict[str, tuple]:
    return {name + ".weight": (d,), name + ".bias": (d,)}


def uses_pooler(head: str) -> bool:
    """Hugging Face builds the pooler for these heads only."""
    return head in ("default", "sequence-classification", "multiple-choice")


def _layer_shapes(cfg: MobileBertConfig, lp: str) -> dict[str, tuple]:
    H, B, ff = cfg.hidden_size, cfg.true_hidden_size, cfg.intermediate_size
    v_in = B if cfg.use_bottleneck_attention else H
    shapes = {
        **_lin(lp + "attention.self.query", B, B),
        **_lin(lp + "attention.self.key", B, B),
        **_lin(lp + "attention.self.value", B, v_in),
        **_lin(lp + "attention.output.dense", B, B),
        **_norm(lp + "attention.output.LayerNorm", B),
        **_lin(lp + "intermediate.dense", ff, B),
        **_lin(lp + "output.dense", B, ff),
        **_norm(lp + "output.LayerNorm", B),
    }
    if cfg.use_bottleneck:
        shapes.update(_lin(lp + "output.bottleneck.dense", H, B))
        shapes.update(_norm(lp + "output.bottleneck.LayerNorm", H))
        shapes.update(_lin(lp + "bottleneck.input.dense", B, H))
        shapes.update(_norm(lp + "bottleneck.input.LayerNorm", B))
        if cfg.key_query_shared_bottleneck:
            shapes.update(_lin(lp + "bottleneck.attention.dense", B, H))
            shapes.update(_norm(lp + "bottleneck.attention.LayerNorm", B))
    for j in range(cfg.num_feedforward_networks - 1):
        shapes.update(_lin(f"{lp}ffn.{j}.intermediate.dense", ff, B))
        shapes.update(_lin(f"{lp}ffn.{j}.output.dense", B, ff))
        shapes.update(_norm(f"{lp}ffn.{j}.output.LayerNorm", B))
    return shapes


def parameter_shapes(cfg: MobileBertConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads."""
    check_head(head)
    H, E, p = cfg.hidden_size, cfg.embedding_size, cfg.base_prefix
    e = p + "embeddings."
    shapes: dict[str, tuple] = {
        e + "word_embeddings.weight": (cfg.vocab_size, E),
        e + "position_embeddings.weight": (cfg.max_position_embeddings, H),
        e + "token_type_embeddings.weight": (cfg.type_vocab_size, H),
    }
    if cfg.trigram_input or E != H:
        shapes.update(_lin(e + "embedding_transformation", H, 3 * E if cfg.trigram_input else E))
    shapes.update(_norm(e + "LayerNorm", H))
    for i in range(cfg.num_hidden_layers):
        shapes.update(_layer_shapes(cfg, f"{p}encoder.layer.{i}."))
    if uses_pooler(head) and cfg.classifier_activation:
        shapes.update(_lin(p + "pooler.dense", H, H))
    if head == "masked-lm":
        t = "cls.predictions."
        shapes.update({**_lin(t + "transform.dense", H, H), **_norm(t + "transform.LayerNorm", H)})
        shapes[t + "bias"] = (cfg.vocab_size,)
        if H > E:
            shapes[t + "dense.weight"] = (H - E, cfg.vocab_size)
        if not cfg.tie_word_embeddings:
            shapes[t + "decoder.weight"] = (cfg.vocab_size, E)
    shapes.update(pooled_head_shapes(head, labels(cfg), H))
    return shapes


def _norm_fn(xp: Any, P: Any, cfg: MobileBertConfig, name: str, x: Any, eps: float) -> Any:
    """``N(x)``: ``x * w + b`` (no_norm) or LayerNorm with ``eps``."""
    if cfg.normalization_type == "no_norm":
        return x * P[name + ".weight"] + P[name + ".bias"]
    return _layer_norm(xp, P, name, x, eps)


def embed(
    xp: Any, P: Any, cfg: MobileBertConfig, input_ids: Any, token_type_ids: Any, position_ids: Any
) -> Any:
    """The embeddings ``[b, s, H]`` (trigram input, transformation, ``N``)."""
    e = cfg.base_prefix + "embeddings."
    x = xp.take(P[e + "word_embeddings.weight"], input_ids, axis=0)
    if cfg.trigram_input:
        b, _, E = x.shape
        zero = xp.zeros((b, 1, E), dtype=x.dtype)
        x = xp.concat([xp.concat([x[:, 1:], zero], axis=1), x, xp.concat([zero, x[:, :-1]], axis=1)], axis=-1)
    if cfg.trigram_input or cfg.embedding_size != cfg.hidden_size:
        x = _linear(xp, P, e + "embedding_transformation", x)
    x = (
        x
        + xp.take(P[e + "position_embeddings.weight"], position_ids, axis=0)
        + xp.take(P[e + "token_type_embeddings.weight"], token_type_ids, axis=0)
    )
    return _norm_fn(xp, P, cfg, e + "LayerNorm", x, TORCH_LN_EPS)


def _layer(xp: Any, P: Any, cfg: MobileBertConfig, lp: str, h: Any, mask: Any) -> Any:
    """One MobileBERT layer (see the module docstring)."""
    eps, nh, hd = cfg.layer_norm_eps, cfg.num_attention_heads, cfg.head_dim

    def norm(name: str, x: Any, e: float = eps) -> Any:
        return _norm_fn(xp, P, cfg, lp + name, x, e)

    def mlp(prefix: str, x: Any) -> Any:
        return _linear(
            xp,
            P,
            prefix + "output.dense",
            activation(xp, cfg.hidden_act, _linear(xp, P, prefix + "intermediate.dense", x)),
        )

    q_in = k_in = v_in = layer_in = h
    if cfg.use_bottleneck:
        layer_in = norm("bottleneck.input.LayerNorm", _linear(xp, P, lp + "bottleneck.input.dense", h))
        if cfg.use_bottleneck_attention:
            q_in = k_in = v_in = layer_in
        elif cfg.key_query_shared_bottleneck:
            q_in = k_in = norm(
                "bottleneck.attention.LayerNorm", _linear(xp, P, lp + "bottleneck.attention.dense", h)
            )
    q = split_heads(_linear(xp, P, lp + "attention.self.query", q_in), nh, hd)
    k = split_heads(_linear(xp, P, lp + "attention.self.key", k_in), nh, hd)
    v = split_heads(_linear(xp, P, lp + "attention.self.value", v_in), nh, hd)
    ctx = merge_heads(attend(q, k, v, mask, 0, default_scale(hd), causal=False))
    a = norm("attention.output.LayerNorm", _linear(xp, P, lp + "attention.output.dense", ctx) + layer_in)
    for j in range(cfg.num_feedforward_networks - 1):
        a = norm(f"ffn.{j}.output.LayerNorm", mlp(f"{lp}ffn.{j}.", a) + a)
    o = norm("output.LayerNorm", mlp(lp, a) + a, TORCH_LN_EPS)
    if not cfg.use_bottleneck:
        return o
    return norm("output.bottleneck.LayerNorm", _linear(xp, P, lp + "output.bottleneck.dense", o) + h)


def encode(
    params: Any,
    cfg: MobileBertConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    pooled: bool = True,
) -> tuple[Any, Any, tuple]:
    """``(last_hidden_state [b, s, H], pooler_output [b, H] or None, hidden_states)``."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    if position_ids is None:
        position_ids = xp.broadcast_to(xp.arange(s)[None, :], (b, s))
    if token_type_ids is None:
        token_type_ids = xp.zeros((b, s), dtype=xp.int64)
    h = embed(xp, P, cfg, input_ids, token_type_ids, position_ids)
    hidden = [h]
    for i in range(cfg.num_hidden_layers):
        h = _layer(xp, P, cfg, f"{cfg.base_prefix}encoder.layer.{i}.", h, attention_mask)
        hidden.append(h)
    pooler = None
    if pooled:
        pooler = h[:, 0]
        if cfg.classifier_activation:
            pooler = xp.tanh(_linear(xp, P, cfg.base_prefix + "pooler.dense", pooler))
    return h, pooler, tuple(hidden)


def forward(
    params: dict,
    cfg: MobileBertConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(input_ids)
    P = ParamView(params)
    choices, (input_ids, attention_mask, token_type_ids, position_ids) = flatten_choices(
        xp, head, input_ids, attention_mask, token_type_ids, position_ids
    )
    h, pooler, hidden = encode(
        P, cfg, input_ids, attention_mask, token_type_ids, position_ids, uses_pooler(head)
    )
    if head == "masked-lm":
        t = "cls.predictions."
        x = activation(xp, cfg.hidden_act, _linear(xp, P, t + "transform.dense", h))
        x = _layer_norm(xp, P, t + "transform.LayerNorm", x, cfg.layer_norm_eps)
        words = (
            P[cfg.base_prefix + "embeddings.word_embeddings.weight"]
            if cfg.tie_word_embeddings
            else P[t + "decoder.weight"]
        )
        w = xp.permute_dims(words, (1, 0))  # [E, V]
        if cfg.hidden_size > cfg.embedding_size:
            w = xp.concat([w, P[t + "dense.weight"]], axis=0)  # [H, V]
        out = {"logits": xp.matmul(x, w) + P[t + "bias"]}
    else:
        out = pooled_heads(xp, P, head, h, pooler, choices)
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
