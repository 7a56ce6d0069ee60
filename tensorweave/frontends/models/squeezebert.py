"""SqueezeBERT and its task heads, written once against ``xp``.

BERT's post-LayerNorm encoder in which every projection is a 1x1 convolution with ``G`` groups
(weights ``[out, in / G, 1]``, Hugging Face's ``Conv1d``). A grouped 1x1 convolution is a
block-diagonal matmul: with ``x`` split into ``G`` channel groups of ``in / G``,
``y[g * o + j] = sum_i x[g * i_g + i] W[g * o + j, i] + b`` (``o = out / G``), computed as one
batched matmul of ``x`` reshaped ``[..., G, 1, in / G]`` with the weights reshaped ``[G, in / G,
out / G]``.

``h = LN(word[ids] + pos[p] + type[tt])`` (``embedding_size`` must equal ``hidden_size``); per
layer ``a = LN(h + conv_post(attn(conv_q(h), conv_k(h), conv_v(h))))``,
``h = LN(a + conv_out(act(conv_int(a))))`` (the layer norms' eps is 1e-12, fixed as in Hugging
Face) with ``attn`` BERT's bidirectional attention; ``pooler = tanh(dense(h[:, 0]))`` on every
head. Heads: BERT's (``cls.predictions.*`` masked-lm tied to the word embeddings,
``classifier(pooler)``, ``classifier(h)``, ``qa_outputs(h)``), names under ``transformer.``
(``transformer.encoder.layers.{i}.attention.query``, ``post_attention.conv1d``,
``post_attention.layernorm``, ``intermediate.conv1d``, ``output.conv1d``, ``output.layernorm``).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .bert import _layer_norm, _linear, check_head
from .config import SqueezeBertConfig
from .encoder_heads import flatten_choices, labels, pooled_head_shapes, pooled_heads
from .gpt2 import activation
from .weights import ParamView

BASE_PREFIX = "transformer."
IGNORED_SUFFIXES = ("position_ids",)
LAYER_EPS = 1e-12  # SqueezeBERT's layer norms ignore layer_norm_eps


def _conv_specs(cfg: SqueezeBertConfig) -> dict[str, tuple[int, int, int]]:
    """Each convolution of a layer: ``(out channels, in channels, groups)``."""
    d, ff = cfg.hidden_size, cfg.intermediate_size
    return {
        "attention.query": (d, d, cfg.q_groups),
        "attention.key": (d, d, cfg.k_groups),
        "attention.value": (d, d, cfg.v_groups),
        "post_attention.conv1d": (d, d, cfg.post_attention_groups),
        "intermediate.conv1d": (ff, d, cfg.intermediate_groups),
        "output.conv1d": (d, ff, cfg.output_groups),
    }


def parameter_shapes(cfg: SqueezeBertConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads (the pooler always)."""
    check_head(head)
    d, p = cfg.hidden_size, cfg.base_prefix
    e = p + "embeddings."
    shapes: dict[str, tuple] = {
        e + "word_embeddings.weight": (cfg.vocab_size, d),
        e + "position_embeddings.weight": (cfg.max_position_embeddings, d),
        e + "token_type_embeddings.weight": (cfg.type_vocab_size, d),
        e + "LayerNorm.weight": (d,),
        e + "LayerNorm.bias": (d,),
    }
    convs = _conv_specs(cfg)
    for i in range(cfg.num_hidden_layers):
        lp = f"{p}encoder.layers.{i}."
        for name, (out, inp, groups) in convs.items():
            shapes[lp + name + ".weight"] = (out, inp // groups, 1)
            shapes[lp + name + ".bias"] = (out,)
        for norm in ("post_attention.layernorm", "output.layernorm"):
            shapes.update({lp + norm + ".weight": (d,), lp + norm + ".bias": (d,)})
    shapes.update({p + "pooler.dense.weight": (d, d), p + "pooler.dense.bias": (d,)})
    if head == "masked-lm":
        t = "cls.predictions."
        shapes.update(
            {
                t + "transform.dense.weight": (d, d),
                t + "transform.dense.bias": (d,),
                t + "transform.LayerNorm.weight": (d,),
                t + "transform.LayerNorm.bias": (d,),
                t + "bias": (cfg.vocab_size,),
            }
        )
        if not cfg.tie_word_embeddings:
            shapes[t + "decoder.weight"] = (cfg.vocab_size, d)
    shapes.update(pooled_head_shapes(head, labels(cfg), d))
    return shapes


def grouped_conv1x1(xp: Any, P: Any, name: str, x: Any, groups: int) -> Any:
    """A 1x1 convolution with ``groups`` groups on ``x [b, s, in]`` (channels last): the
    block-diagonal matmul of the module docstring, plus the bias."""
    w = P[name + ".weight"]  # [out, in / groups, 1]
    out, per_in = w.shape[0], w.shape[1]
    if groups == 1:
        return xp.matmul(x, xp.permute_dims(xp.reshape(w, (out, per_in)), (1, 0))) + P[name + ".bias"]
    wg = xp.permute_dims(xp.reshape(w, (groups, out // groups, per_in)), (0, 2, 1))  # [G, in/G, out/G]
    return grouped_matmul(xp, x, wg) + P[name + ".bias"]


def grouped_matmul(xp: Any, x: Any, wg: Any) -> Any:
    """``x [b, s, G * i]`` times the block-diagonal matrix of the blocks ``wg [G, i, o]``:
    ``y[..., g * o + j] = sum_k x[..., g * i + k] wg[g, k, j]``, ``[b, s, G * o]`` (one batched
    matmul of ``x`` reshaped ``[b, s, G, 1, i]``)."""
    groups, per_in, per_out = wg.shape
    b, s = x.shape[0], x.shape[1]
    y = xp.matmul(xp.reshape(x, (b, s, groups, 1, per_in)), wg)  # [b, s, G, 1, o]
    return xp.reshape(y, (b, s, groups * per_out))


def encode(
    params: Any,
    cfg: SqueezeBertConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
) -> tuple[Any, Any, tuple]:
    """``(last_hidden_state [b, s, d], pooler_output [b, d], hidden_states)``."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    p = cfg.base_prefix
    e = p + "embeddings."
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    if position_ids is None:
        position_ids = xp.broadcast_to(xp.arange(s)[None, :], (b, s))
    if token_type_ids is None:
        token_type_ids = xp.zeros((b, s), dtype=xp.int64)
    h = (
        xp.take(P[e + "word_embeddings.weight"], input_ids, axis=0)
        + xp.take(P[e + "position_embeddings.weight"], position_ids, axis=0)
        + xp.take(P[e + "token_type_embeddings.weight"], token_type_ids, axis=0)
    )
    h = _layer_norm(xp, P, e + "LayerNorm", h, cfg.layer_norm_eps)
    hidden = [h]
    nh, hd = cfg.num_attention_heads, cfg.head_dim
    convs = _conv_specs(cfg)

    def conv(lp: str, name: str, x: Any) -> Any:
        return grouped_conv1x1(xp, P, lp + name, x, convs[name][2])

    for i in range(cfg.num_hidden_layers):
        lp = f"{p}encoder.layers.{i}."
        q, k, v = (split_heads(conv(lp, "attention." + r, h), nh, hd) for r in ("query", "key", "value"))
        ctx = merge_heads(attend(q, k, v, attention_mask, 0, default_scale(hd), causal=False))
        a = _layer_norm(
            xp, P, lp + "post_attention.layernorm", conv(lp, "post_attention.conv1d", ctx) + h, LAYER_EPS
        )
        m = activation(xp, cfg.hidden_act, conv(lp, "intermediate.conv1d", a))
        h = _layer_norm(xp, P, lp + "output.layernorm", conv(lp, "output.conv1d", m) + a, LAYER_EPS)
        hidden.append(h)
    pooler = xp.tanh(_linear(xp, P, p + "pooler.dense", h[:, 0]))
    return h, pooler, tuple(hidden)


def forward(
    params: dict,
    cfg: SqueezeBertConfig,
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
    h, pooler, hidden = encode(P, cfg, input_ids, attention_mask, token_type_ids, position_ids)
    if head == "masked-lm":
        t = "cls.predictions."
        x = activation(xp, cfg.hidden_act, _linear(xp, P, t + "transform.dense", h))
        x = _layer_norm(xp, P, t + "transform.LayerNorm", x, cfg.layer_norm_eps)
        dec = (
            P[cfg.base_prefix + "embeddings.word_embeddings.weight"]
            if cfg.tie_word_embeddings
            else P[t + "decoder.weight"]
        )
        out = {"logits": xp.matmul(x, xp.permute_dims(dec, (1, 0))) + P[t + "bias"]}
    else:
        out = pooled_heads(xp, P, head, h, pooler, choices)
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
