"""Validation before any work (spec/optim.md): per-step hyperparameters, every constructor argument
of AdamW and Adafactor, the schedules; and the non-finite-gradient guard ``skip_nonfinite`` (a rule
wrapper, so every adapter has it: eager / traced here, torch and optax below, Keras on its three
backends in tests/test_optim_idioms.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tensorweave.optim as two
from tensorweave.backends import lower

from conftest import require_backend

warnings.filterwarnings("ignore", category=FutureWarning)


def _adamw(**kw):
    return two.AdamW(**{"no_deprecation_warning": True, **kw})


PARAMS = {"w": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)}


def _grads(nan: bool = False) -> dict:
    g = {"w": np.full((2, 3), 0.5, np.float32), "b": np.full(3, -0.25, np.float32)}
    if nan:
        g["w"] = g["w"].copy()
        g["w"][0, 1] = np.nan
    return g


# ---------------------------------------------------------------------- per-step hyperparameters
@pytest.mark.parametrize("lr", [float("nan"), -1e-3, float("inf"), np.float64(-1.0)])
def test_bad_per_step_lr_is_rejected_before_work(lr):
    rule = _adamw(lr=1e-3)
    state = rule.init(PARAMS)
    with pytest.raises(ValueError, match=r"hyper\['lr'\] must be a finite number >= 0"):
        rule.update(PARAMS, _grads(), state, {"lr": lr})
    step = two.trace_update(rule, PARAMS)
    with pytest.raises(ValueError, match=r"hyper\['lr'\] must be a finite number >= 0"):
        step.flatten(PARAMS, _grads(), state, {"lr": lr})
    # an eager schedule returning a bad value is caught the same way
    bad = _adamw(lr=lambda s: -1.0)
    with pytest.raises(ValueError, match=r"hyper\['lr'\]"):
        bad.update(PARAMS, _grads(), bad.init(PARAMS))


def test_bad_group_lr_on_the_torch_adapter():
    require_backend("torch")
    import torch

    p = torch.nn.Parameter(torch.ones(3))
    opt = two.torch.AdamW([p], lr=1e-3, no_deprecation_warning=True)
    p.grad = torch.ones(3)
    opt.param_groups[0]["lr"] = float("nan")
    with pytest.raises(ValueError, match=r"hyper\['lr'\] must be a finite number >= 0, got nan"):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(3)) and len(opt.state[p]) == 0  # before any work


# ---------------------------------------------------------------------- constructors
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1.0}, r"Invalid learning rate: -1.0 - should be >= 0.0"),
        ({"lr": float("nan")}, r"lr must be a finite number"),
        ({"betas": (1.0, 0.9)}, r"Invalid beta parameter: 1.0"),
        ({"betas": (0.9,)}, r"betas must be a pair"),
        ({"eps": -1e-8}, r"Invalid epsilon value"),
        ({"weight_decay": -0.1}, r"weight_decay must be in \[0.0, inf\)"),
        ({"weight_decay": float("inf")}, r"weight_decay must be a finite number"),
        ({"correct_bias": "yes"}, r"correct_bias must be True or False"),
        ({"clipnorm": 0.0}, r"clipnorm must be > 0"),
        ({"clipnorm": 1.0, "global_clipnorm": 1.0}, r"Only one of `clipnorm` and `global_clipnorm`"),
        ({"weight_decay_order": "middle"}, r"weight_decay_order must be"),
        ({"exclude_from_weight_decay": ["("]}, r"invalid regex"),
    ],
)
def test_adamw_constructor_ranges(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _adamw(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1e-3, "relative_step": False}, r"Invalid learning rate: -0.001"),
        ({"lr": float("nan"), "relative_step": False}, r"lr must be a finite number"),
        ({"beta1": 1.5}, r"beta1 must be in \[0.0, 1.0\)"),
        ({"beta1": -0.1}, r"beta1 must be in \[0.0, 1.0\)"),
        ({"clip_threshold": -1.0}, r"clip_threshold must be in \(0.0, inf\)"),
        ({"clip_threshold": 0.0}, r"clip_threshold must be in \(0.0, inf\)"),
        ({"eps": (1e-30,)}, r"eps must be a pair of numbers"),
        ({"eps": 1e-30}, r"eps must be a pair of numbers"),
        ({"eps": (1e-30, -1e-3)}, r"eps\[1\] must be in \[0.0, inf\)"),
        ({"eps": (float("nan"), 1e-3)}, r"eps\[0\] must be a finite number"),
        ({"decay_rate": 0.5}, r"decay_rate must be in \(-inf, 0.0\]"),
        ({"weight_decay": -1.0}, r"weight_decay must be in \[0.0, inf\)"),
        ({"scale_parameter": 1}, r"scale_parameter must be True or False"),
        ({"relative_step": None}, r"relative_step must be True or False"),
        ({"lr": 1e-3}, r"Cannot combine manual `lr` and `relative_step=True` options"),
        ({"warmup_init": True, "relative_step": False, "lr": 1e-3}, r"`warmup_init=True` requires"),
    ],
)
def test_adafactor_constructor_ranges(kwargs, message):
    with pytest.raises(ValueError, match=message):
        two.Adafactor(**kwargs)


def test_adapters_validate_with_the_rule():
    require_backend("torch")
    import torch

    p = [torch.nn.Parameter(torch.ones(2, 2))]
    with pytest.raises(ValueError, match=r"beta1 must be in"):
        two.torch.Adafactor(p, beta1=1.5)
    with pytest.raises(ValueError, match=r"clip_threshold must be in"):
        two.torch.Adafactor(p, clip_threshold=-1.0)


# ---------------------------------------------------------------------- schedules
@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: two.get_linear_schedule_with_warmup(None, 10, 5),
            r"num_training_steps \(5\) must be >= num_warmup_steps \(10\)",
        ),
        (lambda: two.get_cosine_schedule_with_warmup(None, 10, 5), r"must be >= num_warmup_steps"),
        (
            lambda: two.get_cosine_schedule_with_warmup(None, 1, 5, num_cycles=-0.5),
            r"num_cycles must be >= 0",
        ),
        (
            lambda: two.get_cosine_with_hard_restarts_schedule_with_warmup(None, 1, 5, num_cycles=-1),
            r"num_cycles must be >= 0",
        ),
        (
            lambda: two.get_polynomial_decay_schedule_with_warmup(None, 1, 5, power=0.0, lr_init=1.0),
            r"power must be > 0",
        ),
        (
            lambda: two.get_polynomial_decay_schedule_with_warmup(None, 1, 5, power=-1.0, lr_init=1.0),
            r"power must be > 0",
        ),
        (
            lambda: two.get_cosine_with_min_lr_schedule_with_warmup(None, 1, 5, min_lr_rate=1.5),
            r"min_lr_rate must be in \[0, 1\]",
        ),
        (
            lambda: two.get_wsd_schedule(None, 1, 2, num_training_steps=5, min_lr_ratio=-0.1),
            r"min_lr_ratio must be in \[0, 1\]",
        ),
        (
            lambda: two.get_linear_schedule_with_warmup(None, -1, 5),
            r"num_warmup_steps must be a non-negative int",
        ),
        (
            lambda: two.get_linear_schedule_with_warmup(None, 1.5, 5),
            r"num_warmup_steps must be a non-negative int",
        ),
        (lambda: two.get_inverse_sqrt_schedule(None, 2, timescale=0), r"timescale must be > 0"),
        (lambda: two.PolynomialDecay(1e-3, 10, power=0.0), r"power must be > 0"),
        (lambda: two.WarmUp(1e-3, lambda s: s, 2, power=-2.0), r"power must be > 0"),
        (lambda: two.PolynomialDecay(1e-3, 0), r"decay_steps must be a positive int"),
    ],
)
def test_schedule_arguments_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ---------------------------------------------------------------------- skip_nonfinite
def test_default_math_lets_a_nan_gradient_through():
    rule = _adamw(lr=1e-2)
    p, s = rule.update(PARAMS, _grads(nan=True), rule.init(PARAMS))
    assert np.isnan(p["w"][0, 1]) and np.isnan(s["exp_avg"]["w"][0, 1])  # Hugging Face's behaviour


def test_skip_nonfinite_eager_semantics():
    inner = _adamw(lr=1e-2, clipnorm=1.0)
    rule = two.skip_nonfinite(inner)
    state = rule.init(PARAMS)
    p, s = rule.update(PARAMS, _grads(nan=True), state)
    for k in PARAMS:
        np.testing.assert_array_equal(p[k], PARAMS[k])  # skipped: no NaN anywhere
        np.testing.assert_array_equal(s["inner"]["exp_avg"][k], state["inner"]["exp_avg"][k])
    assert (
        int(s["step"]),
        int(s["notfinite_count"]),
        int(s["total_notfinite"]),
        int(s["inner"]["step"]),
    ) == (1, 1, 1, 0)
    p, s = rule.update(p, _grads(), s)  # a finite step: the same as the bare rule's first step
    ref_p, _ = inner.update(PARAMS, _grads(), inner.init(PARAMS))
    for k in PARAMS:
        np.testing.assert_array_equal(p[k], ref_p[k])
    assert (int(s["notfinite_count"]), int(s["total_notfinite"]), int(s["inner"]["step"])) == (0, 1, 1)
    g_inf = _grads()
    g_inf["b"] = g_inf["b"].copy()
    g_inf["b"][0] = np.inf
    _, s = rule.update(p, g_inf, s)
    assert int(s["notfinite_count"]) == 1


def test_skip_nonfinite_max_consecutive():
    rule = two.skip_nonfinite(_adamw(lr=1e-2), max_consecutive=2)
    p, s = PARAMS, rule.init(PARAMS)
    for _ in range(2):
        p, s = rule.update(p, _grads(nan=True), s)
    assert not np.isnan(p["w"]).any() and int(s["notfinite_count"]) == 2
    p, s = rule.update(p, _grads(nan=True), s)  # the limit reached: applied (optax semantics)
    assert np.isnan(p["w"][0, 1]) and int(s["inner"]["step"]) == 1
    strict = two.skip_nonfinite(_adamw(lr=1e-2), max_consecutive=1, on_limit="raise")
    p, s = strict.update(PARAMS, _grads(nan=True), strict.init(PARAMS))
    with pytest.raises(FloatingPointError, match=r"2 consecutive steps with non-finite gradients"):
        strict.update(p, _grads(nan=True), s)
    with pytest.raises(ValueError, match=r"max_consecutive must be"):
        two.skip_nonfinite(_adamw(), max_consecutive=-1)
    with pytest.raises(ValueError, match=r"on_limit must be"):
        two.skip_nonfinite(_adamw(), on_limit="ignore")
    with pytest.raises(ValueError, match=r"wraps an update rule"):
        two.skip_nonfinite(object())


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch", "tensorflow", "onnx"])
def test_skip_nonfinite_traced_equals_eager(backend):
    if backend != "numpy":
        require_backend(backend)
    rule = two.skip_nonfinite(two.Adafactor(beta1=0.9), max_consecutive=3)
    step = two.trace_update(rule, PARAMS)
    program = lower(step.graph, backend)
    p_e, s_e = PARAMS, rule.init(PARAMS)
    p_t, s_t = PARAMS, rule.init(PARAMS)
    for nan in (False, True, False, True, True):
        p_e, s_e = rule.update(p_e, _grads(nan), s_e)
        p_t, s_t = step.run(program, p_t, _grads(nan), s_t)
    for k in PARAMS:
        np.testing.assert_allclose(p_t[k], p_e[k], rtol=1e-6)
        assert not np.isnan(p_t[k]).any()
    assert int(s_t["total_notfinite"]) == 3 and int(s_t["notfinite_count"]) == 2


def test_skip_nonfinite_on_the_torch_adapter():
    require_backend("torch")
    import torch

    w = torch.nn.Parameter(torch.ones(2, 3))
    opt = two.torch.TorchOptimizer([w], two.skip_nonfinite(_adamw(lr=1e-2, clipnorm=1.0)))
    w.grad = torch.tensor(_grads(nan=True)["w"])
    opt.step()
    assert torch.equal(w.detach(), torch.ones(2, 3))
    assert not torch.isnan(opt.state[w]["inner/exp_avg"]).any()
    assert int(opt.state[w]["notfinite_count"]) == 1
    w.grad = torch.full((2, 3), 0.5)
    opt.step()
    assert not torch.isnan(w).any() and float(w.detach().max()) < 1.0
    strict = two.torch.TorchOptimizer(
        [w], two.skip_nonfinite(_adamw(lr=1e-2), max_consecutive=0, on_limit="raise")
    )
    w.grad = torch.tensor(_grads(nan=True)["w"])
    with pytest.raises(FloatingPointError, match=r"non-finite gradients"):
        strict.step()
    assert not torch.isnan(w).any()


def test_skip_nonfinite_on_optax_under_jit():
    require_backend("jax")
    optax = pytest.importorskip("optax")
    import jax
    import jax.numpy as jnp

    tx = two.optax.transformation(two.skip_nonfinite(_adamw(lr=1e-2, global_clipnorm=1.0)))
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    state = tx.init(params)

    @jax.jit
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    p, state = step(params, state, {k: jnp.asarray(v) for k, v in _grads(nan=True).items()})
    assert all(not bool(jnp.isnan(v).any()) for v in jax.tree.leaves(p))
    assert int(state["notfinite_count"]) == 1
    p, state = step(p, state, {k: jnp.asarray(v) for k, v in _grads().items()})
    assert all(not bool(jnp.isnan(v).any()) for v in jax.tree.leaves(p)) and float(p["w"].max()) < 1.0
    assert not math.isnan(float(state["inner"]["exp_avg"]["w"][0, 1]))
