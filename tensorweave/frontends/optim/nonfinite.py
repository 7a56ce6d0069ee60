"""Skip updates whose gradients are not finite (optax ``apply_if_finite``), as an update rule.

``SkipNonFinite(rule, max_consecutive=None, on_limit="apply")`` (also ``skip_nonfinite``) wraps any
update rule, so every adapter (torch, optax, Keras, ONNX) gets it. Each call checks that every
gradient is finite (one boolean for the whole pytree); if so, ``rule`` is applied, otherwise the
parameters and the inner state are left unchanged and the skip is counted. State:
``{"step": calls, "notfinite_count": consecutive skips, "total_notfinite": all skips,
"inner": rule's state}`` (int64 counters).

``max_consecutive``: after that many consecutive non-finite steps the next one is not skipped:
``on_limit="apply"`` applies it anyway (optax's ``max_consecutive_errors``; the state then takes the
non-finite values, as without the guard), ``on_limit="raise"`` raises a ``FloatingPointError``
instead: eagerly (numpy) from ``update``, and from adapters that read the state on the host
(:func:`check_nonfinite_limit`; the torch adapter calls it after each step). Inside a traced
``jit`` nothing can raise, so there ``"raise"`` behaves as "keep skipping".

Without the wrapper the math is Hugging Face's: a NaN gradient enters the moments and the
parameters. The choice is ``tensorweave.ir.cond``, one traced step for every call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ir.control import cond
from .base import STEP, UpdateRule, flatten_params, namespace_of, step_array


class SkipNonFinite(UpdateRule):
    """``SkipNonFinite(rule, max_consecutive=None, on_limit="apply")``: see the module docstring."""

    def __init__(self, rule: UpdateRule, max_consecutive: int | None = None, on_limit: str = "apply"):
        if not isinstance(rule, UpdateRule):
            raise ValueError(
                f"skip_nonfinite wraps an update rule (AdamW, Adafactor, ...), got {type(rule).__name__}"
            )
        if max_consecutive is not None and (
            isinstance(max_consecutive, bool)
            or not isinstance(max_consecutive, (int, np.integer))
            or max_consecutive < 0
        ):
            raise ValueError(f"max_consecutive must be None or an int >= 0, got {max_consecutive!r}")
        if on_limit not in ("apply", "raise"):
            raise ValueError(f"on_limit must be 'apply' or 'raise', got {on_limit!r}")
        self.rule = rule
        self.max_consecutive = None if max_consecutive is None else int(max_consecutive)
        self.on_limit = on_limit
        self.HYPER = rule.HYPER

    def default_hyper(self) -> dict:
        return self.rule.default_hyper()

    def init(self, params: Any) -> dict:
        xp = namespace_of(params)
        return {
            STEP: step_array(xp, 0),
            "notfinite_count": step_array(xp, 0),
            "total_notfinite": step_array(xp, 0),
            "inner": self.rule.init(params),
        }

    def update(self, params: Any, grads: Any, state: dict, hyper: dict | None = None) -> tuple[Any, dict]:
        """Apply ``rule`` when every gradient is finite (or the consecutive limit is reached with
        ``on_limit="apply"``); otherwise keep parameters and inner state and count the skip."""
        hyper = self.check_hyper(hyper)
        names, _, g_leaves, _ = flatten_params(params, grads)
        state = self.check_state(state)
        for k in ("notfinite_count", "total_notfinite", "inner"):
            if k not in state:
                raise ValueError(f"state has no {k!r}; build it with SkipNonFinite.init(params)")
        xp = namespace_of(params, grads, state)
        finite = None
        for g in g_leaves:
            ok = xp.all(xp.isfinite(g))
            finite = ok if finite is None else xp.logical_and(finite, ok)
        if finite is None:
            finite = xp.asarray(True)
        count = state["notfinite_count"]
        if self.max_consecutive is not None and self.on_limit == "apply":
            go = xp.logical_or(finite, count >= self.max_consecutive)
        else:
            go = finite
        if (
            self.max_consecutive is not None
            and self.on_limit == "raise"
            and isinstance(go, (np.ndarray, np.generic))
        ):
            if not bool(go) and int(count) >= self.max_consecutive:
                raise FloatingPointError(
                    f"{int(count) + 1} consecutive steps with non-finite gradients (max_consecutive="
                    f"{self.max_consecutive}); the last one was not applied"
                )

        def apply(params: Any, grads: Any, inner: dict, hyper: dict) -> tuple:
            return self.rule.update(params, grads, inner, hyper)

        def keep(params: Any, grads: Any, inner: dict, hyper: dict) -> tuple:
            return params, inner

        new_params, inner = cond(go, apply, keep, params, grads, state["inner"], hyper)
        one = step_array(xp, 1)
        zero = step_array(xp, 0)
        bad = xp.where(finite, zero, one)
        new_state = {
            STEP: xp.asarray(state[STEP] + 1),
            "notfinite_count": xp.where(finite, zero, count + one),
            "total_notfinite": xp.asarray(state["total_notfinite"] + bad),
            "inner": inner,
        }
        return new_params, new_state


def skip_nonfinite(
    rule: UpdateRule, max_consecutive: int | None = None, on_limit: str = "apply"
) -> SkipNonFinite:
    """``SkipNonFinite(rule, max_consecutive, on_limit)``."""
    return SkipNonFinite(rule, max_consecutive, on_limit)


def find_guard(rule: Any) -> SkipNonFinite | None:
    """The ``SkipNonFinite`` in ``rule`` or the rules it wraps (``.rule``), if any."""
    while isinstance(rule, UpdateRule):
        if isinstance(rule, SkipNonFinite):
            return rule
        rule = getattr(rule, "rule", None)
    return None


def check_nonfinite_limit(rule: Any, notfinite_count: Any) -> None:
    """For adapters that read the state on the host: raise ``FloatingPointError`` when ``rule`` has a
    ``SkipNonFinite(on_limit="raise")`` whose consecutive count passed ``max_consecutive``."""
    guard = find_guard(rule)
    if guard is None or guard.on_limit != "raise" or guard.max_consecutive is None:
        return
    n = int(np.asarray(notfinite_count))
    if n > guard.max_consecutive:
        raise FloatingPointError(
            f"{n} consecutive steps with non-finite gradients (max_consecutive={guard.max_consecutive}); "
            "they were not applied"
        )


__all__ = ["SkipNonFinite", "skip_nonfinite", "check_nonfinite_limit", "find_guard"]
