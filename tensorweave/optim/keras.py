"""A Keras 3 optimizer (TensorFlow backend) that runs an update rule's TensorFlow lowering.

``KerasOptimizer(rule)`` (and :class:`AdamW`, :class:`Adafactor`) subclasses
``keras.optimizers.Optimizer``:

- ``build(var_list)`` traces the rule for each model variable (named by ``variable.path``, so
  name-based rules such as ``exclude_from_weight_decay`` see Keras paths), lowers it with the
  tensorflow backend (one ``tf.function`` per distinct name/shape/dtype) and creates one optimizer
  variable per state leaf of that variable (``exp_avg``, ``exp_avg_sq``, ..., and its int64
  ``step``), so ``optimizer.variables`` is the whole optimizer state (save / restore = read /
  assign them).
- ``update_step(gradient, variable, learning_rate)`` calls that ``tf.function`` with the
  variable, its gradient, its state and ``hyper/lr = float64(learning_rate)`` and assigns the
  results. Keras calls it once per variable, inside ``model.fit``'s ``tf.function`` and, under
  ``tf.distribute``, through ``strategy.extended.update`` after the gradients were all-reduced.

The learning rate is Keras': a number is Keras' float32 learning-rate variable (so it is rounded
to float32 before the float64 scalar math); a tensorweave schedule (``WarmUp``, ``Schedule``,
any callable written with ``xp``) becomes a Keras ``LearningRateSchedule`` (:class:`KerasSchedule`)
evaluated at ``optimizer.iterations`` in float64. Clipping (``clipnorm``, ``global_clipnorm``,
``clipvalue``) is Keras' own, done before ``update_step``; Keras' own ``weight_decay`` is not
used (the rule decays).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..log import quiet_import

try:
    quiet_import("tensorflow")  # TensorFlow's start-up lines go to the debug log
    import keras
    import tensorflow as tf
except ModuleNotFoundError:  # one line naming the pip extra
    raise ImportError(
        "tensorweave.optim.keras needs TensorFlow (Keras 3): pip install 'tensorweave[tensorflow]'"
    ) from None

from ..backends import lower
from ..frontends.optim import adafactor as _adafactor
from ..frontends.optim import adamw as _adamw
from ..frontends.optim.base import UpdateRule, trace_update
from ..ir import TensorSpec, trace
from ..ir.control import tree_flatten
from ..ir.types import DType

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"tensorweave.optim.keras runs the TensorFlow lowering inside Keras, but Keras uses the "
        f"{keras.backend.backend()!r} backend; set KERAS_BACKEND=tensorflow before importing keras "
        "(or use tensorweave.optim.optax / .torch)"
    )


class KerasSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A tensorweave schedule (``step -> lr`` written with ``xp``) as a Keras schedule: traced once over
    an int64 step, lowered to a ``tf.function``; ``__call__(step)`` returns the float64 lr."""

    def __init__(self, schedule: Any):
        if not callable(schedule):
            raise ValueError(f"KerasSchedule needs a callable step -> lr, got {type(schedule).__name__}")
        from ..ir import array_namespace

        self.schedule = schedule

        def fn(step: Any) -> Any:
            xp = array_namespace(step)
            return xp.asarray(schedule(step), dtype=xp.float64)

        with tf.init_scope():
            self.program = lower(trace(fn, TensorSpec((), "int64", "step"), name="schedule"), "tensorflow")

    def __call__(self, step: Any) -> Any:
        return self.program.fn(tf.cast(step, tf.int64))[0]

    def get_config(self) -> dict:
        return {"schedule": repr(self.schedule)}


def _dtype(variable: Any) -> DType:
    return DType(tf.as_dtype(variable.dtype).name)


class KerasOptimizer(keras.optimizers.Optimizer):
    """``KerasOptimizer(rule, name=None, clipnorm=None, clipvalue=None, global_clipnorm=None, ...)``.

    ``learning_rate`` defaults to the rule's ``lr`` (a number, or a schedule wrapped in
    :class:`KerasSchedule`; 0.0 for Adafactor's relative step, whose lr is not used).
    """

    def __init__(
        self,
        rule: UpdateRule,
        learning_rate: Any = None,
        name: str | None = None,
        config: dict | None = None,
        **kwargs: Any,
    ):
        if not isinstance(rule, UpdateRule):
            raise ValueError(f"KerasOptimizer needs a tensorweave update rule, got {type(rule).__name__}")
        if kwargs.get("weight_decay") is not None:
            raise ValueError(
                "pass weight_decay to the update rule (tensorweave.optim.AdamW(weight_decay=...)), not to "
                "Keras' optimizer base"
            )
        kwargs.pop("weight_decay", None)
        lr = getattr(rule, "lr", None) if learning_rate is None else learning_rate
        if callable(getattr(rule, "lr", None)):
            rule = copy.copy(rule)
            rule.lr = 0.0  # the lr comes from Keras (hyper/lr) every step
        if lr is None:
            lr = 0.0
        elif callable(lr) and not isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            lr = KerasSchedule(lr)
        super().__init__(learning_rate=lr, name=name, **kwargs)
        self.rule = rule
        self._config = dict(config or {})
        self._tw_steps: list = []
        self._tw_slots: list = []

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        cache: dict = {}
        for var in var_list:
            name = getattr(var, "path", None) or var.name
            dt = _dtype(var)
            shape = tuple(int(d) for d in var.shape)
            key = (name if self._name_matters() else "", shape, dt)
            step = cache.get(key)
            if step is None:
                traced = trace_update(self.rule, {name: TensorSpec(shape, dt, name)}, name="keras_step")
                with tf.init_scope():  # build may run inside model.fit's tf.function: constants must be eager
                    program = lower(traced.graph, "tensorflow")
                hyper = [n[len("hyper/") :] for n in traced.input_names if n.startswith("hyper/")]
                step = cache[key] = (traced, program, hyper)
            self._tw_steps.append(step)
            template = self.rule.init({name: np.zeros(shape, dt.to_numpy())})
            slots = []
            for path, value in zip(step[0].input_names[2:], tree_flatten(template)[0]):
                value = np.asarray(value)
                slot_name = path[len("state/") :]
                slot_name = slot_name[: -len(name) - 1] if slot_name.endswith("/" + name) else slot_name
                slot_name = slot_name.replace("/", "_")
                init = "zeros" if not value.any() else (lambda shape, dtype=None, v=value: tf.constant(v))
                if tuple(value.shape) == shape and value.dtype == dt.to_numpy():
                    slots.append(self.add_variable_from_reference(var, name=slot_name, initializer=init))
                else:
                    slots.append(
                        self.add_variable(
                            value.shape, initializer=init, dtype=value.dtype.name, name=slot_name
                        )
                    )
            self._tw_slots.append(slots)

    def _name_matters(self) -> bool:
        """Name-based rules (AdamW's decay regexes) need one trace per variable name."""
        return bool(getattr(self.rule, "include", None) or getattr(self.rule, "exclude", None))

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        i = self._get_variable_index(variable)
        traced, program, hyper = self._tw_steps[i]
        slots = self._tw_slots[i]
        value = tf.convert_to_tensor(variable.value if isinstance(variable, keras.Variable) else variable)
        grad = tf.cast(tf.convert_to_tensor(gradient), value.dtype)
        args = [value, grad] + [tf.convert_to_tensor(s.value) for s in slots]
        args += [tf.cast(learning_rate, tf.float64) for k in hyper]
        outs = program.fn(*args)
        self.assign(variable, outs[0])
        for s, o in zip(slots, outs[1:]):
            self.assign(s, o)

    def state_values(self) -> list[np.ndarray]:
        """Every optimizer variable's value (``iterations``, the lr, the rule's state) as numpy."""
        return [np.asarray(v.numpy()) for v in self.variables]

    def load_state_values(self, values: list) -> None:
        """Assign values saved by :meth:`state_values` (build the optimizer first, e.g. ``build(vars)``)."""
        if len(values) != len(self.variables):
            raise ValueError(
                f"got {len(values)} values for {len(self.variables)} optimizer variables; build the "
                "optimizer with the same model variables first"
            )
        for v, x in zip(self.variables, values):
            v.assign(x)


class AdamW(KerasOptimizer):
    """Transformers' AdamW (``tensorweave.optim.AdamW``) as a Keras optimizer."""

    def __init__(
        self,
        learning_rate: Any = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        weight_decay_rate: float = 0.0,
        correct_bias: bool = True,
        weight_decay_order: str = "after",
        include_in_weight_decay: Any = None,
        exclude_from_weight_decay: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        lr = (
            learning_rate
            if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule)
            else 0.0
        )
        rule = _adamw.AdamW(
            lr if not callable(lr) else 0.0,
            (beta_1, beta_2),
            epsilon,
            weight_decay_rate,
            correct_bias,
            True,
            weight_decay_order=weight_decay_order,
            include_in_weight_decay=include_in_weight_decay,
            exclude_from_weight_decay=exclude_from_weight_decay,
        )
        config = dict(
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            weight_decay_rate=weight_decay_rate,
            correct_bias=correct_bias,
            weight_decay_order=weight_decay_order,
            include_in_weight_decay=include_in_weight_decay,
            exclude_from_weight_decay=exclude_from_weight_decay,
        )
        super().__init__(rule, learning_rate=learning_rate, name=name, config=config, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._config}


class Adafactor(KerasOptimizer):
    """Transformers' Adafactor (``tensorweave.optim.Adafactor``) as a Keras optimizer; ``learning_rate``
    is used only with ``relative_step=False``."""

    def __init__(
        self,
        learning_rate: Any = None,
        eps: tuple = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = -0.8,
        beta1: float | None = None,
        weight_decay_rate: float = 0.0,
        scale_parameter: bool = True,
        relative_step: bool = True,
        warmup_init: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ):
        manual = None if learning_rate is None else (0.0 if callable(learning_rate) else learning_rate)
        rule = _adafactor.Adafactor(
            manual,
            eps,
            clip_threshold,
            decay_rate,
            beta1,
            weight_decay_rate,
            scale_parameter,
            relative_step,
            warmup_init,
        )
        config = dict(
            eps=list(eps),
            clip_threshold=clip_threshold,
            decay_rate=decay_rate,
            beta1=beta1,
            weight_decay_rate=weight_decay_rate,
            scale_parameter=scale_parameter,
            relative_step=relative_step,
            warmup_init=warmup_init,
        )
        super().__init__(rule, learning_rate=learning_rate, name=name, config=config, **kwargs)

    def get_config(self) -> dict:
        config = {**super().get_config(), **self._config}
        if self._config["relative_step"]:
            config["learning_rate"] = None  # Keras stores 0.0; the relative step takes no lr
        return config


__all__ = ["KerasOptimizer", "KerasSchedule", "AdamW", "Adafactor"]
