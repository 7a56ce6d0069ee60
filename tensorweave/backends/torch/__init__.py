"""The PyTorch backend: a graph becomes generated Python source over torch ops.

Contract (spec/backends.md, details in spec/backends-torch.md):

- ``NAME = "torch"``; ``LOWERINGS`` maps every op of the registry to one rule
  ``rule(site) -> str`` (:mod:`.rules`): ``site`` is a :class:`~.rules.TorchSite` (a
  :class:`~tensorweave.backends.base.Site` with the code generator's helpers) and the result is
  the Python source computing the node's outputs.
- ``lower(graph, compile=False) -> TorchProgram`` (:mod:`.program`) writes the source once
  (:mod:`.codegen`), ``exec``s it over the helpers of :mod:`.runtime` and wraps the entry
  function; a call runs that function, there is no per-op interpretation. ``compile=True`` wraps
  it in ``torch.compile(dynamic=True)``; any other option is an error.
- ``TorchProgram.export(path)`` writes a ``.pt2`` (``torch.export``, one ``Dim`` per symbol,
  ``while_loop``/``cond`` as torch's higher-order ops) atomically; ``load(path)`` reads it back
  as a callable (:mod:`.artefact`).
- uint32 is carried as int64 holding [0, 2**32) and masked after the ops whose results wrap
  (``OPS[op].wraps_uint32``); float16/bfloat16 math is done in float32 and rounded per op.
"""

from __future__ import annotations

from .artefact import example_sizes_for, export_program, load
from .codegen import Codegen, build, generate_source
from .program import NAME, TorchProgram, lower
from .rules import LOWERINGS, RULES, TorchSite
from .runtime import FROM_TORCH, HELPERS, MASK32, RUNTIME, TORCH_DTYPES, top_k

__all__ = [
    "FROM_TORCH",
    "HELPERS",
    "LOWERINGS",
    "MASK32",
    "NAME",
    "RULES",
    "RUNTIME",
    "TORCH_DTYPES",
    "Codegen",
    "TorchProgram",
    "TorchSite",
    "build",
    "example_sizes_for",
    "export_program",
    "generate_source",
    "load",
    "lower",
    "top_k",
]
