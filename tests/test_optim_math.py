"""The pure optimizer math (AdamW, Adafactor, accumulation) against independent float64 transcriptions.

The reference functions below are written from the formulas in the Transformers 4.37 behaviour
notes (spec/optim.md), with Python floats and plain numpy; they do not call tensorweave.
Trajectories are compared in float64 with the float64 row of the tolerance table
(spec/backends.md), which is tighter than the 1e-6 the task asks for.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from tensorweave.backends import lower
from tensorweave.frontends.optim import (
    AccumulateSteps,
    Adafactor,
    AdafactorSchedule,
    AdamW,
    AdamWeightDecay,
    GradientAccumulator,
    get_adafactor_schedule,
    get_linear_schedule_with_warmup,
    trace_update,
)
from tensorweave.ir import DType
from tensorweave.parity import TOLERANCES

RTOL64, ATOL64 = TOLERANCES[DType.float64]
RTOL32, ATOL32 = TOLERANCES[DType.float32]
STEPS = 100
SHAPES = {"dense/kernel": (4, 3), "dense/bias": (3,), "LayerNorm/weight": (3,), "conv": (2, 3, 2)}


def _params(seed: int = 0, dtype=np.float64) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def _grads(n: int = STEPS, seed: int = 1, dtype=np.float64) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {k: (rng.standard_normal(s) * (0.5 + i % 3)).astype(dtype) for k, s in SHAPES.items()}
        for i in range(n)
    ]


def linear_warmup_lrs(lr: float, w: int, total: int, n: int) -> list[float]:
    """Transformers' linear schedule (multiplier) times lr, written out for the test."""
    out = []
    for s in range(n):
        mult = s / max(1, w) if s < w else max(0.0, (total - s) / max(1, total - w))
        out.append(lr * mult)
    return out


# ------------------------------------------------------------------ independent transcriptions
def ref_adamw(
    params,
    grads_seq,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-6,
    weight_decay=0.0,
    correct_bias=True,
    order="after",
    decays=None,
    lrs=None,
):
    """Transformers 4.37 PyTorch AdamW (order="after"), or TF AdamWeightDecay's decay order ("before")."""
    b1, b2 = betas
    p = {k: v.astype(np.float64).copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    traj = []
    for t, g in enumerate(grads_seq, start=1):
        lr_t = lrs[t - 1] if lrs is not None else lr
        size = lr_t * math.sqrt(1.0 - b2**t) / (1.0 - b1**t) if correct_bias else lr_t
        for k in p:
            m[k] = b1 * m[k] + (1.0 - b1) * g[k]
            v[k] = b2 * v[k] + (1.0 - b2) * g[k] ** 2
            decay = weight_decay > 0 and (decays is None or decays[k])
            if decay and order == "before":
                p[k] = p[k] - lr_t * weight_decay * p[k]
            p[k] = p[k] - size * m[k] / (np.sqrt(v[k]) + eps)
            if decay and order == "after":
                p[k] = p[k] - lr_t * weight_decay * p[k]
        traj.append({k: x.copy() for k, x in p.items()})
    return traj


def _rms(x):
    return float(np.sqrt(np.sum(x * x)) / math.sqrt(x.size))


def ref_adafactor(
    params,
    grads_seq,
    lr=None,
    eps=(1e-30, 1e-3),
    clip_threshold=1.0,
    decay_rate=-0.8,
    beta1=None,
    weight_decay=0.0,
    scale_parameter=True,
    relative_step=True,
    warmup_init=False,
    lrs=None,
):
    """Transformers 4.37 PyTorch Adafactor, one parameter at a time."""
    p = {k: v.astype(np.float64).copy() for k, v in params.items()}
    st = {}
    for k, x in p.items():
        s = {"m": np.zeros_like(x)}
        if x.ndim >= 2:
            s["row"] = np.zeros(x.shape[:-1])
            s["col"] = np.zeros(x.shape[:-2] + x.shape[-1:])
        else:
            s["v"] = np.zeros_like(x)
        st[k] = s
    traj, lrs_used = [], []
    for t, g in enumerate(grads_seq, start=1):
        group_lr = lrs[t - 1] if lrs is not None else lr
        used = []
        for k in p:
            s, x, gk = st[k], p[k], g[k]
            rel = min(1e-6 * t if warmup_init else 1e-2, 1.0 / math.sqrt(t)) if relative_step else group_lr
            a = (max(eps[1], _rms(x)) if scale_parameter else 1.0) * rel
            used.append(a)
            b2t = 1.0 - t**decay_rate
            u = gk**2 + eps[0]
            if x.ndim >= 2:
                s["row"] = b2t * s["row"] + (1 - b2t) * u.mean(axis=-1)
                s["col"] = b2t * s["col"] + (1 - b2t) * u.mean(axis=-2)
                r = 1.0 / np.sqrt(s["row"] / s["row"].mean(axis=-1, keepdims=True))
                c = 1.0 / np.sqrt(s["col"])
                u = r[..., :, None] * c[..., None, :] * gk
            else:
                s["v"] = b2t * s["v"] + (1 - b2t) * u
                u = gk / np.sqrt(s["v"])
            u = u / max(_rms(u) / clip_threshold, 1.0) * a
            if beta1 is not None:
                s["m"] = beta1 * s["m"] + (1 - beta1) * u
                u = s["m"]
            if weight_decay != 0:
                x = x - weight_decay * a * x
            p[k] = x - u
        lrs_used.append(used[0])
        traj.append({k: x.copy() for k, x in p.items()})
    return traj, lrs_used


# ------------------------------------------------------------------ configurations
LRS = linear_warmup_lrs(1e-2, 10, STEPS, STEPS)

ADAMW_CASES = {
    "pt-default-decay": (dict(lr=1e-3, weight_decay=0.01), dict(lr=1e-3, weight_decay=0.01)),
    "no-bias-correction": (
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1, correct_bias=False),
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1, correct_bias=False),
    ),
    "tf-order-regex": (
        dict(
            lr=3e-3,
            weight_decay=0.05,
            weight_decay_order="before",
            exclude_from_weight_decay=["bias", "LayerNorm"],
            include_in_weight_decay=[r"LayerNorm/w"],
        ),
        dict(
            lr=3e-3,
            weight_decay=0.05,
            order="before",
            decays={"dense/kernel": True, "dense/bias": False, "LayerNorm/weight": True, "conv": True},
        ),
    ),
    "scheduled-lr": (dict(lr=1e-2, weight_decay=0.01), dict(lr=1e-2, weight_decay=0.01, lrs=LRS)),
}

ADAFACTOR_CASES = {
    "relative-default": (dict(), dict()),
    "warmup-init": (dict(warmup_init=True), dict(warmup_init=True)),
    "no-scale": (dict(scale_parameter=False), dict(scale_parameter=False)),
    "manual-beta1-decay": (
        dict(lr=1e-2, relative_step=False, beta1=0.9, weight_decay=0.01, clip_threshold=0.5, decay_rate=-0.6),
        dict(lr=1e-2, relative_step=False, beta1=0.9, weight_decay=0.01, clip_threshold=0.5, decay_rate=-0.6),
    ),
    "manual-scheduled": (
        dict(lr=1e-2, relative_step=False, scale_parameter=False),
        dict(lr=1e-2, relative_step=False, scale_parameter=False, lrs=LRS),
    ),
}


def _rule(kind: str, case: str):
    if kind == "adamw":
        return AdamW(**ADAMW_CASES[case][0], no_deprecation_warning=True)
    return Adafactor(**ADAFACTOR_CASES[case][0])


def _hyper(kind: str, case: str, i: int) -> dict | None:
    ref_kw = (ADAMW_CASES if kind == "adamw" else ADAFACTOR_CASES)[case][1]
    return {"lr": ref_kw["lrs"][i]} if "lrs" in ref_kw else None


def _eager_run(rule, params, grads_seq, hyper_fn=None):
    state = rule.init(params)
    traj = []
    for i, g in enumerate(grads_seq):
        params, state = rule.update(params, g, state, None if hyper_fn is None else hyper_fn(i))
        traj.append(params)
    return traj, state


def _assert_traj(actual, expected, rtol=RTOL64, atol=ATOL64):
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert set(a) == set(e)
        for k in e:
            np.testing.assert_allclose(
                np.asarray(a[k]), e[k], rtol=rtol, atol=atol, err_msg=f"step {i + 1}, {k}"
            )


ALL_CASES = [("adamw", c) for c in ADAMW_CASES] + [("adafactor", c) for c in ADAFACTOR_CASES]


# ------------------------------------------------------------------ (a) eager vs the transcriptions
@pytest.mark.parametrize("case", list(ADAMW_CASES))
def test_adamw_trajectory_matches_transcription(case):
    params, grads = _params(), _grads()
    ours, state = _eager_run(_rule("adamw", case), params, grads, lambda i: _hyper("adamw", case, i))
    ref = ref_adamw(params, grads, **ADAMW_CASES[case][1])
    _assert_traj(ours, ref)
    assert int(state["step"]) == STEPS and np.asarray(state["step"]).dtype == np.int64


@pytest.mark.parametrize("case", list(ADAFACTOR_CASES))
def test_adafactor_trajectory_matches_transcription(case):
    params, grads = _params(), _grads()
    rule = _rule("adafactor", case)
    ours, state = _eager_run(rule, params, grads, lambda i: _hyper("adafactor", case, i))
    ref, ref_lrs = ref_adafactor(params, grads, **ADAFACTOR_CASES[case][1])
    _assert_traj(ours, ref)
    assert int(state["step"]) == STEPS
    # factored second moments for >= 2-D parameters, a full one for vectors
    assert state["exp_avg_sq_row"]["dense/kernel"].shape == (4,)
    assert state["exp_avg_sq_col"]["dense/kernel"].shape == (3,)
    assert state["exp_avg_sq_row"]["conv"].shape == (2, 3) and state["exp_avg_sq_col"]["conv"].shape == (2, 2)
    assert state["exp_avg_sq"]["dense/bias"].shape == (3,) and "dense/kernel" not in state["exp_avg_sq"]
    assert ("exp_avg" in state) == (rule.beta1 is not None)
    # AdafactorSchedule reports the effective lr of the last step for the first parameter
    last_hyper = _hyper("adafactor", case, STEPS - 1)
    np.testing.assert_allclose(AdafactorSchedule(rule).get_lr(state, last_hyper), ref_lrs[-1], rtol=RTOL64)


def test_adafactor_schedule_before_first_step_is_initial_lr():
    rule = Adafactor()
    sched = get_adafactor_schedule(rule, initial_lr=0.25)
    state = rule.init(_params())
    assert float(sched.get_lr(state)) == 0.25 and sched.lr_lambda(3) == 0.25


def test_scheduled_lr_inside_the_step_equals_lr_as_input():
    """A schedule given as ``lr`` is evaluated at the completed-step count inside the step."""
    params, grads = _params(), _grads(30)
    sched = get_linear_schedule_with_warmup(None, 10, STEPS)
    inside, _ = _eager_run(
        AdamW(lr=lambda s: 1e-2 * sched.lr_lambda(s), weight_decay=0.01, no_deprecation_warning=True),
        params,
        grads,
    )
    ref = ref_adamw(params, grads, lr=1e-2, weight_decay=0.01, lrs=LRS[:30])
    _assert_traj(inside, ref)
    # and traced: the graph has no lr input, the schedule is part of it
    rule = AdamW(lr=lambda s: 1e-2 * sched.lr_lambda(s), weight_decay=0.01, no_deprecation_warning=True)
    step = trace_update(rule, params)
    assert not any(n.startswith("hyper/") for n in step.input_names)
    prog = lower(step.graph, "numpy")
    p, s = params, rule.init(params)
    for i, g in enumerate(grads):
        p, s = step.run(prog, p, g, s)
    _assert_traj([p], [ref[-1]])


# ------------------------------------------------------------------ (b) traced == eager, every backend
_PROGRAMS: dict = {}


def _traced(kind: str, case: str, backend: str, dtype=np.float64):
    key = (kind, case, backend, np.dtype(dtype).name)
    if key not in _PROGRAMS:
        rule = _rule(kind, case)
        step = trace_update(rule, _params(dtype=dtype), hyper=None)
        _PROGRAMS[key] = (rule, step, lower(step.graph, backend))
    return _PROGRAMS[key]


def _traced_run(kind, case, backend, params, grads_seq, dtype=np.float64):
    rule, step, prog = _traced(kind, case, backend, dtype)
    state = rule.init(params)
    traj = []
    for i, g in enumerate(grads_seq):
        params, state = step.run(prog, params, g, state, _hyper(kind, case, i))
        traj.append(params)
    return traj, state


@pytest.mark.parametrize("kind,case", ALL_CASES)
def test_traced_numpy_equals_eager(kind, case):
    params, grads = _params(), _grads()
    eager, e_state = _eager_run(_rule(kind, case), params, grads, lambda i: _hyper(kind, case, i))
    traced, t_state = _traced_run(kind, case, "numpy", params, grads)
    for a, e in zip(traced, eager):
        for k in e:
            np.testing.assert_array_equal(a[k], e[k])
    assert int(t_state["step"]) == STEPS


# PT order with a scheduled lr input, TF order with name rules, both Adafactor step-size modes
BACKEND_CASES = [
    ("adamw", "tf-order-regex"),
    ("adamw", "scheduled-lr"),
    ("adafactor", "relative-default"),
    ("adafactor", "manual-beta1-decay"),
]


@pytest.mark.parametrize("kind,case", BACKEND_CASES)
def test_framework_backend_trajectory_equals_eager(framework_backend, kind, case):
    params, grads = _params(), _grads()
    eager, _ = _eager_run(_rule(kind, case), params, grads, lambda i: _hyper(kind, case, i))
    traced, state = _traced_run(kind, case, framework_backend, params, grads)
    _assert_traj(traced, eager)
    assert int(state["step"]) == STEPS


@pytest.mark.parametrize("kind,case", [("adafactor", "manual-beta1-decay")])
def test_framework_backend_float32_steps(framework_backend, kind, case):
    """float32 parameters: ten steps on the backend vs the numpy reference program, float32 tolerance."""
    params, grads = _params(dtype=np.float32), _grads(10, dtype=np.float32)
    ref, _ = _traced_run(kind, case, "numpy", params, grads, np.float32)
    got, _ = _traced_run(kind, case, framework_backend, params, grads, np.float32)
    for a, e in zip(got, ref):
        for k in e:
            assert a[k].dtype == np.float32
            np.testing.assert_allclose(a[k], e[k], rtol=RTOL32, atol=ATOL32)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("kind,case", [("adamw", "pt-default-decay"), ("adafactor", "relative-default")])
def test_low_precision_params_keep_dtype(kind, case, dtype):
    """16-bit parameters stay 16-bit; Adafactor keeps float32 state; traced numpy equals eager."""
    import ml_dtypes  # noqa: F401 - numpy's bfloat16

    dt = np.dtype(dtype)
    params, grads = _params(dtype=dt), _grads(3, dtype=dt)
    rule = _rule(kind, case)
    eager, state = _eager_run(rule, params, grads)
    traced, t_state = _traced_run(kind, case, "numpy", params, grads, dt)
    for k in params:
        assert eager[-1][k].dtype == dt and traced[-1][k].dtype == dt
        np.testing.assert_array_equal(traced[-1][k].astype(np.float32), eager[-1][k].astype(np.float32))
    if kind == "adafactor":
        assert state["exp_avg_sq_row"]["dense/kernel"].dtype == np.float32
        ref, _ = ref_adafactor(
            {k: v.astype(np.float64) for k, v in params.items()},
            [{k: v.astype(np.float64) for k, v in g.items()} for g in grads],
        )
        rtol, atol = TOLERANCES[DType(dtype)]
        for k in params:  # computed in float32, rounded once per step
            np.testing.assert_allclose(eager[-1][k].astype(np.float64), ref[-1][k], rtol=rtol, atol=atol)
    else:
        assert state["exp_avg"]["dense/kernel"].dtype == dt


# ------------------------------------------------------------------ torch.optim.AdamW as a second oracle
def _torch_adamw_traj(params, grads_seq, **kw):
    torch = pytest.importorskip("torch")
    tp = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for k, v in params.items()}
    opt = torch.optim.AdamW(list(tp.values()), **kw)
    traj = []
    for g in grads_seq:
        for k, p in tp.items():
            p.grad = torch.tensor(g[k], dtype=torch.float64)
        opt.step()
        traj.append({k: p.detach().numpy().copy() for k, p in tp.items()})
    return traj


@pytest.mark.parametrize("order,weight_decay", [("after", 0.0), ("before", 0.1)])
def test_matches_torch_adamw_when_eps_is_zero(order, weight_decay):
    """torch.optim.AdamW adds eps to sqrt(v / bc2) and decays before the step: with eps=0 it equals
    our AdamW without decay, and with decay it equals weight_decay_order='before'."""
    params, grads = _params(), _grads(50)
    ours, _ = _eager_run(
        AdamW(
            lr=1e-2, eps=0.0, weight_decay=weight_decay, weight_decay_order=order, no_deprecation_warning=True
        ),
        params,
        grads,
    )
    theirs = _torch_adamw_traj(params, grads, lr=1e-2, eps=0.0, weight_decay=weight_decay)
    _assert_traj(ours, theirs)


def test_eps_placement_differs_from_torch_adamw():
    """With eps > 0 the two differ (documented in spec/optim.md): eps after sqrt(v) vs after sqrt(v/bc2)."""
    params, grads = _params(), [{k: v * 1e-5 for k, v in g.items()} for g in _grads(5)]
    ours, _ = _eager_run(AdamW(lr=1e-2, eps=1e-6, no_deprecation_warning=True), params, grads)
    theirs = _torch_adamw_traj(params, grads, lr=1e-2, eps=1e-6, weight_decay=0.0)
    assert not np.allclose(ours[-1]["dense/kernel"], theirs[-1]["dense/kernel"], rtol=RTOL64, atol=ATOL64)


# ------------------------------------------------------------------ (d) validation errors
@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(lr=-1e-3), "Invalid learning rate: -0.001 - should be >= 0.0"),
        (dict(betas=(1.0, 0.999)), "Invalid beta parameter: 1.0 - should be in [0.0, 1.0)"),
        (dict(betas=(0.9, -0.1)), "Invalid beta parameter: -0.1 - should be in [0.0, 1.0)"),
        (dict(eps=-1e-8), "Invalid epsilon value: -1e-08 - should be >= 0.0"),
        (dict(weight_decay_order="middle"), "weight_decay_order must be 'after'"),
        (dict(exclude_from_weight_decay=["("]), "exclude_from_weight_decay: invalid regex '('"),
        (dict(clipnorm=1.0, global_clipnorm=1.0), "Only one of `clipnorm` and `global_clipnorm` can be set"),
    ],
)
def test_adamw_validation(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        AdamW(**kwargs, no_deprecation_warning=True)


def test_adamw_deprecation_warning():
    with pytest.warns(FutureWarning, match="no_deprecation_warning=True"):
        AdamW()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AdamW(no_deprecation_warning=True)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(lr=1e-3), "Cannot combine manual `lr` and `relative_step=True` options"),
        (
            dict(relative_step=False, warmup_init=True, lr=1e-3),
            "`warmup_init=True` requires `relative_step=True`",
        ),
        (dict(relative_step=False), "Adafactor needs a manual `lr` when `relative_step=False`"),
        (dict(eps=1e-30), "eps must be a pair of numbers"),
    ],
)
def test_adafactor_validation(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Adafactor(**kwargs)


def test_update_input_errors():
    rule = AdamW(no_deprecation_warning=True)
    params = _params()
    state = rule.init(params)
    bad = dict(_grads(1)[0])
    bad["conv"] = bad["conv"][0]
    with pytest.raises(ValueError, match="the gradient of 'conv' has shape"):
        rule.update(params, bad, state)
    with pytest.raises(ValueError, match="grads must have the same structure as params"):
        rule.update(params, list(_grads(1)[0].values()), state)
    with pytest.raises(ValueError, match=re.escape("unknown hyperparameter(s) ['beta1']")):
        rule.update(params, _grads(1)[0], state, {"beta1": 0.5})
    with pytest.raises(ValueError, match="state must be the dict returned by AdamW.init"):
        rule.update(params, _grads(1)[0], {})
    with pytest.raises(ValueError, match="optimizers update float parameters only"):
        rule.init({"ids": np.arange(3)})
    with pytest.raises(
        ValueError, match=re.escape("state['exp_avg'] has no entry for parameter(s) ['conv']")
    ):
        rule.update(params, _grads(1)[0], rule.init({k: v for k, v in params.items() if k != "conv"}))


def test_trace_update_from_specs_and_names():
    from tensorweave.ir import TensorSpec

    step = trace_update(Adafactor(), {"w": TensorSpec((3, 4), "float32"), "b": TensorSpec((4,), "bfloat16")})
    assert step.input_names[:4] == ["params/w", "params/b", "grads/w", "grads/b"]
    assert "state/exp_avg_sq_row/w" in step.input_names and "state/exp_avg_sq/b" in step.input_names
    assert step.output_names[:3] == ["new_params/w", "new_params/b", "new_state/step"]
    assert [s.dtype for s in step.graph.output_specs[:2]] == [DType.float32, DType.bfloat16]
    with pytest.raises(ValueError, match="must have static dims"):
        trace_update(Adafactor(), {"w": TensorSpec(("n", 4), "float32")})


def test_tf_weight_decay_name_rules():
    rule = AdamWeightDecay(
        weight_decay_rate=0.1,
        include_in_weight_decay=["LayerNorm/weight"],
        exclude_from_weight_decay=["LayerNorm", "bias"],
    )
    assert rule.weight_decay_order == "before" and rule.eps == 1e-7
    assert rule._do_use_weight_decay("dense/kernel")
    assert not rule._do_use_weight_decay("dense/bias")
    assert rule._do_use_weight_decay("LayerNorm/weight")  # include wins over exclude
    assert not AdamWeightDecay(weight_decay_rate=0.0)._do_use_weight_decay("dense/kernel")


def test_clipnorm_scales_gradients_like_keras():
    """clipnorm: each gradient g * c / max(||g||, c); global_clipnorm: with the norm of all of them."""
    params, grads = _params(), _grads(3)
    c = 0.5

    def clip_each(g):
        return {k: v * c / max(np.linalg.norm(v), c) for k, v in g.items()}

    def clip_global(g):
        n = math.sqrt(sum(float(np.sum(v * v)) for v in g.values()))
        return {k: v * c / max(n, c) for k, v in g.items()}

    for kw, fn in ((dict(clipnorm=c), clip_each), (dict(global_clipnorm=c), clip_global)):
        ours, _ = _eager_run(AdamW(lr=1e-2, **kw, no_deprecation_warning=True), params, grads)
        ref = ref_adamw(params, [fn(g) for g in grads], lr=1e-2)
        _assert_traj(ours, ref)


# ------------------------------------------------------------------ (e) accumulation
def test_gradient_accumulator():
    acc = GradientAccumulator()
    with pytest.raises(
        ValueError, match="The accumulator should be called first to initialize the gradients"
    ):
        _ = acc.gradients
    acc.reset()  # a no-op before the first call
    assert int(acc.step) == 0
    a, b = np.arange(3.0), np.ones((2, 2))
    acc([a, None, b])
    acc([2 * a, np.ones(4), b])
    assert int(acc.step) == 2 and np.asarray(acc.step).dtype == np.int64
    g = acc.gradients
    np.testing.assert_array_equal(g[0], 3 * a)
    assert g[1] is None
    np.testing.assert_array_equal(g[2], 2 * b)
    with pytest.raises(ValueError, match="Expected 3 gradients, but got 2"):
        acc([a, b])
    acc.reset()
    assert int(acc.step) == 0
    np.testing.assert_array_equal(acc.gradients[0], np.zeros(3))
    acc([a, None, b])
    np.testing.assert_array_equal(acc.gradients[0], a)


@pytest.mark.parametrize("k", [1, 3])
def test_accumulate_steps_equals_adamw_on_mean_gradients(k):
    params, grads = _params(), _grads(12)
    rule = AccumulateSteps(AdamW(lr=1e-2, weight_decay=0.01, no_deprecation_warning=True), k)
    ours, state = _eager_run(rule, params, grads)
    means = [{n: sum(grads[j][n] for j in range(i, i + k)) / k for n in SHAPES} for i in range(0, 12, k)]
    ref = ref_adamw(params, means, lr=1e-2, weight_decay=0.01)
    _assert_traj([ours[i] for i in range(k - 1, 12, k)], ref)
    if k > 1:  # between updates the parameters do not move
        _assert_traj([ours[k - 2]], [params])
    assert int(state["step"]) == 12 and int(state["inner"]["step"]) == 12 // k
    np.testing.assert_array_equal(state["grad_sum"]["conv"], np.zeros(SHAPES["conv"]))


def test_accumulate_steps_traced(backend):
    params, grads = _params(), _grads(8)
    rule = AccumulateSteps(Adafactor(lr=1e-2, relative_step=False, beta1=0.9), 4)
    eager, _ = _eager_run(rule, params, grads)
    step = trace_update(rule, params)
    prog = lower(step.graph, backend)
    p, s = params, rule.init(params)
    traced = []
    for g in grads:
        p, s = step.run(prog, p, g, s, {"lr": 1e-2})
        traced.append(p)
    _assert_traj(traced, eager)
    assert int(s["step"]) == 8 and int(s["inner"]["step"]) == 2


def test_accumulate_steps_validation():
    with pytest.raises(ValueError, match="every_k_steps must be an int >= 1, got 0"):
        AccumulateSteps(AdamW(no_deprecation_warning=True), 0)
    with pytest.raises(ValueError, match="AccumulateSteps wraps an update rule"):
        AccumulateSteps(lambda *a: a, 2)


# ------------------------------------------------------------------ adapter modules
_BLOCK_AND_IMPORT = """
import sys
for m in {blocked!r}:
    sys.modules[m] = None  # as if the framework were not installed
import tensorweave.optim as o
try:
    {access}
except ImportError as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.parametrize(
    "adapter, blocked, message",
    [
        ("torch", ["torch"], "tensorweave.optim.torch needs PyTorch: pip install 'tensorweave[torch]'"),
        (
            "optax",
            ["optax"],
            "tensorweave.optim.optax needs JAX and optax: pip install 'tensorweave[jax]' optax",
        ),
        (
            "keras",
            ["keras"],
            "tensorweave.optim.keras needs Keras 3: pip install 'tensorweave[tensorflow]' (or keras with jax / torch)",
        ),
    ],
)
@pytest.mark.parametrize("access", ["attribute", "import"])
def test_adapter_without_its_framework_is_one_line(adapter, blocked, message, access):
    """``tensorweave.optim.<framework>`` is imported lazily (``import tensorweave.optim`` needs no
    framework) and a missing framework is one ImportError line naming what to install."""
    import subprocess
    import sys

    stmt = f"o.{adapter}" if access == "attribute" else f"import tensorweave.optim.{adapter}"
    code = _BLOCK_AND_IMPORT.format(blocked=blocked, access=stmt)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ImportError {message}"


def test_optim_import_needs_no_framework():
    import subprocess
    import sys

    code = (
        "import sys, tensorweave.optim as o\n"
        "print(sorted(m for m in ('torch', 'jax', 'optax', 'keras', 'tensorflow', 'onnx') if m in sys.modules))\n"
        "print(o.__getattr__.__doc__ is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "True"]
