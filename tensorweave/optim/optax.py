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

Importing the jax backend enables ``jax_enable_x64`` (process-wide, spec/backends-jax.md): the
rule's scalar math is float64 as on every other backend.
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

from ..backends import jax as _jax_backend  # noqa: F401 - enables x64 before any array is built
from ..backends import lower
from ..frontends.optim import adafactor as _adafactor
from ..frontends.optim import adamw as _adamw
from ..frontends.optim.base import UpdateRule, trace_update
from ..ir import TensorSpec, trace
from ..ir.types import from_numpy_dtype


def _named(tree: Any) -> tuple[list[str], list, Any]:
    """``(names, leaves, treedef)`` of any JAX pytree; names are ``/``-joined key paths."""
    with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = [jax.tree_util.keystr(path, simple=True, separator="/") or "param" for path, _ in with_path]
    return names, [leaf for _, leaf in with_path], treedef


def _spec(name: str, leaf: Any) -> TensorSpec:
    return TensorSpec(tuple(int(d) for d in leaf.shape), from_numpy_dtype(np.dtype(leaf.dtype)), name)


class _Steps:
    """The traced + lowered step per (names, shapes, dtypes)."""

    def __init__(self, rule: UpdateRule):
        self.rule = rule
        self.cache: dict = {}

    def get(self, names: list[str], leaves: list) -> tuple[Any, Any]:
        key = tuple((n, tuple(l.shape), str(l.dtype)) for n, l in zip(names, leaves))
        hit = self.cache.get(key)
        if hit is None:
            traced = trace_update(
                self.rule, {n: _spec(n, l) for n, l in zip(names, leaves)}, name="optax_step"
            )
            hit = self.cache[key] = (traced, lower(traced.graph, "jax"))
        return hit


def transformation(rule: UpdateRule) -> optax.GradientTransformation:
    """``optax.GradientTransformation`` running ``rule`` (AdamW, Adafactor, ``AccumulateSteps(...)``)."""
    if not isinstance(rule, UpdateRule):
        raise ValueError(f"transformation() needs a tensorweave update rule, got {type(rule).__name__}")
    steps = _Steps(rule)

    def init_fn(params: Any) -> dict:
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

    def update_fn(updates: Any, state: dict, params: Any = None) -> tuple[Any, dict]:
        if params is None:
            raise ValueError("this transformation needs params: call update(grads, state, params)")
        names, p_leaves, treedef = _named(params)
        g_names, g_leaves, g_def = _named(updates)
        if g_def != treedef:
            raise ValueError("grads must have the same pytree structure as params")
        traced, program = steps.get(names, p_leaves)
        p_dict = dict(zip(names, p_leaves))
        g_dict = dict(zip(names, g_leaves))
        hyper = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in rule.default_hyper().items()}
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

    return optax.GradientTransformation(init_fn, update_fn)


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
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    correct_bias: bool = True,
    **options: Any,
) -> optax.GradientTransformation:
    """Transformers' AdamW (``tensorweave.optim.AdamW``) as an optax transformation; ``learning_rate`` is a
    number or a tensorweave schedule (``step -> lr``). ``options``: AdamW's keyword-only options."""
    return transformation(
        _adamw.AdamW(learning_rate, (b1, b2), eps, weight_decay, correct_bias, True, **options)
    )


def adafactor(learning_rate: Any = None, **kwargs: Any) -> optax.GradientTransformation:
    """Transformers' Adafactor (``tensorweave.optim.Adafactor(lr=learning_rate, **kwargs)``) as optax."""
    return transformation(_adafactor.Adafactor(learning_rate, **kwargs))


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
        (value,) = program.jitted(program.hoisted_arrays, jnp.asarray(count, dtype=jnp.int64))
        return value.astype(dtype)

    return optax_fn


__all__ = ["transformation", "adamw", "adafactor", "optax_schedule"]
