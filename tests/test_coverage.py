"""Coverage is computed from the registry: every op lowered by every backend, tested, documented."""

from __future__ import annotations

import pytest

from tensorweave.backends import registry
from tensorweave.ir.ops import OPS

from conftest import NON_REFERENCE, require_backend
from op_cases import ops_covered


@pytest.mark.parametrize("backend_name", NON_REFERENCE)
def test_every_op_is_lowered(backend_name):
    require_backend(backend_name)
    module = registry.get(backend_name)
    missing = sorted(set(OPS) - set(module.LOWERINGS))
    assert not missing, f"{backend_name} lacks lowerings for {missing}"


def test_every_op_has_parity_cases_and_semantics():
    assert not sorted(set(OPS) - ops_covered()), "ops without a parity case"
    undocumented = [name for name, op in OPS.items() if len(op.doc) < 10]
    assert not undocumented, f"ops without a semantics docstring: {undocumented}"
