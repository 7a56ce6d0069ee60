"""``tw.function``: trace on the first call per input signature, lower, cache, run."""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from .backends import registry
from .ir.trace import trace
from .ir.types import IRError, TensorSpec, as_dtype


class Function:
    """``tw.function(fn)``: call it with numpy or framework arrays on any backend.

    The first call for a (backend, input shapes and dtypes) signature traces
    ``fn`` and lowers the graph; later calls reuse the cached Program. With
    ``input_specs`` (symbolic dims allowed) one program serves every size.
    """

    def __init__(
        self,
        fn: Callable,
        backend: str | None = None,
        input_specs: Sequence[TensorSpec] | None = None,
        **lower_options: Any,
    ):
        self.fn = fn
        self.backend = backend
        self.input_specs = list(input_specs) if input_specs is not None else None
        self.lower_options = lower_options
        self._cache: dict = {}
        functools.update_wrapper(self, fn)

    def specs_for(self, args: Sequence[Any]) -> list[TensorSpec]:
        if self.input_specs is not None:
            return self.input_specs
        specs = []
        for i, a in enumerate(args):
            if not hasattr(a, "shape") or not hasattr(a, "dtype"):
                raise IRError(f"argument {i} of {self.fn.__name__} is {type(a).__name__}; pass an array")
            specs.append(TensorSpec(tuple(int(d) for d in a.shape), as_dtype(a.dtype)))
        return specs

    def program(self, *args: Any, backend: str | None = None) -> Any:
        name = registry.resolve(backend or self.backend)
        specs = self.specs_for(args)
        key = (name, tuple((tuple(s.shape), s.dtype) for s in specs))
        prog = self._cache.get(key)
        if prog is None:
            graph = trace(self.fn, *specs)
            prog = registry.lower(graph, name, **self.lower_options)
            self._cache[key] = prog
        return prog

    def __call__(self, *args: Any, backend: str | None = None) -> Any:
        return self.program(*args, backend=backend)(*args)


def function(
    fn: Callable | None = None,
    *,
    backend: str | None = None,
    input_specs: Sequence[TensorSpec] | None = None,
    **lower_options: Any,
) -> Any:
    """Decorator form of :class:`Function`."""
    if fn is None:
        return lambda f: Function(f, backend, input_specs, **lower_options)
    return Function(fn, backend, input_specs, **lower_options)
