"""Optimizers written once: pure update rules, learning-rate schedules, gradient accumulation.

An update rule is ``update(params, grads, state, hyper) -> (params, state)`` with
``init(params) -> state``, written against ``xp``: it runs eagerly on numpy arrays and inside
``tensorweave.ir.trace`` (see spec/optim.md). Framework adapters (torch.optim, optax, Keras,
ONNX training steps) are built on these.
"""

from .accumulation import AccumulateSteps, GradientAccumulator, accumulate_steps
from .adafactor import Adafactor, AdafactorSchedule, get_adafactor_schedule
from .adamw import AdamW, AdamWeightDecay
from .base import TracedUpdate, UpdateRule, named_leaves, trace_update
from .nonfinite import SkipNonFinite, check_nonfinite_limit, skip_nonfinite
from .schedules import (
    PolynomialDecay,
    Schedule,
    SchedulerType,
    WarmUp,
    create_optimizer,
    get_constant_schedule,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_cosine_with_hard_restarts_schedule_with_warmup,
    get_cosine_with_min_lr_schedule_with_warmup,
    get_inverse_sqrt_schedule,
    get_linear_schedule_with_warmup,
    get_polynomial_decay_schedule_with_warmup,
    get_scheduler,
    get_wsd_schedule,
)

__all__ = [
    "AccumulateSteps",
    "GradientAccumulator",
    "accumulate_steps",
    "Adafactor",
    "AdafactorSchedule",
    "get_adafactor_schedule",
    "AdamW",
    "AdamWeightDecay",
    "SkipNonFinite",
    "skip_nonfinite",
    "check_nonfinite_limit",
    "TracedUpdate",
    "UpdateRule",
    "named_leaves",
    "trace_update",
    "PolynomialDecay",
    "Schedule",
    "SchedulerType",
    "WarmUp",
    "create_optimizer",
    "get_constant_schedule",
    "get_constant_schedule_with_warmup",
    "get_cosine_schedule_with_warmup",
    "get_cosine_with_hard_restarts_schedule_with_warmup",
    "get_cosine_with_min_lr_schedule_with_warmup",
    "get_inverse_sqrt_schedule",
    "get_linear_schedule_with_warmup",
    "get_polynomial_decay_schedule_with_warmup",
    "get_scheduler",
    "get_wsd_schedule",
]
