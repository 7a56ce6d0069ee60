"""An optax ``GradientTransformation`` that runs an update rule's JAX lowering.

``transformation(rule)`` returns ``optax.GradientTransformation(init, update)``:

- ``init(params)``: the rule's state (``{"step": int64, slot: {name: array}}``, a plain pytree),
  built by ``rule.init`` on the JAX arrays themselves (jax.numpy is their namespace), so zeros are
  made on device; per-parameter slots carry the parameter's sharding when it is a concrete array
  (inside ``jit`` they are traced zeros and XLA propagates the sharding).
- ``update(grads, state, params)``: flattens the (any) pytree with names = the key path joined by
  ``/`` (``{"dense": {"kernel": k}}`` -> ``"dense/kernel"``), runs the rule's step, traced once per
  (names, shapes, dtypes) and lowered with the jax backend (a ``jax.jit`` function, which inlines
  into an enclosing ``jit``), and returns ``updates = new_params - params`` as optax expects, so
  ``optax.apply_updates(params, updates)`` gives the rule's new parameters (exactly whenever
  ``new`` and ``old`` are within a factor of 2, Sterbenz' lemma: every realistic step).

The learning rate is the rule's: a number (a float64 input of the step) or a schedule evaluated
inside the traced step. :func:`optax_schedule` turns a tensorweave schedule into an optax schedule
(``count -> lr``) by lowering its traced IR to JAX.

Hyperparameters: ``learning_rate`` may be a number, a tensorweave schedule or an optax schedule (any
``count -> lr`` callable): a callable is evaluated in JAX at ``state["step"]`` (the number of applied
updates) and fed to the step as its ``hyper/lr`` input. ``adamw``'s numeric arguments may also be
jax arrays (possibly traced), which is what ``optax.inject_hyperparams(adamw)(learning_rate=...)``
passes: they become per-step inputs of the same traced step. ``mask=`` restricts the weight decay as
optax's ``adamw`` does. No process-wide JAX flag is set: 64-bit types are on only inside the calls
(``tensorweave.backends.jax.x64``), so the rule's scalar math is float64 as on every backend.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

try:
    import jax
    import jax.numpy as jnp
    import optax
except ModuleNotFoundError:  # one line naming the pip extra
    raise ImportError(
        "tensorweave.optim.optax needs JAX and optax: pip install 'tensorweave[jax]' optax"
    ) from None

from ..backends import lower
from ..backends.jax.runtime import x64
from ..frontends.optim import adafactor as _adafactor
from ..frontends.optim import adamw as _adamw
from ..frontends.optim.base import UpdateRule, check_hyper_value, innermost, trace_update, with_inner
from ..ir import TensorSpec, trace
from ..ir.types import from_numpy_dtype


def _named(tree: Any) -> tuple[list[str], list, Any]:
    """``(names, leaves, treedef)`` of any JAX pytree; names are ``/``-joined key paths."""
    with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = [jax.tree_util.keystr(path, simple=True, separator="/") or "param" for path, _ in with_path]
    return names, [leaf for _, leaf in with_path], treedef


def _spec(name: str, leaf: Any) -> TensorSpec:
    return TensorSpec(tuple(int(d) for d in leaf.shape), from_numpy_dtype(np.dtype(leaf.dtype)), name)


#: traced + lowered steps shared by every transformation with an equal rule (``inject_hyperparams``
#: rebuilds the transformation at every call), keyed by the rule's configuration
_CACHE: dict = {}


def _rule_key(rule: Any) -> str:
    def one(v: Any) -> str:
        if isinstance(v, UpdateRule):
            return _rule_key(v)
        if isinstance(v, (set, frozenset)):
            return repr(sorted(v))
        return repr(v)

    return type(rule).__name__ + repr(sorted((k, one(v)) for k, v in vars(rule).items()))


class _Steps:
    """The traced + lowered step per (names, shapes, dtypes, per-step hyperparameters)."""

    def __init__(self, rule: UpdateRule):
        self.rule = rule
        self.rule_key = _rule_key(rule)

    def get(self, names: list[str], leaves: list, hyper_keys: tuple) -> tuple[Any, Any]:
        key = (self.rule_key, hyper_keys) + tuple(
            (n, tuple(l.shape), str(l.dtype)) for n, l in zip(names, leaves)
        )
        hit = _CACHE.get(key)
        if hit is None:
            specs = {n: _spec(n, l) for n, l in zip(names, leaves)}
            hyper = {k: np.asarray(0.0, np.float64) for k in hyper_keys}
            traced = trace_update(self.rule, specs, hyper=hyper, name="optax_step")
            hit = _CACHE[key] = (traced, lower(traced.graph, "jax"))
        return hit


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) and not isinstance(x, bool)


def _mask_names(mask: Any, params: Any) -> frozenset:
    """The parameter names whose ``mask`` leaf is False (optax ``masked`` semantics: a pytree of bools
    that is a prefix of params, or a callable returning one)."""
    if mask is None:
        return frozenset()
    m = mask(params) if callable(mask) else mask
    full = jax.tree_util.tree_map(lambda b, sub: jax.tree_util.tree_map(lambda _: b, sub), m, params)
    names, leaves, _ = _named(full)
    out = []
    for n, b in zip(names, leaves):
        if isinstance(b, jax.core.Tracer):
            raise ValueError("mask= leaves must be concrete bools (a traced mask cannot choose the step)")
        if not bool(b):
            out.append(n)
    return frozenset(out)


def transformation(
    rule: UpdateRule, hyper: dict | None = None, mask: Any = None
) -> optax.GradientTransformation:
    """``optax.GradientTransformation`` running ``rule`` (AdamW, Adafactor, ``AccumulateSteps(...)``,
    ``skip_nonfinite(...)``).

    ``hyper``: per-step values for keys of ``rule.HYPER``: numbers, jax arrays (traced ones too) or
    ``count -> value`` callables (optax schedules), evaluated at ``state["step"]``; a callable
    ``rule.lr`` is moved here. ``mask``: the weight decay applies only where it is True (AdamW)."""
    if not isinstance(rule, UpdateRule):
        raise ValueError(f"transformation() needs a tensorweave update rule, got {type(rule).__name__}")
    hyper = dict(hyper or {})
    base_rule = innermost(rule)
    if callable(getattr(base_rule, "lr", None)) and "lr" not in hyper:
        # any step -> lr callable (an optax schedule, a tensorweave schedule) is evaluated in JAX at
        # state["step"] and fed as hyper/lr, so the traced step needs nothing but jnp-compatible code
        hyper["lr"] = base_rule.lr
        rule = with_inner(rule, lr=0.0)
    for k, v in hyper.items():
        if k not in rule.HYPER:
            raise ValueError(
                f"unknown hyperparameter {k!r} for {type(rule).__name__}; it takes {list(rule.HYPER)}"
            )
        if not callable(v) and not isinstance(v, jax.core.Tracer):
            check_hyper_value(k, np.asarray(v) if _is_array(v) else v)
    if mask is not None and not isinstance(base_rule, _adamw.AdamW):
        raise ValueError("mask= restricts AdamW's weight decay; this rule has none")
    rules: dict = {}

    def rule_for(params: Any) -> UpdateRule:
        names = _mask_names(mask, params)
        if names not in rules:
            rules[names] = with_inner(rule, no_decay_names=names) if names else rule
        return rules[names]

    def init_fn(params: Any) -> dict:
        with x64():
            return _init(rule_for(params), params)

    def update_fn(updates: Any, state: dict, params: Any = None) -> tuple[Any, dict]:
        if params is None:
            raise ValueError("this transformation needs params: call update(grads, state, params)")
        with x64():
            return _update(rule_for(params), hyper, updates, state, params)

    return optax.GradientTransformation(init_fn, update_fn)


def _init(rule: UpdateRule, params: Any) -> dict:
    names, leaves, _ = _named(params)
    by_name = dict(zip(names, leaves))
    # the rule's init on the JAX arrays themselves (jax.numpy is their array namespace): zeros are
    # created on device (zeros_like keeps a parameter's sharding), never staged through host memory
    state = rule.init(by_name)

    def place(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {k: place(v, k) for k, v in node.items()}
        arr = jnp.asarray(node)
        p = by_name.get(key)
        if (
            p is not None
            and tuple(arr.shape) == tuple(p.shape)
            and isinstance(p, jax.Array)
            and not isinstance(p, jax.core.Tracer)
            and getattr(arr, "sharding", None) != p.sharding
        ):
            arr = jax.device_put(arr, p.sharding)
        return arr

    return place(state)


def _update(rule: UpdateRule, dynamic: dict, updates: Any, state: dict, params: Any) -> tuple[Any, dict]:
    names, p_leaves, treedef = _named(params)
    g_names, g_leaves, g_def = _named(updates)
    if g_def != treedef:
        raise ValueError("grads must have the same pytree structure as params")
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError("state does not match these params: build it with init(params) for the same params")
    hyper = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in rule.default_hyper().items()}
    count = state["step"]
    for k, v in dynamic.items():
        value = v(count) if callable(v) else v
        hyper[k] = jnp.asarray(value, dtype=jnp.float64)
    traced, program = _Steps(rule).get(names, p_leaves, tuple(sorted(hyper)))
    p_dict = dict(zip(names, p_leaves))
    g_dict = dict(zip(names, g_leaves))
    flat = (
        jax.tree_util.tree_leaves(p_dict)
        + jax.tree_util.tree_leaves(g_dict)
        + _state_leaves(traced, state)
        + [hyper[k] for k in traced.hyper_keys]
    )
    outs = program.jitted(program.hoisted_arrays, *flat)
    new_p, new_state = traced.unflatten(list(outs))
    new_leaves = [new_p[n] for n in names]
    deltas = [(n - p).astype(p.dtype) for n, p in zip(new_leaves, p_leaves)]
    return jax.tree_util.tree_unflatten(treedef, deltas), new_state


def _state_leaves(traced: Any, state: dict) -> list:
    """The state's leaves in the traced step's order, looked up by key (``jit`` returns dicts with
    sorted keys, so the order of ``state`` itself is not ours)."""

    def pick(d: Any, node: Any) -> list:
        if d is None:
            return [node]
        kind, defs = d
        if kind is dict:
            if not isinstance(node, dict) or set(node) != {k for k, _ in defs}:
                raise ValueError(
                    "state does not match these params: build it with init(params) for the same params"
                )
            return [leaf for k, sd in defs for leaf in pick(sd, node[k])]
        return [leaf for sd, child in zip(defs, node) for leaf in pick(sd, child)]

    return pick(traced.state_def, state)


def adamw(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-6,
    weight_decay: Any = 0.0,
    correct_bias: bool = True,
    mask: Any = None,
    **options: Any,
) -> optax.GradientTransformation:
    """Transformers' AdamW (``tensorweave.optim.AdamW``) as an optax transformation.

    ``learning_rate``: a number, a jax array or any ``count -> lr`` schedule (optax's or tensorweave's);
    ``b1``, ``b2``, ``eps``, ``weight_decay``: numbers or jax arrays (``optax.inject_hyperparams``);
    ``mask``: optax's weight-decay mask (a pytree of bools or a callable); ``options``: AdamW's
    keyword-only options (``weight_decay_order``, name regexes, ``clipnorm``...)."""
    if isinstance(options.get("options"), dict):  # inject_hyperparams re-passes **options as options=
        options = {**options.pop("options"), **options}
    values = {"lr": learning_rate, "b1": b1, "b2": b2, "eps": eps, "weight_decay": weight_decay}
    defaults = {"lr": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-6, "weight_decay": 0.0}
    dynamic = {k: v for k, v in values.items() if callable(v) or _is_array(v)}
    const = {k: (defaults[k] if k in dynamic else v) for k, v in values.items()}
    if "weight_decay" in dynamic and not callable(dynamic["weight_decay"]):
        const["weight_decay"] = 1.0  # decay on (the injected rate scales it); the rate itself is an input
    rule = _adamw.AdamW(
        const["lr"],
        (const["b1"], const["b2"]),
        const["eps"],
        const["weight_decay"],
        correct_bias,
        True,
        **options,
    )
    return transformation(rule, dynamic, mask)


def adafactor(learning_rate: Any = None, **kwargs: Any) -> optax.GradientTransformation:
    """Transformers' Adafactor (``tensorweave.optim.Adafactor(lr=learning_rate, **kwargs)``) as optax;
    ``learning_rate`` (with ``relative_step=False``) may be a number, a jax array or a schedule."""
    if isinstance(kwargs.get("kwargs"), dict):  # inject_hyperparams re-passes **kwargs as kwargs=
        kwargs = {**kwargs.pop("kwargs"), **kwargs}
    dynamic = {}
    if learning_rate is not None and (callable(learning_rate) or _is_array(learning_rate)):
        dynamic["lr"], learning_rate = learning_rate, 0.0
    return transformation(_adafactor.Adafactor(learning_rate, **kwargs), dynamic)


def optax_schedule(schedule: Callable[[Any], Any], dtype: Any = jnp.float32) -> Callable[[Any], Any]:
    """An optax schedule ``count -> lr`` from a tensorweave schedule (``Schedule``, ``WarmUp``,
    ``lr_lambda``...): the schedule is traced once over an int64 step, lowered with the jax backend,
    and its float64 value cast to ``dtype`` (float32 like optax's own schedules)."""
    if not callable(schedule):
        raise ValueError(f"optax_schedule needs a callable step -> lr, got {type(schedule).__name__}")
    from ..ir import array_namespace

    def fn(step: Any) -> Any:
        xp = array_namespace(step)
        return xp.asarray(schedule(step), dtype=xp.float64)

    program = lower(trace(fn, TensorSpec((), "int64", "step"), name="schedule"), "jax")

    def optax_fn(count: Any) -> Any:
        with x64():
            (value,) = program.jitted(program.hoisted_arrays, jnp.asarray(count, dtype=jnp.int64))
            return value.astype(dtype)

    return optax_fn


__all__ = ["transformation", "adamw", "adafactor", "optax_schedule"]
