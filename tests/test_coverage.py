"""Coverage is computed from the registry: every op lowered by every backend, tested, documented,
and every backend's rule table has the one rule shape ``rule(site)`` (tensorweave.backends.base)."""

from __future__ import annotations

import inspect

import pytest

from tensorweave.backends import registry
from tensorweave.backends.base import Rules
from tensorweave.ir.ops import OPS

from conftest import BACKENDS, NON_REFERENCE, require_backend
from op_cases import ops_covered


@pytest.mark.parametrize("backend_name", NON_REFERENCE)
def test_every_op_is_lowered(backend_name):
    require_backend(backend_name)
    module = registry.get(backend_name)
    missing = sorted(set(OPS) - set(module.LOWERINGS))
    assert not missing, f"{backend_name} lacks lowerings for {missing}"


def one_argument(rule) -> bool:
    """True when ``rule`` is called with exactly one positional argument (the site)."""
    params = list(inspect.signature(rule, follow_wrapped=False).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return bool(positional) and len(required) == 1 and required[0] is positional[0]


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_every_rule_table_has_the_one_rule_shape(backend_name):
    require_backend(backend_name)
    module = registry.get(backend_name)
    assert isinstance(module.LOWERINGS, Rules), f"{backend_name}: LOWERINGS is not a base.Rules table"
    assert module.LOWERINGS.backend == module.NAME == backend_name
    assert set(OPS) <= set(module.LOWERINGS), sorted(set(OPS) - set(module.LOWERINGS))
    wrong = sorted(op for op, rule in module.LOWERINGS.items() if not one_argument(rule))
    assert not wrong, f"{backend_name}: rules that are not rule(site): {wrong}"
    for name in ("lower", "load"):
        assert callable(getattr(module, name, None)), f"{backend_name} has no {name}()"


def test_every_op_has_parity_cases_and_semantics():
    assert not sorted(set(OPS) - ops_covered()), "ops without a parity case"
    undocumented = [name for name, op in OPS.items() if len(op.doc) < 10]
    assert not undocumented, f"ops without a semantics docstring: {undocumented}"
