"""What the jax rules and the program share: the backend name and how IR dtypes map to jnp."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import jax
import jax.numpy as jnp

from ...ir.types import DType

NAME = "jax"
#: float16/bfloat16: math runs in float32 and is rounded once, like the reference
LOW = (jnp.float16, jnp.bfloat16)


def jdt(dt: DType) -> Any:
    """The jnp dtype of an IR dtype (every IR dtype is native in jax, uint32 included)."""
    return jnp.dtype(dt.to_numpy())


@contextlib.contextmanager
def x64() -> Iterator[None]:
    """64-bit types on for this block only (``jax.enable_x64``, a thread-local JAX setting): every
    tensorweave trace, lowering and call of a jitted program runs inside it, so the process-wide
    ``jax_enable_x64`` flag is never touched (spec/backends-jax.md)."""
    if jax.config.jax_enable_x64:  # already on (the user's choice, or an enclosing block)
        yield
        return
    with jax.enable_x64(True):
        yield
