"""AdamW as a pure update rule (Transformers 4.37 PyTorch math by default).

Per parameter ``p`` with gradient ``g``, at step ``t`` (1 for the first update), learning rate
``lr`` and ``wd = weight_decay``:

    m     = b1 * m + (1 - b1) * g
    v     = b2 * v + (1 - b2) * g * g
    denom = sqrt(v) + eps                          # eps after the sqrt, v not bias-corrected
    a     = lr * sqrt(1 - b2**t) / (1 - b1**t)     # a = lr when correct_bias=False
    p     = p - a * m / denom
    p     = p - lr * wd * p                        # weight_decay_order="after" (PyTorch, default)

``weight_decay_order="before"`` applies ``p = p - lr * wd * p`` before the Adam step instead
(TensorFlow ``AdamWeightDecay``; with eps=0 this is also ``torch.optim.AdamW``'s math). Decay
applies only when ``wd > 0`` and, with the TF name rules, to parameters whose name matches an
``include_in_weight_decay`` regex or no ``exclude_from_weight_decay`` regex.

``clipnorm`` / ``global_clipnorm`` (Keras, used by ``create_optimizer``) first scale each gradient
by ``c / max(||g||, c)`` or all of them by ``c / max(||all g||, c)``.

State: ``{"step": int64, "exp_avg": {name: m}, "exp_avg_sq": {name: v}}``, m and v in the
parameter's dtype (as ``torch.zeros_like(p)``).
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Sequence

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
    is_number,
    namespace_of,
    resolve_lr,
    step_array,
)

DEPRECATION = (
    "tensorweave.optim.AdamW reproduces transformers' deprecated AdamW (eps after the sqrt, "
    "decay after the step), which differs from torch.optim.AdamW; set `no_deprecation_warning=True` "
    "to disable this warning"
)


def _regexes(name: str, patterns: Sequence[str] | None) -> list[re.Pattern]:
    if patterns is None:
        return []
    if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
        raise ValueError(f"{name} must be a list of regex strings, got {patterns!r}")
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as e:
            raise ValueError(f"{name}: invalid regex {p!r} ({e})") from None
    return out


class AdamW(UpdateRule):
    """``AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True,
    no_deprecation_warning=False)`` plus the TF options (see the module docstring).

    ``lr`` may be a number or a schedule (a callable ``step -> lr``, evaluated at the number of
    completed steps); ``hyper={"lr": ...}`` overrides either for one step.
    """

    #: ``lr`` changes per step in every adapter; ``b1``/``b2``/``eps``/``weight_decay`` are per-step
    #: inputs only when given in ``hyper`` (``optax.inject_hyperparams``), else the constructor's
    HYPER = ("lr", "b1", "b2", "eps", "weight_decay")

    def __init__(
        self,
        lr: Any = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
        no_deprecation_warning: bool = False,
        *,
        weight_decay_order: str = "after",
        include_in_weight_decay: Sequence[str] | None = None,
        exclude_from_weight_decay: Sequence[str] | None = None,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
    ):
        if not callable(lr):
            lr = check_number("lr", lr)
            if lr < 0.0:
                raise ValueError(f"Invalid learning rate: {lr} - should be >= 0.0")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2 or not all(is_number(b) for b in betas):
            raise ValueError(f"betas must be a pair of numbers, got {betas!r}")
        for b in betas:
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter: {b} - should be in [0.0, 1.0)")
        eps = check_number("eps", eps)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps} - should be >= 0.0")
        weight_decay = check_range("weight_decay", weight_decay, 0.0)
        correct_bias = check_bool("correct_bias", correct_bias)
        if weight_decay_order not in ("after", "before"):
            raise ValueError(
                f"weight_decay_order must be 'after' (PyTorch AdamW) or 'before' (TF AdamWeightDecay), "
                f"got {weight_decay_order!r}"
            )
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError(
                f"Only one of `clipnorm` and `global_clipnorm` can be set. Received: clipnorm={clipnorm}, "
                f"global_clipnorm={global_clipnorm}"
            )
        for n, c in (("clipnorm", clipnorm), ("global_clipnorm", global_clipnorm)):
            if c is not None and not check_number(n, c) > 0:
                raise ValueError(f"{n} must be > 0, got {c}")
        self.include = _regexes("include_in_weight_decay", include_in_weight_decay)
        self.exclude = _regexes("exclude_from_weight_decay", exclude_from_weight_decay)
        if not no_deprecation_warning:
            warnings.warn(DEPRECATION, FutureWarning, stacklevel=2)
        self.lr = lr
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = eps
        self.weight_decay = weight_decay
        self.correct_bias = bool(correct_bias)
        self.weight_decay_order = weight_decay_order
        self.include_in_weight_decay = include_in_weight_decay
        self.exclude_from_weight_decay = exclude_from_weight_decay
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.no_decay_names: frozenset = frozenset()  # adapters' masks (optax ``mask=``)

    @property
    def defaults(self) -> dict:
        """The hyperparameters as a dict (``defaults["lr"]`` is what PyTorch schedules read)."""
        return {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "correct_bias": self.correct_bias,
        }

    def default_hyper(self) -> dict:
        return {} if callable(self.lr) else {"lr": np.asarray(self.lr, dtype=np.float64)}

    def _do_use_weight_decay(self, name: str) -> bool:
        """TF ``AdamWeightDecay`` rule: rate 0 -> no; an include regex matches -> yes; an exclude one -> no."""
        if self.weight_decay <= 0.0 or name in self.no_decay_names:
            return False
        if any(r.search(name) for r in self.include):
            return True
        if any(r.search(name) for r in self.exclude):
            return False
        return True

    def _name_decays(self, name: str) -> bool:
        """The name rules alone (an injected rate may be > 0 where the constructor's is 0)."""
        if name in self.no_decay_names:
            return False
        return any(r.search(name) for r in self.include) or not any(r.search(name) for r in self.exclude)

    def init(self, params: Any) -> dict:
        names, leaves, _, _ = flatten_params(params)
        check_float_params(names, leaves)
        xp = namespace_of(params)
        return {
            STEP: step_array(xp, 0),
            "exp_avg": {n: xp.zeros_like(p) for n, p in zip(names, leaves)},
            "exp_avg_sq": {n: xp.zeros_like(p) for n, p in zip(names, leaves)},
        }

    def update(self, params: Any, grads: Any, state: dict, hyper: dict | None = None) -> tuple[Any, dict]:
        """One AdamW step; returns ``(new_params, new_state)`` (see the module docstring)."""
        hyper = self.check_hyper(hyper)
        names, p_leaves, g_leaves, treedef = flatten_params(params, grads)
        state = self.check_state(state, names, ("exp_avg", "exp_avg_sq"))
        xp = namespace_of(params, grads, state)
        step = state[STEP]
        lr = resolve_lr(xp, self.lr, hyper, step)
        t_int = xp.asarray(step + 1)
        t = f64(xp, t_int)
        b1, b2 = self.betas
        eps, wd = self.eps, self.weight_decay
        # injected hyperparameters (optax.inject_hyperparams): float64 scalar arrays, same formulas
        b1 = f64(xp, hyper["b1"]) if "b1" in hyper else b1
        b2 = f64(xp, hyper["b2"]) if "b2" in hyper else b2
        eps = f64(xp, hyper["eps"]) if "eps" in hyper else eps
        wd = f64(xp, hyper["weight_decay"]) if "weight_decay" in hyper else wd
        if self.correct_bias:
            bc1 = 1.0 - xp.pow(f64(xp, b1), t)
            bc2 = 1.0 - xp.pow(f64(xp, b2), t)
            step_size = lr * xp.sqrt(bc2) / bc1
        else:
            step_size = lr
        decay = lr * wd
        g_leaves = clip_gradients(xp, g_leaves, self.clipnorm, self.global_clipnorm)
        new_p, new_m, new_v = [], {}, {}
        for name, p, g in zip(names, p_leaves, g_leaves):
            dt = p.dtype
            g = cast(xp, g, dt)
            m = state["exp_avg"][name] * cast(xp, b1, dt) + g * cast(xp, 1.0 - b1, dt)
            v = state["exp_avg_sq"][name] * cast(xp, b2, dt) + (g * g) * cast(xp, 1.0 - b2, dt)
            denom = xp.sqrt(v) + cast(
                xp, eps, dt
            )  # scalars cast explicitly: numpy bfloat16 * float is float32
            use_decay = self._do_use_weight_decay(name) or (
                "weight_decay" in hyper and self._name_decays(name)
            )
            if use_decay and self.weight_decay_order == "before":
                p = p - cast(xp, decay, dt) * p
            p = p - cast(xp, step_size, dt) * (m / denom)
            if use_decay and self.weight_decay_order == "after":
                p = p - cast(xp, decay, dt) * p
            new_p.append(p)
            new_m[name] = m
            new_v[name] = v
        return tree_unflatten(treedef, new_p), {STEP: t_int, "exp_avg": new_m, "exp_avg_sq": new_v}


def clip_gradients(xp: Any, grads: list, clipnorm: float | None, global_clipnorm: float | None) -> list:
    """Keras clipping: ``g * c / max(||g||, c)`` per gradient, or with the global norm of all of them."""
    if clipnorm is not None:
        return [g * (clipnorm / xp.maximum(xp.sqrt(xp.sum(g * g)), clipnorm)) for g in grads]
    if global_clipnorm is not None:
        total = None
        for g in grads:
            s = f64(xp, xp.sum(g * g))
            total = s if total is None else total + s
        scale = global_clipnorm / xp.maximum(xp.sqrt(total), global_clipnorm)
        return [g * cast(xp, scale, g.dtype) for g in grads]
    return grads


def AdamWeightDecay(
    learning_rate: Any = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
    weight_decay_rate: float = 0.0,
    include_in_weight_decay: Sequence[str] | None = None,
    exclude_from_weight_decay: Sequence[str] | None = None,
    name: str = "AdamWeightDecay",
    clipnorm: float | None = None,
    global_clipnorm: float | None = None,
) -> AdamW:
    """TF ``AdamWeightDecay``: :class:`AdamW` with decay before the step (``lr * rate * var``), eps 1e-7."""
    if amsgrad:
        raise ValueError("AdamWeightDecay(amsgrad=True) is not supported; use amsgrad=False")
    rule = AdamW(
        learning_rate,
        (beta_1, beta_2),
        epsilon,
        weight_decay_rate,
        True,
        True,
        weight_decay_order="before",
        include_in_weight_decay=include_in_weight_decay,
        exclude_from_weight_decay=exclude_from_weight_decay,
        clipnorm=clipnorm,
        global_clipnorm=global_clipnorm,
    )
    rule.name = name
    return rule


__all__ = ["AdamW", "AdamWeightDecay", "clip_gradients"]
