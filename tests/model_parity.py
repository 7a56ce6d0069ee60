"""What the model parity tests (tests/test_models_*.py) share: comparing tensorweave's outputs with
transformers' PyTorch models (spec/models.md, "Parity with transformers"), building the seeded
reference cases once, the live / ``save_pretrained`` round trip, the ONNX export-and-validate
step and the export folder read back, and the CLIP-like text / image inputs.

Imported as ``from model_parity import ...`` (like tiny_lm.py). torch and transformers are
imported inside the helpers only, so that a test module's own ``importorskip`` (outside CI)
decides whether it runs; no helper skips."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

import tensorweave as tw
from tensorweave.models import from_pretrained, from_transformers

ATOL = RTOL = 1e-5


def assert_close(actual: Any, expected: Any, atol: float = ATOL, rtol: float = RTOL) -> None:
    """``np.testing.assert_allclose`` of the two as numpy arrays (default atol = rtol = 1e-5)."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=rtol)


# ------------------------------------------------------------------ transformers' side
def torch_outputs(out: Any, keys: Iterable[str]) -> dict:
    """A transformers output (run with ``output_hidden_states=True``) as numpy: each of ``keys``
    that it has, and ``hidden_states`` as a list."""
    ref = {k: out[k].numpy() for k in keys if out.get(k) is not None}
    ref["hidden_states"] = [h.numpy() for h in out.hidden_states]
    return ref


def build_cases(
    types: Iterable[str],
    heads_of: Callable[[str], Iterable[str]],
    hf_model: Callable[[str, str], Any],
    reference: Callable[[Any, str, str], dict],
) -> dict:
    """``(type, head) -> (transformers model, reference outputs)`` for every type and each of its
    heads: ``hf_model(type, head)`` and ``reference(model, type, head)``. Meant for a module- or
    session-scoped fixture (the models are built once)."""
    out = {}
    for name in types:
        for head in heads_of(name):
            hf = hf_model(name, head)
            out[name, head] = (hf, reference(hf, name, head))
    return out


def perturb_batchnorm(model: Any) -> None:
    """Seeded-by-the-caller perturbation of every ``BatchNorm2d`` (which starts as the identity):
    running means N(0, 0.5), variances U(0.5, 2), weights N(1, 0.3), biases N(0, 0.3)."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1.0, 0.3)
                m.bias.normal_(0.0, 0.3)


def perturb_parameters(model: Any) -> Any:
    """Seeded noise (0.05 N(0, 1), generator seed 1) added to every parameter (norm weights start
    at one, biases and some tensors at zero: a wrong bias or norm could go unnoticed); returns
    the model."""
    import torch

    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


# ------------------------------------------------------------------ comparisons
def check_outputs(
    out: dict, ref: dict, tol: float = ATOL, *, layers: int | None = None, nonzero: bool = False
) -> float:
    """Our outputs against transformers' ``ref`` (as from :func:`torch_outputs`): the same output
    names, every output and every hidden state close (atol = rtol = ``tol``), as many hidden
    states (``layers`` of them where given). ``nonzero``: each reference output also exceeds
    1e-2 somewhere (the comparison is not between near-zeros). Returns the largest absolute
    error."""
    assert sorted(k for k in out if k != "hidden_states") == sorted(k for k in ref if k != "hidden_states")
    worst = 0.0
    for k in ref:
        if k != "hidden_states":
            if nonzero:
                assert np.abs(ref[k]).max() > 1e-2
            assert_close(out[k], ref[k], tol, tol)
            worst = max(worst, float(np.abs(np.asarray(out[k]) - ref[k]).max()))
    assert len(out["hidden_states"]) == len(ref["hidden_states"])
    if layers is not None:
        assert len(ref["hidden_states"]) == layers
    for ours, theirs in zip(out["hidden_states"], ref["hidden_states"], strict=True):
        assert_close(ours, theirs, tol, tol)
        worst = max(worst, float(np.abs(np.asarray(ours) - theirs).max()))
    return worst


def check_backend_outputs(out: dict, ref: dict, tol: float = ATOL) -> None:
    """A forward without hidden states on some backend: exactly ``ref``'s outputs (less
    ``hidden_states``), each close to it (atol = rtol = ``tol``)."""
    assert sorted(out) == sorted(k for k in ref if k != "hidden_states")
    for k in out:
        assert_close(out[k], ref[k], tol, tol)


def check_live_and_saved(
    hf: Any,
    ref: dict,
    name: str,
    head: str,
    tmp_path: Path,
    args: tuple,
    kwargs: dict | None = None,
    check: Callable[[dict, dict], Any] = check_outputs,
) -> tuple:
    """The transformers model ``hf`` copied live (``from_transformers``) and read back from a
    ``save_pretrained`` directory under ``tmp_path / head``: both have ``head``, the live one
    ``model_type`` ``name``, and for each ``check(model(*args, **kwargs, backend="numpy",
    output_hidden_states=True), ref)`` passes (:func:`check_outputs` unless given). Returns
    ``(live, saved)`` for further assertions."""
    kwargs = kwargs or {}
    live = from_transformers(hf)
    assert live.head == head and live.model_type == name
    check(live(*args, **kwargs, backend="numpy", output_hidden_states=True), ref)
    hf.save_pretrained(str(tmp_path / head))
    saved = from_pretrained(str(tmp_path / head))
    assert saved.head == head
    check(saved(*args, **kwargs, backend="numpy", output_hidden_states=True), ref)
    return live, saved


# ------------------------------------------------------------------ ONNX export
def export_and_validate(model: Any, feature: str, out: Path) -> Any:
    """``tw.export(model, feature, "onnx", out)`` checked by ``validate_model_outputs`` (the
    export's outputs against the model's, at the ONNX config's ``atol_for_validation``); returns
    the export result. The caller imports or skips onnxruntime."""
    E = sys.modules["tensorweave.export"]
    res = tw.export(model, feature, "onnx", out)
    E.validate_model_outputs(
        res.onnx_config, model, res.path, res.output_names, res.onnx_config.atol_for_validation
    )
    return res


def check_export_config(out: Path, architecture: str, model_type: str) -> dict:
    """The export folder's config.json names ``architecture`` and ``model_type``; returns it."""
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == [architecture] and config["model_type"] == model_type
    return config


def check_export_reads_back(model: Any, head: str, out: Path) -> Any:
    """The export folder reads back (``from_pretrained``) as ``model``: the same head and the same
    config, except the architectures the export records. Returns the model read back."""
    back = from_pretrained(str(out))
    same = dataclasses.replace(model.config, architectures=back.config.architectures)
    assert back.head == head and back.config == same
    return back


def check_onnx_pixels(res: Any, model: Any, size: tuple, pixels: np.ndarray, tol: float = ATOL) -> None:
    """An exported vision model under onnxruntime: one input ``pixel_values`` of shape
    ``[batch, 3, *size]``; on ``pixels`` every exported output close to the model's numpy
    forward (atol = rtol = ``tol``)."""
    import onnxruntime as ort

    session = ort.InferenceSession(res.path, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.shape) == ("pixel_values", ["batch", 3, *size])
    outs = dict(zip(res.output_names, session.run(None, {"pixel_values": pixels})))
    want = model(pixels, backend="numpy")
    for k in res.output_names:
        assert_close(outs[k], want[k], tol, tol)


# ------------------------------------------------------------------ vision inputs
def image_pixels(batch: int = 2, size: tuple = (16, 12), seed: int = 0) -> np.ndarray:
    """Seeded float32 images ``[batch, 3, *size]`` drawn from N(0, 1)."""
    return np.random.default_rng(seed).standard_normal((batch, 3, *size)).astype(np.float32)


def vision_reference(hf: Any, pixels: np.ndarray, keys: Iterable[str]) -> dict:
    """transformers' outputs ``keys`` and hidden states on ``pixels`` (see :func:`torch_outputs`)."""
    import torch

    with torch.no_grad():
        out = hf(pixel_values=torch.from_numpy(pixels), output_hidden_states=True)
    return torch_outputs(out, keys)


# ------------------------------------------------------------------ CLIP-like text / image pairs
CLIP_OUTPUTS = ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds")


def clip_texts(eos: int = 98) -> tuple[np.ndarray, np.ndarray]:
    """Three texts of 7 tokens, the EOS token at 4, 6 and 2, the first one padded after it."""
    ids = np.random.default_rng(0).integers(3, 90, (3, 7)).astype(np.int64)
    for row, pos in enumerate((4, 6, 2)):
        ids[row, pos] = eos
    mask = np.ones((3, 7), np.int64)
    mask[0, 5:] = 0
    return ids, mask


def clip_pixels(batch: int = 2) -> np.ndarray:
    """Seeded 16 x 16 images (generator seed 1)."""
    return image_pixels(batch, (16, 16), seed=1)


def clip_reference(hf: Any, ids: np.ndarray, mask: np.ndarray, px: np.ndarray) -> dict:
    """transformers' :data:`CLIP_OUTPUTS` for texts ``ids`` / ``mask`` and images ``px``."""
    import torch

    with torch.no_grad():
        out = hf(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            pixel_values=torch.from_numpy(px),
        )
    return {k: out[k].numpy() for k in CLIP_OUTPUTS}


def check_clip_outputs(out: dict, ref: dict) -> None:
    """Exactly :data:`CLIP_OUTPUTS`, each close to ``ref`` (atol = rtol = 1e-5), for 2 images
    against 3 texts."""
    assert sorted(out) == sorted(CLIP_OUTPUTS)
    for k in CLIP_OUTPUTS:
        assert_close(out[k], ref[k])
    assert np.shape(out["logits_per_image"]) == (2, 3)


def check_clip_onnx(res: Any, hf: Any) -> dict:
    """A CLIP-like export under onnxruntime: on :func:`clip_texts` and 3 :func:`clip_pixels`
    images, every exported :data:`CLIP_OUTPUTS` close to transformers' ``hf`` (atol = rtol =
    1e-5). Returns the session's input shapes by name."""
    import onnxruntime as ort

    session = ort.InferenceSession(res.path, providers=["CPUExecutionProvider"])
    ids, mask = clip_texts()
    px = clip_pixels(3)
    feeds = {"input_ids": ids, "pixel_values": px, "attention_mask": mask}
    outs = dict(zip(res.output_names, session.run(None, feeds)))
    ref = clip_reference(hf, ids, mask, px)
    for k in CLIP_OUTPUTS:
        assert_close(outs[k], ref[k])
    return {i.name: i.shape for i in session.get_inputs()}
