"""A Keras 3 optimizer (any Keras backend: jax, torch, tensorflow) that runs an update rule's lowering.

``KerasOptimizer(rule)`` (and :class:`AdamW`, :class:`Adafactor`, :class:`AdamWeightDecay`,
:func:`create_optimizer`) subclasses ``keras.optimizers.Optimizer``:

- ``build(var_list)`` traces the rule for each model variable (named by ``variable.path``, so
  name-based rules such as ``exclude_from_weight_decay`` see Keras paths), lowers it with the
  tensorweave backend of Keras' own backend (``KERAS_BACKEND`` = tensorflow / jax / torch: a
  ``tf.function``, a ``jax.jit`` function, generated torch code), one per distinct name/shape/dtype,
  and creates one optimizer variable per state leaf of that variable (``exp_avg``, ``exp_avg_sq``,
  ..., and its ``step``), so ``optimizer.variables`` is the whole optimizer state (save / restore =
  read / assign them; ``model.save`` stores them).
- ``update_step(gradient, variable, learning_rate)`` calls that program with the variable, its
  gradient, its state and ``hyper/lr = float64(learning_rate)`` and assigns the results. Keras calls
  it once per variable, inside ``model.fit``'s compiled step (tf.function / jax.jit) and, under
  ``tf.distribute``, through ``strategy.extended.update`` after the gradients were all-reduced.

The learning rate is Keras': a number is Keras' float32 learning-rate variable (so it is rounded
to float32 before the float64 scalar math); a tensorweave schedule becomes a Keras
``LearningRateSchedule`` (:class:`KerasSchedule`, :class:`WarmUp`, :class:`PolynomialDecay`,
:class:`LambdaSchedule`) evaluated at ``optimizer.iterations`` in float64. A multiplier schedule
(``get_*_schedule(None, ...)``, values in [0, 1]) is refused as a learning rate: give it
``initial_learning_rate`` (:class:`LambdaSchedule`). Clipping (``clipnorm``, ``global_clipnorm``,
``clipvalue``) is Keras' own, done before ``update_step``; Keras' ``weight_decay`` argument is the
rule's decay rate (``weight_decay_rate``, Transformers' name, also accepted).

Every class here is registered with ``keras.saving.register_keras_serializable`` (package
``tensorweave``), so ``keras.models.load_model`` restores a saved model without ``custom_objects``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..backends import lower
from ..frontends.optim import adafactor as _adafactor
from ..frontends.optim import adamw as _adamw
from ..frontends.optim import schedules as _schedules
from ..frontends.optim.base import UpdateRule, innermost, trace_update, with_inner
from ..ir import TensorSpec, trace
from ..ir.control import tree_flatten
from ..ir.types import DType
from ..log import quiet_import

try:
    import keras
except ModuleNotFoundError:  # one line naming the pip extra
    raise ImportError(
        "tensorweave.optim.keras needs Keras 3: pip install 'tensorweave[tensorflow]' (or keras with jax / torch)"
    ) from None

BACKEND = keras.backend.backend()
if BACKEND == "tensorflow":
    quiet_import("tensorflow")  # TensorFlow's start-up lines go to the debug log
    import tensorflow as tf
elif BACKEND not in ("jax", "torch"):
    raise ImportError(
        f"tensorweave.optim.keras runs with Keras' tensorflow, jax or torch backend, not {BACKEND!r}; "
        "set KERAS_BACKEND before importing keras"
    )


_serializable = functools.partial(keras.saving.register_keras_serializable, package="tensorweave")


# ------------------------------------------------------------------ calling a lowered program
def _lower(graph: Any) -> Any:
    if BACKEND == "tensorflow":
        with tf.init_scope():  # build may run inside model.fit's tf.function: constants must be eager
            return lower(graph, "tensorflow")
    return lower(graph, BACKEND)


def _call(program: Any, specs: list, args: list) -> list:
    """Run ``program`` on backend tensors ``args``, cast to ``specs``' dtypes (64-bit ones included)."""
    args = [a.value if isinstance(a, keras.Variable) else a for a in args]
    if BACKEND == "tensorflow":
        args = [tf.cast(a, s.dtype.to_numpy()) for a, s in zip(args, specs)]
        return list(program.fn(*args))
    if BACKEND == "jax":
        import jax.numpy as jnp

        from ..backends.jax import x64

        with x64():
            args = [jnp.asarray(a).astype(s.dtype.to_numpy()) for a, s in zip(args, specs)]
            return list(program.jitted(program.hoisted_arrays, *args))
    import torch

    args = [torch.as_tensor(a) for a in args]
    device = args[0].device if args else torch.device("cpu")
    # the torch backend runs on CPU tensors (Keras may keep its variables on an accelerator)
    args = [a.to(device="cpu", dtype=_TORCH[s.dtype.name]) for a, s in zip(args, specs)]
    outs = program(*args)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    return [o.to(device) for o in outs] if device.type != "cpu" else outs


_TORCH: dict = {}
if BACKEND == "torch":
    import torch

    _TORCH = {
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "float32": torch.float32,
        "float64": torch.float64,
        "int32": torch.int32,
        "int64": torch.int64,
        "bool": torch.bool,
    }


def _step_lr(fn: Any) -> Any:
    """``step -> lr`` as a float64 IR function of an int64 step."""
    from ..ir import array_namespace

    def wrapped(step: Any) -> Any:
        xp = array_namespace(step)
        return xp.asarray(fn(step), dtype=xp.float64)

    return wrapped


# ------------------------------------------------------------------ schedules
class _TracedSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A ``step -> lr`` function written with ``xp`` as a Keras schedule: traced once over an int64
    step, lowered to Keras' backend on first use; ``__call__(step)`` returns the float64 lr."""

    def _fn(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _program(self) -> Any:
        program = self.__dict__.get("_tw_program")
        if program is None:
            graph = trace(_step_lr(self._fn()), TensorSpec((), "int64", "step"), name="schedule")
            program = self.__dict__["_tw_program"] = _lower(graph)
        return program

    def __call__(self, step: Any) -> Any:
        return _call(self._program(), [TensorSpec((), "int64", "step")], [step])[0]

    def as_function(self) -> Any:
        """The tensorweave (``xp``) function, for wrapping in another traced schedule."""
        return self._fn()


def _is_multiplier(schedule: Any) -> bool:
    return isinstance(schedule, _schedules.Schedule) and schedule.base_lr is None


def _multiplier_error(schedule: Any) -> ValueError:
    return ValueError(
        f"{schedule!r} is a multiplier schedule (values in [0, 1], built without an optimizer); as a "
        "learning rate it would train at lr up to 1.0. Use tensorweave.optim.keras.LambdaSchedule("
        "schedule, initial_learning_rate=...) or pass an lr-valued schedule"
    )


@_serializable()
class KerasSchedule(_TracedSchedule):
    """Any tensorweave ``step -> lr`` callable (``WarmUp``, ``lambda s: 1e-3 * sched.lr_lambda(s)``...)
    as a Keras schedule. ``get_config`` holds only its repr: use :class:`WarmUp`,
    :class:`PolynomialDecay` or :class:`LambdaSchedule` for models saved with ``model.save``."""

    def __init__(self, schedule: Any):
        if not callable(schedule):
            raise ValueError(f"KerasSchedule needs a callable step -> lr, got {type(schedule).__name__}")
        if _is_multiplier(schedule):
            raise _multiplier_error(schedule)
        self.schedule = schedule
        self._program()  # fail early (and, on TF, outside any tf.function)

    def _fn(self) -> Any:
        return self.schedule

    def get_config(self) -> dict:
        return {"schedule": repr(self.schedule)}

    @classmethod
    def from_config(cls, config: dict) -> Any:
        raise ValueError(
            f"a KerasSchedule over {config.get('schedule')} cannot be rebuilt from its config; use "
            "tensorweave.optim.keras.WarmUp / PolynomialDecay / LambdaSchedule"
        )


@_serializable()
class LambdaSchedule(_TracedSchedule):
    """``initial_learning_rate * lr_lambda(step)`` for a tensorweave ``Schedule`` (``get_*_schedule``,
    ``get_scheduler``): what PyTorch's ``LambdaLR`` does with the optimizer's lr."""

    def __init__(self, schedule: Any, initial_learning_rate: float | None = None):
        if isinstance(schedule, dict):  # from_config
            fn = getattr(_schedules, schedule["function"])
            schedule = _schedules.Schedule(functools.partial(fn, **schedule["kwargs"]), name=schedule["name"])
        if not isinstance(schedule, _schedules.Schedule):
            raise ValueError(f"LambdaSchedule needs a tensorweave Schedule, got {type(schedule).__name__}")
        if initial_learning_rate is None:
            initial_learning_rate = schedule.base_lr
        if initial_learning_rate is None:
            raise _multiplier_error(schedule)
        self.schedule = schedule
        self.initial_learning_rate = _schedules.check_number("initial_learning_rate", initial_learning_rate)
        if self.initial_learning_rate < 0:
            raise ValueError(f"initial_learning_rate must be >= 0, got {initial_learning_rate}")

    def _fn(self) -> Any:
        lam, lr0 = self.schedule.lr_lambda, self.initial_learning_rate
        return lambda s: lr0 * lam(s)

    def get_config(self) -> dict:
        lam = self.schedule.lr_lambda
        if isinstance(lam, functools.partial):
            fn, kwargs = lam.func.__name__, dict(lam.keywords)
        else:
            fn, kwargs = lam.__name__, {}
        return {
            "schedule": {"function": fn, "kwargs": kwargs, "name": self.schedule.name},
            "initial_learning_rate": self.initial_learning_rate,
        }


@_serializable()
class PolynomialDecay(_TracedSchedule):
    """Keras' ``PolynomialDecay`` (float64, see ``tensorweave.optim.PolynomialDecay``)."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str | None = None,
    ):
        self.decay = _schedules.PolynomialDecay(
            initial_learning_rate, decay_steps, end_learning_rate, power, cycle, name
        )
        self.name = name

    def _fn(self) -> Any:
        return self.decay

    def get_config(self) -> dict:
        return self.decay.get_config()


@_serializable()
class WarmUp(_TracedSchedule):
    """Transformers' TF ``WarmUp(initial_learning_rate, decay_schedule_fn, warmup_steps, power=1.0,
    name=None)``: ``init * (step / warmup_steps) ** power`` while ``step < warmup_steps``, then
    ``decay_schedule_fn(step - warmup_steps)``. ``decay_schedule_fn``: one of this module's schedules or
    a tensorweave ``step -> lr`` function (float64, traced); any other Keras schedule is evaluated
    with ``keras.ops`` in float32, as Transformers does."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_schedule_fn: Any,
        warmup_steps: int,
        power: float = 1.0,
        name: str | None = None,
    ):
        if isinstance(decay_schedule_fn, dict):  # from_config
            decay_schedule_fn = keras.saving.deserialize_keras_object(decay_schedule_fn)
        if _is_multiplier(decay_schedule_fn):
            raise _multiplier_error(decay_schedule_fn)
        if isinstance(decay_schedule_fn, _TracedSchedule):
            inner, self._traced = decay_schedule_fn.as_function(), True
        elif isinstance(decay_schedule_fn, keras.optimizers.schedules.LearningRateSchedule):
            inner, self._traced = (lambda s: s), False  # a foreign Keras schedule: the keras.ops path
        else:
            inner, self._traced = decay_schedule_fn, True
        self.warmup = _schedules.WarmUp(initial_learning_rate, inner, warmup_steps, power, name)
        self.decay_schedule_fn = decay_schedule_fn
        self.initial_learning_rate = self.warmup.initial_learning_rate
        self.warmup_steps = self.warmup.warmup_steps
        self.power = self.warmup.power
        self.name = name

    def _fn(self) -> Any:
        return self.warmup

    def __call__(self, step: Any) -> Any:
        if self._traced:
            return super().__call__(step)
        ops = keras.ops
        s = ops.cast(step, "float32")
        warm = self.initial_learning_rate * ops.power(s / float(self.warmup_steps or 1), self.power)
        return ops.where(s < self.warmup_steps, warm, self.decay_schedule_fn(step - self.warmup_steps))

    def get_config(self) -> dict:
        fn = self.decay_schedule_fn
        if isinstance(fn, keras.optimizers.schedules.LearningRateSchedule):
            fn = keras.saving.serialize_keras_object(fn)
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_schedule_fn": fn,
            "warmup_steps": self.warmup_steps,
            "power": self.power,
            "name": self.name,
        }


def as_learning_rate(lr: Any) -> Any:
    """What Keras gets as ``learning_rate``: a number, a Keras schedule, or a tensorweave schedule
    wrapped (``Schedule`` with an optimizer lr -> :class:`LambdaSchedule`, ``WarmUp`` ->
    :class:`WarmUp`, ``PolynomialDecay`` -> :class:`PolynomialDecay`, other callables ->
    :class:`KerasSchedule`). A multiplier ``Schedule`` (no optimizer) is a ``ValueError``."""
    if lr is None or isinstance(lr, keras.optimizers.schedules.LearningRateSchedule) or not callable(lr):
        return lr
    if isinstance(lr, _schedules.Schedule):
        return LambdaSchedule(lr)  # raises for a bare multiplier
    if isinstance(lr, _schedules.PolynomialDecay):
        c = lr.get_config()
        return PolynomialDecay(**c)
    if isinstance(lr, _schedules.WarmUp):
        return WarmUp(
            lr.initial_learning_rate,
            as_learning_rate(lr.decay_schedule_fn),
            lr.warmup_steps,
            lr.power,
            lr.name,
        )
    return KerasSchedule(lr)


def _dtype(variable: Any) -> DType:
    return DType(keras.backend.standardize_dtype(variable.dtype))


class KerasOptimizer(keras.optimizers.Optimizer):
    """``KerasOptimizer(rule, learning_rate=None, name=None, clipnorm=None, clipvalue=None,
    global_clipnorm=None, ...)``.

    ``learning_rate`` defaults to the rule's ``lr`` (a number, or a schedule wrapped as a Keras
    schedule by :func:`as_learning_rate`; 0.0 for Adafactor's relative step, whose lr is not used).
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
                "pass weight_decay to the update rule (tensorweave.optim.AdamW(weight_decay=...)) or use "
                "tensorweave.optim.keras.AdamW(weight_decay=...), not Keras' optimizer base"
            )
        kwargs.pop("weight_decay", None)
        inner_lr = getattr(innermost(rule), "lr", None)
        lr = inner_lr if learning_rate is None else learning_rate
        if callable(inner_lr):
            rule = with_inner(rule, lr=0.0)  # the lr comes from Keras (hyper/lr) every step
        if lr is None:
            lr = 0.0
        lr = as_learning_rate(lr)
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
                program = _lower(traced.graph)
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
                init = (
                    "zeros"
                    if not value.any()
                    else (lambda shape, dtype=None, v=value: keras.ops.convert_to_tensor(v))
                )
                if BACKEND == "jax" and value.dtype == np.int64 and not _jax_x64():
                    value = value.astype(np.int32)  # Keras' jax variables are 32-bit; cast at each call
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
        rule = self.rule
        while rule is not None:
            if getattr(rule, "include", None) or getattr(rule, "exclude", None):
                return True
            rule = getattr(rule, "rule", None)
        return False

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        i = self._get_variable_index(variable)
        traced, program, hyper = self._tw_steps[i]
        slots = self._tw_slots[i]
        value = variable.value if isinstance(variable, keras.Variable) else variable
        args = [value, gradient] + [s.value for s in slots] + [learning_rate for _ in hyper]
        outs = _call(program, traced.graph.input_specs, args)
        self.assign(variable, keras.ops.cast(outs[0], variable.dtype))
        for s, o in zip(slots, outs[1:]):
            self.assign(s, keras.ops.cast(o, s.dtype) if BACKEND != "jax" else _jax_cast(o, s.dtype))

    def state_values(self) -> list[np.ndarray]:
        """Every optimizer variable's value (``iterations``, the lr, the rule's state) as numpy."""
        return [np.asarray(keras.ops.convert_to_numpy(v.value)) for v in self.variables]

    def load_state_values(self, values: list) -> None:
        """Assign values saved by :meth:`state_values` (build the optimizer first, e.g. ``build(vars)``)."""
        if len(values) != len(self.variables):
            raise ValueError(
                f"got {len(values)} values for {len(self.variables)} optimizer variables; build the "
                "optimizer with the same model variables first"
            )
        for v, x in zip(self.variables, values):
            v.assign(x)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._config}


def _jax_x64() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


def _jax_cast(x: Any, dtype: Any) -> Any:
    """An int64 step back to Keras' variable dtype (int32 under jax without 64-bit types)."""
    return x.astype(keras.backend.standardize_dtype(dtype))


def _rate(weight_decay_rate: Any, weight_decay: Any) -> float:
    """Transformers' ``weight_decay_rate`` or Keras' ``weight_decay`` (one of them)."""
    if (
        weight_decay is not None
        and weight_decay_rate not in (None, 0.0)
        and weight_decay != weight_decay_rate
    ):
        raise ValueError(
            f"weight_decay ({weight_decay}) and weight_decay_rate ({weight_decay_rate}) are the same "
            "setting; pass one of them"
        )
    return weight_decay if weight_decay is not None else (weight_decay_rate or 0.0)


def _rule_lr(learning_rate: Any) -> Any:
    """The rule's own lr: Keras feeds the real one (number or schedule) as hyper/lr every step."""
    if learning_rate is None or callable(learning_rate):
        return 0.0
    if hasattr(learning_rate, "shape"):  # a tensor / variable
        return float(np.asarray(keras.ops.convert_to_numpy(learning_rate)))
    return learning_rate


@_serializable()
class AdamW(KerasOptimizer):
    """Transformers' AdamW (``tensorweave.optim.AdamW``) as a Keras optimizer. ``weight_decay`` (Keras'
    name) and ``weight_decay_rate`` (Transformers') are the same setting."""

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
        weight_decay: float | None = None,
        **kwargs: Any,
    ):
        rate = _rate(weight_decay_rate, weight_decay)
        rule = _adamw.AdamW(
            _rule_lr(learning_rate),
            (beta_1, beta_2),
            epsilon,
            rate,
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
            weight_decay_rate=rate,
            correct_bias=correct_bias,
            weight_decay_order=weight_decay_order,
            include_in_weight_decay=include_in_weight_decay,
            exclude_from_weight_decay=exclude_from_weight_decay,
        )
        super().__init__(rule, learning_rate=learning_rate, name=name, config=config, **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config["weight_decay"] = None  # the rate is weight_decay_rate (Keras' base stores its own None)
        return config


@_serializable()
class AdamWeightDecay(AdamW):
    """Transformers' TF ``AdamWeightDecay(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
    amsgrad=False, weight_decay_rate=0.0, include_in_weight_decay=None, exclude_from_weight_decay=None,
    name="AdamWeightDecay", **kwargs)``: decay ``lr * rate * var`` before the Adam step."""

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay_rate: float = 0.0,
        include_in_weight_decay: Any = None,
        exclude_from_weight_decay: Any = None,
        name: str = "AdamWeightDecay",
        weight_decay: float | None = None,
        **kwargs: Any,
    ):
        if amsgrad:
            raise ValueError("AdamWeightDecay(amsgrad=True) is not supported; use amsgrad=False")
        kwargs.pop("weight_decay_order", None)
        kwargs.pop("correct_bias", None)
        super().__init__(
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            weight_decay_rate,
            True,
            "before",
            include_in_weight_decay,
            exclude_from_weight_decay,
            name,
            weight_decay,
            **kwargs,
        )


@_serializable()
class Adafactor(KerasOptimizer):
    """Transformers' Adafactor (``tensorweave.optim.Adafactor``) as a Keras optimizer; ``learning_rate``
    is used only with ``relative_step=False``. ``weight_decay`` = ``weight_decay_rate``."""

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
        weight_decay: float | None = None,
        **kwargs: Any,
    ):
        if relative_step and learning_rate is not None and not callable(learning_rate):
            if not hasattr(learning_rate, "shape") and float(learning_rate) == 0.0:
                learning_rate = None  # Keras' stored 0.0 of a relative-step optimizer
        rate = _rate(weight_decay_rate, weight_decay)
        manual = None if learning_rate is None else _rule_lr(learning_rate)
        rule = _adafactor.Adafactor(
            manual,
            tuple(eps),
            clip_threshold,
            decay_rate,
            beta1,
            rate,
            scale_parameter,
            relative_step,
            warmup_init,
        )
        config = dict(
            eps=list(eps),
            clip_threshold=clip_threshold,
            decay_rate=decay_rate,
            beta1=beta1,
            weight_decay_rate=rate,
            scale_parameter=scale_parameter,
            relative_step=relative_step,
            warmup_init=warmup_init,
        )
        super().__init__(rule, learning_rate=learning_rate, name=name, config=config, **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config["weight_decay"] = None
        if self._config["relative_step"]:
            config["learning_rate"] = None  # Keras stores 0.0; the relative step takes no lr
        return config


def create_optimizer(
    init_lr: float,
    num_train_steps: int,
    num_warmup_steps: int,
    min_lr_ratio: float = 0.0,
    adam_beta1: float = 0.9,
    adam_beta2: float = 0.999,
    adam_epsilon: float = 1e-8,
    adam_clipnorm: float | None = None,
    adam_global_clipnorm: float | None = None,
    weight_decay_rate: float = 0.0,
    power: float = 1.0,
    include_in_weight_decay: list[str] | None = None,
) -> tuple[KerasOptimizer, Any]:
    """Transformers 4.37's TF ``create_optimizer``: ``(optimizer, lr_schedule)``, both Keras objects.

    ``lr_schedule`` is :class:`PolynomialDecay` ``(init_lr, num_train_steps - num_warmup_steps,
    init_lr * min_lr_ratio, power)``, wrapped in :class:`WarmUp` when ``num_warmup_steps`` is
    non-zero; the optimizer is :class:`AdamWeightDecay` (decay before the step, LayerNorm / layer_norm /
    bias excluded) when ``weight_decay_rate > 0``, else an Adam (:class:`AdamW` without decay), with
    Keras' ``clipnorm`` / ``global_clipnorm``."""
    for n, v in (("num_train_steps", num_train_steps), ("num_warmup_steps", num_warmup_steps)):
        _schedules._count(n, v)
    if num_train_steps <= num_warmup_steps:
        raise ValueError(
            f"num_train_steps ({num_train_steps}) must be > num_warmup_steps ({num_warmup_steps})"
        )
    lr_schedule: Any = PolynomialDecay(
        init_lr, num_train_steps - num_warmup_steps, init_lr * min_lr_ratio, power=power
    )
    if num_warmup_steps:
        lr_schedule = WarmUp(init_lr, lr_schedule, num_warmup_steps)
    clip = {"clipnorm": adam_clipnorm, "global_clipnorm": adam_global_clipnorm}
    if weight_decay_rate > 0.0:
        optimizer: KerasOptimizer = AdamWeightDecay(
            lr_schedule,
            adam_beta1,
            adam_beta2,
            adam_epsilon,
            weight_decay_rate=weight_decay_rate,
            include_in_weight_decay=include_in_weight_decay,
            exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"],
            **clip,
        )
    else:
        optimizer = AdamW(lr_schedule, adam_beta1, adam_beta2, adam_epsilon, name="adam", **clip)
    return optimizer, lr_schedule


__all__ = [
    "KerasOptimizer",
    "KerasSchedule",
    "LambdaSchedule",
    "PolynomialDecay",
    "WarmUp",
    "AdamW",
    "AdamWeightDecay",
    "Adafactor",
    "create_optimizer",
    "as_learning_rate",
]
