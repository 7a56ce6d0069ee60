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
from ..log import timed


@dataclasses.dataclass(frozen=True)
class Backend:
    """The backend a generation runs on, chosen once (``registry.resolve``) and passed down."""

    name: str

    def lower(self, graph: Any) -> Any:
        return registry.get(self.name).lower(graph)


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
                why = "first call" if not store else f"new shapes {shapes} or settings"
                with timed(f"{kind} program on {backend.name}: traced and lowered ({why})"):
                    prog = backend.lower(build())
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

    def clear(self) -> None:
        with self._lock:
            self._weak.clear()
            self._strong.clear()


#: every generation program of the process
PROGRAMS = ProgramCache()


def clear_cache() -> None:
    """Drop every cached generation program."""
    PROGRAMS.clear()
