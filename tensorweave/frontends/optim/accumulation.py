"""Gradient accumulation: TF's stateful ``GradientAccumulator`` and a pure accumulate-k-steps rule.

``GradientAccumulator`` (Transformers ``optimization_tf``): a list of running gradient sums and a
call counter. ``gradients`` before the first call and a call with a different number of gradients
are errors; ``None`` gradients stay ``None``; ``reset()`` zeroes everything (and does nothing
before the first call).

``AccumulateSteps(rule, every_k_steps)`` is itself an update rule: each call adds the gradient
to ``state["grad_sum"]``; every k-th call it applies ``rule`` with the mean ``grad_sum / k`` and
zeroes the sum; the other calls leave the parameters and the inner state unchanged. The choice is
a ``cond`` (a Python ``if`` on numpy), so one traced step serves every call.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...ir import array_namespace
from ...ir.control import cond, tree_unflatten
from .base import STEP, UpdateRule, cast, f64, flatten_params, is_low_precision, namespace_of, step_array


class GradientAccumulator:
    """Accumulate gradients over several calls (``step`` counts the calls since the last reset)."""

    def __init__(self) -> None:
        self._gradients: list = []
        self._accum_steps: Any = None

    @property
    def step(self) -> Any:
        """The number of accumulated calls (an int64 scalar array; created as 0 on first use)."""
        if self._accum_steps is None:
            self._accum_steps = np.asarray(0, dtype=np.int64)
        return self._accum_steps

    @property
    def gradients(self) -> list:
        """The accumulated gradients (``None`` where the gradient was ``None``)."""
        if not self._gradients:
            raise ValueError("The accumulator should be called first to initialize the gradients")
        return list(self._gradients)

    def __call__(self, gradients: Sequence[Any]) -> None:
        """Add ``gradients`` (a list, ``None`` allowed) to the sums and count one call."""
        gradients = list(gradients)
        if not self._gradients:
            _ = self.step
            self._gradients.extend(
                [None if g is None else array_namespace(g).zeros_like(g) for g in gradients]
            )
        if len(gradients) != len(self._gradients):
            raise ValueError(f"Expected {len(self._gradients)} gradients, but got {len(gradients)}")
        for i, (acc, g) in enumerate(zip(self._gradients, gradients)):
            if acc is not None and g is not None:
                if tuple(g.shape) != tuple(acc.shape):
                    raise ValueError(
                        f"gradient {i} has shape {tuple(g.shape)}, the accumulator {tuple(acc.shape)}"
                    )
                self._gradients[i] = acc + g
        self._accum_steps = self.step + 1

    def reset(self) -> None:
        """Set ``step`` to 0 and every accumulated gradient to zeros (no-op before the first call)."""
        if not self._gradients:
            return
        self._accum_steps = np.asarray(0, dtype=np.int64)
        self._gradients = [None if g is None else array_namespace(g).zeros_like(g) for g in self._gradients]


class AccumulateSteps(UpdateRule):
    """Apply ``rule`` every ``every_k_steps`` calls with the mean of the accumulated gradients.

    State: ``{"step": calls so far (int64), "grad_sum": {name: sum since the last update},
    "inner": rule's state}``; sums are float32 for 16-bit parameters, else the parameter's dtype.
    A schedule should follow ``state["inner"]["step"]`` (the number of real updates).
    """

    def __init__(self, rule: UpdateRule, every_k_steps: int):
        if not isinstance(rule, UpdateRule):
            raise ValueError(
                f"AccumulateSteps wraps an update rule (AdamW, Adafactor, ...), got {type(rule).__name__}"
            )
        if (
            isinstance(every_k_steps, bool)
            or not isinstance(every_k_steps, (int, np.integer))
            or every_k_steps < 1
        ):
            raise ValueError(f"every_k_steps must be an int >= 1, got {every_k_steps!r}")
        self.rule = rule
        self.every_k_steps = int(every_k_steps)
        self.HYPER = rule.HYPER

    def default_hyper(self) -> dict:
        return self.rule.default_hyper()

    def init(self, params: Any) -> dict:
        names, leaves, _, _ = flatten_params(params)
        xp = namespace_of(params)
        sums = {
            n: xp.zeros(tuple(p.shape), dtype=xp.float32 if is_low_precision(p.dtype) else p.dtype)
            for n, p in zip(names, leaves)
        }
        return {STEP: step_array(xp, 0), "grad_sum": sums, "inner": self.rule.init(params)}

    def update(self, params: Any, grads: Any, state: dict, hyper: dict | None = None) -> tuple[Any, dict]:
        """Accumulate ``grads``; on every k-th call, ``rule.update`` with the mean gradient."""
        hyper = self.check_hyper(hyper)
        names, _, g_leaves, treedef = flatten_params(params, grads)
        state = self.check_state(state, names, ("grad_sum",))
        xp = namespace_of(params, grads, state)
        hyper = {k: f64(xp, v) for k, v in hyper.items()}
        step = xp.asarray(state[STEP] + 1)
        k = self.every_k_steps
        sums = {
            n: state["grad_sum"][n] + cast(xp, g, state["grad_sum"][n].dtype) for n, g in zip(names, g_leaves)
        }

        def apply(params: Any, sums: dict, inner: dict, hyper: dict) -> tuple:
            mean = tree_unflatten(treedef, [sums[n] / float(k) for n in names])
            new_params, new_inner = self.rule.update(params, mean, inner, hyper)
            return new_params, {n: array_namespace(s).zeros_like(s) for n, s in sums.items()}, new_inner

        def keep(params: Any, sums: dict, inner: dict, hyper: dict) -> tuple:
            return params, sums, inner

        if k == 1:
            new_params, sums, inner = apply(params, sums, state["inner"], hyper)
        else:
            new_params, sums, inner = cond(
                xp.remainder(step, k) == 0, apply, keep, params, sums, state["inner"], hyper
            )
        return new_params, {STEP: step, "grad_sum": sums, "inner": inner}


def accumulate_steps(rule: UpdateRule, every_k_steps: int) -> AccumulateSteps:
    """``AccumulateSteps(rule, every_k_steps)``."""
    return AccumulateSteps(rule, every_k_steps)


__all__ = ["GradientAccumulator", "AccumulateSteps", "accumulate_steps"]
