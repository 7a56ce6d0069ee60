"""Reductions: sum, prod, mean, max, min, any, all, logsumexp, argmax, argmin, cumulative_sum.

``axis`` is a tuple of distinct non-negative axes or ``None`` (all axes);
``keepdims`` keeps reduced axes as size 1.  sum/prod/cumulative_sum keep the
input dtype (ints wrap); bool input is not accepted by them.
"""

from __future__ import annotations

import numpy as np

from ..types import DType, Shape, TensorSpec
from .elementwise import BOOL, FLOAT, NUMERIC, check_kind
from .registry import AttrSpec, norm_axes, norm_axis, register, require

AX = {"axis": AttrSpec("axes", None), "keepdims": AttrSpec("bool", False)}


def _reduced_shape(shape: Shape, axes: tuple, keepdims: bool) -> Shape:
    if keepdims:
        return Shape([1 if i in axes else d for i, d in enumerate(shape)])
    return Shape([d for i, d in enumerate(shape) if i not in axes])


def reduction(name: str, kind: str, out: DType | None = None, nonempty: bool = False):
    def infer(ins, attrs):
        check_kind(name, ins[0].dtype, kind)
        axes = norm_axes(attrs["axis"], ins[0].rank, name)
        if nonempty:
            for a in axes:
                require(ins[0].shape[a] != 0, f"op {name}: cannot reduce over the empty axis {a}")
        return [TensorSpec(_reduced_shape(ins[0].shape, axes, attrs["keepdims"]), out or ins[0].dtype)]

    def deco(fn):
        def ref(x, axis=None, keepdims=False):
            with np.errstate(all="ignore"):
                return np.asarray(fn(x, axis=None if axis is None else tuple(axis), keepdims=keepdims))

        ref.__doc__ = fn.__doc__
        return register(name, inputs=1, attrs=AX, infer=infer, category=f"reduce:{kind}")(ref)

    return deco


def _acc(x):
    """Accumulate f16/bf16 in float32."""
    return x.astype(np.float32) if x.dtype == np.float16 or x.dtype.name == "bfloat16" else x


@reduction("sum", NUMERIC)
def sum_(x, axis, keepdims):
    """Sum over axis; empty sum = 0. Ints wrap; f16/bf16 accumulate in float32."""
    return np.sum(_acc(x), axis=axis, keepdims=keepdims).astype(x.dtype)


@reduction("prod", NUMERIC)
def prod(x, axis, keepdims):
    """Product over axis; empty product = 1. Ints wrap."""
    return np.prod(_acc(x), axis=axis, keepdims=keepdims).astype(x.dtype)


@reduction("mean", FLOAT)
def mean(x, axis, keepdims):
    """Arithmetic mean; mean of an empty axis is nan."""
    return np.mean(_acc(x), axis=axis, keepdims=keepdims).astype(x.dtype)


@reduction("max", NUMERIC, nonempty=True)
def max_(x, axis, keepdims):
    """Maximum; nan if any element is nan. Empty reductions are an error."""
    return np.max(x, axis=axis, keepdims=keepdims)


@reduction("min", NUMERIC, nonempty=True)
def min_(x, axis, keepdims):
    """Minimum; nan if any element is nan. Empty reductions are an error."""
    return np.min(x, axis=axis, keepdims=keepdims)


@reduction("any", BOOL, DType.bool)
def any_(x, axis, keepdims):
    """Logical or over axis (empty -> False)."""
    return np.any(x, axis=axis, keepdims=keepdims)


@reduction("all", BOOL, DType.bool)
def all_(x, axis, keepdims):
    """Logical and over axis (empty -> True)."""
    return np.all(x, axis=axis, keepdims=keepdims)


@reduction("logsumexp", FLOAT)
def logsumexp(x, axis, keepdims):
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))) with m = max(x) (m = 0 where max is
    infinite); all -inf -> -inf; any +inf -> +inf; any nan -> nan; empty -> -inf."""
    v = _acc(x)
    if v.size == 0:
        return np.log(np.sum(np.exp(v), axis=axis, keepdims=keepdims)).astype(x.dtype)
    m = np.max(v, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(v.dtype)
    s = np.log(np.sum(np.exp(v - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        s = np.squeeze(s, axis=axis if axis is not None else tuple(range(v.ndim)))
    return s.astype(x.dtype)


def _infer_arg(name):
    def infer(ins, attrs):
        check_kind(name, ins[0].dtype, NUMERIC)
        r = ins[0].rank
        require(r >= 1, f"op {name}: needs rank >= 1")
        a = norm_axis(attrs["axis"], r, name)
        require(ins[0].shape[a] != 0, f"op {name}: cannot reduce over the empty axis {a}")
        return [TensorSpec(_reduced_shape(ins[0].shape, (a,), attrs["keepdims"]), DType.int64)]

    return infer


@register(
    "argmax",
    inputs=1,
    attrs={"axis": AttrSpec("axis", -1), "keepdims": AttrSpec("bool", False)},
    infer=_infer_arg("argmax"),
    category="arg:numeric",
)
def argmax(x, axis=-1, keepdims=False):
    """Index (int64) of the largest value along axis; ties -> the first index; a nan counts as the
    largest value (the first nan wins)."""
    r = np.argmax(x, axis=axis)
    return np.expand_dims(r, axis) if keepdims else np.asarray(r)


@register(
    "argmin",
    inputs=1,
    attrs={"axis": AttrSpec("axis", -1), "keepdims": AttrSpec("bool", False)},
    infer=_infer_arg("argmin"),
    category="arg:numeric",
)
def argmin(x, axis=-1, keepdims=False):
    """Index (int64) of the smallest value along axis; ties -> the first index; a nan counts as the
    smallest value (the first nan wins)."""
    r = np.argmin(x, axis=axis)
    return np.expand_dims(r, axis) if keepdims else np.asarray(r)


def _infer_cumsum(ins, attrs):
    check_kind("cumulative_sum", ins[0].dtype, NUMERIC)
    require(ins[0].rank >= 1, "op cumulative_sum: needs rank >= 1")
    norm_axis(attrs["axis"], ins[0].rank, "cumulative_sum")
    return [ins[0]]


@register(
    "cumulative_sum",
    inputs=1,
    attrs={"axis": AttrSpec("axis", -1)},
    infer=_infer_cumsum,
    category="scan:numeric",
)
def cumulative_sum(x, axis=-1):
    """Inclusive prefix sum along axis, same dtype (ints wrap; f16/bf16 accumulate in float32)."""
    with np.errstate(all="ignore"):
        return np.cumsum(_acc(x), axis=axis).astype(x.dtype)
