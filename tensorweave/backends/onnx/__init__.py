"""The ONNX backend: a graph becomes a standard-domain ``ModelProto`` run by ONNX Runtime
(spec/backends-onnx.md).

Contract (spec/backends.md): ``NAME`` (``"onnx"``), ``LOWERINGS`` (a
:class:`~tensorweave.backends.base.Rules` table covering every registry op; every entry is
``rule(site) -> ONNX output name(s)`` with ``site`` an :class:`OnnxSite`), ``lower(graph,
opset=None) -> OnnxProgram`` and ``load(path)`` (a saved ``.onnx`` file as a callable run by
ONNX Runtime). Also: ``to_model_proto(graph, opset)`` (the ``ModelProto`` alone, no session),
``save_model(model, path, external_data_threshold)`` (atomic; external data past
``EXTERNAL_DATA_THRESHOLD``) and ``OPSET`` (21, the default; 20 is the minimum).

Modules: ``graph`` (``Builder``, ``Lowering``: symbols, dims, constants, ``Loop``/``If``;
``to_model_proto``), ``rules`` (the rule table), ``program`` (``OnnxProgram``, ``lower``) and
``artefact`` (``save_model``, ``load``).

Opset 21 has every op the lowering needs in the standard domain (``Gelu`` 20, ``Bitwise*`` 18,
``LayerNormalization`` 17, reductions taking ``axes`` as an input 18), so no contrib ops are
used and any ONNX runtime can load the file. uint32 is carried as int64 inside the graph and
float16/bfloat16 as float32 (rounded after every op); the boundary keeps the IR's dtypes
(bfloat16 is declared float32: ONNX Runtime's Python API has no bfloat16 numpy type).
"""

from __future__ import annotations

from .artefact import EXTERNAL_DATA_THRESHOLD, OnnxArtefact, load, save_model
from .graph import MIN_OPSET, NAME, OPSET, Builder, DimTensor, Lowering, OnnxSite, to_model_proto
from .program import OnnxProgram, lower
from .rules import LOWERINGS, NO_ROUND

__all__ = [
    "EXTERNAL_DATA_THRESHOLD",
    "LOWERINGS",
    "MIN_OPSET",
    "NAME",
    "NO_ROUND",
    "OPSET",
    "Builder",
    "DimTensor",
    "Lowering",
    "OnnxArtefact",
    "OnnxProgram",
    "OnnxSite",
    "load",
    "lower",
    "save_model",
    "to_model_proto",
]
