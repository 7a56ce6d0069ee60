"""Native model callables (e.g. a live ``transformers`` PyTorch model) as a step-wise model step."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np


def _positions(mask: np.ndarray, length: int) -> np.ndarray:
    """Hugging Face's position ids ``cumsum(mask) - 1`` (1 on padding), last ``length`` columns."""
    pos = np.cumsum(mask, axis=-1) - 1
    pos = np.where(mask == 0, 1, pos)
    return pos[:, mask.shape[1] - length :].astype(np.int64)


class NativeModelStep:
    """Any callable following Hugging Face's causal-LM calling convention:
    ``model(input_ids=..., attention_mask=..., <cache>=..., use_cache=True[, position_ids=...])``
    returning ``.logits [rows, seq, V]`` and the cache (``.past_key_values`` in 4.37, ``.cache``
    in transformers v5; a dict with those keys or a ``(logits, cache)`` tuple also work).

    A ``torch.nn.Module`` gets torch tensors (under ``torch.no_grad()``); anything else numpy.
    The cache keyword is ``cache`` when the signature has it and not ``past_key_values``, else
    ``past_key_values``; ``position_ids`` (Hugging Face's rule from the mask, so left padding
    works) is passed when the signature names it. ``reorder_cache(cache, rows) -> cache`` reorders
    for beam search; by default a cache's own ``reorder_cache(rows)`` method is used, or nested
    tuples/lists of arrays are gathered along axis 0."""

    def __init__(self, fn: Callable, reorder_cache: Callable | None = None):
        self.fn = fn
        self.reorder_cache = reorder_cache
        self.cache: Any = None
        target = getattr(fn, "forward", fn)
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            params = {}
        self.cache_kw = (
            "cache" if "cache" in params and "past_key_values" not in params else "past_key_values"
        )
        self.pass_positions = "position_ids" in params
        try:
            import torch

            self.torch = torch if isinstance(fn, torch.nn.Module) else None
        except ImportError:  # pragma: no cover - torch is optional
            self.torch = None

    def _array(self, x: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(x)) if self.torch is not None else x

    def _run(self, ids: np.ndarray, mask: np.ndarray, hidden: bool = False) -> Any:
        kw: dict = {"input_ids": self._array(ids), "attention_mask": self._array(mask), "use_cache": True}
        if self.cache is not None:
            kw[self.cache_kw] = self.cache
        if self.pass_positions:
            kw["position_ids"] = self._array(_positions(mask, ids.shape[1]))
        if hidden:
            kw["output_hidden_states"] = True
        if self.torch is not None:
            with self.torch.no_grad():
                out = self.fn(**kw)
        else:
            out = self.fn(**kw)
        logits, self.cache = _split_output(out, self.cache_kw)
        logits = _numpy(logits[:, -1])
        if not hidden:
            return logits
        states = out.get("hidden_states") if hasattr(out, "get") else getattr(out, "hidden_states", None)
        if not states:
            raise ValueError(
                "contrastive search needs the model's hidden states: a native model must return "
                "`hidden_states` when called with output_hidden_states=True"
            )
        return logits, _numpy(states[-1])

    def prefill(self, ids: np.ndarray, mask: np.ndarray, hidden: bool = False) -> Any:
        """Logits ``[rows, V]`` at the last prompt position (with ``hidden``: and the last hidden
        states ``[rows, prompt, H]``)."""
        self.cache = None
        return self._run(ids, mask, hidden)

    def step(self, tokens: np.ndarray, mask: np.ndarray, hidden: bool = False) -> Any:
        """Logits ``[rows, V]`` after one token per row (with ``hidden``: and its last hidden state
        ``[rows, H]``)."""
        out = self._run(tokens[:, None], mask, hidden)
        return (out[0], out[1][:, -1]) if hidden else out

    def reorder(self, rows: np.ndarray) -> None:
        if self.reorder_cache is not None:
            self.cache = self.reorder_cache(self.cache, rows)
            return
        index = self._array(rows.astype(np.int64))
        if _is_torch(self.cache) or type(self.cache).__module__.startswith("transformers"):
            import torch

            index = torch.from_numpy(rows.astype(np.int64))
        if hasattr(self.cache, "reorder_cache"):
            self.cache.reorder_cache(index)
            return
        self.cache = _gather_nested(self.cache, rows, index, self.torch)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _numpy(x: Any) -> np.ndarray:
    """A float32 numpy copy of a torch tensor or any array."""
    if _is_torch(x):
        return x.detach().float().cpu().numpy()
    return np.asarray(x).astype(np.float32)


def _split_output(out: Any, cache_name: str = "past_key_values") -> tuple[Any, Any]:
    if isinstance(out, tuple) and not hasattr(out, "keys"):
        if len(out) != 2:
            raise ValueError(
                f"a native model returning a tuple must return (logits, cache), got {len(out)} items"
            )
        return out
    get = out.get if hasattr(out, "get") else (lambda k, d=None: getattr(out, k, d))
    logits = get("logits", None)
    other = "cache" if cache_name == "past_key_values" else "past_key_values"
    cache = get(cache_name, None)
    if cache is None:
        cache = get(other, None)
    if logits is None or cache is None:
        raise ValueError(
            "the native model's output needs `logits` and a cache (`past_key_values` or `cache`); "
            "call it with use_cache=True or pass a tensorweave Model"
        )
    return logits, cache


def _gather_nested(cache: Any, rows: np.ndarray, index: Any, torch: Any) -> Any:
    if isinstance(cache, (tuple, list)):
        return type(cache)(_gather_nested(c, rows, index, torch) for c in cache)
    if _is_torch(cache):
        import torch

        return cache.index_select(0, torch.from_numpy(rows.astype(np.int64)))
    if isinstance(cache, np.ndarray):
        return np.take(cache, rows, axis=0)
    raise ValueError(
        f"cannot reorder a cache of type {type(cache).__name__} for beam search; pass "
        "`reorder_cache=fn(cache, rows) -> cache` to generate"
    )


def is_torch_module(model: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is optional
        return False
    return isinstance(model, torch.nn.Module)
