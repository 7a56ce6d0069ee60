"""IR types: dtypes, symbolic dims, shapes, symbol binding."""

import numpy as np
import pytest

from tensorweave.ir.types import (
    DType,
    IRError,
    Shape,
    SymDim,
    TensorSpec,
    as_dim,
    as_dtype,
    bind_symbols,
    broadcast_shapes,
    dim_div,
    unify_dims,
)


def test_dtype_names_and_coercion():
    assert as_dtype("float32") is DType.float32
    assert as_dtype("f32") is DType.float32
    assert as_dtype(np.dtype("int64")) is DType.int64
    assert as_dtype(np.uint32) is DType.uint32
    assert DType.bfloat16.to_numpy().name == "bfloat16"
    with pytest.raises(IRError, match="unknown dtype 'complex64'"):
        as_dtype("complex64")


def test_symbolic_dim_algebra():
    a = SymDim.parse("past_sequence + sequence")
    assert str(a) == "past_sequence + sequence"
    assert a - SymDim.symbol("sequence") == SymDim.symbol("past_sequence")
    assert (a - a) == 0 and isinstance(a - a, int)
    b = SymDim.parse("2*batch*heads - 1")
    assert b.evaluate({"batch": 3, "heads": 4}) == 23
    assert dim_div(SymDim.parse("8*batch"), 8) == SymDim.symbol("batch")
    assert dim_div(SymDim.parse("batch*heads"), SymDim.symbol("heads")) == SymDim.symbol("batch")
    with pytest.raises(IRError, match="not divisible"):
        dim_div(SymDim.parse("batch + 1"), 2)
    with pytest.raises(IRError, match="bad dimension"):
        SymDim.parse("batch +")
    with pytest.raises(IRError, match="only symbols"):
        SymDim.parse("batch / 2")


def test_shapes_broadcast_and_unify():
    s = Shape(["batch", 1, 8])
    t = Shape([1, "seq", 8])
    assert str(broadcast_shapes(s, t)) == "[batch,seq,8]"
    with pytest.raises(IRError, match="do not broadcast"):
        broadcast_shapes(Shape(["batch"]), Shape(["seq"]))
    assert unify_dims(SymDim.symbol("k"), 16) == 16
    with pytest.raises(IRError, match="mismatch"):
        unify_dims(3, 4)
    with pytest.raises(IRError, match="None is not allowed"):
        as_dim(None)


def test_bind_symbols_plain_and_compound():
    specs = [
        TensorSpec(("batch", "past + seq"), "int64", "mask"),
        TensorSpec(("batch", "seq"), "int64", "ids"),
    ]
    env = bind_symbols(specs, [(2, 7), (2, 3)])
    assert env == {"batch": 2, "seq": 3, "past": 4}
    with pytest.raises(IRError, match="input 'ids' axis 0 has size 5 but symbol 'batch' is already 2"):
        bind_symbols(specs, [(2, 7), (5, 3)])
    with pytest.raises(IRError, match="rank 1 but rank 2"):
        bind_symbols(specs, [(2,), (2, 3)])
    with pytest.raises(IRError, match="axis 1 has size 4 but 3 was expected"):
        bind_symbols([TensorSpec((2, 3), "float32", "x")], [(2, 4)])
