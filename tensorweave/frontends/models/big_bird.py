"""BigBird (``big_bird``) with ``attention_type='original_full'``: BERT's encoder
(:func:`.bert.encode`, names under ``bert.``) with heads of its own, written against ``xp``.

- ``default``: ``last_hidden_state`` and ``pooler_output = tanh(bert.pooler(h[:, 0]))`` (a plain
  linear ``bert.pooler``, no ``.dense``);
- ``masked-lm``: ``LN(act(dense(h))) @ word^T + bias`` (``cls.predictions.*``, act ``hidden_act``);
- ``sequence-classification``: ``classifier.out_proj(act(classifier.dense(h[:, 0])))`` (act
  ``hidden_act``);
- ``multiple-choice``: ``classifier(pooler_output)``, one logit per choice;
- ``token-classification``: ``classifier(h)``;
- ``question-answering``: ``y = LN(output.dense(act(intermediate.dense(h))) + h)`` (under
  ``qa_classifier.``), ``(start, end) = qa_classifier.qa_outputs(y) - 1e6 q`` where ``q_j = 1``
  for the question tokens ``0 < j < first index of sep_token_id + 1`` (Hugging Face's default
  ``question_lengths``; a row without a separator masks nothing). Pass ``token_type_ids``:
  Hugging Face derives them from ``q`` only when they are absent, the model's program always has them.

Block-sparse attention is not implemented: its config is refused (``attention_type``), see
spec/models.md for the rule transformers uses to fall back to full attention.
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from . import bert
from .bert import _act, _layer_norm, _linear
from .config import BERT_HEADS, BigBirdConfig
from .weights import ParamView

BASE_PREFIX = "bert."
IGNORED_SUFFIXES = bert.IGNORED_SUFFIXES


def check_head(head: str) -> str:
    return bert.check_head(head)


def _uses_pooler(head: str) -> bool:
    return head in ("default", "multiple-choice")


def parameter_shapes(cfg: BigBirdConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads."""
    check_head(head)
    shapes = bert.parameter_shapes(cfg, "token-classification")  # the encoder plus `classifier`
    del shapes["classifier.weight"], shapes["classifier.bias"]
    d, n, ff = cfg.hidden_size, int(cfg.num_labels or 2), cfg.intermediate_size
    if _uses_pooler(head):
        shapes.update({"bert.pooler.weight": (d, d), "bert.pooler.bias": (d,)})

    def linear(name: str, out: int, inp: int) -> None:
        shapes.update({name + ".weight": (out, inp), name + ".bias": (out,)})

    if head == "masked-lm":
        linear("cls.predictions.transform.dense", d, d)
        shapes.update(
            {
                "cls.predictions.transform.LayerNorm.weight": (d,),
                "cls.predictions.transform.LayerNorm.bias": (d,),
            }
        )
        shapes["cls.predictions.bias"] = (cfg.vocab_size,)
        if not cfg.tie_word_embeddings:
            shapes["cls.predictions.decoder.weight"] = (cfg.vocab_size, d)
    elif head == "sequence-classification":
        linear("classifier.dense", d, d)
        linear("classifier.out_proj", n, d)
    elif head == "multiple-choice":
        linear("classifier", 1, d)
    elif head == "token-classification":
        linear("classifier", n, d)
    elif head == "question-answering":
        if n != 2:
            raise ValueError(
                f"config field `num_labels` must be 2 for question-answering (start and end logits), got {n}"
            )
        q = "qa_classifier."
        linear(q + "intermediate.dense", ff, d)
        linear(q + "output.dense", d, ff)
        shapes.update({q + "output.LayerNorm.weight": (d,), q + "output.LayerNorm.bias": (d,)})
        linear(q + "qa_outputs", 2, d)
    return shapes


def question_mask(cfg: BigBirdConfig, input_ids: Any) -> Any:
    """``q [b, s]`` (float): 1 where ``0 < j < argmax(input_ids == sep_token_id) + 1``."""
    xp = array_namespace(input_ids)
    first_sep = xp.argmax(xp.astype(input_ids == cfg.sep_token_id, xp.int32), axis=-1)
    pos = xp.arange(input_ids.shape[1])[None, :]
    inside = (pos < (first_sep[:, None] + 1)) & (pos > 0)
    return xp.astype(inside, xp.float32)


def forward(
    params: dict,
    cfg: BigBirdConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(input_ids)
    P = ParamView(params)
    choices = None
    if head == "multiple-choice":  # [b, c, s] -> [b * c, s]
        b, choices, s = input_ids.shape
        flat = lambda x: None if x is None else xp.reshape(x, (b * choices, s))  # noqa: E731
        input_ids, attention_mask, token_type_ids, position_ids = map(
            flat, (input_ids, attention_mask, token_type_ids, position_ids)
        )
    h, _, hidden = bert.encode(P, cfg, input_ids, attention_mask, token_type_ids, position_ids, pooled=False)  # type: ignore[arg-type]
    pooler = xp.tanh(_linear(xp, P, "bert.pooler", h[:, 0])) if _uses_pooler(head) else None
    if head == "default":
        out = {"last_hidden_state": h, "pooler_output": pooler}
    elif head == "masked-lm":
        t = "cls.predictions."
        x = _act(xp, cfg.hidden_act, _linear(xp, P, t + "transform.dense", h))
        x = _layer_norm(xp, P, t + "transform.LayerNorm", x, cfg.layer_norm_eps)
        dec = (
            P["bert.embeddings.word_embeddings.weight"]
            if cfg.tie_word_embeddings
            else P[t + "decoder.weight"]
        )
        out = {"logits": xp.matmul(x, xp.permute_dims(dec, (1, 0))) + P[t + "bias"]}
    elif head == "sequence-classification":
        x = _act(xp, cfg.hidden_act, _linear(xp, P, "classifier.dense", h[:, 0]))
        out = {"logits": _linear(xp, P, "classifier.out_proj", x)}
    elif head == "multiple-choice":
        out = {"logits": xp.reshape(_linear(xp, P, "classifier", pooler), (-1, choices))}
    elif head == "token-classification":
        out = {"logits": _linear(xp, P, "classifier", h)}
    else:  # question-answering
        q = "qa_classifier."
        x = _act(xp, cfg.hidden_act, _linear(xp, P, q + "intermediate.dense", h))
        y = _layer_norm(
            xp, P, q + "output.LayerNorm", _linear(xp, P, q + "output.dense", x) + h, cfg.layer_norm_eps
        )
        se = _linear(xp, P, q + "qa_outputs", y) - question_mask(cfg, input_ids)[:, :, None] * 1e6
        out = {"start_logits": se[..., 0], "end_logits": se[..., 1]}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out


__all__ = ["BERT_HEADS", "forward", "parameter_shapes", "question_mask"]
