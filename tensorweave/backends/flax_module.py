"""Moved to :mod:`tensorweave.backends.jax.flax_module`; this name stays importable for now."""

from .jax.flax_module import TracedModule, named_constants  # noqa: F401
