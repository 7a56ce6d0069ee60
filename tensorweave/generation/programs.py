"""The one program cache of generation, and the backend a call runs on.

Every lowered program of ``tw.generate`` and ``export_generation`` (fused programs, step-wise model
and strategy programs, contrastive search's) is cached here under one key scheme::

    owner (weakly) -> (backend name, program kind, input shapes, plan key, custom-processor key)

The owner is the model object: programs that hold its weights as constants must not outlive it, so
they live as long as the model (a weak reference; an owner that cannot be weakly referenced, e.g. an
object with ``__slots__``, is held strongly). ``get`` is thread-safe: a lock around get-or-build, so
threads calling ``generate`` for the first time at once build each program once.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import Any, Callable

from ..backends import registry
from ..log import logger, progress, timed

KEY_PARTS = ("backend", "program", "input shapes", "generation settings", "custom processors")


def why_new(key: tuple, cached: list[tuple]) -> str:
    """Why ``key`` needs a new program, said against the cached keys: ``"first program"``, or the
    parts that differ from the closest cached key of the same backend and kind (e.g. ``"new input
    shapes (1, 12, 40, 100); cached: (1, 8, 40, 100)"``)."""
    same = [k for k in cached if k[:2] == key[:2]]
    if not same:
        return "first program of this kind" if cached else "first program for this model"
    closest = min(same, key=lambda k: sum(a != b for a, b in zip(k, key)))
    diffs = [i for i, (a, b) in enumerate(zip(closest, key)) if a != b]
    if diffs == [2]:
        return f"new input shapes {key[2]}, cached {closest[2]}"
    return "new " + " and ".join(KEY_PARTS[i] for i in diffs)


@dataclasses.dataclass(frozen=True)
class Backend:
    """The backend a generation runs on, chosen once (``registry.resolve``) and passed down."""

    name: str
    #: lowering options as (name, value) pairs (``registry.DECODE_OPTIONS``)
    options: tuple = ()

    def lower(self, graph: Any) -> Any:
        return registry.get(self.name).lower(graph, **dict(self.options))

    @property
    def specialises_shapes(self) -> bool:
        """Its programs compile once per concrete input shape (jax; XLA through ``jit_compile``)."""
        return self.name in registry.SHAPE_SPECIALISING or dict(self.options).get("jit_compile", False)


def select_backend(name: str | None) -> Backend:
    return Backend(registry.resolve(name))


class ProgramCache:
    """Lowered programs per owner (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._weak: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._strong: dict = {}

    def _store(self, owner: Any) -> dict:
        try:
            return self._weak.setdefault(owner, {})
        except TypeError:  # not weakly referenceable (or unhashable): held for the process
            return self._strong.setdefault(id(owner), (owner, {}))[1]

    def get(
        self,
        owner: Any,
        backend: Backend,
        kind: str,
        shapes: tuple,
        plan_key: Any,
        custom_key: Any,
        build: Callable[[], Any],
    ) -> Any:
        """The program under ``(backend.name, kind, shapes, plan_key, custom_key)`` for ``owner``;
        on a miss ``backend.lower(build())`` (``build`` returns the traced graph)."""
        key = (backend.name, kind, shapes, plan_key, custom_key)
        with self._lock:
            store = self._store(owner)
            prog = store.get(key)
            if prog is None:
                why = why_new(key, list(store))
                what = f"{kind} program on {backend.name} ({why})"
                logger.info("compiling a %s", what)
                bar = progress(total=2, desc=f"compiling {kind} program on {backend.name}")
                with timed(f"{what}: traced and lowered"), bar:
                    bar.set_postfix_str("tracing")
                    graph = build()
                    bar.update(1)
                    bar.set_postfix_str("lowering")
                    prog = backend.lower(graph)
                    bar.update(1)
                store[key] = prog
            return prog

    def count(self, owner: Any) -> int:
        """How many programs ``owner`` holds."""
        with self._lock:
            try:
                store = self._weak.get(owner)
            except TypeError:
                store = None
            if store is None:
                store = self._strong.get(id(owner), (None, {}))[1]
            return len(store)

    def __contains__(self, owner: Any) -> bool:
        with self._lock:
            try:
                if owner in self._weak:
                    return True
            except TypeError:
                pass
            return id(owner) in self._strong

    def __len__(self) -> int:
        with self._lock:
            return len(self._weak) + len(self._strong)

    def clear(self, owner: Any = None) -> None:
        """Drop every program (or only ``owner``'s)."""
        with self._lock:
            if owner is None:
                self._weak.clear()
                self._strong.clear()
                return
            try:
                self._weak.pop(owner, None)
            except TypeError:
                pass
            self._strong.pop(id(owner), None)


#: every generation program of the process
PROGRAMS = ProgramCache()


def clear_cache() -> None:
    """Drop every cached generation program."""
    PROGRAMS.clear()
