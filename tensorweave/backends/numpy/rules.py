"""The numpy rule table: every op of the registry calls its reference implementation.

``rule(site)`` applies ``OPS[op].reference`` to the input arrays and the node's attributes (symbolic
dims already evaluated; for ``while_loop`` / ``cond`` the subgraphs are passed as Python callables
by :func:`~tensorweave.backends.numpy.program.run_graph`)."""

from __future__ import annotations

from ...ir.ops import OPS
from ..base import Rules

NAME = "numpy"

LOWERINGS = Rules(NAME)
for _name, _op in OPS.items():
    LOWERINGS.register_call(_name, _op.reference)
del _name, _op
