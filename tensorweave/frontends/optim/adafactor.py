"""Adafactor as a pure update rule (Transformers 4.37 PyTorch math) and ``AdafactorSchedule``.

Per parameter ``p`` (computed in float32 when it is float16/bfloat16, then rounded back) with
gradient ``g`` at step ``t`` (1 for the first update), ``RMS(x) = ||x||_2 / sqrt(numel(x))``:

    rel   = min(1e-6 * t if warmup_init else 1e-2, 1 / sqrt(t))   if relative_step else lr
    scale = max(eps[1], RMS(p))                                     if scale_parameter else 1
    a     = scale * rel                                             (the effective lr)
    b2t   = 1 - t ** decay_rate
    u     = g*g + eps[0]
    factored (rank >= 2):  R = b2t*R + (1-b2t)*mean(u, -1);   C = b2t*C + (1-b2t)*mean(u, -2)
                           u = (1/sqrt(R / mean(R, -1)))[..., None] * (1/sqrt(C))[..., None, :] * g
    otherwise:             V = b2t*V + (1-b2t)*u;              u = (1/sqrt(V)) * g
    u = u / max(RMS(u) / clip_threshold, 1) * a
    if beta1 is set:       M = beta1*M + (1-beta1)*u;          u = M
    if weight_decay != 0:  p = p - weight_decay * a * p
    p = p - u

State: ``step``; per parameter ``exp_avg`` (when beta1 is set), ``exp_avg_sq_row`` (shape without
the last dim) and ``exp_avg_sq_col`` (without the second-to-last) for factored parameters,
``exp_avg_sq`` for the others, all float32 for 16-bit parameters; and ``RMS`` (the parameter's RMS
before the last update, a scalar) that :class:`AdafactorSchedule` reads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...ir.control import tree_unflatten
from .base import (
    STEP,
    UpdateRule,
    cast,
    check_bool,
    check_float_params,
    check_number,
    check_range,
    f64,
    flatten_params,
    is_low_precision,
    is_number,
    namespace_of,
    resolve_lr,
    step_array,
)


def _rms(xp: Any, x: Any) -> Any:
    """``||x||_2 / sqrt(numel)`` in x's dtype (a 0-d array)."""
    return xp.sqrt(xp.sum(x * x)) / math.sqrt(max(math.prod(x.shape), 1))


class Adafactor(UpdateRule):
    """``Adafactor(lr=None, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8, beta1=None,
    weight_decay=0.0, scale_parameter=True, relative_step=True, warmup_init=False)``.

    With ``relative_step=False`` a manual ``lr`` is required (a number or a schedule
    ``step -> lr``); ``hyper={"lr": ...}`` overrides it for one step and is ignored with
    ``relative_step=True``, as the reference ignores the group lr then.
    """

    HYPER = ("lr",)

    def __init__(
        self,
        lr: Any = None,
        eps: tuple[float, float] = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = -0.8,
        beta1: float | None = None,
        weight_decay: float = 0.0,
        scale_parameter: bool = True,
        relative_step: bool = True,
        warmup_init: bool = False,
    ):
        scale_parameter = check_bool("scale_parameter", scale_parameter)
        relative_step = check_bool("relative_step", relative_step)
        warmup_init = check_bool("warmup_init", warmup_init)
        if lr is not None and relative_step:
            raise ValueError("Cannot combine manual `lr` and `relative_step=True` options")
        if warmup_init and not relative_step:
            raise ValueError("`warmup_init=True` requires `relative_step=True`")
        if lr is None and not relative_step:
            raise ValueError("Adafactor needs a manual `lr` when `relative_step=False`")
        if lr is not None and not callable(lr):
            lr = check_number("lr", lr)
            if lr < 0.0:
                raise ValueError(f"Invalid learning rate: {lr} - should be >= 0.0")
        if not isinstance(eps, (tuple, list)) or len(eps) != 2 or not all(is_number(e) for e in eps):
            raise ValueError(
                f"eps must be a pair of numbers (eps[0] for the squared gradient, eps[1] for the "
                f"parameter scale), got {eps!r}"
            )
        self.lr = lr
        self.eps = (check_range("eps[0]", eps[0], 0.0), check_range("eps[1]", eps[1], 0.0))
        self.clip_threshold = check_range("clip_threshold", clip_threshold, 0.0, low_open=True)
        self.decay_rate = check_range("decay_rate", decay_rate, None, 0.0)
        self.beta1 = None if beta1 is None else check_range("beta1", beta1, 0.0, 1.0, high_open=True)
        self.weight_decay = check_range("weight_decay", weight_decay, 0.0)
        self.scale_parameter = scale_parameter
        self.relative_step = relative_step
        self.warmup_init = warmup_init

    @property
    def defaults(self) -> dict:
        return {
            "lr": self.lr,
            "eps": self.eps,
            "clip_threshold": self.clip_threshold,
            "decay_rate": self.decay_rate,
            "beta1": self.beta1,
            "weight_decay": self.weight_decay,
            "scale_parameter": self.scale_parameter,
            "relative_step": self.relative_step,
            "warmup_init": self.warmup_init,
        }

    def default_hyper(self) -> dict:
        if self.relative_step or callable(self.lr):
            return {}
        return {"lr": np.asarray(self.lr, dtype=np.float64)}

    # ---------------------------------------------------------------- state
    def init(self, params: Any) -> dict:
        names, leaves, _, _ = flatten_params(params)
        check_float_params(names, leaves)
        xp = namespace_of(params)
        state: dict = {STEP: step_array(xp, 0)}
        if self.beta1 is not None:
            state["exp_avg"] = {}
        state.update(exp_avg_sq_row={}, exp_avg_sq_col={}, exp_avg_sq={}, RMS={})
        for n, p in zip(names, leaves):
            dt = xp.float32 if is_low_precision(p.dtype) else p.dtype
            shape = tuple(p.shape)
            if self.beta1 is not None:
                state["exp_avg"][n] = xp.zeros(shape, dtype=dt)
            if len(shape) >= 2:
                state["exp_avg_sq_row"][n] = xp.zeros(shape[:-1], dtype=dt)
                state["exp_avg_sq_col"][n] = xp.zeros(shape[:-2] + shape[-1:], dtype=dt)
            else:
                state["exp_avg_sq"][n] = xp.zeros(shape, dtype=dt)
            state["RMS"][n] = xp.zeros((), dtype=dt)
        return state

    # ---------------------------------------------------------------- the step
    def relative_lr(self, xp: Any, t: Any, lr: Any, rms: Any) -> Any:
        """The effective lr ``scale * rel`` (float64) for step ``t`` (float64) and parameter RMS ``rms``."""
        rel = lr
        if self.relative_step:
            min_step = 1e-6 * t if self.warmup_init else 1e-2
            rel = xp.minimum(min_step, 1.0 / xp.sqrt(t))
        if self.scale_parameter:
            return xp.maximum(f64(xp, rms), self.eps[1]) * rel
        return rel

    def update(self, params: Any, grads: Any, state: dict, hyper: dict | None = None) -> tuple[Any, dict]:
        """One Adafactor step; returns ``(new_params, new_state)`` (see the module docstring)."""
        hyper = self.check_hyper(hyper)
        names, p_leaves, g_leaves, treedef = flatten_params(params, grads)
        slots = ("RMS",) + (("exp_avg",) if self.beta1 is not None else ())
        state = self.check_state(state, names, slots)
        xp = namespace_of(params, grads, state)
        step = state[STEP]
        t_int = xp.asarray(step + 1)
        t = f64(xp, t_int)
        lr = None if self.relative_step else resolve_lr(xp, self.lr, hyper, step)
        beta2t = 1.0 - xp.pow(t, self.decay_rate)
        new_state: dict = {STEP: t_int}
        for k in state:
            if k != STEP:
                new_state[k] = {}
        new_p = []
        for name, p, g in zip(names, p_leaves, g_leaves):
            out_dt = p.dtype
            dt = xp.float32 if is_low_precision(out_dt) else out_dt
            p = cast(xp, p, dt)
            g = cast(xp, g, dt)
            rms = _rms(xp, p)
            a = self.relative_lr(xp, t, lr, rms)
            b2t = cast(xp, beta2t, dt)
            one_minus = cast(xp, 1.0 - beta2t, dt)
            u = g * g + self.eps[0]
            if len(p.shape) >= 2:
                row = state["exp_avg_sq_row"][name] * b2t + xp.mean(u, axis=-1) * one_minus
                col = state["exp_avg_sq_col"][name] * b2t + xp.mean(u, axis=-2) * one_minus
                r_factor = 1.0 / xp.sqrt(row / xp.mean(row, axis=-1, keepdims=True))
                c_factor = 1.0 / xp.sqrt(col)
                u = (xp.expand_dims(r_factor, axis=-1) * xp.expand_dims(c_factor, axis=-2)) * g
                new_state["exp_avg_sq_row"][name] = row
                new_state["exp_avg_sq_col"][name] = col
            else:
                v = state["exp_avg_sq"][name] * b2t + u * one_minus
                u = (1.0 / xp.sqrt(v)) * g
                new_state["exp_avg_sq"][name] = v
            u = u / xp.maximum(_rms(xp, u) / self.clip_threshold, 1.0)
            u = u * cast(xp, a, dt)
            if self.beta1 is not None:
                u = state["exp_avg"][name] * self.beta1 + u * (1.0 - self.beta1)
                new_state["exp_avg"][name] = u
            if self.weight_decay != 0.0:
                p = p - cast(xp, self.weight_decay * a, dt) * p
            p = p - u
            new_state["RMS"][name] = cast(xp, rms, dt)
            new_p.append(cast(xp, p, out_dt))
        return tree_unflatten(treedef, new_p), new_state


class AdafactorSchedule:
    """A proxy schedule reporting the lr Adafactor used (for logging), as Transformers' class does.

    ``lr_lambda(step)`` is the constant ``initial_lr`` (what a ``LambdaLR`` shows before any step);
    ``get_lr(state, hyper=None)`` is the effective lr of the last step for the first parameter, or
    ``initial_lr`` before the first step.
    """

    def __new__(cls, optimizer: Any, initial_lr: float = 0.0) -> Any:
        """Given tensorweave's torch Adafactor, Transformers' class: a ``LambdaLR`` subclass
        (``tensorweave.optim.torch.AdafactorSchedule``)."""
        from .schedules import native_scheduler

        native = native_scheduler("adafactor", optimizer, initial_lr)
        return native if native is not None else super().__new__(cls)

    def __init__(self, optimizer: Adafactor, initial_lr: float = 0.0):
        if not isinstance(optimizer, Adafactor):
            raise ValueError(
                f"AdafactorSchedule needs an Adafactor: tensorweave.optim.Adafactor (the rule) or "
                f"tensorweave.optim.torch.Adafactor (a torch optimizer), got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.initial_lr = check_number("initial_lr", initial_lr)

    def lr_lambda(self, step: Any) -> float:
        return self.initial_lr

    def __call__(self, step: Any) -> float:
        return self.initial_lr

    def get_lr(self, state: dict, hyper: dict | None = None) -> Any:
        opt = self.optimizer
        rms_by_name = state["RMS"]
        xp = namespace_of(state)
        step = state[STEP]
        if not rms_by_name:
            return f64(xp, self.initial_lr)
        rms = next(iter(rms_by_name.values()))
        lr = None if opt.relative_step else resolve_lr(xp, opt.lr, opt.check_hyper(hyper), step - 1)
        t = f64(xp, xp.maximum(step, 1))
        return xp.where(step > 0, opt.relative_lr(xp, t, lr, rms), f64(xp, self.initial_lr))


def get_adafactor_schedule(optimizer: Adafactor, initial_lr: float = 0.0) -> AdafactorSchedule:
    """``AdafactorSchedule(optimizer, initial_lr)``."""
    return AdafactorSchedule(optimizer, initial_lr)


__all__ = ["Adafactor", "AdafactorSchedule", "get_adafactor_schedule"]
