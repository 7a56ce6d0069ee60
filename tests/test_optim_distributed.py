"""Our optimizers under the frameworks' own distributed engines reach the single-process parameters.

(a) torch DDP on 2 CPU processes (gloo, torch.multiprocessing.spawn) with tensorweave.optim.torch.AdamW;
(b) JAX on 2 host devices (XLA_FLAGS=--xla_force_host_platform_device_count=2, in a subprocess)
    with params and optimizer state sharded over a mesh, using tensorweave.optim.optax.adamw;
(c) tf.distribute.MirroredStrategy over 2 logical CPUs (in a subprocess) with model.fit and
    tensorweave.optim.keras.AdamW.
Each run averages the gradients of two half batches where the single-process run takes the mean over
the full batch: the same math up to float32 summation order, so the parameters agree within 1e-6
(relative, with a 1e-7 absolute floor for entries near 0) after a few steps.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import require_backend

pytestmark = pytest.mark.xdist_group("distributed")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL, ATOL = 1e-6, 1e-7
STEPS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_script(source: str, out_path: str, env_extra: dict, timeout: int = 240) -> dict:
    env = {**os.environ, **env_extra, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), out_path],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out_path) as data:
        return {k: data[k] for k in data.files}


# ---------------------------------------------------------------------- (a) torch DDP
def _torch_model():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _torch_data():
    import torch

    g = torch.Generator().manual_seed(1)
    return torch.randn(STEPS, 16, 6, generator=g), torch.randn(STEPS, 16, 2, generator=g)


def _torch_train(model, batches, rank: int = 0, world: int = 1):
    import torch

    import tensorweave.optim as two

    opt = two.torch.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1, no_deprecation_warning=True)
    xs, ys = batches
    per = xs.shape[1] // world
    for x, y in zip(xs, ys):
        x, y = x[rank * per : (rank + 1) * per], y[rank * per : (rank + 1) * per]
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return opt


def _ddp_worker(rank: int, world: int, port: int, out_path: str) -> None:
    import torch
    import torch.distributed as dist

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = torch.nn.parallel.DistributedDataParallel(_torch_model())
        opt = _torch_train(model, _torch_data(), rank, world)
        if rank == 0:
            arrays = {f"p{i}": p.detach().numpy() for i, p in enumerate(model.module.parameters())}
            arrays["step"] = np.asarray(int(opt.state[next(model.module.parameters())]["step"]))
            np.savez(out_path, **arrays)
        # both ranks tear down together: a rank that destroys its gloo group while the other still
        # works can abort in gloo's teardown ("terminate called without an active exception")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_torch_ddp_two_processes(tmp_path):
    require_backend("torch")
    import torch.multiprocessing as mp

    out = str(tmp_path / "ddp.npz")
    mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    with np.load(out) as data:
        got = {k: data[k] for k in data.files}
    model = _torch_model()
    _torch_train(model, _torch_data())
    assert int(got["step"]) == STEPS
    for i, p in enumerate(model.parameters()):
        np.testing.assert_allclose(
            got[f"p{i}"], p.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=f"param {i}"
        )
    # and the optimizer did move the parameters
    assert not np.allclose(got["p0"], _torch_model()[0].weight.detach().numpy())


# ---------------------------------------------------------------------- (b) JAX, 2 host devices
JAX_SCRIPT = """
import sys
import numpy as np
import jax, jax.numpy as jnp, optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import tensorweave.optim as two

assert len(jax.devices()) == 2, jax.devices()
rng = np.random.default_rng(0)
params0 = {"dense": {"kernel": rng.standard_normal((8, 4)).astype(np.float32),
                     "bias": rng.standard_normal(4).astype(np.float32)}}
xs = rng.standard_normal((STEPS, 16, 8)).astype(np.float32)
ys = rng.standard_normal((STEPS, 16, 4)).astype(np.float32)
tx = two.optax.adamw(1e-2, weight_decay=0.1)

def loss(p, x, y):
    return jnp.mean((jnp.tanh(x @ p["dense"]["kernel"] + p["dense"]["bias"]) - y) ** 2)

@jax.jit
def step(p, s, x, y):
    u, s = tx.update(jax.grad(loss)(p, x, y), s, p)
    return optax.apply_updates(p, u), s

def train(p, put_batch):
    s = tx.init(p)
    for x, y in zip(xs, ys):
        p, s = step(p, s, put_batch(x), put_batch(y))
    return p, s

mesh = Mesh(np.array(jax.devices()), ("d",))
shard_rows = NamedSharding(mesh, P("d"))           # kernel rows and the batch split over the 2 devices
replicated = NamedSharding(mesh, P())
sharded = {"dense": {"kernel": jax.device_put(params0["dense"]["kernel"], shard_rows),
                     "bias": jax.device_put(params0["dense"]["bias"], replicated)}}
p_sh, s_sh = train(sharded, lambda a: jax.device_put(a, shard_rows))
single = jax.tree.map(lambda a: jax.device_put(a, jax.devices()[0]), params0)
p_1, _ = train(single, lambda a: jax.device_put(a, jax.devices()[0]))
kernel_devices = len(p_sh["dense"]["kernel"].sharding.device_set)
state_spec = s_sh["exp_avg"]["dense/kernel"].sharding.spec
np.savez(sys.argv[1], sh_kernel=np.asarray(p_sh["dense"]["kernel"]), sh_bias=np.asarray(p_sh["dense"]["bias"]),
         one_kernel=np.asarray(p_1["dense"]["kernel"]), one_bias=np.asarray(p_1["dense"]["bias"]),
         kernel_devices=np.asarray(kernel_devices), state_sharded=np.asarray(state_spec == P("d")),
         moved=np.asarray(not np.allclose(np.asarray(p_1["dense"]["kernel"]), params0["dense"]["kernel"])),
         step=np.asarray(int(s_sh["step"])))
""".replace("STEPS", str(STEPS))


def test_jax_two_host_devices_sharded(tmp_path):
    require_backend("jax")
    got = _run_script(
        JAX_SCRIPT,
        str(tmp_path / "jax.npz"),
        {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"},
    )
    assert int(got["kernel_devices"]) == 2 and bool(got["state_sharded"])  # params and state really sharded
    assert bool(got["moved"]) and int(got["step"]) == STEPS
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(got[f"sh_{name}"], got[f"one_{name}"], rtol=RTOL, atol=ATOL, err_msg=name)


# ---------------------------------------------------------------------- (c) MirroredStrategy
TF_SCRIPT = """
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import tensorweave.optim as two

rng = np.random.default_rng(0)
x = rng.standard_normal((STEPS * 16, 6)).astype(np.float32)
y = rng.standard_normal((STEPS * 16, 2)).astype(np.float32)

def build():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])
    m.compile(optimizer=two.keras.AdamW(2.0 ** -7, weight_decay_rate=0.1), loss="mse")
    return m

def data():
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
with strategy.scope():
    mirrored = build()
initial = [v.numpy() for v in mirrored.trainable_variables]
mirrored.fit(strategy.experimental_distribute_dataset(data()), epochs=1, verbose=0)
single = build()
single.fit(data(), epochs=1, verbose=0)
out = {}
for i, (a, b, c) in enumerate(zip(mirrored.trainable_variables, single.trainable_variables, initial)):
    out[f"m{i}"], out[f"s{i}"], out[f"i{i}"] = a.numpy(), b.numpy(), c
out["iterations"] = np.asarray(int(mirrored.optimizer.iterations.numpy()))
out["mirrored_slots"] = np.asarray(sum("Mirrored" in type(v.value).__name__ for v in mirrored.optimizer.variables))
np.savez(sys.argv[1], **out)
""".replace("STEPS", str(STEPS))


def test_keras_mirrored_strategy_two_logical_cpus(tmp_path):
    require_backend("tensorflow")
    got = _run_script(TF_SCRIPT, str(tmp_path / "tf.npz"), {"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert int(got["iterations"]) == STEPS
    assert int(got["mirrored_slots"]) > 0  # the optimizer state lives in mirrored variables
    n = sum(1 for k in got if k.startswith("m") and k[1:].isdigit())
    assert n == 4
    for i in range(n):
        np.testing.assert_allclose(got[f"m{i}"], got[f"s{i}"], rtol=RTOL, atol=ATOL, err_msg=f"variable {i}")
        assert not np.allclose(got[f"m{i}"], got[f"i{i}"])
