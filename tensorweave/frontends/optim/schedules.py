"""Learning-rate schedules as pure functions of the step (Transformers' names and formulas).

A schedule's ``lr_lambda(step) -> multiplier`` is written with ``xp`` ops on a float64 copy of
``step`` (``where`` selects the phase, no Python branching on values), so it

- runs inside a traced training step (``step`` an int/float array; the result is a float64 array
  of the same shape),
- evaluates eagerly on numpy arrays (element-wise, so ``lr_lambda(np.arange(100))`` is the whole
  curve) and on Python numbers (the result is then a Python float, as ``LambdaLR`` expects),
- is a ``functools.partial`` of a module-level function, so it pickles.

``w`` = ``num_warmup_steps``, ``T`` = ``num_training_steps``, ``s`` = the step (the number of
optimizer steps already taken: the first update uses ``s = 0``, as ``LambdaLR`` does). "Warmup"
means ``s / max(1, w)`` while ``s < w``. Formulas are on each function.

PyTorch-style ``get_*_schedule(optimizer, ...)`` accept ``optimizer=None`` and return a
:class:`Schedule`: ``.lr_lambda`` (the multiplier, for ``torch.optim.lr_scheduler.LambdaLR``) and
``__call__(step)`` = ``base_lr * lr_lambda(step)`` where ``base_lr`` is the optimizer's lr (the
multiplier alone without an optimizer). The TF side has :class:`WarmUp`, :class:`PolynomialDecay`
and :func:`create_optimizer`, whose schedules return learning rates, not multipliers.
"""

from __future__ import annotations

import enum
import functools
import math
import numbers
import warnings
from typing import Any, Callable

from ...ir import array_namespace
from .base import check_number, is_number

# ------------------------------------------------------------------ helpers


def _steps(step: Any) -> tuple[Any, Any, bool]:
    """``(xp, step as float64, step was a Python number)``."""
    plain = isinstance(step, numbers.Real) and not hasattr(step, "shape")
    xp = array_namespace(step)
    return xp, xp.asarray(step, dtype=xp.float64), plain


def _out(value: Any, plain: bool) -> Any:
    return float(value) if plain else value


def _warmup(xp: Any, s: Any, w: int) -> Any:
    """The warmup multiplier ``s / max(1, w)``."""
    return s / max(1, w)


def _count(name: str, v: Any) -> int:
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
        raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    return int(v)


def _counts(num_warmup_steps: Any, num_training_steps: Any) -> tuple[int, int]:
    """Validated ``(w, T)``: non-negative ints with ``T >= w``."""
    w, T = _count("num_warmup_steps", num_warmup_steps), _count("num_training_steps", num_training_steps)
    if T < w:
        raise ValueError(f"num_training_steps ({T}) must be >= num_warmup_steps ({w})")
    return w, T


def _cycles(num_cycles: Any) -> float:
    x = check_number("num_cycles", num_cycles)
    if x < 0:
        raise ValueError(f"num_cycles must be >= 0, got {num_cycles!r}")
    return x


def _positive(name: str, x: Any) -> float:
    x = check_number(name, x)
    if not x > 0:
        raise ValueError(f"{name} must be > 0, got {x}")
    return x


def _ratio(name: str, x: Any) -> float:
    x = check_number(name, x)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {x}")
    return x


#: Hooks the public layer installs (``tensorweave.optim`` registers the torch one) so a schedule
#: built for a framework's optimizer comes back as that framework's scheduler object:
#: ``hook(kind, optimizer, args) -> native object or None`` with kind ``"lambda"`` (args: the
#: :class:`Schedule`), ``"plateau"`` (args: the kwargs) or ``"adafactor"`` (args: initial_lr).
#: The math stays here; frontends never import a framework.
NATIVE_SCHEDULER_HOOKS: list[Callable[[str, Any, Any], Any]] = []


def native_scheduler(kind: str, optimizer: Any, args: Any) -> Any:
    """The first installed hook's native object for ``optimizer``, or None."""
    for hook in NATIVE_SCHEDULER_HOOKS:
        out = hook(kind, optimizer, args)
        if out is not None:
            return out
    return None


def _native_aware(fn: Callable[..., "Schedule"]) -> Callable[..., Any]:
    """Given a framework optimizer a hook knows (torch: ``LambdaLR(optimizer, lr_lambda,
    last_epoch)``, what Transformers returns), that framework's scheduler; otherwise the neutral
    :class:`Schedule`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sched = fn(*args, **kwargs)
        native = native_scheduler("lambda", sched.optimizer, sched)
        return sched if native is None else native

    return wrapper


def _initial_lr(optimizer: Any) -> float | None:
    """The optimizer's initial lr: ``optimizer.defaults["lr"]`` (PyTorch and our rules) or ``.lr``."""
    if optimizer is None:
        return None
    defaults = getattr(optimizer, "defaults", None)
    lr = defaults.get("lr") if isinstance(defaults, dict) else getattr(optimizer, "lr", None)
    return float(lr) if is_number(lr) else None


# ------------------------------------------------------------------ multiplier functions (module level: picklable)
def constant_lambda(step: Any) -> Any:
    """1."""
    xp, s, plain = _steps(step)
    return _out(xp.ones_like(s), plain)


def constant_with_warmup_lambda(step: Any, *, num_warmup_steps: int) -> Any:
    """warmup, then 1."""
    xp, s, plain = _steps(step)
    w = num_warmup_steps
    return _out(xp.where(s < w, _warmup(xp, s, w), 1.0), plain)


def linear_lambda(step: Any, *, num_warmup_steps: int, num_training_steps: int) -> Any:
    """warmup, then ``max(0, (T - s) / max(1, T - w))``."""
    xp, s, plain = _steps(step)
    w, T = num_warmup_steps, num_training_steps
    decay = xp.maximum((T - s) / max(1, T - w), 0.0)
    return _out(xp.where(s < w, _warmup(xp, s, w), decay), plain)


def cosine_lambda(
    step: Any, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float, min_lr_rate: float = 0.0
) -> Any:
    """warmup, then with ``p = (s - w) / max(1, T - w)``:
    ``max(0, f * (1 - min_lr_rate) + min_lr_rate)`` where ``f = 0.5 * (1 + cos(pi * num_cycles * 2 * p))``."""
    xp, s, plain = _steps(step)
    w, T = num_warmup_steps, num_training_steps
    p = (s - w) / max(1, T - w)
    f = 0.5 * (1.0 + xp.cos(math.pi * float(num_cycles) * 2.0 * p))
    f = f * (1 - min_lr_rate) + min_lr_rate
    return _out(xp.where(s < w, _warmup(xp, s, w), xp.maximum(f, 0.0)), plain)


def cosine_hard_restarts_lambda(
    step: Any, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float
) -> Any:
    """warmup; ``p`` as for cosine; 0 if ``p >= 1``, else ``max(0, 0.5 * (1 + cos(pi * ((num_cycles * p) mod 1))))``."""
    xp, s, plain = _steps(step)
    w, T = num_warmup_steps, num_training_steps
    p = (s - w) / max(1, T - w)
    f = xp.maximum(0.5 * (1.0 + xp.cos(math.pi * xp.remainder(float(num_cycles) * p, 1.0))), 0.0)
    f = xp.where(p >= 1.0, 0.0, f)
    return _out(xp.where(s < w, _warmup(xp, s, w), f), plain)


def polynomial_decay_lambda(
    step: Any, *, num_warmup_steps: int, num_training_steps: int, lr_end: float, power: float, lr_init: float
) -> Any:
    """warmup; ``lr_end / lr_init`` if ``s > T``; else
    ``((lr_init - lr_end) * (1 - (s - w) / (T - w)) ** power + lr_end) / lr_init``
    (``T - w`` is taken as 1 when it is 0, where the reference divides by zero at ``s = T``)."""
    xp, s, plain = _steps(step)
    w, T = num_warmup_steps, num_training_steps
    remaining = xp.maximum(1.0 - (s - w) / max(T - w, 1), 0.0)  # >= 0 wherever it is used
    decay = ((lr_init - lr_end) * xp.pow(remaining, float(power)) + lr_end) / lr_init
    decay = xp.where(s > T, lr_end / lr_init, decay)
    return _out(xp.where(s < w, _warmup(xp, s, w), decay), plain)


def inverse_sqrt_lambda(step: Any, *, num_warmup_steps: int, timescale: float) -> Any:
    """warmup, then ``1 / sqrt((s + timescale - w) / timescale)``."""
    xp, s, plain = _steps(step)
    w = num_warmup_steps
    ratio = xp.maximum((s + (timescale - w)) / timescale, 1.0)  # >= 1 wherever it is used
    return _out(xp.where(s < w, _warmup(xp, s, w), 1.0 / xp.sqrt(ratio)), plain)


def _shape_fn(xp: Any, kind: str, progress: Any, rising: bool, num_cycles: float) -> Any:
    """WSD warmup (rising) / decay factors for ``progress`` in [0, 1]."""
    if kind == "linear":
        return progress if rising else 1.0 - progress
    if kind == "cosine":
        if rising:
            return 0.5 * (1.0 - xp.cos(math.pi * progress))
        return 0.5 * (1.0 + xp.cos(math.pi * float(num_cycles) * 2.0 * progress))
    return 1.0 - xp.sqrt(1.0 - progress) if rising else 1.0 - xp.sqrt(progress)


def wsd_lambda(
    step: Any,
    *,
    num_warmup_steps: int,
    num_stable_steps: int,
    num_decay_steps: int,
    warmup_type: str,
    decay_type: str,
    min_lr_ratio: float,
    num_cycles: float,
) -> Any:
    """Warmup-stable-decay with ``r = min_lr_ratio``:
    ``s < w``: ``max(0, f_warm(s / max(1, w)) * (1 - r) + r)``; then 1 for ``num_stable_steps``;
    then ``max(0, f_decay(q) * (1 - r) + r)`` with ``q = (s - w - stable) / max(1, num_decay_steps)``
    for ``num_decay_steps``; then ``r``. ``f_warm``: linear ``x``, cosine ``0.5 (1 - cos(pi x))``,
    1-sqrt ``1 - sqrt(1 - x)``; ``f_decay``: linear ``1 - q``, cosine ``0.5 (1 + cos(pi num_cycles 2 q))``,
    1-sqrt ``1 - sqrt(q)``."""
    xp, s, plain = _steps(step)
    w, st, d, r = num_warmup_steps, num_stable_steps, num_decay_steps, float(min_lr_ratio)
    pw = xp.minimum(s / max(1, w), 1.0)  # the clamps only act outside each phase
    warm = xp.maximum(_shape_fn(xp, warmup_type, pw, True, num_cycles) * (1.0 - r) + r, 0.0)
    pd = xp.maximum((s - (w + st)) / max(1, d), 0.0)
    dec = xp.maximum(_shape_fn(xp, decay_type, pd, False, num_cycles) * (1.0 - r) + r, 0.0)
    out = xp.where(s < w + st + d, dec, r)
    out = xp.where(s < w + st, 1.0, out)
    return _out(xp.where(s < w, warm, out), plain)


# ------------------------------------------------------------------ the PyTorch-style API
class Schedule:
    """A named multiplier function plus the optimizer's initial lr.

    ``lr_lambda(step)`` is the multiplier (what ``LambdaLR`` takes); ``schedule(step)`` is
    ``base_lr * lr_lambda(step)``, or the multiplier itself when ``base_lr`` is None (no optimizer).
    """

    def __init__(
        self,
        lr_lambda: Callable[[Any], Any],
        optimizer: Any = None,
        last_epoch: int = -1,
        name: str = "schedule",
    ):
        self.lr_lambda = lr_lambda
        self.optimizer = optimizer
        self.base_lr = _initial_lr(optimizer)
        self.last_epoch = last_epoch
        self.name = name

    def __call__(self, step: Any) -> Any:
        m = self.lr_lambda(step)
        return m if self.base_lr is None else self.base_lr * m

    def __repr__(self) -> str:
        return f"Schedule({self.name}, base_lr={self.base_lr})"


@_native_aware
def get_constant_schedule(optimizer: Any = None, last_epoch: int = -1) -> Schedule:
    """Multiplier 1."""
    return Schedule(constant_lambda, optimizer, last_epoch, "constant")


@_native_aware
def get_constant_schedule_with_warmup(
    optimizer: Any = None, num_warmup_steps: int = 0, last_epoch: int = -1
) -> Schedule:
    """``s / max(1, w)`` while ``s < w``, then 1."""
    w = _count("num_warmup_steps", num_warmup_steps)
    return Schedule(
        functools.partial(constant_with_warmup_lambda, num_warmup_steps=w),
        optimizer,
        last_epoch,
        "constant_with_warmup",
    )


@_native_aware
def get_linear_schedule_with_warmup(
    optimizer: Any, num_warmup_steps: int, num_training_steps: int, last_epoch: int = -1
) -> Schedule:
    """Warmup, then linear decay to 0 at ``num_training_steps``."""
    w, T = _counts(num_warmup_steps, num_training_steps)
    return Schedule(
        functools.partial(linear_lambda, num_warmup_steps=w, num_training_steps=T),
        optimizer,
        last_epoch,
        "linear",
    )


@_native_aware
def get_cosine_schedule_with_warmup(
    optimizer: Any,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
) -> Schedule:
    """Warmup, then ``0.5 (1 + cos(pi num_cycles 2 p))`` (a half cosine to 0 by default)."""
    w, T = _counts(num_warmup_steps, num_training_steps)
    return Schedule(
        functools.partial(
            cosine_lambda,
            num_warmup_steps=w,
            num_training_steps=T,
            num_cycles=_cycles(num_cycles),
        ),
        optimizer,
        last_epoch,
        "cosine",
    )


@_native_aware
def get_cosine_with_hard_restarts_schedule_with_warmup(
    optimizer: Any, num_warmup_steps: int, num_training_steps: int, num_cycles: int = 1, last_epoch: int = -1
) -> Schedule:
    """Warmup, then ``num_cycles`` cosine decays each restarting at 1; 0 from ``num_training_steps`` on."""
    w, T = _counts(num_warmup_steps, num_training_steps)
    return Schedule(
        functools.partial(
            cosine_hard_restarts_lambda,
            num_warmup_steps=w,
            num_training_steps=T,
            num_cycles=_cycles(num_cycles),
        ),
        optimizer,
        last_epoch,
        "cosine_with_restarts",
    )


@_native_aware
def get_polynomial_decay_schedule_with_warmup(
    optimizer: Any,
    num_warmup_steps: int,
    num_training_steps: int,
    lr_end: float = 1e-7,
    power: float = 1.0,
    last_epoch: int = -1,
    *,
    lr_init: float | None = None,
) -> Schedule:
    """Warmup, then polynomial decay from ``lr_init`` (the optimizer's lr, or ``lr_init=`` without an
    optimizer) to ``lr_end`` at ``num_training_steps``, then ``lr_end``."""
    w, T = _counts(num_warmup_steps, num_training_steps)
    if lr_init is None:
        lr_init = _initial_lr(optimizer)
    if lr_init is None:
        raise ValueError(
            "get_polynomial_decay_schedule_with_warmup needs the initial lr: pass an optimizer "
            "with a numeric lr or lr_init="
        )
    lr_init, lr_end = check_number("lr_init", lr_init), check_number("lr_end", lr_end)
    if not lr_init > lr_end:
        raise ValueError(f"lr_end ({lr_end}) must be smaller than initial lr ({lr_init})")
    return Schedule(
        functools.partial(
            polynomial_decay_lambda,
            num_warmup_steps=w,
            num_training_steps=T,
            lr_end=lr_end,
            power=_positive("power", power),
            lr_init=lr_init,
        ),
        optimizer,
        last_epoch,
        "polynomial",
    )


@_native_aware
def get_inverse_sqrt_schedule(
    optimizer: Any, num_warmup_steps: int, timescale: int | None = None, last_epoch: int = -1
) -> Schedule:
    """Warmup, then ``1 / sqrt((s + timescale - w) / timescale)``; ``timescale`` defaults to ``w or 10000``."""
    w = _count("num_warmup_steps", num_warmup_steps)
    if timescale is None:
        timescale = w or 10_000
    if not check_number("timescale", timescale) > 0:
        raise ValueError(f"timescale must be > 0, got {timescale}")
    return Schedule(
        functools.partial(inverse_sqrt_lambda, num_warmup_steps=w, timescale=float(timescale)),
        optimizer,
        last_epoch,
        "inverse_sqrt",
    )


@_native_aware
def get_cosine_with_min_lr_schedule_with_warmup(
    optimizer: Any,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
    min_lr: float | None = None,
    min_lr_rate: float | None = None,
    *,
    lr_init: float | None = None,
) -> Schedule:
    """Warmup, then a cosine from 1 to ``min_lr_rate`` (or ``min_lr / lr_init``)."""
    w, T = _counts(num_warmup_steps, num_training_steps)
    if min_lr is not None and min_lr_rate is not None:
        raise ValueError("Only one of min_lr or min_lr_rate should be set")
    if min_lr is not None:
        lr0 = lr_init if lr_init is not None else _initial_lr(optimizer)
        if lr0 is None:
            raise ValueError(
                "min_lr needs the initial lr: pass an optimizer with a numeric lr or lr_init=, "
                "or set min_lr_rate instead"
            )
        min_lr_rate = check_number("min_lr", min_lr) / check_number("lr_init", lr0)
    elif min_lr_rate is None:
        raise ValueError("One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs`")
    return Schedule(
        functools.partial(
            cosine_lambda,
            num_warmup_steps=w,
            num_training_steps=T,
            num_cycles=_cycles(num_cycles),
            min_lr_rate=_ratio("min_lr_rate", min_lr_rate),
        ),
        optimizer,
        last_epoch,
        "cosine_with_min_lr",
    )


WSD_TYPES = ("linear", "cosine", "1-sqrt")


@_native_aware
def get_wsd_schedule(
    optimizer: Any,
    num_warmup_steps: int,
    num_decay_steps: int,
    num_training_steps: int | None = None,
    num_stable_steps: int | None = None,
    warmup_type: str = "linear",
    decay_type: str = "cosine",
    min_lr_ratio: float = 0,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
) -> Schedule:
    """Warmup-stable-decay (see ``wsd_lambda``). The stable phase is ``num_stable_steps``, or
    ``num_training_steps - num_warmup_steps - num_decay_steps``."""
    w, d = _count("num_warmup_steps", num_warmup_steps), _count("num_decay_steps", num_decay_steps)
    if num_training_steps is None and num_stable_steps is None:
        raise ValueError("Either num_training_steps or num_stable_steps must be specified.")
    if num_training_steps is not None and num_stable_steps is not None:
        warnings.warn(
            "Both num_training_steps and num_stable_steps are specified. num_stable_steps will be used.",
            stacklevel=2,
        )
    if warmup_type not in WSD_TYPES:
        raise ValueError(f"Unknown warmup type: {warmup_type}, expected 'linear', 'cosine' or '1-sqrt'")
    if decay_type not in WSD_TYPES:
        raise ValueError(f"Unknown decay type: {decay_type}, expected 'linear', 'cosine' or '1-sqrt'")
    if num_stable_steps is None:
        num_stable_steps = _count("num_training_steps", num_training_steps) - w - d
        if num_stable_steps < 0:
            raise ValueError(
                f"num_training_steps ({num_training_steps}) is smaller than num_warmup_steps + "
                f"num_decay_steps ({w + d})"
            )
    st = _count("num_stable_steps", num_stable_steps)
    return Schedule(
        functools.partial(
            wsd_lambda,
            num_warmup_steps=w,
            num_stable_steps=st,
            num_decay_steps=d,
            warmup_type=warmup_type,
            decay_type=decay_type,
            min_lr_ratio=_ratio("min_lr_ratio", min_lr_ratio),
            num_cycles=_cycles(num_cycles),
        ),
        optimizer,
        last_epoch,
        "warmup_stable_decay",
    )


class SchedulerType(str, enum.Enum):
    """Scheduler names for :func:`get_scheduler` (Transformers' values; formats as the bare value)."""

    LINEAR = "linear"
    COSINE = "cosine"
    COSINE_WITH_RESTARTS = "cosine_with_restarts"
    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"
    INVERSE_SQRT = "inverse_sqrt"
    REDUCE_ON_PLATEAU = "reduce_lr_on_plateau"
    COSINE_WITH_MIN_LR = "cosine_with_min_lr"
    WARMUP_STABLE_DECAY = "warmup_stable_decay"

    @classmethod
    def _missing_(cls, value: object) -> Any:
        raise ValueError(
            f"{value} is not a valid {cls.__name__}, please select one of "
            f"{list(cls._value2member_map_.keys())}"
        )

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


TYPE_TO_SCHEDULER_FUNCTION: dict[SchedulerType, Callable[..., Schedule]] = {
    SchedulerType.LINEAR: get_linear_schedule_with_warmup,
    SchedulerType.COSINE: get_cosine_schedule_with_warmup,
    SchedulerType.COSINE_WITH_RESTARTS: get_cosine_with_hard_restarts_schedule_with_warmup,
    SchedulerType.POLYNOMIAL: get_polynomial_decay_schedule_with_warmup,
    SchedulerType.CONSTANT: get_constant_schedule,
    SchedulerType.CONSTANT_WITH_WARMUP: get_constant_schedule_with_warmup,
    SchedulerType.INVERSE_SQRT: get_inverse_sqrt_schedule,
    SchedulerType.COSINE_WITH_MIN_LR: get_cosine_with_min_lr_schedule_with_warmup,
    SchedulerType.WARMUP_STABLE_DECAY: get_wsd_schedule,
}


def get_scheduler(
    name: str | SchedulerType,
    optimizer: Any = None,
    num_warmup_steps: int | None = None,
    num_training_steps: int | None = None,
    scheduler_specific_kwargs: dict | None = None,
) -> Schedule:
    """Any schedule by name, with Transformers' argument rules:

    ``constant`` takes the optimizer only; every other one needs ``num_warmup_steps``;
    ``constant_with_warmup`` and ``inverse_sqrt`` stop there (``inverse_sqrt`` also takes the specific
    kwargs); ``warmup_stable_decay`` takes ``num_training_steps`` as given (possibly None); the rest
    need ``num_training_steps``. ``scheduler_specific_kwargs`` go to the schedule function.
    """
    name = SchedulerType(name)
    kwargs = dict(scheduler_specific_kwargs or {})
    if name == SchedulerType.REDUCE_ON_PLATEAU:
        native = native_scheduler("plateau", optimizer, kwargs)
        if native is not None:
            return native
        raise ValueError(
            "reduce_lr_on_plateau depends on metric values, not on the step, so it is not a pure "
            "schedule; use torch.optim.lr_scheduler.ReduceLROnPlateau on the torch adapter"
        )
    fn = TYPE_TO_SCHEDULER_FUNCTION[name]
    if name == SchedulerType.CONSTANT:
        return fn(optimizer)
    if num_warmup_steps is None:
        raise ValueError(f"{name} requires `num_warmup_steps`, please provide that argument.")
    if name == SchedulerType.CONSTANT_WITH_WARMUP:
        return fn(optimizer, num_warmup_steps=num_warmup_steps)
    if name == SchedulerType.INVERSE_SQRT:
        return fn(optimizer, num_warmup_steps=num_warmup_steps, **kwargs)
    if name == SchedulerType.WARMUP_STABLE_DECAY:
        return fn(
            optimizer, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kwargs
        )
    if num_training_steps is None:
        raise ValueError(f"{name} requires `num_training_steps`, please provide that argument.")
    return fn(optimizer, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kwargs)


# ------------------------------------------------------------------ the TensorFlow side
class PolynomialDecay:
    """Keras ``PolynomialDecay``: with ``k = min(step, decay_steps)`` (or, with ``cycle``,
    ``decay_steps * max(1, ceil(step / decay_steps))`` as the horizon):
    ``(initial - end) * (1 - k / horizon) ** power + end``. Returns a learning rate (float64)."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str | None = None,
    ):
        self.initial_learning_rate = check_number("initial_learning_rate", initial_learning_rate)
        if not isinstance(decay_steps, numbers.Integral) or decay_steps <= 0:
            raise ValueError(f"decay_steps must be a positive int, got {decay_steps!r}")
        self.decay_steps = int(decay_steps)
        self.end_learning_rate = check_number("end_learning_rate", end_learning_rate)
        self.power = _positive("power", power)
        self.cycle = bool(cycle)
        self.name = name

    def __call__(self, step: Any) -> Any:
        xp, s, plain = _steps(step)
        d = float(self.decay_steps)
        if self.cycle:
            horizon = d * xp.maximum(xp.ceil(s / d), 1.0)
            k = s
        else:
            horizon = d
            k = xp.minimum(s, d)
        frac = xp.maximum(1.0 - k / horizon, 0.0)
        lr = (self.initial_learning_rate - self.end_learning_rate) * xp.pow(
            frac, self.power
        ) + self.end_learning_rate
        return _out(lr, plain)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class WarmUp:
    """TF ``WarmUp``: ``init_lr * (step / warmup_steps) ** power`` while ``step < warmup_steps``,
    then ``decay_schedule_fn(step - warmup_steps)``. Returns a learning rate (float64)."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_schedule_fn: Callable[[Any], Any],
        warmup_steps: int,
        power: float = 1.0,
        name: str | None = None,
    ):
        self.initial_learning_rate = check_number("initial_learning_rate", initial_learning_rate)
        if not callable(decay_schedule_fn):
            raise ValueError(f"decay_schedule_fn must be callable (step -> lr), got {decay_schedule_fn!r}")
        self.decay_schedule_fn = decay_schedule_fn
        self.warmup_steps = _count("warmup_steps", warmup_steps)
        self.power = _positive("power", power)
        self.name = name

    def __call__(self, step: Any) -> Any:
        xp, s, plain = _steps(step)
        frac = s / float(self.warmup_steps or 1)  # only used while step < warmup_steps
        warm = self.initial_learning_rate * xp.pow(xp.maximum(frac, 0.0), self.power)
        after = self.decay_schedule_fn(s - self.warmup_steps)
        after = xp.asarray(after, dtype=xp.float64)
        return _out(xp.where(s < self.warmup_steps, warm, after), plain)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_schedule_fn": self.decay_schedule_fn,
            "warmup_steps": self.warmup_steps,
            "power": self.power,
            "name": self.name,
        }


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
) -> tuple[Any, Any]:
    """TF ``create_optimizer``: ``(rule, lr_schedule)``.

    The schedule is ``PolynomialDecay(init_lr, num_train_steps - num_warmup_steps, init_lr * min_lr_ratio,
    power)``, wrapped in :class:`WarmUp` when ``num_warmup_steps`` is non-zero. The rule is an
    :class:`~tensorweave.frontends.optim.adamw.AdamW` whose lr is that schedule: with decay before the
    step and ``exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]`` when
    ``weight_decay_rate > 0`` (``AdamWeightDecay``), plain Adam otherwise.
    """
    from .adamw import AdamW

    lr_schedule: Any = PolynomialDecay(
        init_lr, num_train_steps - num_warmup_steps, init_lr * min_lr_ratio, power=power
    )
    if num_warmup_steps:
        lr_schedule = WarmUp(init_lr, lr_schedule, num_warmup_steps)
    if weight_decay_rate > 0.0:
        rule = AdamW(
            lr_schedule,
            (adam_beta1, adam_beta2),
            adam_epsilon,
            weight_decay_rate,
            True,
            True,
            weight_decay_order="before",
            include_in_weight_decay=include_in_weight_decay,
            exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"],
            clipnorm=adam_clipnorm,
            global_clipnorm=adam_global_clipnorm,
        )
    else:
        rule = AdamW(
            lr_schedule,
            (adam_beta1, adam_beta2),
            adam_epsilon,
            0.0,
            True,
            True,
            clipnorm=adam_clipnorm,
            global_clipnorm=adam_global_clipnorm,
        )
    return rule, lr_schedule


__all__ = [
    "Schedule",
    "SchedulerType",
    "get_scheduler",
    "get_constant_schedule",
    "get_constant_schedule_with_warmup",
    "get_linear_schedule_with_warmup",
    "get_cosine_schedule_with_warmup",
    "get_cosine_with_hard_restarts_schedule_with_warmup",
    "get_polynomial_decay_schedule_with_warmup",
    "get_inverse_sqrt_schedule",
    "get_cosine_with_min_lr_schedule_with_warmup",
    "get_wsd_schedule",
    "PolynomialDecay",
    "WarmUp",
    "create_optimizer",
    "TYPE_TO_SCHEDULER_FUNCTION",
]
