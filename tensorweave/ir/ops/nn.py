"""Fused numerics the targets provide natively: softmax, log_softmax, rms_norm, layer_norm; and
the vision ops conv, max_pool, avg_pool and resize (NCHW, as ONNX).

(gelu, silu and sigmoid are unary elementwise ops in ``elementwise``.)  All
compute in the input dtype, except that float16/bfloat16 inputs are computed
in float32 and rounded back.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import TensorSpec, unify_dims
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


# ------------------------------------------------------------------ convolution, pooling, resize
#
# Layout is ONNX's: x is [N, C, *spatial] with 1 or 2 spatial axes; ``pads`` lists every spatial
# axis's leading pad, then every trailing pad ([h_begin, w_begin, h_end, w_end]). Spatial and
# channel dims must be static; the batch dim may be symbolic.


def _window_out(size: int, k: int, stride: int, dilation: int, begin: int, end: int) -> int:
    """Output length of a sliding window: floor((size + begin + end - dilation*(k-1) - 1) / stride) + 1."""
    return (size + begin + end - dilation * (k - 1) - 1) // stride + 1


def _check_windows(
    op: str, x: TensorSpec, kernel: tuple, strides: tuple, pads: tuple, dilations: tuple
) -> list:
    """Validate the window attributes against ``x``; return the output spatial sizes."""
    n = x.rank - 2
    require(n in (1, 2), f"op {op}: x must be [N, C, L] or [N, C, H, W], got rank {x.rank}")
    spatial = list(x.shape[2:])
    require(
        all(isinstance(d, int) for d in [x.shape[1], *spatial]),
        f"op {op}: channel and spatial dims must be static, got {x.shape}; fix the image size when tracing",
    )
    require(
        len(kernel) == n and all(k >= 1 for k in kernel), f"op {op}: kernel {kernel} needs {n} sizes >= 1"
    )
    require(
        len(strides) == n and all(s >= 1 for s in strides), f"op {op}: strides {strides} need {n} values >= 1"
    )
    require(
        len(dilations) == n and all(d >= 1 for d in dilations),
        f"op {op}: dilations {dilations} need {n} values >= 1",
    )
    require(
        len(pads) == 2 * n and all(p >= 0 for p in pads), f"op {op}: pads {pads} need {2 * n} values >= 0"
    )
    out = []
    for i in range(n):
        o = _window_out(spatial[i], kernel[i], strides[i], dilations[i], pads[i], pads[n + i])
        require(o >= 1, f"op {op}: spatial axis {i} of size {spatial[i]} is smaller than the window; pad it")
        out.append(o)
    return out


def _up_to_f32(x):
    """float16/bfloat16 arrays as float32 (the compute dtype); others unchanged."""
    return _up(x)


def window_slices(xp_: np.ndarray, kernel: tuple, strides: tuple, dilations: tuple, out: list):
    """Yield ``(offset, x[..., o*d : o*d + (n-1)*s + 1 : s, ...])`` for every kernel offset ``o``
    of an already padded ``[N, C, *spatial]`` array: the window elements at that offset."""
    for offset in np.ndindex(*kernel):
        idx = tuple(
            slice(o * d, o * d + (n - 1) * s + 1, s) for o, d, s, n in zip(offset, dilations, strides, out)
        )
        yield offset, xp_[(Ellipsis, *idx)]


def _pad_spatial(x: np.ndarray, pads: tuple, value: float) -> np.ndarray:
    n = x.ndim - 2
    width = [(0, 0), (0, 0)] + [(pads[i], pads[n + i]) for i in range(n)]
    return np.pad(x, width, constant_values=value)


def _infer_conv(ins, attrs):
    require(len(ins) in (2, 3), f"op conv: takes x, weight and an optional bias, got {len(ins)} inputs")
    x, w = ins[0], ins[1]
    same_dtype("conv", ins)
    check_kind("conv", x.dtype, FLOAT)
    require(
        w.rank == x.rank, f"op conv: weight must be [out, in/groups, *kernel] of rank {x.rank}, got {w.shape}"
    )
    require(
        all(isinstance(d, int) for d in w.shape), f"op conv: the weight shape must be static, got {w.shape}"
    )
    g = attrs["groups"]
    o, cg = w.shape[0], w.shape[1]
    require(g >= 1 and o % g == 0, f"op conv: groups={g} must divide the {o} output channels")
    require(
        x.rank >= 2 and x.shape[1] == cg * g,
        f"op conv: x has {x.shape[1] if x.rank >= 2 else '?'} channels, weight expects {cg} x groups={g}",
    )
    if len(ins) == 3:
        require(ins[2].rank == 1 and ins[2].shape[0] == o, f"op conv: bias must be [{o}], got {ins[2].shape}")
    out = _check_windows("conv", x, tuple(w.shape[2:]), attrs["strides"], attrs["pads"], attrs["dilations"])
    return [TensorSpec([x.shape[0], o, *out], x.dtype)]


@register(
    "conv",
    inputs=None,
    min_inputs=2,
    attrs={
        "strides": AttrSpec("ints"),
        "pads": AttrSpec("ints"),
        "dilations": AttrSpec("ints"),
        "groups": AttrSpec("int", 1),
    },
    infer=_infer_conv,
    category="conv",
)
def conv(x, weight, bias=None, strides=(1,), pads=(0, 0), dilations=(1,), groups=1):
    """Cross-correlation (ONNX Conv, torch convNd): x [N, C, *S] zero-padded by ``pads`` (begins,
    then ends), weight [O, C/groups, *K], optional bias [O]. out[n, o, p] = bias[o] + sum over
    c in o's group and kernel offsets k of x_pad[n, c, p*stride + k*dilation] * weight[o, c', k];
    channels split into ``groups`` equal groups (groups = C: depthwise). Output length per axis
    floor((S + begin + end - dilation*(K-1) - 1) / stride) + 1. Float16/bfloat16 compute in
    float32."""
    v, w = _up_to_f32(x), _up_to_f32(weight)
    n_sp = x.ndim - 2
    kernel = w.shape[2:]
    out = [
        _window_out(x.shape[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[n_sp + i])
        for i in range(n_sp)
    ]
    g, o, cg = groups, w.shape[0], w.shape[1]
    xp_ = _pad_spatial(v, pads, 0.0)
    acc = np.zeros((x.shape[0], g, o // g, *out), v.dtype)
    wg = w.reshape(g, o // g, cg, *kernel)
    for offset, part in window_slices(xp_, kernel, strides, dilations, out):
        part = part.reshape(x.shape[0], g, cg, *out)
        acc += np.einsum("ngc...,goc->ngo...", part, wg[(Ellipsis, *offset)])
    res = acc.reshape(x.shape[0], o, *out)
    if bias is not None:
        res = res + _up_to_f32(bias).reshape(o, *([1] * n_sp))
    return res.astype(x.dtype)


def _infer_pool(name):
    def infer(ins, attrs):
        (x,) = ins
        check_kind(name, x.dtype, FLOAT)
        kernel, pads = attrs["kernel"], attrs["pads"]
        out = _check_windows(name, x, kernel, attrs["strides"], pads, tuple(1 for _ in kernel))
        n = len(kernel)
        require(
            all(pads[i] < kernel[i] and pads[n + i] < kernel[i] for i in range(n)),
            f"op {name}: every pad must be smaller than the kernel, got pads {pads} for kernel {kernel}",
        )
        return [TensorSpec([x.shape[0], x.shape[1], *out], x.dtype)]

    return infer


_POOL_ATTRS = {"kernel": AttrSpec("ints"), "strides": AttrSpec("ints"), "pads": AttrSpec("ints")}


def pool_out(x_shape: tuple, kernel: tuple, strides: tuple, pads: tuple) -> list:
    n = len(kernel)
    return [_window_out(x_shape[2 + i], kernel[i], strides[i], 1, pads[i], pads[n + i]) for i in range(n)]


@register("max_pool", inputs=1, attrs=_POOL_ATTRS, infer=_infer_pool("max_pool"), category="pool")
def max_pool(x, kernel=(1,), strides=(1,), pads=(0, 0)):
    """Max over sliding windows of x [N, C, *S] (ONNX MaxPool, floor mode): pads hold -inf, so
    they never win; every pad is smaller than the kernel, so each window holds a real element.
    Output length floor((S + begin + end - K) / stride) + 1. nan inputs are unspecified."""
    v = _up_to_f32(x)
    out = pool_out(x.shape, kernel, strides, pads)
    xp_ = _pad_spatial(v, pads, -np.inf)
    res = None
    for _, part in window_slices(xp_, kernel, strides, tuple(1 for _ in kernel), out):
        res = part.copy() if res is None else np.maximum(res, part)
    return res.astype(x.dtype)


def pool_counts(
    spatial: Sequence[int], kernel: tuple, strides: tuple, pads: tuple, include_pad: bool
) -> np.ndarray:
    """The divisor of average pooling per output position (float64 array of the output's spatial
    shape): the kernel size with ``include_pad``, else the number of real (unpadded) elements."""
    ones = np.ones((1, 1, *spatial), np.float64)
    out = pool_out(ones.shape, kernel, strides, pads)
    padded = _pad_spatial(ones, pads, 1.0 if include_pad else 0.0)
    total = np.zeros((1, 1, *out))
    for _, part in window_slices(padded, kernel, strides, tuple(1 for _ in kernel), out):
        total += part
    return total[0, 0]


@register(
    "avg_pool",
    inputs=1,
    attrs={**_POOL_ATTRS, "count_include_pad": AttrSpec("bool", False)},
    infer=_infer_pool("avg_pool"),
    category="pool",
)
def avg_pool(x, kernel=(1,), strides=(1,), pads=(0, 0), count_include_pad=False):
    """Mean over sliding windows of x [N, C, *S] (ONNX AveragePool, floor mode; pads hold 0):
    the window sum divided by prod(kernel) when ``count_include_pad``, else by the number of
    real (unpadded) elements of the window. Float16/bfloat16 compute in float32."""
    v = _up_to_f32(x)
    out = pool_out(x.shape, kernel, strides, pads)
    xp_ = _pad_spatial(v, pads, 0.0)
    total = np.zeros((*x.shape[:2], *out), v.dtype)
    for _, part in window_slices(xp_, kernel, strides, tuple(1 for _ in kernel), out):
        total += part
    counts = pool_counts(x.shape[2:], kernel, strides, pads, count_include_pad).astype(v.dtype)
    return (total / counts).astype(x.dtype)


RESIZE_MODES = ("nearest", "linear")


def resize_plan(size: int, out: int, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output index along one axis: ``(i0, i1, t)`` with out = x[i0] * (1 - t) + x[i1] * t.

    nearest (ONNX ``asymmetric`` + ``floor``, torch ``mode="nearest"``): i0 = i1 =
    floor(dst * size / out) (exact rational arithmetic), t = 0. linear (``half_pixel``, torch
    ``align_corners=False``): src = max((dst + 0.5) * size / out - 0.5, 0), i0 = floor(src),
    i1 = min(i0 + 1, size - 1), t = src - i0 (float64)."""
    dst = np.arange(out, dtype=np.int64)
    if mode == "nearest":
        i0 = (dst * size) // out
        return i0, i0, np.zeros(out)
    src = np.maximum((dst + 0.5) * size / out - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    return i0, np.minimum(i0 + 1, size - 1), src - i0


def _infer_resize(ins, attrs):
    (x,) = ins
    check_kind("resize", x.dtype, FLOAT)
    n = x.rank - 2
    require(n in (1, 2), f"op resize: x must be [N, C, L] or [N, C, H, W], got rank {x.rank}")
    require(
        all(isinstance(d, int) for d in x.shape[2:]), f"op resize: spatial dims must be static, got {x.shape}"
    )
    require(attrs["mode"] in RESIZE_MODES, f"op resize: mode {attrs['mode']!r} must be one of {RESIZE_MODES}")
    sizes = attrs["sizes"]
    require(len(sizes) == n and all(s >= 1 for s in sizes), f"op resize: sizes {sizes} need {n} values >= 1")
    return [TensorSpec([x.shape[0], x.shape[1], *sizes], x.dtype)]


@register(
    "resize",
    inputs=1,
    attrs={"sizes": AttrSpec("ints"), "mode": AttrSpec("str", "nearest")},
    infer=_infer_resize,
    category="resize",
)
def resize(x, sizes=(1,), mode="nearest"):
    """Resize the spatial axes of x [N, C, *S] to ``sizes``, one axis after another, with
    out = x[i0] * (1 - t) + x[i1] * t along each axis. nearest: i0 = i1 = floor(dst * S / size)
    (ONNX Resize ``asymmetric`` + ``floor``, torch ``interpolate(mode="nearest")``); linear:
    src = max((dst + 0.5) * S / size - 0.5, 0), i0 = floor(src), i1 = min(i0 + 1, S - 1),
    t = src - i0 (ONNX ``half_pixel``, torch ``align_corners=False``). Float16/bfloat16 compute
    in float32."""
    v = _up_to_f32(x)
    for axis, out in enumerate(sizes, start=2):
        i0, i1, t = resize_plan(v.shape[axis], out, mode)
        if mode == "nearest":
            v = np.take(v, i0, axis=axis)
            continue
        shape = [1] * v.ndim
        shape[axis] = out
        tt = t.astype(v.dtype).reshape(shape)
        v = np.take(v, i0, axis=axis) * (1 - tt) + np.take(v, i1, axis=axis) * tt
    return v.astype(x.dtype)
