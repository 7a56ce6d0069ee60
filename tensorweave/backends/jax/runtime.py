"""What the jax rules and the program share: the backend name and how IR dtypes map to jnp."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ...ir.types import DType

NAME = "jax"
#: float16/bfloat16: math runs in float32 and is rounded once, like the reference
LOW = (jnp.float16, jnp.bfloat16)


def jdt(dt: DType) -> Any:
    """The jnp dtype of an IR dtype (every IR dtype is native in jax, uint32 included)."""
    return jnp.dtype(dt.to_numpy())
