"""Backend-specific behaviour: native arrays in and out, symbolic sizes, options, errors,
exports that reload in a fresh process, ONNX validity, the Flax wrapper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorweave as tw
import tensorweave.ir.namespace as xp
from tensorweave.ir import IRError, TensorSpec, random

from conftest import require_backend


def small_graph():
    def f(x, w, mask):
        h = xp.tanh(x @ w)
        s = xp.softmax(xp.where(mask[:, None, :] > 0, h, -1e9), axis=-1)
        v, i = xp.top_k(s, 2)
        return {"probs": s, "top": v, "idx": i}

    return tw.trace(
        f,
        TensorSpec(("batch", "seq", 4), "float32", "x"),
        TensorSpec((4, 4), "float32", "w"),
        TensorSpec(("batch", 4), "int64", "mask"),
    )


def inputs(batch, seq, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, 4), np.int64)
    mask[0, -1] = 0
    return [
        rng.standard_normal((batch, seq, 4)).astype(np.float32),
        rng.standard_normal((4, 4)).astype(np.float32),
        mask,
    ]


GRAPH = small_graph()


def check_against_numpy(out, args):
    ref = tw.lower(GRAPH, "numpy")(*args)
    for o, r in zip(out, ref):
        np.testing.assert_allclose(np.asarray(o), r, rtol=1e-5, atol=1e-6)


def test_numpy_in_numpy_out_at_two_sizes(framework_backend):
    prog = tw.lower(GRAPH, backend=framework_backend)
    for b, s in [(1, 3), (3, 5)]:
        args = inputs(b, s)
        out = prog(*args)
        assert all(isinstance(o, np.ndarray) for o in out)
        check_against_numpy(out, args)
    out = prog(x=inputs(2, 2)[0], w=inputs(2, 2)[1], mask=inputs(2, 2)[2])  # by name
    assert out[0].shape == (2, 2, 4)


def to_native(backend, arr):
    if backend == "torch":
        import torch

        return torch.from_numpy(arr)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.constant(arr)
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.asarray(arr)
    import onnxruntime as ort

    return ort.OrtValue.ortvalue_from_numpy(arr)


def test_native_in_native_out(framework_backend):
    prog = tw.lower(GRAPH, backend=framework_backend)
    args = inputs(2, 3)
    out = prog(*[to_native(framework_backend, a) for a in args])
    native_type = type(to_native(framework_backend, args[0]))
    assert all(isinstance(o, native_type) or type(o).__name__ in ("EagerTensor", "ArrayImpl") for o in out)
    check_against_numpy([o.numpy() if hasattr(o, "numpy") else np.asarray(o) for o in out], args)


def test_uint32_rng_bits_native(framework_backend):
    g = tw.trace(lambda k: random.random_bits(k, (4,)), TensorSpec((2,), "uint32", "key"))
    prog = tw.lower(g, backend=framework_backend)
    expect = random.random_bits(random.key(11), (4,))
    np.testing.assert_array_equal(prog(random.key(11)), expect)
    if framework_backend == "torch":
        import torch

        out = prog(torch.from_numpy(random.key(11).astype(np.int64)).to(torch.uint32))
        assert out.dtype == torch.uint32 and out.to(torch.int64).tolist() == expect.astype(np.int64).tolist()


def test_bad_inputs_fail_before_work(framework_backend):
    prog = tw.lower(GRAPH, backend=framework_backend)
    x, w, m = inputs(2, 3)
    with pytest.raises(IRError, match="input 'x' has dtype float64, expected float32"):
        prog(x.astype(np.float64), w, m)
    with pytest.raises(IRError, match="input 'mask' axis 0 has size 3 but symbol 'batch' is already 2"):
        prog(x, w, np.ones((3, 4), np.int64))
    with pytest.raises(IRError, match="rank 2 but rank 3"):
        prog(x[0], w, m)
    with pytest.raises(IRError, match="takes the option|takes no options"):
        tw.lower(GRAPH, backend=framework_backend, fast=True)


def test_tensorflow_one_concrete_function_and_xla():
    require_backend("tensorflow")
    prog = tw.lower(GRAPH, backend="tensorflow")
    for b, s in [(1, 2), (2, 5), (4, 3)]:
        prog(*inputs(b, s))
    assert prog.fn.experimental_get_tracing_count() == 1
    xla = tw.lower(GRAPH, backend="tensorflow", jit_compile=True)
    check_against_numpy(xla(*inputs(2, 3)), inputs(2, 3))


def test_torch_program_is_generated_source():
    require_backend("torch")
    prog = tw.lower(GRAPH, backend="torch")
    assert (
        "def graph_fn(" in prog.source
        and "torch.matmul" in prog.source
        and "s_batch = x0.shape[0]" in prog.source
    )


def test_onnx_model_is_valid_standard_onnx(tmp_path):
    require_backend("onnx")
    import onnx

    from tensorweave.backends.onnx import save_model, to_model_proto

    model = to_model_proto(GRAPH)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert {op.domain for op in model.opset_import} == {""}
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "seq", 4]
    # the external-data switch, with a lowered threshold (weights of 100+ elements are initializers)
    from tensorweave.ir.trace import constant

    big = tw.trace(
        lambda x: x @ constant(np.ones((16, 16), np.float32), name="w"), TensorSpec(("b", 16), "float32")
    )
    path = save_model(to_model_proto(big), str(tmp_path / "ext.onnx"), external_data_threshold=1)
    assert os.path.exists(path + ".data")
    reloaded = onnx.load(path)
    onnx.checker.check_model(path, full_check=True)
    assert reloaded.graph.node
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_onnx_ortvalue_outputs_stay_on_device():
    require_backend("onnx")
    import onnxruntime as ort

    prog = tw.lower(GRAPH, backend="onnx")
    out = prog(*[ort.OrtValue.ortvalue_from_numpy(a) for a in inputs(2, 3)])
    assert all(isinstance(o, ort.OrtValue) for o in out)


def test_flax_module_params_and_grad():
    require_backend("jax")
    import jax
    import jax.numpy as jnp

    from tensorweave.backends.jax.flax_module import TracedModule
    from tensorweave.ir.trace import constant

    W = np.arange(6, dtype=np.float32).reshape(3, 2) / 10
    g = tw.trace(lambda x: xp.tanh(x @ constant(W, name="dense.weight")), TensorSpec(("b", 3), "float32"))
    m = TracedModule(g)
    x = np.ones((2, 3), np.float32)
    params = m.init(jax.random.PRNGKey(0), x)
    assert list(params["params"]) == ["dense.weight"]
    np.testing.assert_allclose(m.apply(params, x), tw.lower(g, "numpy")(x), rtol=1e-6)
    grad = jax.grad(lambda p: jnp.sum(m.apply(p, x)))(params)["params"]["dense.weight"]
    expect = np.ones((3, 1)) * (1 - np.tanh(x @ W) ** 2).sum(0)[None, :]
    np.testing.assert_allclose(grad, expect, rtol=1e-5)


RELOAD = textwrap.dedent("""
    import json, sys
    import numpy as np
    data = np.load(sys.argv[1])
    args = [data["x"], data["w"], data["mask"]]
    out = {}
    which = sys.argv[2:]
    if "torch" in which:
        import torch
        m = torch.export.load(data["torch"].item()).module()
        out["torch"] = [o.numpy().tolist() for o in m(*[torch.from_numpy(a) for a in args])]
    if "tensorflow" in which:
        import tensorflow as tf
        m = tf.saved_model.load(data["tensorflow"].item())
        out["tensorflow"] = [o.numpy().tolist() for o in m.fn(*args)]
    if "jax" in which:
        import jax
        jax.config.update("jax_enable_x64", True)
        from jax import export
        e = export.deserialize(bytearray(open(data["jax"].item(), "rb").read()))
        out["jax"] = [np.asarray(o).tolist() for o in e.call(*args)]
    if "onnx" in which:
        import onnxruntime as ort
        s = ort.InferenceSession(data["onnx"].item(), providers=["CPUExecutionProvider"])
        out["onnx"] = [o.tolist() for o in s.run(None, {"x": args[0], "w": args[1], "mask": args[2]})]
    print("RESULT" + json.dumps(out))
""")


def test_exports_reload_in_a_fresh_process_at_new_sizes(tmp_path):
    names = [b for b in ("torch", "tensorflow", "jax", "onnx") if tw.backends.is_installed(b)]
    if os.environ.get("CI") and len(names) < 4:
        pytest.fail("CI needs every backend")
    paths = {
        "torch": tmp_path / "m.pt2",
        "tensorflow": tmp_path / "saved",
        "jax": tmp_path / "m.stablehlo",
        "onnx": tmp_path / "m.onnx",
    }
    for name in names:
        assert tw.lower(GRAPH, backend=name).export(str(paths[name])) == str(paths[name])
    args = inputs(5, 7, seed=3)  # neither the traced nor the torch example sizes
    np.savez(tmp_path / "in.npz", x=args[0], w=args[1], mask=args[2], **{n: str(paths[n]) for n in names})
    script = tmp_path / "reload.py"
    script.write_text(RELOAD)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "in.npz"), *names],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    ref = tw.lower(GRAPH, "numpy")(*args)
    for name in names:
        for o, r in zip(result[name], ref):
            np.testing.assert_allclose(np.asarray(o, dtype=r.dtype), r, rtol=1e-5, atol=1e-6, err_msg=name)


def test_torch_export_keeps_control_flow(tmp_path):
    """while_loop lowers to torch's while_loop higher-order op in the export flavour."""
    require_backend("torch")
    import torch

    g = tw.trace(
        lambda x: xp.while_loop(lambda v: xp.sum(v) < 10.0, lambda v: v * 2.0, x), TensorSpec((2,), "float32")
    )
    path = tw.lower(g, "torch").export(str(tmp_path / "loop.pt2"))
    assert [p.name for p in tmp_path.iterdir()] == ["loop.pt2"]
    out = torch.export.load(path).module()(torch.ones(2))
    np.testing.assert_allclose(out[0].numpy(), [8.0, 8.0])


def test_jax_export_keeps_symbols_and_control_flow(tmp_path):
    require_backend("jax")
    g = tw.trace(
        lambda x: xp.while_loop(lambda v: xp.sum(v) < 10.0, lambda v: v * 2.0, x),
        TensorSpec(("n",), "float32"),
    )
    path = tw.lower(g, "jax").export(str(tmp_path / "loop.stablehlo"))
    from jax import export

    e = export.deserialize(bytearray(open(path, "rb").read()))
    np.testing.assert_allclose(np.asarray(e.call(np.ones(3, np.float32))[0]), [4.0, 4.0, 4.0])


def test_torch_compile_option_matches_eager():
    """torch.compile (inductor, CPU) over the generated function; dynamic shapes keep one program."""
    require_backend("torch")
    g = tw.trace(
        lambda x: xp.tanh(x) * 2.0 + xp.sum(x, axis=-1, keepdims=True), TensorSpec(("b", 4), "float32")
    )
    prog = tw.lower(g, "torch", compile=True)
    assert prog.compiled
    for b in (3, 5):
        x = np.random.default_rng(b).random((b, 4)).astype(np.float32)
        np.testing.assert_allclose(prog(x), tw.lower(g, "numpy")(x), rtol=1e-5, atol=1e-6)
