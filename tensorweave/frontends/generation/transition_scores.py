"""compute_transition_scores (the algorithm of Transformers 4.37's PyTorch version).

It post-processes the outputs of ``generate`` on the host: its output width
(``max_beam_length``) depends on the data, so it runs on concrete arrays
(numpy, or any framework array convertible with ``numpy.asarray``) and returns numpy.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = x - m
        return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))


def compute_transition_scores(
    sequences: Any, scores: Sequence[Any], beam_indices: Any = None, normalize_logits: bool = False
) -> np.ndarray:
    """Scores of the generated tokens, ``[N_out, max_beam_length]``:

    1. without ``beam_indices`` (greedy, sample) hypothesis i of every step is row i;
    2. with ``normalize_logits`` each step's ``[N, V]`` scores are log-softmaxed;
    3. ``max_beam_length`` = the largest number of non-negative beam indices in a row; only the
       first ``max_beam_length`` steps are kept;
    4. ``out[i, t] = scores[t][beam_indices[i, t], sequences[i, L - max_beam_length + t]]``, and 0
       where ``beam_indices[i, t] < 0``.
    """
    seq = np.asarray(sequences)
    steps = np.stack([np.asarray(s) for s in scores], axis=0).astype(np.float32, copy=False)  # [T, N, V]
    if steps.ndim != 3 or seq.ndim != 2:
        raise ValueError(
            f"`sequences` must be [batch, length] and each score [batch, vocab]; got {seq.shape} and "
            f"{steps.shape[1:]}"
        )
    T, N, V = steps.shape
    if normalize_logits:
        steps = _log_softmax(steps)
    if beam_indices is None:
        beam_indices = np.broadcast_to(np.arange(N)[:, None], (N, T))
    beam = np.asarray(beam_indices).astype(np.int64)
    mask = beam < 0
    max_beam_length = int((~mask).sum(-1).max()) if beam.size else 0
    beam = beam[:, :max_beam_length]
    mask = mask[:, :max_beam_length]
    beam = np.where(mask, 0, beam)
    tokens = seq[:, seq.shape[-1] - max_beam_length :]
    out = steps[np.arange(max_beam_length)[None, :], beam, tokens]  # [N_out, max_beam_length]
    return np.where(mask, 0.0, out).astype(np.float32)
