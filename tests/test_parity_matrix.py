"""The op x backend parity matrix: every registry op (plus symbolic-dim, control-flow and RNG
programs) on every framework backend against the numpy reference, within spec/backends.md's
tolerances (tensorweave.parity.TOLERANCES). RNG bits must be identical."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import NON_REFERENCE, require_backend
from op_cases import all_cases
from tensorweave.backends import registry
from tensorweave.backends.numpy import lower as lower_numpy
from tensorweave.parity import differences, within

CASES = all_cases()


@pytest.mark.parametrize("backend_name", NON_REFERENCE)
def test_parity_matrix(backend_name):
    """One test per backend walks every case (cheaper than one pytest item per case); the failure
    message lists every disagreeing case with its max abs/rel difference."""
    require_backend(backend_name)
    module = registry.get(backend_name)
    failures = []
    for case_id, graph, arrays in CASES:
        ref = lower_numpy(graph)(*arrays)
        ref = ref if isinstance(ref, tuple) else (ref,)
        try:
            out = module.lower(graph)(*arrays)
        except Exception as exc:  # report, do not stop at the first broken op
            failures.append(f"{case_id}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            continue
        out = out if isinstance(out, tuple) else (out,)
        for k, (o, r, spec) in enumerate(zip(out, ref, graph.output_specs)):
            o = np.asarray(o)
            if o.dtype != r.dtype or o.shape != r.shape:
                failures.append(f"{case_id} output {k}: got {o.dtype}{list(o.shape)}, want {r.dtype}{list(r.shape)}")
            elif not within(o, r, spec.dtype):
                mabs, mrel, special = differences(o, r)
                failures.append(f"{case_id} output {k} ({spec.dtype}): max abs {mabs:.3g}, max rel {mrel:.3g}, "
                                f"nan/inf match {special}")
    assert not failures, f"{backend_name}: {len(failures)} of {len(CASES)} cases disagree:\n" + "\n".join(failures)


def test_reference_backend_equals_op_references():
    """The numpy backend is the registry's reference implementations, op for op."""
    from tensorweave.ir.ops import OPS, resolve_attrs
    for case_id, graph, arrays in CASES:
        if len(graph.nodes) != 1 or graph.constants:
            continue
        node = graph.nodes[0]
        direct = OPS[node.op].reference(*arrays, **resolve_attrs(OPS[node.op], node.attrs, {}))
        direct = direct if isinstance(direct, tuple) else (direct,)
        got = lower_numpy(graph)(*arrays)
        got = got if isinstance(got, tuple) else (got,)
        for d, g in zip(direct, got):
            d = np.asarray(d).astype(g.dtype)
            if g.dtype.name == "bfloat16":  # numpy's testing does not treat bfloat16 nan as equal
                d, g = d.astype(np.float32), g.astype(np.float32)
            np.testing.assert_array_equal(d, g, err_msg=case_id)
