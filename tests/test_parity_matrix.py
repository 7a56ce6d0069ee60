"""The op x backend parity matrix: every case of tests/op_cases.py (every registry op, plus
negative-axis, symbolic-dim, control-flow and RNG programs) on every framework backend against
the numpy reference, within spec/backends.md's tolerances (tensorweave.parity.TOLERANCES).

One pytest item per (case, backend). To keep compile costs down (jax.jit, tf.function, ORT
sessions), the 1-node cases of one op category are lowered together as one merged graph per
backend (op_cases.merge) and each item reads its outputs from that run; if the merged program
fails to lower or run, its cases are run one by one so the error lands on the right case.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tensorweave.backends import registry
from tensorweave.backends.numpy import lower as lower_numpy
from tensorweave.ir.ops import OPS, resolve_attrs
from tensorweave.parity import differences, within

from conftest import NON_REFERENCE, require_backend
from op_cases import EXCLUDED, Case, all_cases, merge

pytestmark = pytest.mark.filterwarnings("ignore:Mean of empty slice")

CASES = all_cases()
BY_ID = {case.id: case for case in CASES}
GROUPS: dict[str, list[Case]] = {}
for _case in CASES:
    if _case.group is not None:
        GROUPS.setdefault(_case.group, []).append(_case)


def _as_list(out) -> list:
    return list(out) if isinstance(out, tuple) else [out]


@functools.cache
def reference(case_id: str) -> list[np.ndarray]:
    case = BY_ID[case_id]
    return _as_list(lower_numpy(case.graph)(*case.inputs))


_programs: dict[tuple[str, int], object] = {}
_results: dict[tuple[str, str], list | BaseException] = {}


def _run_alone(backend: str, case: Case) -> list | BaseException:
    """Lower (once per graph: traced programs run at several sizes share it) and run one case."""
    try:
        key = (backend, id(case.graph))
        if key not in _programs:
            _programs[key] = registry.get(backend).lower(case.graph)
        return [np.asarray(o) for o in _as_list(_programs[key](*case.inputs))]
    except Exception as exc:  # reported on the case's own test item
        return exc


def _run_group(backend: str, group: str) -> None:
    members = GROUPS[group]
    try:
        graph, arrays, owned = merge(members)
        outs = [np.asarray(o) for o in _as_list(registry.get(backend).lower(graph)(*arrays))]
        for case, part in zip(members, owned):
            _results[(backend, case.id)] = outs[part]
    except Exception:  # find out which cases break it
        for case in members:
            _results[(backend, case.id)] = _run_alone(backend, case)


def backend_outputs(backend: str, case: Case) -> list | BaseException:
    if (backend, case.id) not in _results:
        if case.group is None:
            _results[(backend, case.id)] = _run_alone(backend, case)
        else:
            _run_group(backend, case.group)
    return _results[(backend, case.id)]


def _show(a: np.ndarray) -> str:
    return np.array2string(
        np.asarray(a).astype(np.float64) if a.dtype.kind == "V" else a, threshold=40, separator=","
    ).replace("\n", "")


def disagreements(case: Case, got: list, want: list) -> list[str]:
    """One line per output that differs from the reference (dtype, shape or value)."""
    if len(got) != len(want):
        return [f"{len(got)} outputs, want {len(want)}"]
    lines = []
    for k, (g, r, spec) in enumerate(zip(got, want, case.graph.output_specs)):
        if g.dtype != r.dtype or g.shape != r.shape:
            lines.append(f"output {k}: got {g.dtype}{list(g.shape)}, want {r.dtype}{list(r.shape)}")
        elif not within(g, r, spec.dtype):
            mabs, mrel, special = differences(g, r)
            lines.append(
                f"output {k} ({spec.dtype}): max abs {mabs:.3g}, max rel {mrel:.3g}, "
                f"nan/inf positions agree: {special}\n  got  {_show(g)}\n  want {_show(r)}"
            )
    return lines


@pytest.mark.parametrize("case_id", list(BY_ID))
@pytest.mark.parametrize(
    "backend_name", [pytest.param(b, marks=pytest.mark.xdist_group(f"parity-{b}")) for b in NON_REFERENCE]
)
def test_parity(backend_name, case_id):
    require_backend(backend_name)
    case = BY_ID[case_id]
    got = backend_outputs(backend_name, case)
    if isinstance(got, BaseException):
        pytest.fail(
            f"{backend_name} cannot run {case_id}: {type(got).__name__}: "
            f"{str(got).strip().splitlines()[0][:300] if str(got).strip() else ''}",
            pytrace=False,
        )
    bad = disagreements(case, got, reference(case_id))
    assert not bad, f"{backend_name} disagrees with numpy on {case_id}:\n" + "\n".join(bad)


# ------------------------------------------------------------------ the RNG: bits exactly equal

RNG_EXACT = {
    0: "random_bits",
    1: "uniform",
    2: "categorical",
    3: "fold_in",
    5: "split",
    7: "random_bits(symbolic)",
}


@pytest.mark.parametrize("backend_name", NON_REFERENCE)
def test_rng_identical_on_every_backend(backend_name):
    """Threefry bits, keys, uniform floats and categorical draws are bit-identical for the same key
    (they use only integer ops and exact float scalings); gumbel/normal go through log/cos and are
    covered by the float tolerance in test_parity."""
    require_backend(backend_name)
    for case in (c for c in CASES if c.id.startswith("rng-threefry")):
        got = backend_outputs(backend_name, case)
        assert not isinstance(got, BaseException), f"{backend_name}: {got!r}"
        want = reference(case.id)
        for k, what in RNG_EXACT.items():
            assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), (
                f"{backend_name} {case.id}: {what} differs\n got  {got[k]}\n want {want[k]}"
            )


# ------------------------------------------------------------------ the cases themselves (numpy only)


def test_reference_backend_equals_op_references():
    """Running a 1-node case on the numpy backend is calling the op's reference implementation."""
    for case in CASES:
        if case.group is None:
            continue
        node = case.graph.nodes[0]
        direct = _as_list(OPS[node.op].reference(*case.inputs, **resolve_attrs(OPS[node.op], node.attrs, {})))
        for d, g in zip(direct, reference(case.id)):
            d = np.asarray(d).astype(g.dtype)
            if g.dtype.kind == "V":  # numpy's testing does not treat bfloat16 nan as equal
                d, g = d.astype(np.float32), g.astype(np.float32)
            np.testing.assert_array_equal(d, g, err_msg=case.id)


def test_merged_groups_equal_single_cases_on_numpy():
    """Merging cases into one graph must not change any case's result."""
    for members in GROUPS.values():
        graph, arrays, owned = merge(members)
        outs = _as_list(lower_numpy(graph)(*arrays))
        for case, part in zip(members, owned):
            assert not disagreements(case, outs[part], reference(case.id)), case.id
            for o, r in zip(outs[part], reference(case.id)):
                assert o.dtype == r.dtype and o.shape == r.shape and o.tobytes() == r.tobytes(), case.id


def _int_inputs(op: str) -> list[list[np.ndarray]]:
    return [list(c.inputs) for c in CASES if c.group is not None and c.graph.nodes[0].op == op]


def test_cases_stay_inside_the_specified_domains():
    """No case feeds an op an input its docstring leaves unspecified (op_cases.EXCLUDED)."""
    assert set(EXCLUDED) <= set(OPS)
    for op in ("floor_divide", "remainder"):
        for x, y in _int_inputs(op):
            xb, yb = np.broadcast_arrays(x, y)
            assert np.all(yb != 0), op
            if x.dtype.kind == "i":
                assert not np.any((xb == np.iinfo(x.dtype).min) & (yb == -1)), op
            if x.dtype.kind in "fV":
                assert np.all(np.isfinite(xb.astype(np.float64)) & np.isfinite(yb.astype(np.float64))), op
    for op in ("bitwise_left_shift", "bitwise_right_shift"):
        for x, y in _int_inputs(op):
            assert np.all((y >= 0) & (y < x.dtype.itemsize * 8)), op
    for x, y in _int_inputs("pow"):
        assert x.dtype.kind == "f" or x.dtype.kind == "V" or np.all(y >= 0)
    for case in CASES:
        if case.group is None:
            continue
        node = case.graph.nodes[0]
        if node.op == "astype" and node.attrs["dtype"].is_integer and case.inputs[0].dtype.kind in "fV":
            info = np.iinfo(node.attrs["dtype"].to_numpy())
            v = case.inputs[0].astype(np.float64)
            assert np.all(np.isfinite(v) & (np.trunc(v) >= info.min) & (np.trunc(v) <= info.max)), case.id
        if node.op in ("take", "take_along_axis", "put_along_axis"):
            n = case.inputs[0].shape[node.attrs["axis"]]
            assert np.all((case.inputs[1] >= 0) & (case.inputs[1] < n)), case.id


# ------------------------------------------------------------------ CPU-dependent kernels


def _torch_capabilities() -> list[str]:
    """The ATEN_CPU_CAPABILITY values this CPU can run: default always, avx2 / avx512 by its flags."""
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        return ["default"]
    caps = ["default"]
    if "avx2" in flags:
        caps.append("avx2")
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        caps.append("avx512")
    return caps


@pytest.mark.parametrize("capability", _torch_capabilities())
def test_torch_special_values_under_every_cpu_capability(capability):
    """PyTorch dispatches to default / AVX2 / AVX-512 kernels by CPU; the special-value cases
    (nan, +-inf, signed zero) must give the IR's values under each one this machine supports
    (spec/backends.md, "CPU-dependent kernels"). A fresh process per capability: torch reads
    ATEN_CPU_CAPABILITY once, at import."""
    require_backend("torch")
    import os
    import pathlib
    import subprocess
    import sys

    here = pathlib.Path(__file__).parent
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    run = subprocess.run(
        [sys.executable, str(here / "special_values_run.py"), "torch"],
        cwd=here,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"ATEN_CPU_CAPABILITY={capability}:\n{run.stdout[-3000:]}{run.stderr[-2000:]}"
