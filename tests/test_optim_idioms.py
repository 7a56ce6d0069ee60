"""Framework idioms of the adapters (spec/optim.md, "Adapters"): torch schedulers are real
``LambdaLR`` / ``ReduceLROnPlateau`` objects, ``AdafactorSchedule`` drives the torch Adafactor,
state dicts round-trip and foreign ones are one clear error; optax schedules, ``inject_hyperparams``
and ``mask=`` under ``jit``; no process-wide ``jax_enable_x64``; Keras 3 optimizers on the jax, torch
and tensorflow Keras backends (``model.fit``, ``model.save`` / ``load_model`` without
``custom_objects``), each Keras backend in its own subprocess (``KERAS_BACKEND`` is per process)."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import tensorweave.optim as two

from conftest import require_backend


# ====================================================================== torch
@pytest.fixture(scope="module")
def torch():
    require_backend("torch")
    import torch

    return torch


def _linear(torch, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 2).double()


def _train(torch, model, opt, sched=None, steps=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    lrs = []
    for _ in range(steps):
        x = torch.randn(4, 3, generator=g, dtype=torch.float64)
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()
        lrs.append(opt.param_groups[0]["lr"])
        if sched is not None:
            sched.step()
    return lrs


# Transformers' lambdas, transcribed (w = 2 warmup steps, T = 10)
def _hf_linear(s, w=2, T=10):
    return s / max(1, w) if s < w else max(0.0, (T - s) / max(1, T - w))


def _hf_cosine(s, w=2, T=10, c=0.5):
    if s < w:
        return s / max(1, w)
    p = (s - w) / max(1, T - w)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * c * 2.0 * p)))


@pytest.mark.parametrize("name, ref", [("linear", _hf_linear), ("cosine", _hf_cosine)])
def test_get_scheduler_with_a_torch_optimizer_is_a_lambda_lr(torch, name, ref):
    model = _linear(torch)
    opt = two.torch.AdamW(model.parameters(), lr=0.1, no_deprecation_warning=True)
    sched = two.get_scheduler(name, opt, num_warmup_steps=2, num_training_steps=10)
    assert type(sched) is torch.optim.lr_scheduler.LambdaLR
    lrs = _train(torch, model, opt, sched, steps=10)
    np.testing.assert_allclose(lrs, [0.1 * ref(s) for s in range(10)], rtol=1e-15, atol=0)
    # every get_*_schedule* too, and the neutral Schedule without an optimizer
    fn = two.get_linear_schedule_with_warmup(
        two.torch.AdamW(model.parameters(), 0.1, no_deprecation_warning=True), 2, 10
    )
    assert type(fn) is torch.optim.lr_scheduler.LambdaLR
    assert isinstance(two.get_linear_schedule_with_warmup(None, 2, 10), two.Schedule)
    assert two.torch.lambda_lr(sched) is sched  # lambda_lr accepts what get_* returns now


def test_every_schedule_function_returns_a_lambda_lr(torch):
    model = _linear(torch)

    def opt():
        return two.torch.AdamW(model.parameters(), 1e-3, no_deprecation_warning=True)

    made = [
        two.get_constant_schedule(opt()),
        two.get_constant_schedule_with_warmup(opt(), 2),
        two.get_linear_schedule_with_warmup(opt(), 2, 10),
        two.get_cosine_schedule_with_warmup(opt(), 2, 10),
        two.get_cosine_with_hard_restarts_schedule_with_warmup(opt(), 2, 10),
        two.get_polynomial_decay_schedule_with_warmup(opt(), 2, 10),
        two.get_inverse_sqrt_schedule(opt(), 2),
        two.get_cosine_with_min_lr_schedule_with_warmup(opt(), 2, 10, min_lr_rate=0.1),
        two.get_wsd_schedule(opt(), 2, 4, num_training_steps=10),
    ]
    assert all(type(s) is torch.optim.lr_scheduler.LambdaLR for s in made)


def test_reduce_lr_on_plateau(torch):
    model = _linear(torch)
    opt = two.torch.AdamW(model.parameters(), lr=0.1, no_deprecation_warning=True)
    sched = two.get_scheduler("reduce_lr_on_plateau", opt, scheduler_specific_kwargs={"patience": 0})
    assert type(sched) is torch.optim.lr_scheduler.ReduceLROnPlateau
    sched.step(1.0)
    sched.step(2.0)  # worse: the lr is reduced
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        two.get_scheduler("reduce_lr_on_plateau", None)


def test_adafactor_schedule_with_the_torch_adafactor(torch):
    model = _linear(torch)
    opt = two.torch.Adafactor(model.parameters())
    sched = two.AdafactorSchedule(opt)
    assert isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
    assert sched.get_last_lr() == [0.0]  # before any step: initial_lr
    _train(torch, model, opt, sched, steps=3)
    # the effective lr of the last step for the first parameter: max(eps2, RMS(p)) * min(1e-2, 1/sqrt(t))
    st = opt.state[next(iter(model.parameters()))]
    expect = max(1e-3, float(st["RMS"])) * min(1e-2, 1.0 / math.sqrt(3))
    assert sched.get_last_lr()[0] == pytest.approx(expect, rel=1e-12)
    # the relative step ignores the group lr the scheduler writes: same trajectory as without it
    other = _linear(torch)
    _train(torch, other, two.torch.Adafactor(other.parameters()), steps=3)
    for a, b in zip(model.parameters(), other.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="AdafactorSchedule needs"):
        two.AdafactorSchedule(two.torch.AdamW(model.parameters(), no_deprecation_warning=True))


def test_state_dicts_round_trip_and_foreign_state_is_one_error(torch):
    def make(model):
        opt = two.torch.AdamW(model.parameters(), lr=0.1, weight_decay=0.01, no_deprecation_warning=True)
        return opt, two.get_scheduler("cosine", opt, 2, 10)

    model = _linear(torch)
    opt, sched = make(model)
    _train(torch, model, opt, sched, steps=4)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    _train(torch, model, opt, sched, steps=3, seed=7)

    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    model2 = _linear(torch)
    model2.load_state_dict(saved["model"])
    opt2, sched2 = make(model2)
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    assert sched2.last_epoch == 4
    _train(torch, model2, opt2, sched2, steps=3, seed=7)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)

    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train(torch, model, sgd, steps=1)
    with pytest.raises(ValueError) as err:
        opt2.load_state_dict(sgd.state_dict())
    msg = str(err.value)
    assert "not a state of AdamW" in msg and "'betas'" in msg and "'exp_avg'" in msg
    assert "\n" not in msg


# ====================================================================== optax
@pytest.fixture(scope="module")
def jx():
    require_backend("jax")
    pytest.importorskip("optax")
    import jax
    import optax

    return jax, optax


def _optax_loop(jax, optax, tx, steps=5):
    import jax.numpy as jnp

    params = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.full(2, 0.5)}}
    x = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)

    def loss(p):
        return jnp.sum((x @ p["dense"]["kernel"] + p["dense"]["bias"]) ** 2)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return optax.apply_updates(p, u), s

    state = tx.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    return params, state


def test_optax_schedule_as_learning_rate_equals_hyper_inputs(jx):
    jax, optax = jx
    sched = optax.linear_schedule(0.1, 0.0, 10)
    p_sched, state = _optax_loop(jax, optax, two.optax.adamw(sched, weight_decay=0.01))
    assert int(state["step"]) == 5
    # the same run with the schedule values fed one by one as constants (float32 schedule values)
    import jax.numpy as jnp

    params = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.full(2, 0.5)}}
    x = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
    rule = two.AdamW(0.1, weight_decay=0.01, no_deprecation_warning=True)
    flat = {
        "dense/kernel": np.asarray(params["dense"]["kernel"], np.float32),
        "dense/bias": np.full(2, 0.5, np.float32),
    }
    st = rule.init(flat)
    xn = np.asarray(x)
    for i in range(5):
        k, b = flat["dense/kernel"], flat["dense/bias"]
        r = 2.0 * (xn @ k + b)
        g = {"dense/kernel": (xn.T @ r).astype(np.float32), "dense/bias": r.sum(0).astype(np.float32)}
        flat, st = rule.update(flat, g, st, {"lr": float(np.float32(sched(i)))})
    np.testing.assert_allclose(
        np.asarray(p_sched["dense"]["kernel"]), flat["dense/kernel"], rtol=2e-6, atol=1e-7
    )


def test_optax_inject_hyperparams_and_mask(jx):
    jax, optax = jx
    tx = optax.inject_hyperparams(two.optax.adamw)(learning_rate=0.05, weight_decay=0.5)
    p, state = _optax_loop(jax, optax, tx)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.05)
    state.hyperparams["learning_rate"] = jax.numpy.asarray(0.0)  # lr 0 now: nothing moves
    import jax.numpy as jnp

    x = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
    g = jax.grad(lambda q: jnp.sum((x @ q["dense"]["kernel"] + q["dense"]["bias"]) ** 2))(p)
    u, _ = jax.jit(tx.update)(g, state, p)
    assert all(float(jnp.max(jnp.abs(a))) == 0.0 for a in jax.tree.leaves(u))
    # with a constant lr inject_hyperparams gives the plain transformation's result (float32 betas aside)
    q, _ = _optax_loop(jax, optax, two.optax.adamw(0.05, weight_decay=0.5))
    np.testing.assert_allclose(np.asarray(p["dense"]["kernel"]), np.asarray(q["dense"]["kernel"]), rtol=1e-5)

    # mask: no decay on the bias (a callable and a pytree of bools agree): the bias follows the
    # decay-free run, the kernel the decayed one
    def mask_fn(params):
        return jax.tree_util.tree_map(lambda a: a.ndim > 1, params)

    # one step: the gradients do not depend on the decay yet
    masked, _ = _optax_loop(jax, optax, two.optax.adamw(0.05, weight_decay=0.5, mask=mask_fn), steps=1)
    tree_mask = {"dense": {"kernel": True, "bias": False}}
    masked2, _ = _optax_loop(jax, optax, two.optax.adamw(0.05, weight_decay=0.5, mask=tree_mask), steps=1)
    no_decay, _ = _optax_loop(jax, optax, two.optax.adamw(0.05, weight_decay=0.0), steps=1)
    q, _ = _optax_loop(jax, optax, two.optax.adamw(0.05, weight_decay=0.5), steps=1)
    for leaf in ("kernel", "bias"):
        np.testing.assert_array_equal(np.asarray(masked["dense"][leaf]), np.asarray(masked2["dense"][leaf]))
    np.testing.assert_allclose(
        np.asarray(masked["dense"]["bias"]), np.asarray(no_decay["dense"]["bias"]), rtol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(masked["dense"]["kernel"]), np.asarray(q["dense"]["kernel"]), rtol=1e-6
    )
    assert not np.allclose(np.asarray(masked["dense"]["bias"]), np.asarray(q["dense"]["bias"]))


X64_SCRIPT = textwrap.dedent("""
    import json, warnings
    warnings.simplefilter("ignore", FutureWarning)
    import numpy as np
    import jax, jax.numpy as jnp, optax
    import tensorweave as tw
    import tensorweave.optim.optax as twox
    from tensorweave.ir import TensorSpec, trace
    import tensorweave.ir.namespace as xp

    g = trace(lambda a, b: (a * 2, xp.astype(b, "float64") + 1.0),
              TensorSpec((3,), "int64", "a"), TensorSpec((3,), "float32", "b"))
    prog = tw.lower(g, "jax")
    a, b = prog(np.array([2**40, 1, 2], np.int64), np.ones(3, np.float32))
    tx = twox.adamw(optax.linear_schedule(0.1, 0.0, 10))
    p = {"w": jnp.ones(3)}
    s = tx.init(p)
    u, s = jax.jit(tx.update)({"w": jnp.ones(3)}, s, p)
    print(json.dumps({"int64": int(a[0]), "a": str(a.dtype), "b": str(b.dtype),
                      "default": str(jnp.array(1.0).dtype), "flag": bool(jax.config.jax_enable_x64),
                      "update": str(u["w"].dtype), "step": str(s["step"].dtype)}))
""")


def test_no_process_wide_jax_x64(jx, tmp_path):
    path = tmp_path / "x64.py"
    path.write_text(X64_SCRIPT)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {
        "int64": 2**41,
        "a": "int64",
        "b": "float64",
        "default": "float32",
        "flag": False,
        "update": "float32",
        "step": "int64",
    }


# ====================================================================== Keras 3, three backends
KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys, warnings
    warnings.simplefilter("ignore")
    import numpy as np
    import keras
    import tensorweave.optim as two
    import tensorweave.optim.keras as twk

    out = {"backend": keras.backend.backend()}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype("float32")
    y = rng.standard_normal((32, 1)).astype("float32")
    tmp = sys.argv[1]
    np_ = keras.ops.convert_to_numpy

    def model():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(1)])

    kinds = {
        "adamw": lambda: twk.AdamW(learning_rate=2.0**-7, weight_decay=0.01),
        "adafactor": lambda: twk.Adafactor(),
        "adam_weight_decay": lambda: twk.AdamWeightDecay(1e-2, weight_decay_rate=0.01),
        "create_optimizer": lambda: twk.create_optimizer(1e-2, 10, 2, weight_decay_rate=0.01)[0],
        "lambda": lambda: twk.AdamW(twk.LambdaSchedule(two.get_cosine_schedule_with_warmup(None, 2, 10), 1e-2)),
    }
    for kind, make in kinds.items():
        m = model()
        opt = make()
        m.compile(optimizer=opt, loss="mse")
        hist = m.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
        path = os.path.join(tmp, kind + ".keras")
        m.save(path)
        loaded = keras.models.load_model(path)  # no custom_objects
        same_w = all(np.array_equal(np_(a), np_(b)) for a, b in zip(m.weights, loaded.weights))
        same_opt = all(np.array_equal(a, b) for a, b in zip(opt.state_values(), loaded.optimizer.state_values()))
        m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        diff = max(float(np.max(np.abs(np_(a) - np_(b)))) for a, b in zip(m.weights, loaded.weights))
        out[kind] = {
            "is_keras": isinstance(opt, keras.optimizers.Optimizer),
            "same_type": type(loaded.optimizer) is type(opt),
            "improved": hist.history["loss"][-1] < hist.history["loss"][0],
            "same_w": same_w, "same_opt": same_opt, "continue_diff": diff,
        }

    opt, sched = twk.create_optimizer(1e-3, 100, 10)
    out["schedule_is_keras"] = isinstance(sched, keras.optimizers.schedules.LearningRateSchedule)
    out["schedule_values"] = [float(np_(sched(s))) for s in (0, 5, 10, 55, 100)]
    try:
        twk.AdamW(two.get_linear_schedule_with_warmup(None, 2, 10))
        out["multiplier"] = "accepted"
    except ValueError as e:
        out["multiplier"] = str(e)

    # one NaN gradient: skipped with skip_nonfinite (Keras global clipping on), NaN without it
    v = keras.Variable(np.ones(3, "float32"), name="w")
    opt = twk.KerasOptimizer(two.skip_nonfinite(two.AdamW(1e-2, no_deprecation_warning=True)), global_clipnorm=1.0)
    opt.apply_gradients([(keras.ops.convert_to_tensor(np.array([1.0, np.nan, 1.0], "float32")), v)])
    after_nan = np_(v).tolist()
    opt.apply_gradients([(keras.ops.convert_to_tensor(np.ones(3, "float32")), v)])
    out["skip"] = [after_nan, np_(v).tolist()]
    w = keras.Variable(np.ones(3, "float32"), name="w2")
    opt = twk.AdamW(1e-2, global_clipnorm=1.0)
    opt.apply_gradients([(keras.ops.convert_to_tensor(np.array([1.0, np.nan, 1.0], "float32")), w)])
    out["no_guard_nan"] = bool(np.isnan(np_(w)).all())
    if out["backend"] == "jax":
        import jax, jax.numpy as jnp
        out["x64"] = [str(jnp.array(1.0).dtype), bool(jax.config.jax_enable_x64)]
    print("RESULT " + json.dumps(out))
""")

KERAS_NEEDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


@pytest.mark.parametrize("keras_backend", ["jax", "torch", "tensorflow"])
def test_keras_optimizers_on_every_keras_backend(keras_backend, tmp_path):
    require_backend(KERAS_NEEDS[keras_backend])
    pytest.importorskip("keras")
    script = tmp_path / "run.py"
    script.write_text(KERAS_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND=keras_backend, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=600, env=env
    )
    assert out.returncode == 0, out.stderr[-4000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    got = json.loads(line[len("RESULT ") :])
    assert got["backend"] == keras_backend
    for kind in ("adamw", "adafactor", "adam_weight_decay", "create_optimizer", "lambda"):
        r = got[kind]
        assert r["is_keras"] and r["same_type"] and r["improved"], (kind, r)
        assert r["same_w"] and r["same_opt"] and r["continue_diff"] == 0.0, (kind, r)
    assert got["schedule_is_keras"]
    # WarmUp(1e-3, PolynomialDecay(1e-3, 90, 0.0)) at 0, 5, 10, 55, 100
    np.testing.assert_allclose(got["schedule_values"], [0.0, 5e-4, 1e-3, 5e-4, 0.0], rtol=1e-12, atol=1e-15)
    assert "multiplier schedule" in got["multiplier"] and "initial_learning_rate" in got["multiplier"]
    after_nan, after_ok = got["skip"]
    assert after_nan == [1.0, 1.0, 1.0] and all(0.98 < v < 1.0 for v in after_ok)
    assert got["no_guard_nan"]
    if keras_backend == "jax":
        assert got["x64"] == ["float32", False]


def test_keras_argument_names():
    """Keras' weight_decay and Transformers' weight_decay_rate are one setting (in-process: TF)."""
    require_backend("tensorflow")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("Keras runs another backend in this process")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = two.keras.AdamW(learning_rate=1e-3, weight_decay=0.1)
        b = two.keras.AdamW(1e-3, weight_decay_rate=0.1)
    assert a.rule.weight_decay == b.rule.weight_decay == 0.1
    assert two.keras.AdamW.from_config(a.get_config()).rule.weight_decay == 0.1
    with pytest.raises(ValueError, match="same setting"):
        two.keras.AdamW(weight_decay=0.1, weight_decay_rate=0.2)
    assert two.keras.AdamWeightDecay().rule.weight_decay_order == "before"
    with pytest.raises(ValueError, match="amsgrad"):
        two.keras.AdamWeightDecay(amsgrad=True)
    opt, sched = two.keras.create_optimizer(1e-3, 10, 0)
    assert isinstance(sched, two.keras.PolynomialDecay) and opt.rule.weight_decay == 0.0
    assert isinstance(two.keras.create_optimizer(1e-3, 10, 2)[1], two.keras.WarmUp)
