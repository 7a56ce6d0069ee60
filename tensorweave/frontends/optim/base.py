"""What every update rule shares: named pytrees, the rule protocol, tracing one step.

An update rule is a pure function ``update(params, grads, state, hyper) -> (params, state)``
with ``init(params) -> state`` (see spec/optim.md):

- ``params`` / ``grads``: the same pytree (an array, or dicts / lists / tuples of them); a
  flat ``{name: array}`` dict is the usual case. A leaf's *name* is its path joined by
  ``/`` (``{"enc": {"w": w}}`` -> ``"enc/w"``); name-based rules (weight-decay regexes) use it.
- ``state``: a dict whose ``"step"`` is an int64 scalar array (steps completed) and whose other
  entries are per-parameter slots ``{slot: {name: array}}``; nothing else.
- ``hyper``: a dict of scalar arrays for hyperparameters that change from step to step
  (``{"lr": ...}``). A missing key takes the value given at construction, so one traced step
  function serves a whole run: the schedule value is an input, not a constant.

Scalar hyperparameter math (bias corrections, schedules, step sizes) is done in float64 and the
result cast to the parameter's compute dtype where it meets a tensor, as the reference does
with Python floats.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any, Callable, Sequence

import numpy as np

from ...ir import array_namespace, trace
from ...ir.control import tree_flatten, tree_unflatten
from ...ir.graph import Graph
from ...ir.types import IRError, TensorSpec, from_numpy_dtype

STEP = "step"


# ------------------------------------------------------------------ named pytrees
def named_leaves(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``[(name, leaf)]`` in flattening order; names are ``/``-joined paths under ``prefix``."""
    if isinstance(tree, dict):
        out: list = []
        for k, v in tree.items():
            out += named_leaves(v, f"{prefix}/{k}" if prefix else str(k))
        return out
    if isinstance(tree, (list, tuple)):
        out = []
        for i, v in enumerate(tree):
            out += named_leaves(v, f"{prefix}/{i}" if prefix else str(i))
        return out
    return [(prefix, tree)]


def flatten_params(params: Any, grads: Any = None, what: str = "grads") -> tuple[list[str], list, list, Any]:
    """``(names, param leaves, grad leaves, treedef)``; grads must have the params' structure and shapes."""
    named = named_leaves(params)
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"parameter names are not unique: {names}; use string keys without '/'")
    p_leaves, treedef = tree_flatten(params)
    if any(p is None for p in p_leaves):
        raise ValueError("a parameter is None; pass only arrays in params")
    if grads is None:
        return names, p_leaves, [], treedef
    g_leaves, gdef = tree_flatten(grads)
    if gdef != treedef:
        raise ValueError(f"{what} must have the same structure as params (names {names})")
    for n, p, g in zip(names, p_leaves, g_leaves):
        if g is None:
            raise ValueError(f"the gradient of {n!r} is None; pass a zero gradient instead")
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(
                f"the gradient of {n!r} has shape {tuple(g.shape)}, the parameter {tuple(p.shape)}"
            )
    return names, p_leaves, g_leaves, treedef


def dtype_name(dtype: Any) -> str:
    """``"float32"``, ``"bfloat16"``, ... for an IR DType or a numpy dtype."""
    return str(dtype)


def is_low_precision(dtype: Any) -> bool:
    return dtype_name(dtype) in ("float16", "bfloat16")


def check_float_params(names: Sequence[str], leaves: Sequence[Any]) -> None:
    for n, p in zip(names, leaves):
        if dtype_name(p.dtype) not in ("float16", "bfloat16", "float32", "float64"):
            raise ValueError(f"parameter {n!r} has dtype {p.dtype}; optimizers update float parameters only")


# ------------------------------------------------------------------ scalars
def f64(xp: Any, x: Any) -> Any:
    """``x`` as a float64 array (a 0-d one for scalars; Python floats are not rounded on the way)."""
    return xp.asarray(x, dtype=xp.float64)


def cast(xp: Any, x: Any, dtype: Any) -> Any:
    """``x`` (an array or a Python number) as an array of ``dtype``."""
    return xp.asarray(x, dtype=dtype)


def step_array(xp: Any, value: int = 0) -> Any:
    return xp.asarray(value, dtype=xp.int64)


def is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_number(name: str, x: Any) -> float:
    if not is_number(x) or not math.isfinite(float(x)):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return float(x)


def check_range(
    name: str,
    x: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``check_number`` plus a range: ``low <= x`` (``<`` with ``low_open``), ``x <= high`` (``<``)."""
    x = check_number(name, x)
    bad = (low is not None and (x <= low if low_open else x < low)) or (
        high is not None and (x >= high if high_open else x > high)
    )
    if bad:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}"
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        where = f"in {lo or '(-inf'}, {hi or 'inf)'}"
        raise ValueError(f"{name} must be {where}, got {x}")
    return x


def check_bool(name: str, x: Any) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {x!r}")
    return bool(x)


def check_hyper_value(key: str, value: Any) -> None:
    """A concrete per-step hyperparameter (a Python number or a numpy scalar) must be finite and >= 0
    (``ValueError`` before any work); traced values (IR, jax, tf) cannot be checked and pass."""
    if isinstance(value, (numbers.Real, np.ndarray, np.generic)) and not isinstance(value, bool):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or arr.size != 1:
            raise ValueError(f"hyper[{key!r}] must be a scalar number, got {value!r}")
        x = float(arr)
        if not math.isfinite(x) or x < 0.0:
            raise ValueError(f"hyper[{key!r}] must be a finite number >= 0, got {x}")


# ------------------------------------------------------------------ the rule protocol
class UpdateRule:
    """Base class of the pure update rules (AdamW, Adafactor, accumulation wrappers).

    Subclasses implement ``init(params) -> state`` and ``update(params, grads, state, hyper=None)``.
    ``HYPER`` names the keys ``hyper`` may hold.
    """

    HYPER: tuple[str, ...] = ("lr",)

    def init(self, params: Any) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, params: Any, grads: Any, state: dict, hyper: dict | None = None) -> tuple[Any, dict]:
        raise NotImplementedError  # pragma: no cover - abstract

    def __call__(self, params: Any, grads: Any, state: dict, hyper: dict | None = None) -> tuple[Any, dict]:
        return self.update(params, grads, state, hyper)

    def default_hyper(self) -> dict:
        """The ``hyper`` inputs a traced step takes, with the constructor's values (float64 scalars).
        Empty when nothing changes per step (e.g. the lr is a schedule evaluated inside the step)."""
        return {}

    def check_hyper(self, hyper: dict | None) -> dict:
        hyper = {} if hyper is None else hyper
        if not isinstance(hyper, dict):
            raise ValueError(f"hyper must be a dict of scalar arrays, got {type(hyper).__name__}")
        unknown = sorted(set(hyper) - set(self.HYPER))
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {unknown} for {type(self).__name__}; it takes {list(self.HYPER)}"
            )
        for k, v in hyper.items():
            check_hyper_value(k, v)
        return hyper

    def check_state(self, state: Any, names: Sequence[str] = (), slots: Sequence[str] = ()) -> dict:
        """``state`` must be a dict with ``"step"`` and, for every slot listed, an entry per parameter name."""
        if not isinstance(state, dict) or STEP not in state:
            raise ValueError(f"state must be the dict returned by {type(self).__name__}.init(params)")
        for slot in slots:
            have = state.get(slot)
            missing = [n for n in names if not isinstance(have, dict) or n not in have]
            if missing:
                raise ValueError(
                    f"state[{slot!r}] has no entry for parameter(s) {missing}; build the state with "
                    f"{type(self).__name__}.init(params) for these params"
                )
        return state


def innermost(rule: Any) -> Any:
    """The rule with the hyperparameters (``defaults``) under wrappers such as ``AccumulateSteps`` /
    ``SkipNonFinite`` (which hold it as ``.rule``)."""
    while not isinstance(getattr(rule, "defaults", None), dict) and isinstance(
        getattr(rule, "rule", None), UpdateRule
    ):
        rule = rule.rule
    return rule


def with_inner(rule: Any, **attrs: Any) -> Any:
    """A shallow copy of ``rule`` whose innermost rule (see :func:`innermost`) has ``attrs`` set."""
    new = copy.copy(rule)
    if not isinstance(getattr(rule, "defaults", None), dict) and isinstance(
        getattr(rule, "rule", None), UpdateRule
    ):
        new.rule = with_inner(rule.rule, **attrs)
        return new
    for k, v in attrs.items():
        setattr(new, k, v)
    return new


def resolve_lr(xp: Any, lr: Any, hyper: dict, step: Any) -> Any:
    """The float64 learning rate: ``hyper["lr"]``, else ``lr(step)`` for a schedule, else the constant."""
    if "lr" in hyper:
        return f64(xp, hyper["lr"])
    if callable(lr):
        value = lr(step)
        check_hyper_value("lr", value)  # an eager schedule's value (traced ones pass)
        return f64(xp, value)
    return f64(xp, lr)


# ------------------------------------------------------------------ tracing one step
class TracedUpdate:
    """One update step traced into a Graph with flat, named inputs and outputs.

    Inputs: ``params/<name>``, ``grads/<name>``, ``state/<path>``, ``hyper/<key>``; outputs:
    ``new_params/<name>``, ``new_state/<path>`` with the same specs as the inputs without the
    ``new_`` prefix, so a program can be called in a loop feeding its outputs back (distinct names
    because ONNX wants every value name unique). :meth:`flatten` and :meth:`unflatten`
    convert between pytrees and the flat lists; :meth:`run` calls any lowered program.
    """

    def __init__(self, rule: UpdateRule, params: Any, hyper: dict | None = None, name: str = "update_step"):
        ex_params = tree_unflatten(tree_flatten(params)[1], [_example(p) for p in tree_flatten(params)[0]])
        ex_state = rule.init(ex_params)
        ex_hyper = rule.default_hyper() if hyper is None else {k: np.asarray(v) for k, v in hyper.items()}
        rule.check_hyper(ex_hyper)
        self.rule = rule
        self._param_def = tree_flatten(ex_params)[1]
        self._state_def = tree_flatten(ex_state)[1]
        self._hyper_keys = list(ex_hyper)
        p_named = named_leaves(ex_params, "params")
        g_named = named_leaves(ex_params, "grads")
        s_named = named_leaves(ex_state, "state")
        h_named = [(f"hyper/{k}", np.asarray(v)) for k, v in ex_hyper.items()]
        groups = [p_named, g_named, s_named, h_named]
        self.input_names = [n for g in groups for n, _ in g]
        self.output_names = ["new_" + n for n, _ in p_named] + ["new_" + n for n, _ in s_named]
        specs = [_spec(v, n) for g in groups for n, v in g]
        counts = [len(g) for g in groups]
        self._counts = counts

        def step(*flat):
            p, g, s, h = self._split(list(flat))
            new_p, new_s = rule.update(p, g, s, h)
            return tree_flatten(new_p)[0] + tree_flatten(new_s)[0]

        self.graph: Graph = trace(
            step, *specs, name=name, input_names=self.input_names, output_names=self.output_names
        )
        expect = {"new_" + n: s for n, s in zip(self.input_names, specs)}
        for n, s in zip(self.output_names, self.graph.output_specs):
            e = expect[n]
            if tuple(s.shape) != tuple(e.shape) or s.dtype != e.dtype:
                raise IRError(
                    f"{type(rule).__name__}: output {n} is {s.shape} {s.dtype}, the input "
                    f"{e.shape} {e.dtype}; an update must keep every spec"
                )

    def _split(self, flat: list) -> tuple[Any, Any, dict, dict]:
        a, b, c, _ = self._counts
        p = tree_unflatten(self._param_def, flat[:a])
        g = tree_unflatten(self._param_def, flat[a : a + b])
        s = tree_unflatten(self._state_def, flat[a + b : a + b + c])
        h = dict(zip(self._hyper_keys, flat[a + b + c :]))
        return p, g, s, h

    @property
    def state_def(self) -> Any:
        """The state pytree's structure (for :func:`tree_unflatten`)."""
        return self._state_def

    @property
    def hyper_keys(self) -> list[str]:
        """The ``hyper/<key>`` inputs, in input order."""
        return list(self._hyper_keys)

    def flatten(self, params: Any, grads: Any, state: dict, hyper: dict | None = None) -> list:
        """The flat input list, in :attr:`input_names` order (hyper values as float64 arrays)."""
        hyper = {**self.rule.default_hyper(), **(hyper or {})}
        missing = [k for k in self._hyper_keys if k not in hyper]
        if missing:
            raise ValueError(f"hyper is missing {missing}; this step was traced with {self._hyper_keys}")
        for k in self._hyper_keys:
            check_hyper_value(k, hyper[k])
        h = [np.asarray(hyper[k], dtype=np.float64) for k in self._hyper_keys]
        return tree_flatten(params)[0] + tree_flatten(grads)[0] + tree_flatten(state)[0] + h

    def unflatten(self, outputs: Sequence[Any]) -> tuple[Any, dict]:
        """``(params, state)`` from a program's outputs."""
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        a = self._counts[0]
        return tree_unflatten(self._param_def, outputs[:a]), tree_unflatten(self._state_def, outputs[a:])

    def run(
        self, program: Callable, params: Any, grads: Any, state: dict, hyper: dict | None = None
    ) -> tuple[Any, dict]:
        """One step through a lowered ``program`` (any backend)."""
        return self.unflatten(program(*self.flatten(params, grads, state, hyper)))


def trace_update(
    rule: UpdateRule, params: Any, hyper: dict | None = None, name: str = "update_step"
) -> TracedUpdate:
    """Trace ``rule.update`` for parameters shaped like ``params`` (arrays or TensorSpecs)."""
    return TracedUpdate(rule, params, hyper, name)


def _example(p: Any) -> np.ndarray:
    if isinstance(p, TensorSpec):
        if not p.shape.is_static:
            raise ValueError(
                f"parameter spec {p} must have static dims (optimizer state has the parameter's shape)"
            )
        return np.zeros(tuple(int(d) for d in p.shape), dtype=p.dtype.to_numpy())
    arr = np.asarray(p)
    return np.zeros(arr.shape, arr.dtype)


def _spec(v: Any, name: str) -> TensorSpec:
    arr = np.asarray(v)
    return TensorSpec(arr.shape, from_numpy_dtype(arr.dtype), name)


def namespace_of(*xs: Any) -> Any:
    """The Array-API namespace of the given (possibly nested) arrays."""
    leaves: list = []
    for x in xs:
        leaves += [l for l in tree_flatten(x)[0] if l is not None]
    return array_namespace(*leaves)
