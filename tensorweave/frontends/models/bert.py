"""The BERT encoder family and its task heads, written once against ``xp``: BERT, RoBERTa,
XLM-RoBERTa, CamemBERT, Data2Vec-Text, DistilBERT, ELECTRA, ALBERT, RoFormer, I-BERT, LayoutLM
and RemBERT are config switches of this module (class attributes of :class:`~.config.BertConfig`
and its subclasses), not copies.

``h = LayerNorm(word[ids] + token_type[tt] + position[pos])`` (no token-type term when
``cfg.token_types`` is false: distilbert); ELECTRA's embeddings have ``embedding_size`` E and
``h = embeddings_project(h)`` maps them to ``hidden_size`` when ``E != hidden_size``. Per layer
(post-LayerNorm) ``a = LayerNorm(h + dense(attn(h)))``, ``h = LayerNorm(a + dense(act(intermediate(a))))``
with bidirectional attention ``softmax(q k^T / sqrt(d) + mask) v`` (padding keys masked);
``pooler = tanh(dense(h[:, 0]))`` (types with ``cfg.has_pooler``). Linear weights are
``[out, in]``; names are those of Hugging Face's ``*For*`` classes (``cfg.base_prefix``:
``bert.``, ``roberta.``, ``data2vec_text.``, ``distilbert.``, ``electra.``; a base-model
checkpoint's names are prefixed on load). DistilBERT names its layers
``distilbert.transformer.layer.{i}.attention.{q,k,v,out}_lin``, ``sa_layer_norm``,
``ffn.lin1`` / ``ffn.lin2``, ``output_layer_norm``.

The other switches: ``cfg.projection`` maps embeddings of width ``cfg.embedding_dim`` to
``hidden_size`` (electra / roformer ``embeddings_project`` when the widths differ; albert / rembert
``encoder.embedding_hidden_mapping_in`` always); albert's layers are groups of shared layers
(:func:`layer_prefixes`); roformer (``cfg.rotary``) has no position table and rotates q, k (and
v with ``rotary_value``) by ``t_i = p / 10000^(2i / head_dim)`` in the interleaved layout;
layoutlm (``cfg.has_bbox``) adds ``x[x0] + y[y0] + x[x1] + y[y1] + h[y1 - y0] + w[x1 - x0]`` of
a ``bbox [b, s, 4]`` input to the embedding sum; I-BERT (float mode) is roberta.

Positions (``position_ids=None``): ``0 .. s-1`` for every row (bert, distilbert, electra;
Hugging Face's default, also with left padding; pass ``position_ids_from_mask(mask)`` to count
from the first real token instead); with ``cfg.positions_from_ids`` (the RoBERTa layout)
``pos = cumsum(m) * m + pad_token_id`` with ``m = (input_ids != pad_token_id)``, so real tokens
count from ``pad_token_id + 1`` and padding sits at ``pad_token_id``.

Heads (``head=``; the outputs are a dict named as in Hugging Face), by ``cfg.head_style``:

- ``default``: ``last_hidden_state [b, s, d]``, plus ``pooler_output [b, d]`` with a pooler;
- ``masked-lm``: ``logits = W_dec LayerNorm(act(dense(h))) + bias [b, s, vocab]`` with ``W_dec``
  tied to the word embeddings (bert: ``cls.predictions.*``, act ``hidden_act``; roberta:
  ``lm_head.{dense,layer_norm,bias}``, act gelu; electra: ``generator_predictions.{dense,LayerNorm}``
  (hidden -> E) and ``generator_lm_head.bias``, act gelu; distilbert:
  ``vocab_transform`` / ``vocab_layer_norm`` / ``vocab_projector.bias``, act ``hidden_act``);
- ``sequence-classification``: bert ``classifier(pooler)``; roberta
  ``classifier.out_proj(tanh(classifier.dense(h[:, 0])))``; electra the same with gelu;
  distilbert ``classifier(relu(pre_classifier(h[:, 0])))``; ``[b, num_labels]``;
- ``token-classification``: ``logits = classifier(h) [b, s, num_labels]``;
- ``question-answering``: ``start_logits, end_logits [b, s]`` from ``qa_outputs(h)`` (2 labels);
- ``multiple-choice``: inputs ``[b, choices, s]``, ``logits [b, choices]`` from a 1-output
  ``classifier`` of bert / roberta ``pooler``, distilbert ``relu(pre_classifier(h[:, 0]))`` or
  electra ``act(sequence_summary.summary(h[:, 0]))`` (``summary_activation``), roformer the
  last position ``h[:, -1]``;
- albert: ``predictions.*`` masked-lm of width ``embedding_size``, classifiers on its pooler;
  roformer: bert's ``cls.predictions.*`` of width ``embedding_size``, sequence classification
  ``out_proj(act(dense(h[:, 0])))`` with ``hidden_act``; rembert: ``cls.predictions.{dense,
  LayerNorm, decoder}`` of width ``output_embedding_size`` (never tied), classifiers on the pooler.

Dropout is the identity (inference).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .config import BERT_HEADS, BertConfig
from .gpt2 import activation
from .llama import apply_rope
from .weights import ParamView

BASE_PREFIX = "bert."  # BERT's; each type's is ``cfg.base_prefix``
IGNORED_SUFFIXES = (
    "embeddings.position_ids",
    "embeddings.token_type_ids",
    "encoder.embed_positions.weight",  # roformer's sinusoidal table: rebuilt at trace time
    # I-BERT's quantisation buffers (unused with quant_mode false)
    ".weight_integer",
    ".bias_integer",
    ".weight_scaling_factor",
    ".fc_scaling_factor",
    ".act_scaling_factor",
    ".x_min",
    ".x_max",
    "LayerNorm.shift",
)

# role -> name inside a layer, per layout
LAYER_NAMES = {
    "bert": {
        "layers": "encoder.layer.{i}.",
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "o": "attention.output.dense",
        "ln1": "attention.output.LayerNorm",
        "ff1": "intermediate.dense",
        "ff2": "output.dense",
        "ln2": "output.LayerNorm",
    },
    "distilbert": {
        "layers": "transformer.layer.{i}.",
        "q": "attention.q_lin",
        "k": "attention.k_lin",
        "v": "attention.v_lin",
        "o": "attention.out_lin",
        "ln1": "sa_layer_norm",
        "ff1": "ffn.lin1",
        "ff2": "ffn.lin2",
        "ln2": "output_layer_norm",
    },
    "albert": {  # "layers": see layer_prefixes (groups of shared layers)
        "q": "attention.query",
        "k": "attention.key",
        "v": "attention.value",
        "o": "attention.dense",
        "ln1": "attention.LayerNorm",
        "ff1": "ffn",
        "ff2": "ffn_output",
        "ln2": "full_layer_layer_norm",
    },
}
# head style -> masked-lm names: (transform dense, transform norm, output bias, untied decoder
# weight, activation: None = the config's hidden_act)
MLM_NAMES = {
    "bert": (
        "cls.predictions.transform.dense",
        "cls.predictions.transform.LayerNorm",
        "cls.predictions.bias",
        "cls.predictions.decoder.weight",
        None,
    ),
    "roberta": ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias", "lm_head.decoder.weight", "gelu"),
    "electra": (
        "generator_predictions.dense",
        "generator_predictions.LayerNorm",
        "generator_lm_head.bias",
        "generator_lm_head.weight",
        "gelu",
    ),
    "distilbert": (
        "vocab_transform",
        "vocab_layer_norm",
        "vocab_projector.bias",
        "vocab_projector.weight",
        None,
    ),
    "albert": (
        "predictions.dense",
        "predictions.LayerNorm",
        "predictions.bias",
        "predictions.decoder.weight",
        None,
    ),
    "roformer": (
        "cls.predictions.transform.dense",
        "cls.predictions.transform.LayerNorm",
        "cls.predictions.bias",
        "cls.predictions.decoder.weight",
        None,
    ),
    "rembert": (  # never tied: the decoder and its bias are the head's own
        "cls.predictions.dense",
        "cls.predictions.LayerNorm",
        "cls.predictions.decoder.bias",
        "cls.predictions.decoder.weight",
        None,
    ),
}
# head style -> (first dense, its activation, output) of the sentence-level classifier, applied to
# h[:, 0] (activation "hidden_act": the config's); None: the pooler feeds ``classifier`` (bert)
SEQ_CLS_NAMES: dict[str, tuple[str, str, str] | None] = {
    "bert": None,
    "roberta": ("classifier.dense", "tanh", "classifier.out_proj"),
    "electra": ("classifier.dense", "gelu", "classifier.out_proj"),
    "distilbert": ("pre_classifier", "relu", "classifier"),
    "albert": None,
    "roformer": ("classifier.dense", "hidden_act", "classifier.out_proj"),
    "rembert": None,
}
# head style -> (first dense, activation) before the 1-output ``classifier`` of multiple-choice;
# None: the pooler; "last": the last position ``h[:, -1]`` itself (roformer's sequence summary)
MC_NAMES: dict[str, tuple[str, str] | str | None] = {
    "bert": None,
    "roberta": None,
    "electra": ("sequence_summary.summary", "summary"),
    "distilbert": ("pre_classifier", "relu"),
    "albert": None,
    "roformer": "last",
    "rembert": None,
}


def check_head(head: str, cfg: BertConfig | None = None) -> str:
    """``head`` when it is one of the family's heads (and, given ``cfg``, one its type has)."""
    if head not in BERT_HEADS:
        raise ValueError(f"unknown BERT head {head!r}; use one of {list(BERT_HEADS)}")
    if cfg is not None and head not in cfg.heads:
        raise ValueError(
            f"{cfg.model_type} has no {head!r} head (transformers has no class for it); "
            f"use one of {list(cfg.heads)}"
        )
    return head


def layer_prefixes(cfg: BertConfig) -> list[str]:
    """The name prefix of each layer application, in order: ``encoder.layer.{i}.`` (bert),
    ``transformer.layer.{i}.`` (distilbert), or for albert the ``inner_group_num`` layers of group
    ``int(i / (num_hidden_layers / num_hidden_groups))`` for each ``i`` (shared weights), so
    ``num_hidden_layers * inner_group_num`` applications."""
    p = cfg.base_prefix
    if cfg.layout != "albert":
        return [p + LAYER_NAMES[cfg.layout]["layers"].format(i=i) for i in range(cfg.num_hidden_layers)]
    groups, inner = cfg.num_hidden_groups, cfg.inner_group_num  # type: ignore[attr-defined]
    out = []
    for i in range(cfg.num_hidden_layers):
        g = int(i / (cfg.num_hidden_layers / groups))
        out += [f"{p}encoder.albert_layer_groups.{g}.albert_layers.{j}." for j in range(inner)]
    return out


def projects(cfg: BertConfig) -> bool:
    """The embeddings pass ``cfg.projection`` (embedding width != hidden, or albert / rembert)."""
    return cfg.always_project or cfg.embedding_dim != cfg.hidden_size


def mlm_tied(cfg: BertConfig) -> bool:
    """The masked-lm decoder is the word embedding table (rembert's never is)."""
    return cfg.tie_word_embeddings and cfg.head_style != "rembert"


def uses_pooler(cfg: BertConfig, head: str) -> bool:
    """The head reads the pooler: ``default`` (types with a pooler), sequence classification of
    bert, albert, rembert, layoutlm, multiple choice of those and roberta / ibert."""
    if head == "default":
        return cfg.has_pooler
    if head == "sequence-classification":
        return SEQ_CLS_NAMES[cfg.head_style] is None
    if head == "multiple-choice":
        return MC_NAMES[cfg.head_style] is None
    return False


def _check_summary(cfg: BertConfig) -> None:
    """ELECTRA's multiple-choice ``sequence_summary``: first token, a hidden -> hidden projection."""
    if cfg.summary_type != "first" or not cfg.summary_use_proj or cfg.summary_proj_to_labels:
        raise ValueError(
            "config fields `summary_type` / `summary_use_proj` / `summary_proj_to_labels` must be 'first' / "
            f"true / false for multiple-choice, got {cfg.summary_type!r} / {cfg.summary_use_proj!r} / "
            f"{cfg.summary_proj_to_labels!r}"
        )


def parameter_shapes(cfg: BertConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads (a pooler only where
    :func:`uses_pooler`, as in Hugging Face)."""
    check_head(head, cfg)
    d, ff, emb, n = cfg.hidden_size, cfg.intermediate_size, cfg.embedding_dim, cfg.num_labels
    p = cfg.base_prefix
    e = p + "embeddings."
    shapes: dict[str, tuple] = {e + "word_embeddings.weight": (cfg.vocab_size, emb)}
    if not cfg.rotary:
        shapes[e + "position_embeddings.weight"] = (cfg.max_position_embeddings, emb)
    if cfg.has_bbox:
        for axis in "xyhw":
            shapes[e + f"{axis}_position_embeddings.weight"] = (cfg.max_2d_position_embeddings, emb)  # type: ignore[attr-defined]
    if cfg.token_types:
        shapes[e + "token_type_embeddings.weight"] = (cfg.type_vocab_size, emb)
    shapes.update({e + "LayerNorm.weight": (emb,), e + "LayerNorm.bias": (emb,)})
    if projects(cfg):
        shapes.update({p + cfg.projection + ".weight": (d, emb), p + cfg.projection + ".bias": (d,)})
    names = LAYER_NAMES[cfg.layout]
    for lp in dict.fromkeys(layer_prefixes(cfg)):
        for role, shape in (
            ("q", (d, d)),
            ("k", (d, d)),
            ("v", (d, d)),
            ("o", (d, d)),
            ("ff1", (ff, d)),
            ("ff2", (d, ff)),
        ):
            shapes[lp + names[role] + ".weight"] = shape
            shapes[lp + names[role] + ".bias"] = (shape[0],)
        for role in ("ln1", "ln2"):
            shapes[lp + names[role] + ".weight"] = (d,)
            shapes[lp + names[role] + ".bias"] = (d,)
    if uses_pooler(cfg, head):
        pool = p + cfg.pooler_name
        shapes.update({pool + ".weight": (d, d), pool + ".bias": (d,)})
    style = cfg.head_style
    if head == "masked-lm":
        dense, norm, bias, decoder, _ = MLM_NAMES[style]
        t = cfg.mlm_width  # electra, albert, roformer: hidden -> embedding width; rembert's own
        shapes.update(
            {
                dense + ".weight": (t, d),
                dense + ".bias": (t,),
                norm + ".weight": (t,),
                norm + ".bias": (t,),
                bias: (cfg.vocab_size,),
            }
        )
        if not mlm_tied(cfg):
            shapes[decoder] = (cfg.vocab_size, t)
    elif head in ("sequence-classification", "multiple-choice"):
        out = n if head == "sequence-classification" else 1
        first = SEQ_CLS_NAMES[style] if head == "sequence-classification" else MC_NAMES[style]
        if head == "multiple-choice" and style == "electra":
            _check_summary(cfg)
        last = first[2] if isinstance(first, tuple) and len(first) == 3 else "classifier"
        if isinstance(first, tuple):
            shapes.update({first[0] + ".weight": (d, d), first[0] + ".bias": (d,)})
        shapes.update({last + ".weight": (out, d), last + ".bias": (out,)})
    elif head == "token-classification":
        shapes.update({"classifier.weight": (n, d), "classifier.bias": (n,)})
    elif head == "question-answering":
        if n != 2:
            raise ValueError(
                f"config field `num_labels` must be 2 for question-answering (start and end logits), got {n}"
            )
        shapes.update({"qa_outputs.weight": (2, d), "qa_outputs.bias": (2,)})
    return shapes


def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``x @ W^T + b``."""
    return xp.matmul(x, xp.permute_dims(P[name + ".weight"], (1, 0))) + P[name + ".bias"]


def _layer_norm(xp: Any, P: Any, name: str, x: Any, eps: float) -> Any:
    return xp.layer_norm(x, P[name + ".weight"], P[name + ".bias"], eps=eps)


def _act(xp: Any, name: str, x: Any) -> Any:
    """``tanh``, or an activation of :data:`~.config.ACTIVATIONS` (gelu, gelu_new, relu, ...)."""
    return xp.tanh(x) if name == "tanh" else activation(xp, name, x)


def output_block(
    xp: Any, P: Any, lp: str, ctx: Any, h: Any, act: str, eps: float, names: Mapping[str, str] | None = None
) -> Any:
    """The rest of a post-LayerNorm layer after attention, under the prefix ``lp``:
    ``a = LN1(h + o(ctx))``, then ``LN2(a + ff2(act(ff1(a))))`` (parameter names of
    :data:`LAYER_NAMES`, BERT's by default)."""
    n = names or LAYER_NAMES["bert"]
    a = _layer_norm(xp, P, lp + n["ln1"], _linear(xp, P, lp + n["o"], ctx) + h, eps)
    m = _act(xp, act, _linear(xp, P, lp + n["ff1"], a))
    return _layer_norm(xp, P, lp + n["ln2"], _linear(xp, P, lp + n["ff2"], m) + a, eps)


def default_position_ids(cfg: BertConfig, input_ids: Any) -> Any:
    """``0 .. s-1`` per row, or (``cfg.positions_from_ids``) ``cumsum(m) * m + pad`` with
    ``m = input_ids != pad``."""
    xp = array_namespace(input_ids)
    b, s = input_ids.shape
    if not cfg.positions_from_ids:
        return xp.broadcast_to(xp.arange(s)[None, :], (b, s))
    pad = cfg.pad_token_id
    m = xp.astype(input_ids != pad, xp.int64)
    return xp.cumulative_sum(m, axis=-1) * m + pad


def sinusoid_table(positions: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """RoFormer's table: ``cos, sin`` of ``t_i = p / 10000^(2i / dim)`` for ``p < positions``,
    ``i < dim / 2`` (computed in float64, rounded to float32 as Hugging Face stores it)."""
    angle = np.arange(positions, dtype=np.float64)[:, None] / np.power(
        10000.0, 2.0 * np.arange(dim // 2, dtype=np.float64) / dim
    )
    return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


def rotary_cos_sin(xp: Any, cfg: BertConfig, s: Any) -> tuple[Any, Any]:
    """``cos, sin`` ``[1, 1, s, head_dim]`` (each angle twice, ``concat(t, t)``) of positions
    ``0 .. s-1`` for :func:`~.llama.apply_rope`'s interleaved layout."""
    cos, sin = sinusoid_table(cfg.max_position_embeddings, cfg.head_dim)
    pos = xp.arange(s)
    out = []
    for table in (cos, sin):
        t = xp.take(xp.asarray(table), pos, axis=0)
        out.append(xp.concat([t, t], axis=-1)[None, None])
    return out[0], out[1]


def _embed(
    xp: Any, P: Any, cfg: BertConfig, input_ids: Any, token_type_ids: Any, position_ids: Any, bbox: Any
) -> Any:
    """``LN(word[ids] (+ position[pos]) (+ token_type[tt]) (+ 2-D terms of bbox))``, projected to
    ``hidden_size`` where :func:`projects`. LayoutLM's 2-D terms of ``bbox = (x0, y0, x1, y1)``:
    ``x[x0] + y[y0] + x[x1] + y[y1] + h[y1 - y0] + w[x1 - x0]``."""
    b, s = input_ids.shape
    e = cfg.base_prefix + "embeddings."
    h = xp.take(P[e + "word_embeddings.weight"], input_ids, axis=0)
    if not cfg.rotary:
        h = h + xp.take(P[e + "position_embeddings.weight"], position_ids, axis=0)
    if cfg.has_bbox:
        if bbox is None:
            bbox = xp.zeros((b, s, 4), dtype=xp.int64)
        x0, y0, x1, y1 = (bbox[..., j] for j in range(4))
        for table, idx in (("x", x0), ("y", y0), ("x", x1), ("y", y1), ("h", y1 - y0), ("w", x1 - x0)):
            h = h + xp.take(P[e + f"{table}_position_embeddings.weight"], idx, axis=0)
    if cfg.token_types:
        if token_type_ids is None:
            token_type_ids = xp.zeros((b, s), dtype=xp.int64)
        h = h + xp.take(P[e + "token_type_embeddings.weight"], token_type_ids, axis=0)
    h = _layer_norm(xp, P, e + "LayerNorm", h, cfg.layer_norm_eps)
    return _linear(xp, P, cfg.base_prefix + cfg.projection, h) if projects(cfg) else h


def _layer(xp: Any, P: Any, cfg: BertConfig, lp: str, h: Any, attention_mask: Any, rope: Any) -> Any:
    """One post-LayerNorm layer: ``a = LN(h + o(attn(h)))``, ``LN(a + ff2(act(ff1(a))))``;
    ``rope`` (roformer) rotates q, k (and v with ``rotary_value``) in the interleaved layout."""
    names, eps, nh, hd = LAYER_NAMES[cfg.layout], cfg.layer_norm_eps, cfg.num_attention_heads, cfg.head_dim
    q, k, v = (split_heads(_linear(xp, P, lp + names[r], h), nh, hd) for r in ("q", "k", "v"))
    if rope is not None:
        cos, sin = rope
        q, k = apply_rope(xp, q, cos, sin, hd, "interleaved"), apply_rope(xp, k, cos, sin, hd, "interleaved")
        if cfg.rotary_value:  # type: ignore[attr-defined]
            v = apply_rope(xp, v, cos, sin, hd, "interleaved")
    ctx = merge_heads(attend(q, k, v, attention_mask, 0, default_scale(hd), causal=False))
    return output_block(xp, P, lp, ctx, h, cfg.hidden_act, eps, names)


def encode(
    params: dict,
    cfg: BertConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    pooled: bool = True,
    bbox: Any = None,
) -> tuple[Any, Any, tuple]:
    """``(last_hidden_state [b, s, d], pooler_output [b, d] or None, hidden_states)`` where
    ``hidden_states`` holds the embeddings (projected) and each layer application's output
    (``num_hidden_layers + 1`` arrays; albert ``num_hidden_layers * inner_group_num + 1``);
    ``pooled`` asks for the pooler (types without one give None); ``bbox [b, s, 4]`` (layoutlm;
    default zeros)."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    if position_ids is None and not cfg.rotary:
        position_ids = default_position_ids(cfg, input_ids)
    h = _embed(xp, P, cfg, input_ids, token_type_ids, position_ids, bbox)
    rope = rotary_cos_sin(xp, cfg, s) if cfg.rotary else None
    hidden = [h]
    for lp in layer_prefixes(cfg):
        h = _layer(xp, P, cfg, lp, h, attention_mask, rope)
        hidden.append(h)
    pooler = None
    if pooled and cfg.has_pooler:
        pooler = xp.tanh(_linear(xp, P, cfg.base_prefix + cfg.pooler_name, h[:, 0]))
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
    bbox: Any = None,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked;
    ``bbox [b, s, 4]``: layoutlm's boxes (default zeros; other types ignore it)."""
    check_head(head, cfg)
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
        P, cfg, input_ids, attention_mask, token_type_ids, position_ids, uses_pooler(cfg, head), bbox
    )
    style = cfg.head_style
    if head == "default":
        out = {"last_hidden_state": h}
        if cfg.has_pooler:
            out["pooler_output"] = pooler
    elif head == "masked-lm":
        dense, norm, bias, decoder, act = MLM_NAMES[style]
        x = activation(xp, act or cfg.hidden_act, _linear(xp, P, dense, h))
        x = _layer_norm(xp, P, norm, x, cfg.layer_norm_eps)
        dec = P[cfg.base_prefix + "embeddings.word_embeddings.weight"] if mlm_tied(cfg) else P[decoder]
        out = {"logits": xp.matmul(x, xp.permute_dims(dec, (1, 0))) + P[bias]}
    elif head in ("sequence-classification", "multiple-choice"):
        first = SEQ_CLS_NAMES[style] if head == "sequence-classification" else MC_NAMES[style]
        x, last = pooler, "classifier"
        if first == "last":
            x = h[:, -1]
        elif first is not None:
            act = first[1]
            if act == "summary":
                act = cfg.summary_activation  # type: ignore[attr-defined]
            elif act == "hidden_act":
                act = cfg.hidden_act
            x = _linear(xp, P, first[0], h[:, 0])
            x = x if act is None else _act(xp, act, x)
            last = first[2] if len(first) == 3 else last
        logits = _linear(xp, P, last, x)
        out = {"logits": logits if choices is None else xp.reshape(logits, (-1, choices))}
    elif head == "token-classification":
        out = {"logits": _linear(xp, P, "classifier", h)}
    else:  # question-answering
        se = _linear(xp, P, "qa_outputs", h)
        out = {"start_logits": se[..., 0], "end_logits": se[..., 1]}
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
