"""Task-head pieces shared by the encoder modules outside ``bert.py`` (``xlm``, ``squeezebert``,
``mobilebert``, ``convbert``), written once against ``xp``. They follow the contract of
``bert.forward``: the same six heads (``BERT_HEADS``), outputs named as in Hugging Face.

- multiple choice: inputs ``[b, c, s]`` are flattened to ``[b * c, s]`` rows, the per-row logit
  ``[b * c, 1]`` is reshaped to ``[b, c]``;
- question answering: ``start_logits, end_logits = qa_outputs(h)[..., 0], [..., 1]`` (``num_labels``
  must be 2);
- sequence summary (Hugging Face's ``SequenceSummary``, xlm / flaubert / convbert): a vector per
  row, ``x = h[:, 0]`` (``first``), ``h[:, -1]`` (``last``; also ``cls_index`` without an index),
  or ``mean(h, axis=1)`` (``mean``, over every position, padding included), then
  ``x = summary(x)`` (a linear to ``num_labels`` with ``summary_proj_to_labels``, else to
  ``hidden_size``) when ``summary_use_proj``, then ``summary_activation`` (null: identity).
"""

from __future__ import annotations

from typing import Any, Callable

from .bert import _act, _linear

QA = "qa_outputs"


def labels(cfg: Any) -> int:
    """``num_labels`` (an int once the config is validated; the field is typed optional)."""
    return int(cfg.num_labels)


def flatten_choices(xp: Any, head: str, input_ids: Any, *rest: Any) -> tuple[int | None, tuple]:
    """``(choices, (input_ids, *rest))`` with ``[b, c, s]`` arrays flattened to ``[b * c, s]`` for
    ``multiple-choice`` (None entries stay None); other heads pass through with ``choices`` None."""
    if head != "multiple-choice":
        return None, (input_ids, *rest)
    b, choices, s = input_ids.shape
    flat: Callable[[Any], Any] = lambda x: None if x is None else xp.reshape(x, (b * choices, s))
    return choices, tuple(flat(x) for x in (input_ids, *rest))


def qa_shapes(num_labels: int, hidden: int) -> dict[str, tuple]:
    """``qa_outputs`` of a span head; ``num_labels`` must be 2 (start and end)."""
    if num_labels != 2:
        raise ValueError(
            f"config field `num_labels` must be 2 for question-answering (start and end logits), got {num_labels}"
        )
    return {QA + ".weight": (2, hidden), QA + ".bias": (2,)}


def span_logits(xp: Any, P: Any, h: Any) -> dict:
    """``start_logits`` / ``end_logits [b, s]`` from ``qa_outputs(h)``."""
    se = _linear(xp, P, QA, h)
    return {"start_logits": se[..., 0], "end_logits": se[..., 1]}


def summary_width(cfg: Any) -> int:
    """Width of the sequence summary: ``num_labels`` when it projects to the labels, else hidden."""
    return labels(cfg) if cfg.summary_use_proj and cfg.summary_proj_to_labels else cfg.hidden_size


def summary_shapes(cfg: Any, name: str = "sequence_summary.summary") -> dict[str, tuple]:
    """The summary projection's parameters (none without ``summary_use_proj``)."""
    if not cfg.summary_use_proj:
        return {}
    w = summary_width(cfg)
    return {name + ".weight": (w, cfg.hidden_size), name + ".bias": (w,)}


def sequence_summary(xp: Any, P: Any, cfg: Any, h: Any, name: str = "sequence_summary.summary") -> Any:
    """The summary vector ``[b, summary_width]`` of ``h [b, s, d]`` (see the module docstring)."""
    if cfg.summary_type == "first":
        x = h[:, 0]
    elif cfg.summary_type == "mean":
        x = xp.mean(h, axis=1)
    else:  # last, cls_index without an index
        x = h[:, -1]
    if cfg.summary_use_proj:
        x = _linear(xp, P, name, x)
    return x if cfg.summary_activation is None else _act(xp, cfg.summary_activation, x)


def pooled_head_shapes(head: str, num_labels: int, hidden: int) -> dict[str, tuple]:
    """BERT's classifier parameters for the heads other than ``default`` and ``masked-lm``."""
    if head == "sequence-classification":
        return {"classifier.weight": (num_labels, hidden), "classifier.bias": (num_labels,)}
    if head == "multiple-choice":
        return {"classifier.weight": (1, hidden), "classifier.bias": (1,)}
    if head == "token-classification":
        return {"classifier.weight": (num_labels, hidden), "classifier.bias": (num_labels,)}
    if head == "question-answering":
        return qa_shapes(num_labels, hidden)
    return {}


def pooled_heads(xp: Any, P: Any, head: str, h: Any, pooler: Any, choices: int | None) -> dict:
    """BERT's layout of the heads other than ``masked-lm``: ``default`` ``last_hidden_state``
    (and ``pooler_output`` when there is one), ``classifier(pooler)`` for sequence
    classification and (per choice) multiple choice, ``classifier(h)`` per token, span logits."""
    if head == "default":
        return (
            {"last_hidden_state": h} if pooler is None else {"last_hidden_state": h, "pooler_output": pooler}
        )
    if head in ("sequence-classification", "multiple-choice"):
        return {"logits": unflatten_choices(xp, _linear(xp, P, "classifier", pooler), choices)}
    if head == "token-classification":
        return {"logits": _linear(xp, P, "classifier", h)}
    return span_logits(xp, P, h)


def unflatten_choices(xp: Any, logits: Any, choices: int | None) -> Any:
    """``[b * c, 1] -> [b, c]`` for multiple choice; other heads pass through."""
    return logits if choices is None else xp.reshape(logits, (-1, choices))
