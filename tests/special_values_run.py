"""Run the parity matrix's special-value cases (nan, +-inf, signed zeros, extremes) on one
backend and print one line per case that disagrees with the numpy reference.

Used by test_parity_matrix.test_torch_special_values_under_every_cpu_capability in a fresh
process, because torch picks its CPU kernels (``ATEN_CPU_CAPABILITY``) once, at import.
Usage: ``python tests/special_values_run.py BACKEND``; exit status 1 when a case disagrees.
"""

from __future__ import annotations

import sys

from tensorweave.backends import registry
from tensorweave.backends.numpy import lower as lower_numpy

from op_cases import all_cases
from test_parity_matrix import disagreements


def _as_list(out) -> list:
    return list(out) if isinstance(out, tuple) else [out]


def main(backend: str) -> int:
    import numpy as np

    cases = [c for c in all_cases() if "special" in c.id]
    bad = 0
    for case in cases:
        want = _as_list(lower_numpy(case.graph)(*case.inputs))
        got = [np.asarray(o) for o in _as_list(registry.get(backend).lower(case.graph)(*case.inputs))]
        for line in disagreements(case, got, want):
            print(f"{case.id}: {line}")
            bad += 1
    print(f"{len(cases)} special-value cases, {bad} disagreements")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
