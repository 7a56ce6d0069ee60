"""Block-quantized weights end to end (issue #16): GGUF Q4_0 / Q4_1 / Q8_0 matrices kept in their
blocks (``from_gguf(..., quantized=True)``), the ``quantized_matmul`` / ``dequantize_blocks`` ops
on every backend, ONNX Runtime's ``MatMulNBits`` for constant weights, generation and export.

The reference is exact (dequantise, then matmul): a quantized model's numpy logits equal those of
the same file loaded dequantised; the other backends are held to the float32 model tolerance of
spec/models.md (they dequantise in float32 too, or, on onnx, MatMulNBits at accuracy level 0 computes in
float32). The op-level parity cases are in tests/op_cases.py (``quant_cases``)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models.weights import BlockQuantized
from tensorweave.ir import TensorSpec, trace
from tensorweave.ir import namespace as xp
from tensorweave.ir.ops.quant import quantized_matmul
from tensorweave.models import from_gguf, load
from tensorweave.models.gguf import block_quantized

from conftest import BACKENDS, IN_CI, require_backend

if IN_CI:
    import gguf
    import torch
    import transformers
else:
    gguf = pytest.importorskip("gguf")
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

ATOL = RTOL = 1e-4  # spec/models.md: float32 parity of random tiny decoders
TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [chr(c) for c in range(ord("a"), ord("a") + 29)]
KINDS = ("Q4_0", "Q4_1", "Q8_0")


def _quantize(arr: np.ndarray, kind: str) -> np.ndarray:
    return gguf.quants.quantize(arr, gguf.GGMLQuantizationType[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_dequantise_exactly_as_the_gguf_package(kind):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 96)).astype(np.float32)
    w[2, 32:64] = 0.25  # a constant block: Q4_1's scale is 0, its minimum carries the value
    data = _quantize(w, kind)
    q = block_quantized(data, kind, [6, 96])
    expect = gguf.quants.dequantize(data, gguf.GGMLQuantizationType[kind]).reshape(6, 96)
    np.testing.assert_array_equal(q.dequantize(), expect)
    assert q.shape == (6, 96) and q.nbytes < w.nbytes / 3
    perm = np.array([3, 0, 5, 1, 4, 2])
    np.testing.assert_array_equal(q.rows(perm).dequantize(), expect[perm])


def test_block_quantized_refuses_inconsistent_arrays():
    packed = np.zeros((2, 3, 4), np.uint32)
    with pytest.raises(tw.IRError, match="scales and offsets must be float32"):
        BlockQuantized(packed, np.zeros((2, 2), np.float32), np.zeros((2, 3), np.float32), 4)
    with pytest.raises(tw.IRError, match="4- or 8-bit"):
        BlockQuantized(packed, np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32), 3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random tiny Llama (seeded) written as a GGUF file: Q4_1 layers, Q8_0 embedding (tied head),
    F32 norms, like the packaged SmolLM2 file; also loaded dequantised."""
    path = str(tmp_path_factory.mktemp("quant") / "tiny-q4_1.gguf")
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            vocab_size=len(TOKENS),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            rope_theta=10000.0,
            rms_norm_eps=1e-5,
            tie_word_embeddings=True,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=2,
            initializer_range=0.2,
        )
    ).eval()
    w = gguf.GGUFWriter(path, "llama")
    for key, value in (
        ("block_count", 2),
        ("embedding_length", 64),
        ("feed_forward_length", 128),
        ("attention.head_count", 4),
        ("attention.head_count_kv", 2),
        ("context_length", 128),
        ("vocab_size", len(TOKENS)),
    ):
        w.add_uint32(f"llama.{key}", value)
    w.add_float32("llama.rope.freq_base", 10000.0)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(TOKENS)
    w.add_token_types([3, 3, 3] + [1] * (len(TOKENS) - 3))
    w.add_token_merges([])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    layer = {
        "input_layernorm.weight": "attn_norm.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    for name, t in hf.state_dict().items():
        if name == "lm_head.weight":
            continue
        arr = t.numpy().copy()
        if name.startswith("model.layers."):
            _, _, i, rest = name.split(".", 3)
            gname = f"blk.{i}.{layer[rest]}"
            heads = {"self_attn.q_proj.weight": 4, "self_attn.k_proj.weight": 2}.get(rest)
            if heads:  # llama.cpp's interleaved rotary rows
                arr = arr.reshape(heads, 2, -1, 64).swapaxes(1, 2).reshape(arr.shape)
        else:
            gname = top[name]
        if arr.ndim == 2:
            kind = "Q8_0" if gname == "token_embd.weight" else "Q4_1"
            qt = gguf.GGMLQuantizationType[kind]
            w.add_tensor(gname, _quantize(arr, kind), raw_shape=_quantize(arr, kind).shape, raw_dtype=qt)
        else:
            w.add_tensor(gname, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, from_gguf(path, quantized=True), from_gguf(path)


IDS = np.array([[1, 5, 9, 13, 17, 21, 25], [2, 2, 1, 6, 10, 14, 18]], np.int64)
MASK = np.array([[1] * 7, [0, 0, 1, 1, 1, 1, 1]], np.int64)


def test_the_quantized_model_keeps_its_blocks_and_equals_its_dequantised_twin(tiny):
    _, mq, mf = tiny
    kinds = {k: type(v).__name__ for k, v in mq.params.items()}
    assert kinds["model.layers.0.mlp.up_proj.weight"] == "BlockQuantized"
    assert kinds["model.embed_tokens.weight"] == "BlockQuantized"
    assert kinds["model.norm.weight"] == "ndarray"
    for k, v in mq.params.items():
        np.testing.assert_array_equal(np.asarray(v), mf.params[k], err_msg=k)
    held = sum(v.nbytes for v in mq.params.values())
    assert held < 0.25 * sum(v.nbytes for v in mf.params.values())
    np.testing.assert_allclose(
        mq(IDS, MASK, backend="numpy")["logits"],
        mf(IDS, MASK, backend="numpy")["logits"],
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_quantized_logits_on_every_backend(tiny, backend):
    require_backend(backend)
    _, mq, mf = tiny
    ref = mf(IDS, MASK, backend="numpy")["logits"]
    out = mq(IDS, MASK, backend=backend)["logits"]
    real = MASK.astype(bool)
    np.testing.assert_allclose(out[real], ref[real], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_quantized_greedy_tokens_equal_the_dequantised_model(tiny, backend):
    require_backend(backend)
    _, mq, mf = tiny
    ids = IDS[:1]
    want = tw.generate(mf, ids, max_new_tokens=6, do_sample=False, backend="numpy", min_new_tokens=6)
    got = tw.generate(mq, ids, max_new_tokens=6, do_sample=False, backend=backend, min_new_tokens=6)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def _op_types(model) -> list[str]:
    ops = [n.op_type for n in model.graph.node]
    for n in model.graph.node:
        for a in n.attribute:
            if a.g is not None:
                ops += [m.op_type for m in a.g.node]
    return ops


def test_onnx_runs_constant_quantized_weights_through_matmulnbits(tiny):
    require_backend("onnx")
    _, mq, _ = tiny
    prog = mq.program("onnx")
    ops = _op_types(prog.model)
    # 7 Q4_1 Linear weights per layer; the tied Q8_0 head is dequantised once to a float32 Gemm
    assert ops.count("MatMulNBits") == 2 * 7 and ops.count("Gemm") == 1
    assert not [
        t.name for t in prog.model.graph.initializer if tuple(t.dims) in ((64, 64), (128, 64), (64, 128))
    ]


@pytest.mark.parametrize(
    "bits,zero_point,offsets", [(4, 0, True), (4, 8, False), (8, 128, False), (8, 3, True)]
)
def test_matmulnbits_equals_the_reference(bits, zero_point, offsets):
    """A constant weight: MatMulNBits for 4 bits (+ the block-sum correction for offsets), a float32
    Gemm on the weight dequantised at lowering for 8 bits; within float32 rounding of
    dequantise-then-matmul (accuracy level 0 computes in float32)."""
    require_backend("onnx")
    rng = np.random.default_rng(bits + zero_point)
    packed = rng.integers(0, 2**32, (48, 3, bits), dtype=np.uint64).astype(np.uint32)
    scales = rng.random((48, 3), dtype=np.float32) * 0.1
    offs = rng.standard_normal((48, 3)).astype(np.float32) * 0.1 if offsets else np.zeros((48, 3), np.float32)

    def f(x):
        return xp.quantized_matmul(
            x, xp.asarray(packed), xp.asarray(scales), xp.asarray(offs), bits=bits, zero_point=zero_point
        )

    graph = trace(f, TensorSpec((2, "sequence", 96), "float32"))
    prog = tw.backends.registry.lower(graph, "onnx")
    ops = _op_types(prog.model)
    assert ("MatMulNBits" in ops) == (bits == 4) and ("Gemm" in ops) == (bits == 8)
    x = rng.standard_normal((2, 5, 96)).astype(np.float32)
    out = prog(x)
    out = out[0] if isinstance(out, (list, tuple)) else out
    np.testing.assert_allclose(
        out, quantized_matmul(x, packed, scales, offs, bits, zero_point), rtol=1e-5, atol=1e-4
    )


def test_quantized_export_runs_in_plain_onnxruntime(tiny, tmp_path):
    require_backend("onnx")
    import onnxruntime as ort

    _, mq, mf = tiny
    path = str(tmp_path / "q.onnx")
    tw.export(mq, "causal-lm", "onnx", path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {i.name: {"input_ids": IDS, "attention_mask": MASK}[i.name] for i in sess.get_inputs()}
    logits = sess.run(None, feeds)[0]
    ref = mf(IDS, MASK, backend="numpy")["logits"]
    real = MASK.astype(bool)
    np.testing.assert_allclose(logits[real], ref[real], rtol=RTOL, atol=ATOL)
    assert sum(1 for n in __import__("onnx").load(path).graph.node if n.op_type == "MatMulNBits") == 14


def test_quantized_is_only_for_gguf_files(tmp_path):
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        load(str(tmp_path), quantized=True)
    with pytest.raises(ModelLoadError, match="quantized must be True or False"):
        from_gguf(str(tmp_path / "x.gguf"), quantized="yes")


def test_quantized_generation_loop_exports_and_runs_in_plain_onnxruntime(tiny, tmp_path):
    """The whole decode loop with MatMulNBits inside: a stock onnxruntime session gives the tokens
    of ``tw.generate`` on the dequantised model."""
    require_backend("onnx")
    import onnxruntime as ort

    _, mq, mf = tiny
    path = tw.export_generation(mq, str(tmp_path / "loop.onnx"), max_new_tokens=8)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = sess.run(
        None, {"input_ids": IDS, "attention_mask": MASK, "max_new_tokens": np.asarray(6, np.int64)}
    )[0]
    want = np.asarray(tw.generate(mf, IDS, MASK, backend="numpy", max_new_tokens=6))
    # the loop's buffer holds prompt + cap (8) tokens; the 2 past max_new_tokens are padding (2)
    np.testing.assert_array_equal(out[:, : want.shape[1]], want)
    assert (out[:, want.shape[1] :] == 2).all()


def test_generation_programs_run_the_quantized_blocks(tiny):
    """Fused and step-wise generation bind the blocks (they once took ``np.asarray`` of every
    weight and so generated with dequantised float32 copies): every onnx program they lower holds
    MatMulNBits and no float32 copy of a Q4_1 weight."""
    require_backend("onnx")
    from tensorweave.generation.programs import PROGRAMS

    _, mq, _ = tiny
    PROGRAMS.clear(mq)
    for fused in (True, False):
        tw.generate(mq, IDS[:1], backend="onnx", max_new_tokens=3, trace=fused)
    programs = [p for p in PROGRAMS._store(mq).values() if hasattr(p, "model")]
    # the fused loop and the step-wise forward read the weights (the step-wise token chooser none)
    assert sum("MatMulNBits" in _op_types(p.model) for p in programs) >= 2
    for prog in programs:
        assert not [t.name for t in prog.model.graph.initializer if tuple(t.dims) in ((128, 64), (64, 128))]
