"""Learning-rate schedules vs independent Python transcriptions: eager (ints and arrays) and traced.

Each ``ref_*`` below restates a formula of spec/optim.md with Python floats and ``math``; none
calls tensorweave. Values are float64; the tolerance is the float64 row of spec/backends.md.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.backends import lower
from tensorweave.frontends.optim import (
    AdamW,
    PolynomialDecay,
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
from tensorweave.ir import DType
from tensorweave.parity import TOLERANCES

RTOL, ATOL = TOLERANCES[DType.float64]
STEPS = list(range(0, 26))
W, T = 4, 20


class FakeOptimizer:
    """Anything with ``defaults["lr"]`` (torch optimizers and our rules) gives the initial lr."""

    defaults = {"lr": 0.1}


# ------------------------------------------------------------------ transcriptions
def warm(s, w):
    return s / max(1, w)


def ref_constant(s):
    return 1.0


def ref_constant_warmup(s, w):
    return warm(s, w) if s < w else 1.0


def ref_linear(s, w, t):
    return warm(s, w) if s < w else max(0.0, (t - s) / max(1, t - w))


def ref_cosine(s, w, t, cycles=0.5, min_rate=0.0):
    if s < w:
        return warm(s, w)
    p = (s - w) / max(1, t - w)
    f = 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * p))
    return max(0.0, f * (1 - min_rate) + min_rate)


def ref_hard_restarts(s, w, t, cycles=1):
    if s < w:
        return warm(s, w)
    p = (s - w) / max(1, t - w)
    if p >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * p) % 1.0))))


def ref_polynomial(s, w, t, lr_init, lr_end=1e-7, power=1.0):
    if s < w:
        return warm(s, w)
    if s > t:
        return lr_end / lr_init
    remaining = 1 - (s - w) / (t - w)
    return ((lr_init - lr_end) * remaining**power + lr_end) / lr_init


def ref_inverse_sqrt(s, w, timescale=None):
    timescale = timescale if timescale is not None else (w or 10000)
    if s < w:
        return warm(s, w)
    return 1.0 / math.sqrt((s + timescale - w) / timescale)


def ref_wsd(s, w, stable, decay, warmup_type="linear", decay_type="cosine", r=0.0, cycles=0.5):
    if s < w:
        x = s / max(1, w)
        f = {"linear": x, "cosine": 0.5 * (1.0 - math.cos(math.pi * x)), "1-sqrt": 1.0 - math.sqrt(1.0 - x)}[
            warmup_type
        ]
        return max(0.0, f * (1.0 - r) + r)
    if s < w + stable:
        return 1.0
    if s < w + stable + decay:
        q = (s - w - stable) / max(1, decay)
        f = {
            "linear": 1.0 - q,
            "cosine": 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * q)),
            "1-sqrt": 1.0 - math.sqrt(q),
        }[decay_type]
        return max(0.0, f * (1.0 - r) + r)
    return r


CASES = {
    "constant": (lambda: get_constant_schedule(None), ref_constant),
    "constant_with_warmup": (
        lambda: get_constant_schedule_with_warmup(None, W),
        lambda s: ref_constant_warmup(s, W),
    ),
    "constant_with_warmup_0": (
        lambda: get_constant_schedule_with_warmup(None, 0),
        lambda s: ref_constant_warmup(s, 0),
    ),
    "linear": (lambda: get_linear_schedule_with_warmup(None, W, T), lambda s: ref_linear(s, W, T)),
    "cosine": (lambda: get_cosine_schedule_with_warmup(None, W, T), lambda s: ref_cosine(s, W, T)),
    "cosine_cycles": (
        lambda: get_cosine_schedule_with_warmup(None, W, T, num_cycles=1.7),
        lambda s: ref_cosine(s, W, T, 1.7),
    ),
    "hard_restarts": (
        lambda: get_cosine_with_hard_restarts_schedule_with_warmup(None, W, T, num_cycles=3),
        lambda s: ref_hard_restarts(s, W, T, 3),
    ),
    "polynomial": (
        lambda: get_polynomial_decay_schedule_with_warmup(FakeOptimizer(), W, T, lr_end=1e-3, power=2.0),
        lambda s: ref_polynomial(s, W, T, 0.1, 1e-3, 2.0),
    ),
    "polynomial_lr_init": (
        lambda: get_polynomial_decay_schedule_with_warmup(None, 0, T, power=0.5, lr_init=0.5),
        lambda s: ref_polynomial(s, 0, T, 0.5, 1e-7, 0.5),
    ),
    "inverse_sqrt": (lambda: get_inverse_sqrt_schedule(None, W), lambda s: ref_inverse_sqrt(s, W)),
    "inverse_sqrt_timescale": (
        lambda: get_inverse_sqrt_schedule(None, W, timescale=7),
        lambda s: ref_inverse_sqrt(s, W, 7),
    ),
    "inverse_sqrt_default": (lambda: get_inverse_sqrt_schedule(None, 0), lambda s: ref_inverse_sqrt(s, 0)),
    "cosine_min_lr_rate": (
        lambda: get_cosine_with_min_lr_schedule_with_warmup(None, W, T, min_lr_rate=0.1),
        lambda s: ref_cosine(s, W, T, 0.5, 0.1),
    ),
    "cosine_min_lr": (
        lambda: get_cosine_with_min_lr_schedule_with_warmup(FakeOptimizer(), W, T, min_lr=0.01),
        lambda s: ref_cosine(s, W, T, 0.5, 0.01 / 0.1),
    ),
    "wsd": (
        lambda: get_wsd_schedule(None, W, 6, num_training_steps=T),
        lambda s: ref_wsd(s, W, T - W - 6, 6),
    ),
}
for _wt in ("linear", "cosine", "1-sqrt"):
    for _dt in ("linear", "cosine", "1-sqrt"):
        CASES[f"wsd_{_wt}_{_dt}"] = (
            (
                lambda wt=_wt, dt=_dt: get_wsd_schedule(
                    None,
                    W,
                    5,
                    num_stable_steps=7,
                    warmup_type=wt,
                    decay_type=dt,
                    min_lr_ratio=0.1,
                    num_cycles=0.4,
                )
            ),
            (lambda s, wt=_wt, dt=_dt: ref_wsd(s, W, 7, 5, wt, dt, 0.1, 0.4)),
        )


def _expected(ref) -> np.ndarray:
    return np.array([ref(s) for s in STEPS], dtype=np.float64)


# ------------------------------------------------------------------ (c) eager and traced
@pytest.mark.parametrize("case", list(CASES))
def test_schedule_eager_matches_transcription(case):
    make, ref = CASES[case]
    sched = make()
    expected = _expected(ref)
    scalars = [sched.lr_lambda(s) for s in STEPS]
    assert all(isinstance(v, float) for v in scalars)  # Python in, Python out (LambdaLR)
    np.testing.assert_allclose(scalars, expected, rtol=RTOL, atol=ATOL)
    vector = sched.lr_lambda(np.asarray(STEPS, dtype=np.int64))
    assert vector.dtype == np.float64 and vector.shape == (len(STEPS),)
    np.testing.assert_allclose(vector, expected, rtol=RTOL, atol=ATOL)


_GRAPHS: dict = {}


def _graph(case):
    if case not in _GRAPHS:
        sched = CASES[case][0]()
        _GRAPHS[case] = tw.trace(lambda step: sched.lr_lambda(step), ((len(STEPS),), "int64"))
    return _GRAPHS[case]


@pytest.mark.parametrize("case", list(CASES))
def test_schedule_traced_matches_transcription(backend, case):
    graph = _graph(case)
    out = lower(graph, backend)(np.asarray(STEPS, dtype=np.int64))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, _expected(CASES[case][1]), rtol=RTOL, atol=ATOL)


def test_schedule_object_scales_by_optimizer_lr_and_pickles():
    rule = AdamW(lr=0.02, no_deprecation_warning=True)
    sched = get_linear_schedule_with_warmup(rule, W, T)
    assert sched.base_lr == 0.02
    np.testing.assert_allclose(
        [sched(s) for s in STEPS], 0.02 * _expected(lambda s: ref_linear(s, W, T)), rtol=RTOL, atol=ATOL
    )
    assert get_linear_schedule_with_warmup(None, W, T)(5) == ref_linear(
        5, W, T
    )  # no optimizer: the multiplier
    again = pickle.loads(pickle.dumps(get_cosine_schedule_with_warmup(None, W, T)))  # noqa: S301 - our own object
    assert again.lr_lambda(7) == get_cosine_schedule_with_warmup(None, W, T).lr_lambda(7)


@pytest.mark.parametrize(
    "name,kwargs,case",
    [
        ("linear", {}, "linear"),
        ("cosine", {}, "cosine"),
        ("cosine_with_restarts", {"num_cycles": 3}, "hard_restarts"),
        ("polynomial", {"lr_end": 1e-3, "power": 2.0}, "polynomial"),
        ("constant", {}, "constant"),
        ("constant_with_warmup", {}, "constant_with_warmup"),
        ("inverse_sqrt", {"timescale": 7}, "inverse_sqrt_timescale"),
        ("cosine_with_min_lr", {"min_lr": 0.01}, "cosine_min_lr"),
        ("warmup_stable_decay", {"num_decay_steps": 6}, "wsd"),
    ],
)
def test_get_scheduler_dispatch(name, kwargs, case):
    sched = get_scheduler(
        name, FakeOptimizer(), num_warmup_steps=W, num_training_steps=T, scheduler_specific_kwargs=kwargs
    )
    np.testing.assert_allclose(
        sched.lr_lambda(np.asarray(STEPS)), _expected(CASES[case][1]), rtol=RTOL, atol=ATOL
    )
    assert get_scheduler(SchedulerType(name), FakeOptimizer(), W, T, kwargs).lr_lambda(5) == sched.lr_lambda(
        5
    )


# ------------------------------------------------------------------ (d) errors
def test_scheduler_type_invalid_name():
    values = [t.value for t in SchedulerType]
    assert values[:8] == [
        "linear",
        "cosine",
        "cosine_with_restarts",
        "polynomial",
        "constant",
        "constant_with_warmup",
        "inverse_sqrt",
        "reduce_lr_on_plateau",
    ]
    with pytest.raises(
        ValueError, match=re.escape(f"linearr is not a valid SchedulerType, please select one of {values}")
    ):
        get_scheduler("linearr")


@pytest.mark.parametrize(
    "name", ["linear", "cosine", "constant_with_warmup", "inverse_sqrt", "polynomial", "warmup_stable_decay"]
)
def test_get_scheduler_requires_warmup(name):
    with pytest.raises(
        ValueError, match=re.escape(f"{name} requires `num_warmup_steps`, please provide that argument.")
    ):
        get_scheduler(name, FakeOptimizer(), num_training_steps=T)


@pytest.mark.parametrize(
    "name", ["linear", "cosine", "cosine_with_restarts", "polynomial", "cosine_with_min_lr"]
)
def test_get_scheduler_requires_training_steps(name):
    with pytest.raises(
        ValueError, match=re.escape(f"{name} requires `num_training_steps`, please provide that argument.")
    ):
        get_scheduler(name, FakeOptimizer(), num_warmup_steps=W)


def test_get_scheduler_argument_rules():
    # constant takes the optimizer only; constant_with_warmup and inverse_sqrt need no T
    assert get_scheduler("constant").lr_lambda(3) == 1.0
    assert get_scheduler("constant_with_warmup", None, num_warmup_steps=W).lr_lambda(
        1
    ) == ref_constant_warmup(1, W)
    assert get_scheduler("inverse_sqrt", None, num_warmup_steps=W).lr_lambda(9) == pytest.approx(
        ref_inverse_sqrt(9, W), rel=RTOL
    )
    with pytest.raises(TypeError):  # mismatched scheduler-specific kwargs are the function's TypeError
        get_scheduler("linear", None, W, T, {"num_cycles": 2})
    with pytest.raises(ValueError, match="reduce_lr_on_plateau depends on metric values"):
        get_scheduler("reduce_lr_on_plateau", None)


def test_schedule_validation_errors():
    with pytest.raises(ValueError, match=re.escape("lr_end (0.2) must be smaller than initial lr (0.1)")):
        get_polynomial_decay_schedule_with_warmup(FakeOptimizer(), W, T, lr_end=0.2)
    with pytest.raises(ValueError, match=re.escape("lr_end (0.1) must be smaller than initial lr (0.1)")):
        get_polynomial_decay_schedule_with_warmup(FakeOptimizer(), W, T, lr_end=0.1)
    with pytest.raises(ValueError, match="needs the initial lr"):
        get_polynomial_decay_schedule_with_warmup(None, W, T)
    with pytest.raises(ValueError, match="Only one of min_lr or min_lr_rate should be set"):
        get_cosine_with_min_lr_schedule_with_warmup(FakeOptimizer(), W, T, min_lr=0.01, min_lr_rate=0.1)
    with pytest.raises(
        ValueError,
        match=re.escape("One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs`"),
    ):
        get_cosine_with_min_lr_schedule_with_warmup(FakeOptimizer(), W, T)
    with pytest.raises(ValueError, match="Either num_training_steps or num_stable_steps must be specified."):
        get_wsd_schedule(None, W, 5)
    with pytest.raises(
        ValueError, match=re.escape("Unknown warmup type: exp, expected 'linear', 'cosine' or '1-sqrt'")
    ):
        get_wsd_schedule(None, W, 5, num_stable_steps=3, warmup_type="exp")
    with pytest.raises(
        ValueError, match=re.escape("Unknown decay type: exp, expected 'linear', 'cosine' or '1-sqrt'")
    ):
        get_wsd_schedule(None, W, 5, num_stable_steps=3, decay_type="exp")
    with pytest.warns(UserWarning, match="num_stable_steps will be used"):
        get_wsd_schedule(None, W, 5, num_training_steps=T, num_stable_steps=3)
    with pytest.raises(ValueError, match="num_warmup_steps must be a non-negative int"):
        get_linear_schedule_with_warmup(None, -1, T)


# ------------------------------------------------------------------ the TensorFlow side
def ref_keras_polynomial(s, init, steps, end, power):
    k = min(s, steps)
    return (init - end) * (1 - k / steps) ** power + end


def ref_warmup(s, init, decay, w, power=1.0):
    return init * (s / w) ** power if s < w else decay(s - w)


def test_warmup_and_polynomial_decay():
    decay = PolynomialDecay(0.01, 15, end_learning_rate=0.001, power=2.0)
    sched = WarmUp(0.01, decay, 5, power=0.5)
    expected = [
        ref_warmup(s, 0.01, lambda x: ref_keras_polynomial(x, 0.01, 15, 0.001, 2.0), 5, 0.5) for s in STEPS
    ]
    np.testing.assert_allclose([sched(s) for s in STEPS], expected, rtol=RTOL, atol=ATOL)
    out = lower(tw.trace(lambda step: sched(step), ((len(STEPS),), "int64")), "numpy")(np.asarray(STEPS))
    np.testing.assert_allclose(out, expected, rtol=RTOL, atol=ATOL)
    assert sched.get_config() == {
        "initial_learning_rate": 0.01,
        "decay_schedule_fn": decay,
        "warmup_steps": 5,
        "power": 0.5,
        "name": None,
    }


def test_polynomial_decay_cycle():
    sched = PolynomialDecay(1.0, 4, end_learning_rate=0.0, power=1.0, cycle=True)
    horizon = [4 * max(1, math.ceil(s / 4)) for s in range(10)]
    np.testing.assert_allclose(
        [sched(s) for s in range(10)], [1 - s / h for s, h in zip(range(10), horizon)], rtol=RTOL, atol=ATOL
    )


def test_create_optimizer():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning from the AdamW it builds
        rule, sched = create_optimizer(
            1e-3, 30, 5, min_lr_ratio=0.1, weight_decay_rate=0.01, include_in_weight_decay=["bias_keep"]
        )
    expected = [ref_warmup(s, 1e-3, lambda x: ref_keras_polynomial(x, 1e-3, 25, 1e-4, 1.0), 5) for s in STEPS]
    np.testing.assert_allclose([sched(s) for s in STEPS], expected, rtol=RTOL, atol=ATOL)
    assert isinstance(sched, WarmUp)
    assert rule.weight_decay_order == "before" and rule.eps == 1e-8 and rule.lr is sched
    assert not rule._do_use_weight_decay("encoder/LayerNorm/gamma")
    assert not rule._do_use_weight_decay("dense/bias")
    assert rule._do_use_weight_decay("dense/kernel") and rule._do_use_weight_decay("bias_keep")
    plain, plain_sched = create_optimizer(1e-3, 30, 0)
    assert isinstance(plain_sched, PolynomialDecay) and plain.weight_decay == 0.0
