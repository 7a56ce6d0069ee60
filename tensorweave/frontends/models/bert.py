"""BERT encoder and its task heads, written once against ``xp``.

``h = LayerNorm(word[ids] + token_type[tt] + position[pos])``; per layer (post-LayerNorm)
``a = LayerNorm(h + dense(attn(h)))``, ``h = LayerNorm(a + dense(act(intermediate(a))))`` with
bidirectional attention ``softmax(q k^T / sqrt(d) + mask) v`` (padding keys masked);
``pooler = tanh(dense(h[:, 0]))``. Linear weights are ``[out, in]``; names are those of
Hugging Face's ``BertFor*`` classes (``bert.`` prefix; a ``BertModel`` checkpoint's names are
prefixed on load).

Heads (``head=``; the outputs are a dict named as in Hugging Face):

- ``default``: ``last_hidden_state [b, s, d]``, ``pooler_output [b, d]``;
- ``masked-lm``: ``logits = decoder(LayerNorm(act(dense(h)))) [b, s, vocab]`` (decoder tied to
  the word embeddings, plus ``cls.predictions.bias``);
- ``sequence-classification``: ``logits = classifier(pooler) [b, num_labels]``;
- ``token-classification``: ``logits = classifier(h) [b, s, num_labels]``;
- ``question-answering``: ``start_logits, end_logits [b, s]`` from ``qa_outputs(h)`` (2 labels);
- ``multiple-choice``: inputs ``[b, choices, s]``, ``logits = classifier(pooler) [b, choices]``.

Position ids default to ``0 .. s-1`` for every row (Hugging Face's default, also with left
padding); pass ``position_ids_from_mask(mask)`` to count from the first real token instead.
Dropout is the identity (inference).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .config import BERT_HEADS, BertConfig
from .gpt2 import activation
from .weights import ParamView

BASE_PREFIX = "bert."
IGNORED_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")
_POOLED = ("default", "sequence-classification", "multiple-choice")


def check_head(head: str) -> str:
    if head not in BERT_HEADS:
        raise ValueError(f"unknown BERT head {head!r}; use one of {list(BERT_HEADS)}")
    return head


def parameter_shapes(cfg: BertConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads (no pooler for
    masked-lm / token-classification / question-answering, as in Hugging Face)."""
    check_head(head)
    d, ff = cfg.hidden_size, cfg.intermediate_size
    e = "bert.embeddings."
    shapes = {
        e + "word_embeddings.weight": (cfg.vocab_size, d),
        e + "position_embeddings.weight": (cfg.max_position_embeddings, d),
        e + "token_type_embeddings.weight": (cfg.type_vocab_size, d),
        e + "LayerNorm.weight": (d,),
        e + "LayerNorm.bias": (d,),
    }
    for i in range(cfg.num_hidden_layers):
        p = f"bert.encoder.layer.{i}."
        for name, shape in (
            ("attention.self.query", (d, d)),
            ("attention.self.key", (d, d)),
            ("attention.self.value", (d, d)),
            ("attention.output.dense", (d, d)),
            ("intermediate.dense", (ff, d)),
            ("output.dense", (d, ff)),
        ):
            shapes[p + name + ".weight"] = shape
            shapes[p + name + ".bias"] = (shape[0],)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + name + ".weight"] = (d,)
            shapes[p + name + ".bias"] = (d,)
    if head in _POOLED:
        shapes.update({"bert.pooler.dense.weight": (d, d), "bert.pooler.dense.bias": (d,)})
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
    elif head == "multiple-choice":
        shapes.update({"classifier.weight": (1, d), "classifier.bias": (1,)})
    elif head in ("sequence-classification", "token-classification"):
        shapes.update({"classifier.weight": (cfg.num_labels, d), "classifier.bias": (cfg.num_labels,)})
    elif head == "question-answering":
        if cfg.num_labels != 2:
            raise ValueError(
                f"config field `num_labels` must be 2 for question-answering (start and end logits), "
                f"got {cfg.num_labels}"
            )
        shapes.update({"qa_outputs.weight": (2, d), "qa_outputs.bias": (2,)})
    return shapes


def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``x @ W^T + b``."""
    return xp.matmul(x, xp.permute_dims(P[name + ".weight"], (1, 0))) + P[name + ".bias"]


def _layer_norm(xp: Any, P: Any, name: str, x: Any, eps: float) -> Any:
    return xp.layer_norm(x, P[name + ".weight"], P[name + ".bias"], eps=eps)


def encode(
    params: dict,
    cfg: BertConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    pooled: bool = True,
) -> tuple[Any, Any, tuple]:
    """``(last_hidden_state [b, s, d], pooler_output [b, d] or None, hidden_states)`` where
    ``hidden_states`` holds ``num_hidden_layers + 1`` arrays (embeddings, each layer's output)."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    if token_type_ids is None:
        token_type_ids = xp.zeros((b, s), dtype=xp.int64)
    if position_ids is None:
        position_ids = xp.broadcast_to(xp.arange(s)[None, :], (b, s))
    eps, nh, hd = cfg.layer_norm_eps, cfg.num_attention_heads, cfg.head_dim
    e = "bert.embeddings."
    h = (
        xp.take(P[e + "word_embeddings.weight"], input_ids, axis=0)
        + xp.take(P[e + "token_type_embeddings.weight"], token_type_ids, axis=0)
        + xp.take(P[e + "position_embeddings.weight"], position_ids, axis=0)
    )
    h = _layer_norm(xp, P, e + "LayerNorm", h, eps)
    hidden = [h]
    for i in range(cfg.num_hidden_layers):
        p = f"bert.encoder.layer.{i}."
        q = split_heads(_linear(xp, P, p + "attention.self.query", h), nh, hd)
        k = split_heads(_linear(xp, P, p + "attention.self.key", h), nh, hd)
        v = split_heads(_linear(xp, P, p + "attention.self.value", h), nh, hd)
        ctx = merge_heads(attend(q, k, v, attention_mask, 0, default_scale(hd), causal=False))
        a = _layer_norm(
            xp,
            P,
            p + "attention.output.LayerNorm",
            _linear(xp, P, p + "attention.output.dense", ctx) + h,
            eps,
        )
        m = activation(xp, cfg.hidden_act, _linear(xp, P, p + "intermediate.dense", a))
        h = _layer_norm(xp, P, p + "output.LayerNorm", _linear(xp, P, p + "output.dense", m) + a, eps)
        hidden.append(h)
    pooler = xp.tanh(_linear(xp, P, "bert.pooler.dense", h[:, 0])) if pooled else None
    return h, pooler, tuple(hidden)


def forward(
    params: dict,
    cfg: BertConfig,
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
    choices = None
    if head == "multiple-choice":  # [b, c, s] -> [b * c, s]
        b, choices, s = input_ids.shape
        flat = lambda x: None if x is None else xp.reshape(x, (b * choices, s))
        input_ids, attention_mask, token_type_ids, position_ids = map(
            flat, (input_ids, attention_mask, token_type_ids, position_ids)
        )
    h, pooler, hidden = encode(
        P, cfg, input_ids, attention_mask, token_type_ids, position_ids, head in _POOLED
    )
    if head == "default":
        out = {"last_hidden_state": h, "pooler_output": pooler}
    elif head == "masked-lm":
        t = "cls.predictions."
        x = activation(xp, cfg.hidden_act, _linear(xp, P, t + "transform.dense", h))
        x = _layer_norm(xp, P, t + "transform.LayerNorm", x, cfg.layer_norm_eps)
        dec = (
            P["bert.embeddings.word_embeddings.weight"]
            if cfg.tie_word_embeddings
            else P[t + "decoder.weight"]
        )
        out = {"logits": xp.matmul(x, xp.permute_dims(dec, (1, 0))) + P[t + "bias"]}
    elif head == "sequence-classification":
        out = {"logits": _linear(xp, P, "classifier", pooler)}
    elif head == "token-classification":
        out = {"logits": _linear(xp, P, "classifier", h)}
    elif head == "question-answering":
        se = _linear(xp, P, "qa_outputs", h)
        out = {"start_logits": se[..., 0], "end_logits": se[..., 1]}
    else:
        out = {"logits": xp.reshape(_linear(xp, P, "classifier", pooler), (-1, choices))}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out


def mean_pool(last_hidden_state: Any, attention_mask: Any) -> Any:
    """Sentence-transformers' mean pooling: ``sum(h * m) / max(sum(m), 1e-9)`` over the tokens."""
    xp = array_namespace(last_hidden_state)
    m = xp.astype(attention_mask, last_hidden_state.dtype)[:, :, None]
    total = xp.sum(last_hidden_state * m, axis=1)
    count = xp.maximum(xp.sum(m, axis=1), xp.full_like(xp.sum(m, axis=1), 1e-9))
    return total / count


def l2_normalize(x: Any, eps: float = 1e-12) -> Any:
    """``x / max(||x||_2, eps)`` along the last axis (torch.nn.functional.normalize)."""
    xp = array_namespace(x)
    norm = xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True))
    return x / xp.maximum(norm, xp.full_like(norm, eps))


def sentence_embedding(
    params: dict,
    cfg: BertConfig,
    input_ids: Any,
    attention_mask: Any,
    token_type_ids: Any = None,
    normalize: bool = True,
) -> Any:
    """all-MiniLM-L6-v2's pipeline: encoder, mean pooling over real tokens, optional L2 norm."""
    h, _, _ = encode(params, cfg, input_ids, attention_mask, token_type_ids, pooled=False)
    e = mean_pool(h, attention_mask)
    return l2_normalize(e) if normalize else e
