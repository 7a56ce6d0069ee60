"""What the TensorFlow rules, the program and the artefact share: the backend name, how IR dtypes
are carried, scalar constants cached per traced graph, the uint32 mask, static shapes and the
names TF accepts. Importing it adds the log filter described in :class:`_QuietRetracing`."""

from __future__ import annotations

import logging
import re
import weakref
from typing import Any

import tensorflow as tf

from ...ir.types import DType, TensorSpec
from ..base import carried_dtype

NAME = "tensorflow"
MASK32 = 0xFFFFFFFF

#: How each IR dtype is carried inside the function (uint32 as int64 holding [0, 2**32)).
CARRIED = {dt: getattr(tf, carried_dtype(dt).value) for dt in DType}
#: The dtypes of the signature (what callers pass and get back).
BOUNDARY = {**CARRIED, DType.uint32: tf.uint32}
LOW = (tf.float16, tf.bfloat16)


class _QuietRetracing(logging.Filter):
    """Drops TF's "triggered tf.function retracing" warning. Every lowered program is its own
    tf.function traced once; TF's heuristic counts traces per Python code object, so lowering
    many programs looks to it like retracing one function."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_QuietRetracing())

_SCALARS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def scalar(value: Any, dtype: Any) -> Any:
    """A scalar constant of ``dtype``, created once per graph being traced (the loop-heavy
    programs, e.g. the Threefry RNG, would otherwise add a Const op per use)."""
    cache = _SCALARS.setdefault(tf.compat.v1.get_default_graph(), {})
    key = (repr(value), dtype)
    if key not in cache:
        cache[key] = tf.constant(value, dtype)
    return cache[key]


def mask32(x: Any) -> Any:
    """x mod 2**32 for int64-carried uint32 values (two's complement: the low 32 bits)."""
    return tf.bitwise.bitwise_and(x, scalar(MASK32, tf.int64))


def static_shape(spec: TensorSpec) -> list:
    """The IR shape as a TF static shape: ints stay, symbolic dims are None."""
    return [d if isinstance(d, int) else None for d in spec.shape]


def tf_name(name: str) -> str:
    """A name TF accepts for a signature argument / output / variable."""
    s = re.sub(r"[^A-Za-z0-9_.]", "_", name)
    return s if s and s[0].isalpha() else f"x_{s}"
