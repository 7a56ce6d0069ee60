"""conv / max_pool / avg_pool / resize beyond the parity matrix (tests/op_cases.py,
``vision_cases``): the namespace's defaults, one-line shape/dtype errors naming the fix, the
reference against PyTorch's own functions, and a traced pipeline through a torch ``.pt2`` export
with a symbolic batch."""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
import tensorweave.ir.namespace as xp
from tensorweave.ir import TensorSpec
from tensorweave.ir.ops import OPS
from tensorweave.ir.types import IRError

from conftest import IN_CI

if IN_CI:
    import torch
else:
    torch = pytest.importorskip("torch")

F = torch.nn.functional


def normal(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def torch_pad(x: np.ndarray, pads: tuple, value: float = 0.0):
    n = len(pads) // 2
    order = [p for i in reversed(range(n)) for p in (pads[i], pads[n + i])]
    return F.pad(torch.from_numpy(x), order, value=value)


@pytest.mark.parametrize(
    "xs, ws, strides, pads, dilations, groups",
    [
        ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 0, 2, 1), (2, 1), 2),
        ((1, 3, 5, 5), (3, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3),  # depthwise
        ((2, 3, 9), (4, 3, 3), (2,), (1, 2), (2,), 1),
    ],
)
def test_conv_reference_is_torch_convolution(xs, ws, strides, pads, dilations, groups):
    x, w, b = normal(*xs), normal(*ws, seed=1), normal(ws[0], seed=2)
    got = OPS["conv"].reference(x, w, b, strides=strides, pads=pads, dilations=dilations, groups=groups)
    conv = F.conv2d if len(xs) == 4 else F.conv1d
    want = conv(torch_pad(x, pads), torch.from_numpy(w), torch.from_numpy(b), strides, 0, dilations, groups)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)


def test_pool_and_resize_references_are_torch():
    x = normal(2, 3, 7, 6)
    got = OPS["max_pool"].reference(x, kernel=(3, 2), strides=(2, 2), pads=(1, 0, 1, 1))
    want = F.max_pool2d(torch_pad(x, (1, 0, 1, 1), -np.inf), (3, 2), (2, 2))
    np.testing.assert_array_equal(got, want.numpy())
    for include in (True, False):  # symmetric pads: torch's own padding and divisor rule
        got = OPS["avg_pool"].reference(
            x, kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), count_include_pad=include
        )
        want = F.avg_pool2d(torch.from_numpy(x), 3, 2, 1, count_include_pad=include)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)
    for sizes in [(14, 12), (3, 4), (10, 9)]:
        near = OPS["resize"].reference(x, sizes=sizes, mode="nearest")
        np.testing.assert_array_equal(
            near, F.interpolate(torch.from_numpy(x), size=sizes, mode="nearest").numpy()
        )
        lin = OPS["resize"].reference(x, sizes=sizes, mode="linear")
        want = F.interpolate(torch.from_numpy(x), size=sizes, mode="bilinear", align_corners=False)
        np.testing.assert_allclose(lin, want.numpy(), rtol=1e-12, atol=1e-12)


def _graph(fn, *shapes):
    return tw.trace(fn, *[TensorSpec(s, "float32") for s in shapes])


def test_namespace_defaults_and_int_shorthands():
    """Strides default to 1 and pads to 0; an int stride / dilation covers every axis, an int pad
    every begin and end; the bias is optional."""
    g = _graph(lambda x, w: xp.conv(x, w, strides=2, pads=1, dilations=2), (1, 2, 9, 9), (3, 2, 3, 3))
    (node,) = [n for n in g.nodes if n.op == "conv"]
    assert (node.attrs["strides"], node.attrs["pads"], node.attrs["dilations"], node.attrs["groups"]) == (
        (2, 2),
        (1, 1, 1, 1),
        (2, 2),
        1,
    )
    assert len(node.inputs) == 2 and g.output_specs[0].shape == (1, 3, 4, 4)
    g = _graph(lambda x: xp.avg_pool(x, (2,)), (1, 2, 5))
    (node,) = g.nodes
    assert (node.attrs["strides"], node.attrs["pads"], node.attrs["count_include_pad"]) == (
        (1,),
        (0, 0),
        False,
    )


@pytest.mark.parametrize(
    "fn, shapes, match",
    [
        (
            lambda x, w: xp.conv(x, w),
            [(1, 4, 5, 5), (2, 3, 3, 3)],
            "x has 4 channels, weight expects 3 x groups=1",
        ),
        (
            lambda x, w: xp.conv(x, w, groups=2),
            [(1, 4, 5, 5), (3, 2, 3, 3)],
            "groups=2 must divide the 3 output",
        ),
        (lambda x, w: xp.conv(x, w), [(1, 2, 2, 2), (2, 2, 3, 3)], "smaller than the window; pad it"),
        (
            lambda x, w: xp.conv(x, w),
            [(1, 2, 5, 5, 5), (2, 2, 1, 1, 1)],
            "must be \\[N, C, L\\] or \\[N, C, H, W\\]",
        ),
        (
            lambda x, w: xp.conv(x, w, strides=(1,)),
            [(1, 2, 5, 5), (2, 2, 3, 3)],
            "strides \\(1,\\) need 2 values",
        ),
        (lambda x, w: xp.conv(x, w), [("n", 2, "h", 5), (2, 2, 3, 3)], "must be static"),
        (
            lambda x: xp.max_pool(x, (2, 2), pads=2),
            [(1, 2, 5, 5)],
            "every pad must be smaller than the kernel",
        ),
        (lambda x: xp.resize(x, (4, 4), mode="cubic"), [(1, 2, 5, 5)], "mode 'cubic' must be one of"),
        (lambda x: xp.resize(x, (4,)), [(1, 2, 5, 5)], "sizes \\(4,\\) need 2 values"),
    ],
)
def test_bad_shapes_are_one_line_errors(fn, shapes, match):
    with pytest.raises(IRError, match=match) as info:
        _graph(fn, *shapes)
    assert "\n" not in str(info.value)


def test_integer_inputs_are_refused():
    x = TensorSpec((1, 2, 5), "int64")
    with pytest.raises(IRError, match="op max_pool: dtype int64 is not allowed"):
        tw.trace(lambda v: xp.max_pool(v, (2,)), x)


def test_a_symbolic_batch_pipeline_exports_to_pt2(tmp_path):
    from tensorweave.backends.torch import load

    w = normal(4, 3, 3, 3).astype(np.float32)

    def fn(x):
        from tensorweave.ir.trace import constant

        h = xp.conv(x, constant(w, name="w"), strides=2, pads=(1, 0, 1, 1))
        h = xp.avg_pool(xp.max_pool(h, (2, 2), pads=(1, 1, 0, 0)), (2, 2), pads=(1, 0, 0, 1))
        return xp.resize(h, (5, 7), mode="linear")

    g = tw.trace(fn, TensorSpec(("batch", 3, 9, 8), "float32", "x"))
    prog = tw.lower(g, backend="torch")
    run = load(prog.export(str(tmp_path / "m.pt2")), allow_pickle=True)
    for batch in (1, 3):
        x = normal(batch, 3, 9, 8, seed=batch).astype(np.float32)
        want = tw.lower(g, backend="numpy")(x)
        (got,) = run(x)  # a loaded .pt2 returns a tuple, also of one output
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
