"""The framework adapters (torch.optim, optax, Keras, ONNX step) against the independent float64
transcriptions of tests/test_optim_math.py and against the frameworks' own AdamW.

Trajectories run in float64, where every backend reproduces the float64 transcription to ~1e-13;
we assert the task's 1e-6 relative bound (plus a tiny absolute floor for values near 0) so that a
wrong formula (differences of 1e-3 and more after a few steps) fails. Comparisons with
torch.optim.AdamW / optax.adamw use eps=0 and the decay-before order (the same math, spec/optim.md),
in float64 too. Save/restore checks are exact (assert_array_equal).
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from test_optim_math import linear_warmup_lrs, ref_adafactor, ref_adamw

import tensorweave.optim as two

from conftest import require_backend

RTOL, ATOL = 1e-6, 1e-12
STEPS = 15
SHAPES = {"dense/kernel": (4, 3), "dense/bias": (3,), "conv": (2, 3, 2)}


def _params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in SHAPES.items()}


def _grads(n: int = STEPS, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal(s) * (0.5 + i % 3) for k, s in SHAPES.items()} for i in range(n)]


def _close(actual: dict, expected: dict, step: int = -1) -> None:
    for k in expected:
        np.testing.assert_allclose(
            np.asarray(actual[k]), expected[k], rtol=RTOL, atol=ATOL, err_msg=f"step {step} {k}"
        )


ADAMW_KW = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1)
LR_F32 = 2.0**-7  # exactly representable in float32 (Keras keeps its lr in a float32 variable)


# ====================================================================== torch
@pytest.fixture(scope="module")
def torch_mod():
    require_backend("torch")
    import torch

    return torch


def _torch_params(torch, params: dict) -> dict:
    return {k: torch.nn.Parameter(torch.tensor(v)) for k, v in params.items()}


def _torch_run(torch, opt, tparams: dict, grads_seq: list[dict], sched=None) -> list[dict]:
    traj = []
    for g in grads_seq:
        for k, p in tparams.items():
            p.grad = torch.tensor(g[k])
        opt.step()
        if sched is not None:
            sched.step()
        traj.append({k: p.detach().numpy().copy() for k, p in tparams.items()})
    return traj


@pytest.mark.parametrize("correct_bias", [True, False])
def test_torch_adamw_param_groups_match_reference(torch_mod, correct_bias):
    torch = torch_mod
    params, grads = _params(), _grads()
    tp = _torch_params(torch, params)
    # two groups: the second overrides lr and weight decay
    opt = two.torch.AdamW(
        [
            {"params": [tp["dense/kernel"], tp["conv"]]},
            {"params": [tp["dense/bias"]], "lr": 3e-3, "weight_decay": 0.0},
        ],
        correct_bias=correct_bias,
        no_deprecation_warning=True,
        **ADAMW_KW,
    )
    traj = _torch_run(torch, opt, tp, grads)
    kw = dict(ADAMW_KW, correct_bias=correct_bias)
    ref_a = ref_adamw(
        {k: params[k] for k in ("dense/kernel", "conv")},
        [{k: g[k] for k in ("dense/kernel", "conv")} for g in grads],
        **kw,
    )
    ref_b = ref_adamw(
        {"dense/bias": params["dense/bias"]},
        [{"dense/bias": g["dense/bias"]} for g in grads],
        **dict(kw, lr=3e-3, weight_decay=0.0),
    )
    for i, (a, ra, rb) in enumerate(zip(traj, ref_a, ref_b)):
        _close(a, {**ra, **rb}, i + 1)
    assert isinstance(opt, torch.optim.Optimizer)
    assert set(opt.state[tp["conv"]]) == {"step", "exp_avg", "exp_avg_sq"}
    assert int(opt.state[tp["conv"]]["step"]) == STEPS
    assert len(opt._steps) == 2  # one traced + lowered program per group, reused for every step


def test_torch_adafactor_matches_reference(torch_mod):
    torch = torch_mod
    params, grads = _params(), _grads()
    tp = _torch_params(torch, params)
    opt = two.torch.Adafactor(tp.values(), beta1=0.9, weight_decay=0.01)
    traj = _torch_run(torch, opt, tp, grads)
    ref, _ = ref_adafactor(params, grads, beta1=0.9, weight_decay=0.01)
    for i, (a, r) in enumerate(zip(traj, ref)):
        _close(a, r, i + 1)
    assert opt.state[tp["dense/kernel"]]["exp_avg_sq_row"].shape == (4,)


def test_torch_adamw_equals_torch_optim_adamw(torch_mod):
    """eps=0 and decay before the step is exactly torch.optim.AdamW's math (spec/optim.md)."""
    torch = torch_mod
    params, grads = _params(), _grads()
    ours, theirs = _torch_params(torch, params), _torch_params(torch, params)
    a = two.torch.AdamW(
        ours.values(),
        lr=1e-2,
        eps=0.0,
        weight_decay=0.1,
        weight_decay_order="before",
        no_deprecation_warning=True,
    )
    b = torch.optim.AdamW(theirs.values(), lr=1e-2, eps=0.0, weight_decay=0.1)
    for x, y in zip(_torch_run(torch, a, ours, grads), _torch_run(torch, b, theirs, grads)):
        _close(x, y)


def test_torch_lambda_lr_schedule(torch_mod):
    torch = torch_mod
    params, grads = _params(), _grads()
    tp = _torch_params(torch, params)
    opt = two.torch.AdamW(tp.values(), no_deprecation_warning=True, **ADAMW_KW)
    sched = two.torch.lambda_lr(two.get_linear_schedule_with_warmup(opt, 4, STEPS))
    assert isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
    traj = _torch_run(torch, opt, tp, grads, sched)
    ref = ref_adamw(params, grads, **ADAMW_KW, lrs=linear_warmup_lrs(ADAMW_KW["lr"], 4, STEPS, STEPS))
    for i, (a, r) in enumerate(zip(traj, ref)):
        _close(a, r, i + 1)
    assert len(opt._steps) == 1  # the lr is an input: the schedule never retraces


@pytest.mark.parametrize("kind", ["adamw", "adafactor"])
def test_torch_state_dict_resume_is_exact(torch_mod, kind):
    torch = torch_mod
    params, grads = _params(), _grads(12)

    def make(tp):
        if kind == "adamw":
            opt = two.torch.AdamW(tp.values(), no_deprecation_warning=True, **ADAMW_KW)
            return opt, two.torch.lambda_lr(two.get_cosine_schedule_with_warmup(opt, 3, 12))
        return two.torch.Adafactor(tp.values()), None

    tp = _torch_params(torch, params)
    opt, sched = make(tp)
    full = _torch_run(torch, opt, tp, grads[:6], sched)
    buf = io.BytesIO()
    torch.save(
        {
            "opt": opt.state_dict(),
            "sched": sched.state_dict() if sched else None,
            "params": {k: p.detach().clone() for k, p in tp.items()},
        },
        buf,
    )
    full += _torch_run(torch, opt, tp, grads[6:], sched)

    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    tp2 = {k: torch.nn.Parameter(v) for k, v in saved["params"].items()}
    opt2, sched2 = make(tp2)
    opt2.load_state_dict(saved["opt"])
    if sched2:
        sched2.load_state_dict(saved["sched"])
    resumed = _torch_run(torch, opt2, tp2, grads[6:], sched2)
    for a, b in zip(full[6:], resumed):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_torch_closure_zero_grad_and_skipped_params(torch_mod):
    torch = torch_mod
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1)).double()
    opt = two.torch.AdamW(model.named_parameters(), lr=1e-2, no_deprecation_warning=True)
    x = torch.randn(8, 3, dtype=torch.float64)

    def closure():
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(5)]
    assert losses[-1] < losses[0]
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    # a parameter without a gradient is skipped: no state change, and it keeps its own step count
    first = model[0].weight
    before = first.detach().clone()
    model[1](torch.randn(2, 4, dtype=torch.float64)).sum().backward()
    opt.step()
    assert torch.equal(first.detach(), before) and int(opt.state[first]["step"]) == 5
    assert int(opt.state[model[1].weight]["step"]) == 6
    opt.step(closure)  # mixed step counts in one group: one call per count
    assert int(opt.state[first]["step"]) == 6 and int(opt.state[model[1].weight]["step"]) == 7


def test_torch_name_regexes_use_param_names(torch_mod):
    torch = torch_mod
    lin = torch.nn.Linear(3, 2).double()
    w0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    opt = two.torch.AdamW(
        lin.named_parameters(),
        lr=0.0 + 1e-2,
        weight_decay=0.5,
        no_deprecation_warning=True,
        exclude_from_weight_decay=["bias"],
    )
    lin.weight.grad = torch.zeros_like(lin.weight)
    lin.bias.grad = torch.zeros_like(lin.bias)
    opt.step()  # zero gradients: only the decay moves a parameter
    assert torch.allclose(lin.weight.detach(), w0 * (1 - 1e-2 * 0.5))
    assert torch.equal(lin.bias.detach(), b0)


def test_torch_errors(torch_mod):
    torch = torch_mod
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        two.torch.AdamW([{"params": [p], "lr": -1.0}], no_deprecation_warning=True)
    with pytest.raises(ValueError, match="numeric lr"):
        two.torch.TorchOptimizer([p], two.AdamW(lr=lambda s: 1e-3, no_deprecation_warning=True))
    with pytest.raises(ValueError, match="float16/bfloat16/float32/float64"):
        two.torch.AdamW([torch.zeros(2, dtype=torch.int64)], no_deprecation_warning=True)
    with pytest.warns(FutureWarning, match="deprecated AdamW"):
        two.torch.AdamW([p])


def test_torch_bf16_adafactor_state_survives_load(torch_mod):
    torch = torch_mod
    p = torch.nn.Parameter(torch.randn(4, 3).to(torch.bfloat16))
    opt = two.torch.Adafactor([p])
    p.grad = torch.randn(4, 3).to(torch.bfloat16)
    opt.step()
    row = opt.state[p]["exp_avg_sq_row"]
    assert row.dtype == torch.float32
    opt2 = two.torch.Adafactor([p])
    opt2.load_state_dict(opt.state_dict())
    assert opt2.state[p]["exp_avg_sq_row"].dtype == torch.float32  # torch would round it to bfloat16
    assert torch.equal(opt2.state[p]["exp_avg_sq_row"], row)
    assert opt2.state[p]["exp_avg_sq_row"].data_ptr() != row.data_ptr()


def test_torch_accumulate_steps_and_compile_fallback(torch_mod):
    """A wrapper rule (AccumulateSteps, whose traced step holds a cond) runs in the torch adapter; its
    data-dependent branch cannot be compiled with fullgraph, so compile=True warns and runs eagerly."""
    torch = torch_mod
    params, grads = _params(), _grads(6)
    rule = two.AccumulateSteps(two.AdamW(no_deprecation_warning=True, **ADAMW_KW), 3)
    tp = _torch_params(torch, params)
    opt = two.torch.TorchOptimizer(tp.values(), rule, compile=True)
    with pytest.warns(RuntimeWarning, match="torch.compile of the optimizer step failed"):
        traj = _torch_run(torch, opt, tp, grads)
    p, st = {f"{i}": v for i, v in enumerate(params.values())}, None
    st = rule.init(p)
    for g, a in zip(grads, traj):
        p, st = rule.update(p, {f"{i}": v for i, v in enumerate(g.values())}, st)
        _close(dict(zip(params, a.values())), dict(zip(params, p.values())))
    state = opt.state[tp["conv"]]
    assert int(state["step"]) == 6 and int(state["inner/step"]) == 2 and "inner/exp_avg" in state
    # compile="auto" (the default) keeps small groups eager
    small = two.torch.AdamW([torch.nn.Parameter(torch.zeros(3))], no_deprecation_warning=True)
    small.param_groups[0]["params"][0].grad = torch.ones(3)
    small.step()
    assert [s.compiled for s in small._steps.values()] == [None]
    with pytest.raises(ValueError, match="compile must be"):
        two.torch.AdamW([torch.nn.Parameter(torch.zeros(3))], no_deprecation_warning=True, compile="yes")


@pytest.mark.xdist_group("optim_torch_compile")
def test_torch_compiled_step_matches_eager(torch_mod):
    """compile=True (torch.compile of program + in-place writes) gives the reference trajectory too."""
    torch = torch_mod
    params, grads = {"w": _params()["dense/kernel"]}, [{"w": g["dense/kernel"]} for g in _grads(5)]
    tp = _torch_params(torch, params)
    opt = two.torch.AdamW(tp.values(), no_deprecation_warning=True, compile=True, **ADAMW_KW)
    m_before = None
    traj = []
    for g in grads:
        tp["w"].grad = torch.tensor(g["w"])
        opt.step()
        m = opt.state[tp["w"]]["exp_avg"]
        assert m_before is None or m.data_ptr() == m_before  # state written in place
        m_before = m.data_ptr()
        traj.append({"w": tp["w"].detach().numpy().copy()})
    for i, (a, r) in enumerate(zip(traj, ref_adamw(params, grads, **ADAMW_KW))):
        _close(a, r, i + 1)


# ====================================================================== optax
@pytest.fixture(scope="module")
def jax_mods():
    require_backend("jax")
    import jax
    import optax

    return jax, optax


def _optax_run(jax, optax, tx, params, grads_seq, state=None):
    # float64 parameters (the float64 reference): 64-bit types are the caller's choice in JAX; the
    # adapter never turns them on process-wide
    with jax.enable_x64(True):
        return _optax_run64(jax, optax, tx, params, grads_seq, state)


def _optax_run64(jax, optax, tx, params, grads_seq, state=None):
    import jax.numpy as jnp

    @jax.jit
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    p = jax.tree.map(jnp.asarray, params)
    s = tx.init(p) if state is None else state
    traj = []
    for g in grads_seq:
        p, s = step(p, s, jax.tree.map(jnp.asarray, g))
        traj.append(jax.tree.map(np.asarray, p))
    return traj, p, s


def _nest(flat: dict) -> dict:
    """``{"dense/kernel": x}`` -> ``{"dense": {"kernel": x}}`` (optax names leaves by their key path)."""
    out: dict = {}
    for k, v in flat.items():
        *head, last = k.split("/")
        d = out
        for h in head:
            d = d.setdefault(h, {})
        d[last] = v
    return out


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        name = f"{prefix}/{k}" if prefix else k
        out.update(_flat(v, name) if isinstance(v, dict) else {name: v})
    return out


def test_optax_adamw_matches_reference_and_optax(jax_mods):
    jax, optax = jax_mods
    params, grads = _params(), _grads()
    tx = two.optax.adamw(ADAMW_KW["lr"], *ADAMW_KW["betas"], eps=ADAMW_KW["eps"], weight_decay=0.1)
    traj, _, state = _optax_run(jax, optax, tx, _nest(params), [_nest(g) for g in grads])
    for i, (a, r) in enumerate(zip(traj, ref_adamw(params, grads, **ADAMW_KW))):
        _close(_flat(a), r, i + 1)
    assert int(state["step"]) == STEPS and state["exp_avg"]["dense/kernel"].shape == (4, 3)
    # the same math as optax.adamw with eps=0 and the decay-before order
    ours = two.optax.adamw(1e-2, eps=0.0, weight_decay=0.1, weight_decay_order="before")
    theirs = optax.adamw(1e-2, eps=0.0, weight_decay=0.1)
    a, _, _ = _optax_run(jax, optax, ours, params, grads)
    b, _, _ = _optax_run(jax, optax, theirs, params, grads)
    for x, y in zip(a, b):
        _close(x, y)


def test_optax_adafactor_and_schedule(jax_mods):
    jax, optax = jax_mods
    params, grads = _params(), _grads()
    traj, _, _ = _optax_run(jax, optax, two.optax.adafactor(), params, grads)
    ref, _ = ref_adafactor(params, grads)
    for i, (a, r) in enumerate(zip(traj, ref)):
        _close(a, r, i + 1)
    # a tensorweave schedule inside the traced step, and the same schedule as an optax schedule
    sched = two.get_linear_schedule_with_warmup(None, 4, STEPS)
    lrs = linear_warmup_lrs(1e-2, 4, STEPS, STEPS)
    tx = two.optax.adamw(lambda s: 1e-2 * sched.lr_lambda(s), *ADAMW_KW["betas"], eps=1e-6, weight_decay=0.1)
    traj, _, _ = _optax_run(jax, optax, tx, params, grads)
    for i, (a, r) in enumerate(zip(traj, ref_adamw(params, grads, **ADAMW_KW, lrs=lrs))):
        _close(a, r, i + 1)
    fn = two.optax.optax_schedule(lambda s: 1e-2 * sched.lr_lambda(s))
    values = [float(jax.jit(fn)(i)) for i in range(STEPS)]
    np.testing.assert_allclose(values, np.float32(lrs), rtol=1e-7)
    assert optax.adam(fn) is not None


def test_optax_state_pytree_resume_is_exact(jax_mods):
    jax, optax = jax_mods
    params, grads = _params(), _grads(12)
    tx = two.optax.adamw(**{"learning_rate": 1e-2, "weight_decay": 0.1})
    full, p6, s6 = _optax_run(jax, optax, tx, params, grads[:6])
    saved_p, saved_s = jax.tree.map(np.asarray, p6), jax.tree.map(np.asarray, s6)  # e.g. to a checkpoint
    rest, _, _ = _optax_run(jax, optax, tx, p6, grads[6:], s6)
    import jax.numpy as jnp

    with jax.enable_x64(True):
        saved_s = jax.tree.map(jnp.asarray, saved_s)
    resumed, _, _ = _optax_run(
        jax,
        optax,
        two.optax.adamw(learning_rate=1e-2, weight_decay=0.1),
        saved_p,
        grads[6:],
        saved_s,
    )
    for a, b in zip(rest, resumed):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


# ====================================================================== keras
@pytest.fixture(scope="module")
def keras_mods():
    require_backend("tensorflow")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("Keras runs another backend in this process")
    return keras, tf


def _keras_run(tf, opt, variables: dict, grads_seq: list[dict]) -> list[dict]:
    traj = []
    for g in grads_seq:
        opt.apply_gradients([(tf.constant(g[k]), v) for k, v in variables.items()])
        traj.append({k: v.numpy().copy() for k, v in variables.items()})
    return traj


def _keras_vars(keras, params: dict) -> dict:
    return {k: keras.Variable(v, dtype="float64", name=k.replace("/", "_")) for k, v in params.items()}


def test_keras_adamw_and_adafactor_match_reference(keras_mods):
    keras, tf = keras_mods
    params, grads = _params(), _grads()
    opt = two.keras.AdamW(LR_F32, 0.9, 0.99, 1e-6, weight_decay_rate=0.1, correct_bias=False)
    traj = _keras_run(tf, opt, _keras_vars(keras, params), grads)
    ref = ref_adamw(params, grads, **dict(ADAMW_KW, lr=LR_F32, correct_bias=False))
    for i, (a, r) in enumerate(zip(traj, ref)):
        _close(a, r, i + 1)
    assert isinstance(opt, keras.optimizers.Optimizer)
    again = two.keras.AdamW.from_config(opt.get_config())  # what model.save / clone_model rely on
    assert again.rule.defaults == opt.rule.defaults
    assert two.keras.Adafactor.from_config(two.keras.Adafactor().get_config()).rule.relative_step
    traj = _keras_run(tf, two.keras.Adafactor(), _keras_vars(keras, params), grads)
    ref, _ = ref_adafactor(params, grads)
    for i, (a, r) in enumerate(zip(traj, ref)):
        _close(a, r, i + 1)


def test_keras_schedule_and_variables_resume(keras_mods):
    keras, tf = keras_mods
    params, grads = _params(), _grads(12)
    lrs = linear_warmup_lrs(1e-2, 4, 12, 12)
    sched = two.get_linear_schedule_with_warmup(None, 4, 12)

    def make():
        return two.keras.AdamW(lambda s: 1e-2 * sched.lr_lambda(s), 0.9, 0.99, 1e-6, weight_decay_rate=0.1)

    opt, vs = make(), _keras_vars(keras, params)
    full = _keras_run(tf, opt, vs, grads[:6])
    saved_vars = {k: v.numpy().copy() for k, v in vs.items()}
    saved_opt = opt.state_values()
    full += _keras_run(tf, opt, vs, grads[6:])
    for i, (a, r) in enumerate(zip(full, ref_adamw(params, grads, **ADAMW_KW, lrs=lrs))):
        _close(a, r, i + 1)  # the schedule runs in float64 (a KerasSchedule), so the lrs are exact

    opt2, vs2 = make(), _keras_vars(keras, saved_vars)
    opt2.build(list(vs2.values()))
    opt2.load_state_values(saved_opt)
    assert int(opt2.iterations.numpy()) == 6
    resumed = _keras_run(tf, opt2, vs2, grads[6:])
    for a, b in zip(full[6:], resumed):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_keras_model_fit_equals_manual_rule_loop(keras_mods):
    """model.fit with our optimizer = GradientTape gradients fed to the pure numpy rule."""
    keras, tf = keras_mods
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")

    def model():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(1)])
        return m

    m = model()
    m.compile(
        optimizer=two.keras.AdamW(LR_F32, weight_decay_rate=0.01, exclude_from_weight_decay=["bias"]),
        loss="mse",
    )
    hist = m.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]

    ref_model = model()
    rule = two.AdamW(
        LR_F32, weight_decay=0.01, exclude_from_weight_decay=["bias"], no_deprecation_warning=True
    )
    names = [v.path for v in ref_model.trainable_variables]
    params = {n: v.numpy() for n, v in zip(names, ref_model.trainable_variables)}
    state = rule.init(params)
    for _ in range(4):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(ref_model(x) - y))
        g = tape.gradient(loss, ref_model.trainable_variables)
        params, state = rule.update(params, {n: gi.numpy() for n, gi in zip(names, g)}, state)
        for n, v in zip(names, ref_model.trainable_variables):
            v.assign(params[n])
    for v, r in zip(m.trainable_variables, ref_model.trainable_variables):
        # float32 model: the tolerance of float32 math (spec/backends.md)
        np.testing.assert_allclose(v.numpy(), r.numpy(), rtol=1e-5, atol=1e-6, err_msg=v.path)


# ====================================================================== onnx
@pytest.mark.parametrize("kind", ["adamw", "adafactor"])
def test_onnx_step_graph_in_fresh_session(tmp_path, kind):
    require_backend("onnx")
    import onnxruntime as ort

    params, grads = _params(), _grads()
    rule = (
        two.AdamW(no_deprecation_warning=True, **ADAMW_KW)
        if kind == "adamw"
        else two.Adafactor(beta1=0.9, weight_decay=0.01)
    )
    path = tmp_path / "step.onnx"
    traced = two.onnx.export_step(rule, params, path)
    assert sorted(os.listdir(tmp_path)) == ["step.onnx"]  # no temporary files left behind
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    assert in_names == traced.input_names
    assert out_names == ["new_" + n for n in in_names if not n.startswith(("grads/", "hyper/"))]
    feeds = {**{f"params/{k}": v for k, v in params.items()}, **two.onnx.initial_state(rule, params)}
    feeds.update({f"hyper/{k}": np.asarray(v) for k, v in rule.default_hyper().items()})
    ref = (
        ref_adamw(params, grads, **ADAMW_KW)
        if kind == "adamw"
        else ref_adafactor(params, grads, beta1=0.9, weight_decay=0.01)[0]
    )
    for i, (g, r) in enumerate(zip(grads, ref)):
        feeds.update({f"grads/{k}": v for k, v in g.items()})
        for name, value in zip(out_names, sess.run(None, feeds)):
            feeds[name[len("new_") :]] = value
        _close({k: feeds[f"params/{k}"] for k in params}, r, i + 1)
    assert int(feeds["state/step"]) == STEPS


def test_onnx_export_errors(tmp_path):
    with pytest.raises(ValueError, match="ending in .onnx"):
        two.onnx.export_step(two.Adafactor(), _params(), tmp_path / "step.pb")
    with pytest.raises(ValueError, match="update rule"):
        two.onnx.export_step(object(), _params(), tmp_path / "step.onnx")
