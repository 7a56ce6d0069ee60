"""The torch artefact: a ``.pt2`` file written by ``torch.export`` (spec/backends-torch.md).

:func:`export_program` traces the export flavour of a program's source with
``torch.export.export`` (one ``torch.export.Dim`` per IR symbol) and saves it atomically:
``torch.export.save`` writes a temporary sibling whose name holds ``tensorweave.io.TMP_MARK``,
which is renamed over the target, or removed on any failure. :func:`load` reads a ``.pt2`` back
as a callable.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from typing import Any, Callable

import numpy as np
import torch

from ...errors import ArtefactError
from ...io import sweep_stale, tmp_prefix, verify_member, writable_parent
from ...ir.graph import Graph
from ...ir.types import DType, IRError, SymDim
from ..base import Program
from .codegen import build
from .runtime import TORCH_DTYPES


def _dim_name(d: SymDim) -> str:
    text = str(d).replace(" ", "").replace("+", "_plus_").replace("-", "_minus_").replace("*", "_times_")
    return "d_" + re.sub(r"\W", "_", text)


def _alone(d: SymDim) -> bool:
    """True when ``d`` is one symbol (coefficient 1)."""
    return len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1


def example_sizes_for(graph: Graph, given: dict | None = None) -> dict[str, int]:
    """Distinct example sizes >= 2 for the symbols (torch specialises sizes 0 and 1, and equal
    example sizes would tie unrelated axes); every compound input dim must be >= 2 and distinct
    too. ``given`` fixes some of them (e.g. a symbol that must be even)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(graph.symbols))
    if unknown:
        raise IRError(
            f"example_sizes names {unknown}, which are not symbols of this program ({sorted(graph.symbols)})"
        )
    compound = {
        d for spec in graph.input_specs for d in spec.shape if isinstance(d, SymDim) and not _alone(d)
    }
    sizes = dict(given)
    candidate = 5
    for s in sorted(graph.symbols - set(given)):
        while True:
            trial = {**sizes, s: candidate}
            candidate += 2
            known = [d.evaluate(trial) for d in compound if d.symbols <= set(trial)]
            values = list(trial.values()) + known
            if all(v >= 2 for v in known) and len(set(values)) == len(values):
                sizes = trial
                break
    return sizes


def export_program(prog: Program, path: str, example_sizes: dict | None = None) -> str:
    """Trace the export flavour of ``prog`` (a :class:`.program.TorchProgram`) with
    ``torch.export.export`` and save it.

    Every IR symbol becomes a ``torch.export.Dim`` of the same name (``min=0``), shared by every
    input axis it names. An axis holding a compound dim (``past + seq``) gets its own Dim
    (``d_past_plus_seq``); torch.export finds the relation from the program and records it as a
    range constraint. The file takes the IR input names as arguments, in order, with the IR
    dtypes (uint32 included) and returns the outputs as a tuple."""
    import torch._higher_order_ops  # noqa: F401 - the export flavour's while_loop

    path = os.fspath(path)
    if not path.endswith(".pt2"):
        raise IRError(f"torch export writes a .pt2 file; got {path!r}, use a name ending in .pt2")
    graph = prog.graph
    entry, _, _, _ = build(graph, export=True)
    sizes = example_sizes_for(graph, example_sizes)
    params = list(entry.__code__.co_varnames[1 : entry.__code__.co_argcount])
    dims: dict = {}
    examples, dynamic = [], {}
    for param, spec in zip(params, prog.input_specs):
        axes = {}
        for ax, d in enumerate(spec.shape):
            if isinstance(d, SymDim):
                name = d.terms[0][0][0] if _alone(d) else _dim_name(d)
                if name not in dims:
                    dims[name] = torch.export.Dim(name, min=0)
                axes[ax] = dims[name]
        shape = [d if isinstance(d, int) else d.evaluate(sizes) for d in spec.shape]
        dtype = torch.uint32 if spec.dtype is DType.uint32 else TORCH_DTYPES[spec.dtype]
        examples.append(torch.zeros(shape, dtype=dtype))
        dynamic[param] = axes or None

    exported_cls = type("TensorweaveProgram", (torch.nn.Module,), {"forward": entry})
    try:
        exported = torch.export.export(exported_cls(), tuple(examples), dynamic_shapes=dynamic)
    except Exception as exc:  # torch's messages are long; keep the first line and say what to try
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IRError(
            f"torch.export failed for program {graph.name!r}: {type(exc).__name__}: {first[:300]}; "
            "try other example_sizes= or export to onnx/jax/tensorflow"
        ) from exc
    return save(exported, path)


def save(exported: Any, path: str) -> str:
    """``torch.export.save`` to a temporary sibling of ``path`` (its name holds ``TMP_MARK``),
    then one rename over ``path``; the temporary file is removed on any failure."""
    path = os.fspath(path)
    if not path.endswith(".pt2"):
        raise IRError(f"torch export writes a .pt2 file; got {path!r}, use a name ending in .pt2")
    parent = writable_parent(path)
    sweep_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(path), suffix=".pt2", dir=parent)
    os.close(fd)
    try:
        torch.export.save(exported, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path


def _to_torch(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    arr = np.ascontiguousarray(x)
    if arr.dtype == DType.bfloat16.to_numpy():  # numpy's bfloat16 (ml_dtypes): bit-cast
        return torch.from_numpy(arr.view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(arr)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.uint16).numpy().view(DType.bfloat16.to_numpy())
    return t.numpy()


PICKLE_REFUSAL = (
    "{path}: .pt2 files are read by torch.export.load, which unpickles and can run code: "
    "pass allow_pickle=True only for files you trust"
)


def load_exported(path: str, *, allow_pickle: bool = False) -> Any:
    """``torch.export.load(path)`` behind the one gate every .pt2 read passes: refused unless
    ``allow_pickle`` (torch.export.load unpickles, and a crafted file runs code)."""
    path = os.fspath(path)
    if not allow_pickle:
        raise ArtefactError(PICKLE_REFUSAL.format(path=path))
    if not os.path.isfile(path):
        raise IRError(f"no torch artefact at {path!r}; write one with TorchProgram.export")
    verify_member(path)
    return torch.export.load(path)


def load(path: str, *, allow_pickle: bool = False) -> Callable[..., tuple]:
    """A ``.pt2`` written by :meth:`TorchProgram.export <.program.TorchProgram.export>` as a callable.

    ``load(path)(*inputs)`` runs the ``torch.export`` program's module (under ``torch.no_grad``) on
    the inputs in the program's input order and returns its outputs as a tuple, in output order.
    Inputs are numpy arrays (converted without copying where possible; bfloat16 from
    ``ml_dtypes``) or torch tensors, with the IR dtypes (uint32 included); all torch in -> torch
    out, otherwise numpy out. The same run as ``tensorweave.export.run_artefact`` for a torch
    artefact, by position instead of by name.

    ``allow_pickle`` must be True: ``torch.export.load`` unpickles, so a crafted file runs code;
    load only files you trust (without it the call raises ``ArtefactError`` and reads nothing)."""
    module = load_exported(path, allow_pickle=allow_pickle).module()

    def run(*inputs: Any) -> tuple:
        native = bool(inputs) and all(isinstance(x, torch.Tensor) for x in inputs)
        with torch.no_grad():
            outs = module(*[_to_torch(x) for x in inputs])
        outs = tuple(outs) if isinstance(outs, (tuple, list)) else (outs,)
        return outs if native else tuple(_to_numpy(o) for o in outs)

    run.module = module  # type: ignore[attr-defined]
    return run
