"""Fused numerics the targets provide natively: softmax, log_softmax, rms_norm, layer_norm.

(gelu, silu and sigmoid are unary elementwise ops in ``elementwise``.)  All
compute in the input dtype, except that float16/bfloat16 inputs are computed
in float32 and rounded back.
"""

from __future__ import annotations

import numpy as np

from ..types import unify_dims
from .elementwise import FLOAT, check_kind
from .registry import AttrSpec, norm_axis, register, require, same_dtype


def _up(x):
    return x.astype(np.float32) if x.dtype == np.float16 or x.dtype.name == "bfloat16" else x


def _infer_softmax(name):
    def infer(ins, attrs):
        check_kind(name, ins[0].dtype, FLOAT)
        require(ins[0].rank >= 1, f"op {name}: needs rank >= 1")
        norm_axis(attrs["axis"], ins[0].rank, name)
        return [ins[0]]

    return infer


@register(
    "softmax",
    inputs=1,
    attrs={"axis": AttrSpec("axis", -1)},
    infer=_infer_softmax("softmax"),
    category="softmax",
)
def softmax(x, axis=-1):
    """exp(x - m) / sum(exp(x - m)) along axis with m = max(x) (m = 0 where max is infinite).
    A row of all -inf gives nan (0/0), as in PyTorch."""
    v = _up(x)
    with np.errstate(all="ignore"):
        m = np.max(v, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0).astype(v.dtype)
        e = np.exp(v - m)
        return (e / np.sum(e, axis=axis, keepdims=True)).astype(x.dtype)


@register(
    "log_softmax",
    inputs=1,
    attrs={"axis": AttrSpec("axis", -1)},
    infer=_infer_softmax("log_softmax"),
    category="softmax",
)
def log_softmax(x, axis=-1):
    """x - logsumexp(x, axis, keepdims=True); a row of all -inf gives nan."""
    v = _up(x)
    with np.errstate(all="ignore"):
        m = np.max(v, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0).astype(v.dtype)
        s = v - m
        return (s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))).astype(x.dtype)


def _infer_rms(ins, attrs):
    x, w = ins
    same_dtype("rms_norm", ins)
    check_kind("rms_norm", x.dtype, FLOAT)
    require(x.rank >= 1 and w.rank == 1, "op rms_norm: x needs rank >= 1 and weight rank 1")
    unify_dims(x.shape[-1], w.shape[0], "op rms_norm: normalised dimension")
    return [x]


@register("rms_norm", inputs=2, attrs={"eps": AttrSpec("float", 1e-6)}, infer=_infer_rms, category="norm")
def rms_norm(x, weight, eps=1e-6):
    """x * rsqrt(mean(x**2, axis=-1, keepdims=True) + eps) * weight (over the last axis)."""
    v = _up(x)
    with np.errstate(all="ignore"):
        r = 1.0 / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + np.asarray(eps, v.dtype))
        return (v * r * _up(weight)).astype(x.dtype)


def _infer_ln(ins, attrs):
    x, w, b = ins
    same_dtype("layer_norm", ins)
    check_kind("layer_norm", x.dtype, FLOAT)
    require(
        x.rank >= 1 and w.rank == 1 and b.rank == 1, "op layer_norm: x needs rank >= 1, weight/bias rank 1"
    )
    unify_dims(x.shape[-1], w.shape[0], "op layer_norm: normalised dimension")
    unify_dims(x.shape[-1], b.shape[0], "op layer_norm: normalised dimension")
    return [x]


@register("layer_norm", inputs=3, attrs={"eps": AttrSpec("float", 1e-5)}, infer=_infer_ln, category="norm")
def layer_norm(x, weight, bias, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis; var is the biased
    (population) variance mean((x - mean)**2)."""
    v = _up(x)
    with np.errstate(all="ignore"):
        mu = np.mean(v, axis=-1, keepdims=True)
        var = np.mean((v - mu) ** 2, axis=-1, keepdims=True)
        return ((v - mu) / np.sqrt(var + np.asarray(eps, v.dtype)) * _up(weight) + _up(bias)).astype(x.dtype)
