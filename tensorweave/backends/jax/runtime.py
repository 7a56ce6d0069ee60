"""What the jax rules and the program share: the backend name, how IR dtypes map to jnp, the
64-bit scope, and the persistent compilation cache (its directory from :mod:`tensorweave.backends.cache`)."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import jax
import jax.numpy as jnp

from ...ir.types import DType
from ..cache import CACHE_ENV, cache_root, cache_subdir  # noqa: F401  (CACHE_ENV, cache_root: re-exported)

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


def use_persistent_cache() -> str | None:
    """Point JAX's persistent compilation cache at ``<cache_root>/jax`` (XLA executables keyed by
    the program's HLO, compile options and jax version; tensorweave's programs take the large
    weights as arguments, so the key does not hash them), unless the user configured a cache
    directory already or the cache is off. A new process then loads a program compiled by an
    earlier one instead of compiling it. Returns the directory in use (None: no cache)."""
    current = jax.config.jax_compilation_cache_dir
    if current:  # the user's own setting wins
        return str(current)
    path = cache_subdir("jax")
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
