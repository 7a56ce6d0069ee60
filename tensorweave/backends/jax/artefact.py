"""The jax artefact: serialised StableHLO (``jax.export``), written atomically; ``load`` reads it."""

from __future__ import annotations

import os
from typing import Any, Sequence

import jax

from ...errors import ArtefactError
from ...io import atomic_write, verify_member
from ...ir.types import IRError
from ..base import eval_dim
from .runtime import jdt


def export_stablehlo(program: Any, path: str, allow_zero: Sequence[str] = ()) -> str:
    """Serialise ``program`` (a :class:`~tensorweave.backends.jax.program.JaxProgram`) to ``path``
    with one symbolic dimension per IR symbol; reload with ``jax.export.deserialize`` (or
    :func:`load`).

    jax.export assumes every dimension variable is >= 1. A symbol named in ``allow_zero`` (e.g. an
    empty KV cache's ``past``) is declared as ``<name>_plus_one - 1`` instead, so the exported
    program also accepts size 0 for it; export fails if the graph needs that symbol >= 1."""
    from jax import export as jexport

    symbols = [s for s, *_ in program.plan]
    allow_zero = (allow_zero,) if isinstance(allow_zero, str) else tuple(allow_zero)
    unknown = sorted(set(allow_zero) - set(symbols))
    if unknown:
        raise IRError(
            f"export(allow_zero=...): {unknown} are not symbols of this program; its symbols are {symbols}"
        )
    names = [f"{s}_plus_one" if s in allow_zero else s for s in symbols]
    dims = jexport.symbolic_shape(",".join(names), scope=jexport.SymbolicScope()) if symbols else ()
    sym = {s: (d - 1 if s in allow_zero else d) for s, d in zip(symbols, dims)}
    args = [
        jax.ShapeDtypeStruct(
            tuple(d if isinstance(d, int) else eval_dim(d, sym) for d in spec.shape), jdt(spec.dtype)
        )
        for spec in program.input_specs
    ]
    try:
        # hoisted weights are closed over, so they are stored inside the exported program
        fn, hoisted = program.fn, program.hoisted_arrays
        data = jexport.export(jax.jit(lambda *xs: fn(hoisted, *xs)))(*args).serialize()
    except Exception as exc:
        if type(exc).__name__ != "InconclusiveDimensionOperation":
            raise
        first = str(exc).splitlines()[0]
        raise IRError(
            f"jax export: {first} (jax.export assumes every symbol >= 1"
            + (f"; drop {list(allow_zero)} from allow_zero" if allow_zero else "")
            + ", or export to onnx/tensorflow)"
        ) from None
    return atomic_write(os.path.abspath(os.fspath(path)), bytes(data))


def load(path: str) -> Any:
    """A StableHLO file written by ``JaxProgram.export`` as a ``jax.export.Exported``:
    ``load(path).call(*arrays)`` returns the outputs as a tuple in ``output_names`` order."""
    from jax import export as jexport

    path = os.fspath(path)
    if os.path.isfile(path):
        verify_member(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ArtefactError(f"cannot read the jax artefact {path}: {exc.strerror}") from None
    try:
        return jexport.deserialize(bytearray(data))
    except Exception as exc:  # flatbuffer errors have no common type
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ArtefactError(
            f"{path} is not a serialised jax.export program ({first}); export it again"
        ) from None
