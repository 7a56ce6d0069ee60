"""Logits processors and warpers, written once against ``xp``.

Each class follows Hugging Face's name, arguments and validation errors as in
Transformers 4.37's PyTorch processors (spec/generation.md lists the places where
the PyTorch, TensorFlow and Flax versions differ and which one we follow).

Call convention: ``proc(input_ids, scores, cur_len=None) -> scores``.

- ``input_ids``: int ``[batch, L]``. In step-wise use ``L`` is the current length.
  In fused (traced while_loop) use it is the static ``[batch, max_length]`` token
  buffer and ``cur_len`` (an int scalar array) says how many positions are filled;
  positions ``>= cur_len`` are ignored.
- ``scores``: float ``[batch, vocab]``.
- No Python-level data-dependent branching: conditions on ``cur_len`` are
  ``xp.where`` selections, so every processor runs inside a traced loop.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Iterable, Sequence

from ...ir import array_namespace
from .special_tokens import eos_ids

NEG_INF = -math.inf


def _eos_list(eos_token_id: Any) -> list[int]:
    """A processor's eos argument (int, list or None) as a list, through the shared normaliser."""
    return list(eos_ids(eos_token_id))


def _cur_len(input_ids: Any, cur_len: Any) -> Any:
    return input_ids.shape[-1] if cur_len is None else cur_len


def _token_mask(xp: Any, scores: Any, token_ids: Sequence[int]) -> Any:
    """bool [vocab]: True at the given (static) token ids (ids outside the vocabulary are ignored)."""
    vocab = scores.shape[-1]
    ar = xp.arange(vocab)
    mask = xp.zeros((vocab,), dtype=xp.bool)
    for t in token_ids:
        mask = mask | (ar == int(t))
    return mask


def _positions(xp: Any, input_ids: Any) -> Any:
    return xp.arange(input_ids.shape[-1])


class LogitsProcessor:
    """Base class: ``__call__(input_ids, scores, cur_len=None) -> scores``."""

    def __call__(self, input_ids: Any, scores: Any, cur_len: Any = None) -> Any:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    def _values(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class LogitsWarper(LogitsProcessor):
    """A processor applied only when sampling."""


class LogitsProcessorList(list):
    """A list of processors applied in order; extra keyword arguments are passed to processors
    whose ``__call__`` declares them (a missing one is a ``ValueError``)."""

    def __call__(self, input_ids: Any, scores: Any, cur_len: Any = None, **kwargs: Any) -> Any:
        for proc in self:
            params = inspect.signature(proc.__call__).parameters
            extra = [p for p in params if p not in ("input_ids", "scores", "cur_len", "self")]
            if extra:
                missing = [
                    p for p in extra if p not in kwargs and params[p].default is inspect.Parameter.empty
                ]
                if missing:
                    raise ValueError(
                        f"Make sure that all the required parameters: {list(params)} for "
                        f"{proc.__class__} are passed to the logits processor."
                    )
                scores = proc(input_ids, scores, cur_len, **{k: kwargs[k] for k in extra if k in kwargs})
            else:
                scores = proc(input_ids, scores, cur_len)
        return scores


# ============================================================================ warpers


class TemperatureLogitsWarper(LogitsWarper):
    """scores / temperature."""

    def __init__(self, temperature: float):
        if not isinstance(temperature, float) or not (temperature > 0):
            msg = f"`temperature` (={temperature}) has to be a strictly positive float, otherwise your next token scores will be invalid."
            if isinstance(temperature, float) and temperature == 0.0:
                msg += " If you're looking for greedy decoding strategies, set `do_sample=False`."
            raise ValueError(msg)
        self.temperature = temperature

    def __call__(self, input_ids, scores, cur_len=None):
        return scores / self.temperature


class TopKLogitsWarper(LogitsWarper):
    """Keep scores >= the k-th largest (k = min(max(top_k, min_tokens_to_keep), vocab)); ties survive."""

    def __init__(self, top_k: int, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        if not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"`top_k` has to be a strictly positive integer, but is {top_k}")
        self.top_k = max(top_k, min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        vocab = scores.shape[-1]
        k = min(self.top_k, vocab) if isinstance(vocab, int) else self.top_k
        kth = xp.top_k(scores, k)[0][..., -1:]
        return xp.where(scores < kth, xp.full_like(scores, self.filter_value), scores)


class TopPLogitsWarper(LogitsWarper):
    """Nucleus filtering (PT form): sort ascending, cumulative softmax, remove entries with
    cum <= 1 - top_p, always keep the last ``min_tokens_to_keep`` (the most likely)."""

    def __init__(self, top_p: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        top_p = float(top_p)
        if top_p < 0 or top_p > 1.0:
            raise ValueError(f"`top_p` has to be a float > 0 and < 1, but is {top_p}")
        if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
            raise ValueError(
                f"`min_tokens_to_keep` has to be a positive integer, but is {min_tokens_to_keep}"
            )
        self.top_p = top_p
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        order = xp.argsort(scores, axis=-1)
        sorted_logits = xp.take_along_axis(scores, order, axis=-1)
        cum = xp.cumulative_sum(xp.softmax(sorted_logits, axis=-1), axis=-1)
        remove_sorted = cum <= (1 - self.top_p)
        vocab = scores.shape[-1]
        keep_tail = _positions(xp, scores) >= (vocab - self.min_tokens_to_keep)
        remove_sorted = remove_sorted & ~keep_tail
        remove = xp.put_along_axis(xp.zeros_like(remove_sorted), order, remove_sorted, axis=-1)
        return xp.where(remove, xp.full_like(scores, self.filter_value), scores)


class TypicalLogitsWarper(LogitsWarper):
    """Locally typical sampling: keep the tokens whose |-log p - H| is smallest until their
    cumulative probability reaches ``mass``."""

    def __init__(self, mass: float = 0.9, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        mass = float(mass)
        if not (mass > 0 and mass < 1):
            raise ValueError(f"`typical_p` has to be a float > 0 and < 1, but is {mass}")
        if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
            raise ValueError(
                f"`min_tokens_to_keep` has to be a positive integer, but is {min_tokens_to_keep}"
            )
        self.mass = mass
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        logp = xp.log_softmax(scores, axis=-1)
        p = xp.exp(logp)
        ent = -xp.sum(xp.where(p > 0, logp * p, xp.zeros_like(p)), axis=-1, keepdims=True)
        shifted = xp.abs(-logp - ent)
        order = xp.argsort(shifted, axis=-1)
        sorted_shifted = xp.take_along_axis(shifted, order, axis=-1)
        cum = xp.cumulative_sum(xp.take_along_axis(p, order, axis=-1), axis=-1)
        vocab = scores.shape[-1]
        last_ind = xp.clip(xp.sum(xp.astype(cum < self.mass, xp.int64), axis=-1, keepdims=True), 0, vocab - 1)
        threshold = xp.take_along_axis(sorted_shifted, last_ind, axis=-1)
        remove_sorted = (sorted_shifted > threshold) & (_positions(xp, scores) >= self.min_tokens_to_keep)
        remove = xp.put_along_axis(xp.zeros_like(remove_sorted), order, remove_sorted, axis=-1)
        return xp.where(remove, xp.full_like(scores, self.filter_value), scores)


class EpsilonLogitsWarper(LogitsWarper):
    """Remove tokens with probability < epsilon, except the top ``min_tokens_to_keep`` by score."""

    def __init__(self, epsilon: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        epsilon = float(epsilon)
        if epsilon <= 0 or epsilon >= 1:
            raise ValueError(f"`epsilon_cutoff` has to be a float > 0 and < 1, but is {epsilon}")
        if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
            raise ValueError(
                f"`min_tokens_to_keep` has to be a strictly positive integer, but is {min_tokens_to_keep}"
            )
        self.epsilon = epsilon
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        p = xp.softmax(scores, axis=-1)
        return _remove_below(xp, scores, p < self.epsilon, self.min_tokens_to_keep, self.filter_value)


class EtaLogitsWarper(LogitsWarper):
    """Remove tokens with p < eta = min(epsilon, sqrt(epsilon) * exp(-H)), except the top
    ``min_tokens_to_keep`` by score."""

    def __init__(self, epsilon: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        epsilon = float(epsilon)
        if epsilon <= 0 or epsilon >= 1:
            raise ValueError(f"`eta_cutoff` has to be a float > 0 and < 1, but is {epsilon}")
        if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
            raise ValueError(
                f"`min_tokens_to_keep` has to be a strictly positive integer, but is {min_tokens_to_keep}"
            )
        self.epsilon = epsilon
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        logp = xp.log_softmax(scores, axis=-1)
        p = xp.exp(logp)
        ent = -xp.sum(xp.where(p > 0, logp * p, xp.zeros_like(p)), axis=-1, keepdims=True)
        eta = xp.minimum(xp.full_like(ent, self.epsilon), math.sqrt(self.epsilon) * xp.exp(-ent))
        return _remove_below(xp, scores, p < eta, self.min_tokens_to_keep, self.filter_value)


def _remove_below(xp: Any, scores: Any, remove: Any, min_keep: int, filter_value: float) -> Any:
    vocab = scores.shape[-1]
    k = min(min_keep, vocab) if isinstance(vocab, int) else min_keep
    kth = xp.top_k(scores, k)[0][..., -1:]
    remove = remove & (scores < kth)
    return xp.where(remove, xp.full_like(scores, filter_value), scores)


# ============================================================================ processors


class MinLengthLogitsProcessor(LogitsProcessor):
    """EOS ids get -inf while cur_len < min_length."""

    def __init__(self, min_length: int, eos_token_id: Any):
        if not isinstance(min_length, int) or min_length < 0:
            raise ValueError(f"`min_length` has to be a non-negative integer, but is {min_length}")
        self.min_length = min_length
        self.eos_token_id = _eos_list(eos_token_id)

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        n = _cur_len(input_ids, cur_len)
        mask = _token_mask(xp, scores, self.eos_token_id) & (n < self.min_length)
        return xp.where(mask, xp.full_like(scores, NEG_INF), scores)


class MinNewTokensLengthLogitsProcessor(LogitsProcessor):
    """EOS ids get -inf while cur_len - prompt_length_to_skip < min_new_tokens."""

    def __init__(self, prompt_length_to_skip: int, min_new_tokens: int, eos_token_id: Any):
        for name, value in (
            ("prompt_length_to_skip", prompt_length_to_skip),
            ("min_new_tokens", min_new_tokens),
        ):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` has to be a positive integer, but is {value}")
        self.prompt_length_to_skip = prompt_length_to_skip
        self.min_new_tokens = min_new_tokens
        self.eos_token_id = _eos_list(eos_token_id)

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        n = _cur_len(input_ids, cur_len)
        mask = _token_mask(xp, scores, self.eos_token_id) & (
            (n - self.prompt_length_to_skip) < self.min_new_tokens
        )
        return xp.where(mask, xp.full_like(scores, NEG_INF), scores)


def _presence(xp: Any, input_ids: Any, scores: Any, cur_len: Any) -> Any:
    """bool [batch, vocab]: the token occurs in input_ids[:, :cur_len]."""
    vocab = scores.shape[-1]
    valid = _positions(xp, input_ids) < _cur_len(input_ids, cur_len)  # [L]
    hit = (input_ids[:, :, None] == xp.arange(vocab)[None, None, :]) & valid[None, :, None]
    return xp.any(hit, axis=1)


def _penalize(xp: Any, scores: Any, present: Any, penalty: float) -> Any:
    penalized = xp.where(scores < 0, scores * penalty, scores / penalty)
    return xp.where(present, penalized, scores)


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """For each token already in input_ids: s < 0 -> s * penalty, else s / penalty."""

    def __init__(self, penalty: float):
        if not isinstance(penalty, float) or not (penalty > 0):
            raise ValueError(f"`penalty` has to be a strictly positive float, but is {penalty}")
        self.penalty = penalty

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        return _penalize(xp, scores, _presence(xp, input_ids, scores, cur_len), self.penalty)


class EncoderRepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """The repetition formula with 1/penalty on the encoder's input ids (boosts them)."""

    def __init__(self, penalty: float, encoder_input_ids: Any):
        if not isinstance(penalty, float) or not (penalty > 0):
            raise ValueError(f"`penalty` has to be a strictly positive float, but is {penalty}")
        self.penalty = 1 / penalty
        self.encoder_input_ids = encoder_input_ids

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        enc = xp.asarray(self.encoder_input_ids)
        return _penalize(xp, scores, _presence(xp, enc, scores, None), self.penalty)


def _ngram_bans(xp: Any, ids: Any, cur_len: Any, n: int, vocab: Any, tail: Any = None) -> Any:
    """bool [batch, vocab]: tokens t such that (tail..., t) is an n-gram of ids[:, :cur_len]
    (tail defaults to the last n-1 tokens of ids)."""
    L = ids.shape[-1]
    if isinstance(L, int) and L < n:
        return xp.zeros((ids.shape[0], vocab), dtype=xp.bool)
    J = L - n + 1  # candidate n-gram starts
    if tail is None:
        tail = [
            xp.take_along_axis(
                ids,
                xp.broadcast_to(
                    xp.reshape(xp.clip(xp.astype(cur_len - n + 1 + k, xp.int64), 0, None), (1, 1)),
                    (ids.shape[0], 1),
                ),
                axis=-1,
            )
            for k in range(n - 1)
        ]  # each [batch, 1]
    match = xp.ones((ids.shape[0], J), dtype=xp.bool)
    for k in range(n - 1):
        match = match & (ids[:, k : k + J] == tail[k])
    starts = xp.arange(J)
    match = match & ((starts + n - 1) < cur_len)[None, :]
    banned_tok = ids[:, n - 1 : n - 1 + J]
    hit = (banned_tok[:, :, None] == xp.arange(vocab)[None, None, :]) & match[:, :, None]
    return xp.any(hit, axis=1)


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Ban every token that would complete an n-gram already present in the row."""

    def __init__(self, ngram_size: int):
        if not isinstance(ngram_size, int) or ngram_size <= 0:
            raise ValueError(f"`ngram_size` has to be a strictly positive integer, but is {ngram_size}")
        self.ngram_size = ngram_size

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        n = self.ngram_size
        cl = _cur_len(input_ids, cur_len)
        if isinstance(cl, int) and cl + 1 < n:
            return scores
        ids = input_ids
        if isinstance(cl, int):
            cl_arr = xp.asarray(cl, dtype=xp.int64)
        else:
            cl_arr = cl
        if n == 1:
            banned = _presence(xp, ids, scores, cur_len)
        else:
            banned = _ngram_bans(xp, ids, cl_arr, n, scores.shape[-1])
        banned = banned & (cl_arr + 1 >= n)
        return xp.where(banned, xp.full_like(scores, NEG_INF), scores)


class EncoderNoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Ban tokens completing an n-gram of the encoder input whose first n-1 tokens equal the
    decoder's last n-1 tokens; a batch item's beams share its encoder ids."""

    def __init__(self, encoder_ngram_size: int, encoder_input_ids: Any):
        if not isinstance(encoder_ngram_size, int) or encoder_ngram_size <= 0:
            raise ValueError(
                f"`encoder_ngram_size` has to be a strictly positive integer, but is {encoder_ngram_size}"
            )
        self.ngram_size = encoder_ngram_size
        self.encoder_input_ids = encoder_input_ids

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        n = self.ngram_size
        enc = xp.asarray(self.encoder_input_ids)
        cl = _cur_len(input_ids, cur_len)
        cl_arr = xp.asarray(cl, dtype=xp.int64) if isinstance(cl, int) else cl
        batch = input_ids.shape[0]
        num_hypos = batch
        reps = (
            num_hypos // enc.shape[0] if isinstance(num_hypos, int) and isinstance(enc.shape[0], int) else 1
        )
        if reps != 1:
            enc = xp.repeat(enc, reps, axis=0)
        if n == 1:
            banned = _presence(xp, enc, scores, None)
        else:
            tail = [
                xp.take_along_axis(
                    input_ids,
                    xp.broadcast_to(
                        xp.reshape(xp.clip(xp.astype(cl_arr - n + 1 + k, xp.int64), 0, None), (1, 1)),
                        (batch, 1),
                    ),
                    axis=-1,
                )
                for k in range(n - 1)
            ]
            banned = _ngram_bans(
                xp, enc, xp.asarray(enc.shape[-1], dtype=xp.int64), n, scores.shape[-1], tail
            )
            banned = banned & (cl_arr >= n - 1)
        return xp.where(banned, xp.full_like(scores, NEG_INF), scores)


class SequenceBiasLogitsProcessor(LogitsProcessor):
    """Add a bias to a sequence's last token when the row ends with the sequence's other tokens."""

    def __init__(self, sequence_bias: dict):
        self.sequence_bias = sequence_bias
        self._validate_arguments()
        self._vocab_checked = False

    def _validate_arguments(self) -> None:
        sb = self.sequence_bias
        if not isinstance(sb, dict) or len(sb) == 0:
            raise ValueError(f"`sequence_bias` has to be a non-empty dictionary, but is {sb}.")
        if any(not isinstance(k, tuple) for k in sb):
            raise ValueError(f"`sequence_bias` has to be a dict with tuples as keys, but is {sb}.")
        if any(len(k) == 0 or any(not isinstance(t, int) or t < 0 for t in k) for k in sb):
            raise ValueError(
                f"Each key in `sequence_bias` has to be a non-empty tuple of positive integers, but is {sb}."
            )
        if any(not isinstance(v, float) for v in sb.values()):
            raise ValueError(f"`sequence_bias` has to be a dict with floats as values, but is {sb}.")

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        vocab = scores.shape[-1]
        if isinstance(vocab, int):
            bad = [k for k in self.sequence_bias if any(t >= vocab for t in k)]
            if bad:
                raise ValueError(
                    f"The model vocabulary size is {vocab}, but the following tokens were being biased: "
                    f"{sorted({t for k in bad for t in k if t >= vocab})}"
                )
        cl = _cur_len(input_ids, cur_len)
        cl_arr = xp.asarray(cl, dtype=xp.int64) if isinstance(cl, int) else cl
        bias = xp.zeros_like(scores)
        ar = xp.arange(vocab)
        for seq, value in self.sequence_bias.items():
            onehot = xp.astype(ar == seq[-1], scores.dtype)[None, :]
            if len(seq) == 1:
                bias = bias + value * onehot
                continue
            prefix = seq[:-1]
            m = len(prefix)
            L = input_ids.shape[-1]
            if isinstance(L, int) and isinstance(cl, int) and m > cl:
                continue
            ok = cl_arr >= m
            match = xp.ones((input_ids.shape[0], 1), dtype=xp.bool)
            for k, tok in enumerate(prefix):
                pos = xp.clip(cl_arr - m + k, 0, None)
                got = xp.take_along_axis(
                    input_ids,
                    xp.broadcast_to(xp.reshape(xp.astype(pos, xp.int64), (1, 1)), (input_ids.shape[0], 1)),
                    axis=-1,
                )
                match = match & (got == tok)
            match = match & ok
            bias = bias + xp.where(match, value * onehot, xp.zeros_like(onehot))
        return scores + bias


class NoBadWordsLogitsProcessor(SequenceBiasLogitsProcessor):
    """SequenceBias with -inf biases; single-token entries equal to [eos] are dropped (PT)."""

    def __init__(self, bad_words_ids: list, eos_token_id: Any = None):
        self.bad_word_ids = bad_words_ids
        if not isinstance(bad_words_ids, list) or len(bad_words_ids) == 0:
            raise ValueError(f"`bad_words_ids` has to be a non-empty list, but is {bad_words_ids}.")
        if any(not isinstance(b, list) for b in bad_words_ids):
            raise ValueError(f"`bad_words_ids` has to be a list of lists, but is {bad_words_ids}.")
        if any(any(not isinstance(t, int) or t < 0 for t in b) for b in bad_words_ids):
            raise ValueError(
                f"Each list in `bad_words_ids` has to be a list of positive integers, but is {bad_words_ids}."
            )
        eos = _eos_list(eos_token_id)
        words = [b for b in bad_words_ids if not (len(b) == 1 and b[0] in eos)]
        self.sequence_bias = {tuple(b): NEG_INF for b in words}
        self._vocab_checked = False
        if not self.sequence_bias:
            self.sequence_bias = {}

    def __call__(self, input_ids, scores, cur_len=None):
        if not self.sequence_bias:
            return scores
        xp = array_namespace(scores)
        vocab = scores.shape[-1]
        banned = xp.zeros(tuple(scores.shape), dtype=xp.bool)
        cl = _cur_len(input_ids, cur_len)
        cl_arr = xp.asarray(cl, dtype=xp.int64) if isinstance(cl, int) else cl
        ar = xp.arange(vocab)
        for seq in self.sequence_bias:
            onehot = (ar == seq[-1])[None, :]
            if len(seq) == 1:
                banned = banned | onehot
                continue
            prefix = seq[:-1]
            m = len(prefix)
            match = xp.broadcast_to(xp.reshape(cl_arr >= m, (1, 1)), (input_ids.shape[0], 1))
            for k, tok in enumerate(prefix):
                pos = xp.clip(cl_arr - m + k, 0, None)
                got = xp.take_along_axis(
                    input_ids,
                    xp.broadcast_to(xp.reshape(xp.astype(pos, xp.int64), (1, 1)), (input_ids.shape[0], 1)),
                    axis=-1,
                )
                match = match & (got == tok)
            banned = banned | (match & onehot)
        return xp.where(banned, xp.full_like(scores, NEG_INF), scores)


class PrefixConstrainedLogitsProcessor(LogitsProcessor):
    """Only tokens allowed by ``prefix_allowed_tokens_fn(batch_id, ids)`` survive (step-wise mode only:
    the function is Python and sees concrete ids)."""

    def __init__(self, prefix_allowed_tokens_fn: Callable[[int, Any], list], num_beams: int):
        self._prefix_allowed_tokens_fn = prefix_allowed_tokens_fn
        self._num_beams = num_beams

    def __call__(self, input_ids, scores, cur_len=None):
        from ...ir.trace import TracedArray

        if isinstance(input_ids, TracedArray):
            raise ValueError(
                "`prefix_allowed_tokens_fn` needs concrete token ids: use step-wise generation "
                "(trace=False) with it"
            )
        import numpy as np

        ids = np.asarray(input_ids)
        s = np.asarray(scores)
        mask = np.full(s.shape, NEG_INF, dtype=s.dtype)
        for row in range(ids.shape[0]):
            allowed = self._prefix_allowed_tokens_fn(row // self._num_beams, ids[row])
            if len(allowed) == 0:
                raise ValueError(
                    f"`prefix_allowed_tokens_fn` returned an empty list for batch ID {row // self._num_beams}."
                    f"This means that the constraint is unsatisfiable. Please check your implementation"
                    f"of `prefix_allowed_tokens_fn` "
                )
            mask[row, allowed] = 0
        return s + mask


class HammingDiversityLogitsProcessor(LogitsProcessor):
    """Group beam search: subtract penalty x (times earlier groups chose the token this step)."""

    def __init__(self, diversity_penalty: float, num_beams: int, num_beam_groups: int):
        if not isinstance(diversity_penalty, float) or (not diversity_penalty > 0.0):
            raise ValueError("`diversity_penalty` should be a float strictly larger than 0.")
        if not isinstance(num_beams, int) or num_beams < 2:
            raise ValueError("`num_beams` should be an integer strictly larger than 1.")
        if not isinstance(num_beam_groups, int) or num_beam_groups < 2:
            raise ValueError("`num_beam_groups` should be an integer strictly larger than 1.")
        if num_beam_groups > num_beams:
            raise ValueError("`beam_groups` has to be smaller or equal to `num_beams`.")
        self._diversity_penalty = diversity_penalty
        self._num_sub_beams = num_beams // num_beam_groups
        self._num_beams = num_beams

    def __call__(self, input_ids, scores, cur_len, current_tokens, beam_group_idx):
        xp = array_namespace(scores)
        if beam_group_idx == 0:
            return scores
        batch = scores.shape[0] // self._num_sub_beams
        vocab = scores.shape[-1]
        toks = xp.reshape(current_tokens, (batch, self._num_beams))[:, : beam_group_idx * self._num_sub_beams]
        counts = xp.sum(xp.astype(toks[:, :, None] == xp.arange(vocab)[None, None, :], scores.dtype), axis=1)
        counts = xp.repeat(counts, self._num_sub_beams, axis=0)
        return scores - self._diversity_penalty * counts


class ForcedBOSTokenLogitsProcessor(LogitsProcessor):
    """At cur_len == 1 every score is -inf except bos_token_id, which is 0."""

    def __init__(self, bos_token_id: int):
        self.bos_token_id = bos_token_id

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        n = _cur_len(input_ids, cur_len)
        forced = xp.where(
            _token_mask(xp, scores, [self.bos_token_id]), xp.zeros_like(scores), xp.full_like(scores, NEG_INF)
        )
        return xp.where(n == 1, forced, scores)


class ForcedEOSTokenLogitsProcessor(LogitsProcessor):
    """At cur_len == max_length - 1 every score is -inf except the eos ids, which are 0."""

    def __init__(self, max_length: int, eos_token_id: Any):
        self.max_length = max_length
        self.eos_token_id = _eos_list(eos_token_id)

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        n = _cur_len(input_ids, cur_len)
        forced = xp.where(
            _token_mask(xp, scores, self.eos_token_id), xp.zeros_like(scores), xp.full_like(scores, NEG_INF)
        )
        return xp.where(n == self.max_length - 1, forced, scores)


class InfNanRemoveLogitsProcessor(LogitsProcessor):
    """nan -> 0, +inf -> the dtype's max, -inf -> the dtype's min."""

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        info = xp.finfo(scores.dtype)
        scores = xp.where(xp.isnan(scores), xp.zeros_like(scores), scores)
        scores = xp.where(scores == math.inf, xp.full_like(scores, info.max), scores)
        return xp.where(scores == -math.inf, xp.full_like(scores, info.min), scores)


class ExponentialDecayLengthPenalty(LogitsProcessor):
    """After start = start_index + prompt length, finite eos scores become
    s + |s| * (factor**(cur_len - start) - 1); a non-finite one (-inf from MinLength /
    MinNewTokens) stays as it is. Transformers 4.37 penalised it too (-inf + inf = nan: nan beam
    scores and EOS chosen before min_new_tokens); later releases skip it, and so do we
    (spec/generation.md)."""

    def __init__(self, exponential_decay_length_penalty: tuple, eos_token_id: Any, input_ids_seq_length: int):
        self.regulation_start = exponential_decay_length_penalty[0] + input_ids_seq_length
        self.regulation_factor = float(exponential_decay_length_penalty[1])
        self.eos_token_id = _eos_list(eos_token_id)

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        n = _cur_len(input_ids, cur_len)
        steps = xp.astype(xp.asarray(n) - self.regulation_start, scores.dtype)
        factor = xp.astype(xp.asarray(self.regulation_factor), scores.dtype) ** steps
        penalized = scores + xp.abs(scores) * (factor - 1)
        mask = _token_mask(xp, scores, self.eos_token_id) & (n > self.regulation_start) & xp.isfinite(scores)
        return xp.where(mask, penalized, scores)


class LogitNormalization(LogitsProcessor):
    """log_softmax over the vocabulary."""

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        return xp.log_softmax(scores, axis=-1)


class SuppressTokensLogitsProcessor(LogitsProcessor):
    """The listed ids always get -inf."""

    def __init__(self, suppress_tokens: Iterable[int]):
        self.suppress_tokens = list(suppress_tokens)

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        mask = _token_mask(xp, scores, self.suppress_tokens)
        return xp.where(mask, xp.full_like(scores, NEG_INF), scores)


class SuppressTokensAtBeginLogitsProcessor(LogitsProcessor):
    """The listed ids get -inf only when cur_len == begin_index."""

    def __init__(self, begin_suppress_tokens: Iterable[int], begin_index: int):
        self.begin_suppress_tokens = list(begin_suppress_tokens)
        self.begin_index = begin_index

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        n = _cur_len(input_ids, cur_len)
        mask = _token_mask(xp, scores, self.begin_suppress_tokens) & (n == self.begin_index)
        return xp.where(mask, xp.full_like(scores, NEG_INF), scores)


class ForceTokensLogitsProcessor(LogitsProcessor):
    """At cur_len == idx (absolute length, PT/TF) every score is -inf except tok, which is 0."""

    def __init__(self, force_token_map: list):
        self.force_token_map = {int(i): int(t) for i, t in force_token_map}

    def __call__(self, input_ids, scores, cur_len=None):
        xp = array_namespace(scores)
        n = _cur_len(input_ids, cur_len)
        out = scores
        for idx, tok in self.force_token_map.items():
            forced = xp.where(
                _token_mask(xp, scores, [tok]), xp.zeros_like(scores), xp.full_like(scores, NEG_INF)
            )
            out = xp.where(n == idx, forced, out)
        return out


__all__ = [
    name
    for name in dir()
    if name.endswith(("Processor", "Warper", "Penalty", "Normalization")) or name == "LogitsProcessorList"
]
