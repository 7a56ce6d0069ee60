"""The jax export cache (spec/backends-jax.md, "Export cache"): a top-level call of a JaxProgram
stores its serialised ``jax.export`` program under ``$TENSORWEAVE_CACHE/jax-export`` and a later
program with the same structure reads it instead of tracing the IR again. Keys cover small
constants by value and hoisted weights by type only; damaged entries and a disabled cache fall
back to the plain jit. Tiny graphs; expected values come from the numpy reference interpreter."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from tensorweave.backends import registry

from conftest import IN_CI

if not registry.is_installed("jax") and not IN_CI:  # in CI a missing backend fails the session
    pytest.skip(registry.missing_message("jax"), allow_module_level=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import tensorweave.ir.namespace as xp  # noqa: E402
from tensorweave.backends import jax as jax_backend  # noqa: E402
from tensorweave.backends.jax import export_cache  # noqa: E402
from tensorweave.backends.jax import program as jax_program  # noqa: E402
from tensorweave.backends.numpy import lower as lower_numpy  # noqa: E402
from tensorweave.ir import TensorSpec, trace  # noqa: E402
from tensorweave.ir.trace import constant  # noqa: E402

W = np.arange(32, dtype=np.float32).reshape(4, 8) / 7.0  # 32 elements: hoisted (an argument)
X = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
IDS = np.array([3, 1, 2], dtype=np.int64)


def small_model(scale: float, weight: np.ndarray):
    """x @ weight * scale + a loop over int64 ids: a hoisted weight, a literal, int64 types and a
    ``while_loop`` subgraph."""

    def fn(x, ids):
        h = (x @ constant(weight, name="w")) * constant(np.float32(scale))

        def body(carry):
            i, acc = carry
            return i + 1, acc + xp.sum(ids) * i

        _, total = xp.while_loop(lambda c: c[0] < 3, body, (xp.asarray(0, dtype="int64"), xp.sum(ids)))
        return h, total

    return trace(fn, TensorSpec(("n", 4), "float32", "x"), TensorSpec(("m",), "int64", "ids"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The cache under tmp_path, and a counter of IR traces (calls of ``run_graph``)."""
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))
    monkeypatch.setattr(export_cache, "MIN_EXPORT_SECONDS", 0.0)  # tiny programs are stored too
    traces = []
    original = jax_program.run_graph

    def counting(graph, *args, **kwargs):
        traces.append(graph.name)
        return original(graph, *args, **kwargs)

    monkeypatch.setattr(jax_program, "run_graph", counting)
    return tmp_path / "jax-export", traces


def entries(directory):
    return sorted(p for p in os.listdir(directory) if p.endswith(export_cache.SUFFIX))


def run(graph):
    prog = jax_backend.lower(graph)
    return prog, [np.asarray(o) for o in prog(X, IDS)]


def reference(graph):
    return [np.asarray(o) for o in lower_numpy(graph)(X, IDS)]


def assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-6)


@pytest.fixture
def info_lines():
    """The tensorweave logger's messages at info level and above, during the test."""
    logger = logging.getLogger("tensorweave")
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_an_equal_graph_reads_the_entry_instead_of_tracing(cache, info_lines):
    directory, traces = cache
    _, first = run(small_model(2.0, W))
    assert traces and len(entries(directory)) == 1  # traced once (by jax.export), written
    assert any(line.startswith("jax export cache: wrote ") for line in info_lines)
    assert first[1].dtype == np.int64
    assert_same(first, reference(small_model(2.0, W)))
    traces.clear()
    prog, second = run(small_model(2.0, W))  # traced to IR again: a new graph, new Values
    assert traces == []  # the IR was not traced by jax: the stored program ran
    assert info_lines[-1].startswith(f"jax export cache: read {entries(directory)[0]}")
    assert len(entries(directory)) == 1
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    with jax.enable_x64(True):  # the plain jit computes the same bits
        plain = prog.jitted(prog.hoisted_arrays, jnp.asarray(X), jnp.asarray(IDS))
    for a, b in zip(first, plain):
        np.testing.assert_array_equal(a, np.asarray(b))
    # another input shape is another entry; a call with the first shape again is in memory
    prog(X[:2], IDS)
    assert len(entries(directory)) == 2
    traces.clear()
    prog(X, IDS)
    assert traces == []


def test_key_hashes_literals_by_value_and_hoisted_weights_by_type(cache):
    directory, traces = cache
    _, base = run(small_model(2.0, W))
    assert len(entries(directory)) == 1
    _, scaled = run(small_model(3.0, W))  # a literal differs: another program
    assert len(entries(directory)) == 2
    np.testing.assert_allclose(scaled[0], base[0] * 1.5, rtol=1e-6)
    traces.clear()
    other = W[::-1] * -1.0  # same dtype and shape, other values
    _, weighted = run(small_model(2.0, other))
    assert traces == [] and len(entries(directory)) == 2  # the first entry, with its own weights
    assert_same(weighted, reference(small_model(2.0, other)))
    assert not np.allclose(weighted[0], base[0])

    g, h = small_model(2.0, W), small_model(2.0, other)
    prog_g, prog_h = jax_backend.lower(g), jax_backend.lower(h)
    sig = [((4, 8), np.float32), ((3, 4), np.float32), ((3,), np.int64)]
    assert export_cache.program_key(g, prog_g.hoisted, sig) == export_cache.program_key(
        h, prog_h.hoisted, sig
    )
    assert export_cache.program_key(g, prog_g.hoisted, sig) != export_cache.program_key(
        g, prog_g.hoisted, [*sig[:2], ((4,), np.int64)]
    )


def test_a_damaged_entry_falls_back_to_tracing(cache):
    directory, traces = cache
    _, first = run(small_model(2.0, W))
    (name,) = entries(directory)
    path = directory / name
    good = path.read_bytes()
    for damaged in (b"not a serialised program " * 40, good[: len(good) // 2], b""):
        path.write_bytes(damaged)
        traces.clear()
        _, again = run(small_model(2.0, W))
        assert traces  # traced again
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)
        assert export_cache.read(str(path)) is not None  # rewritten whole
    # a well-formed entry that cannot run with these inputs (it was exported for 2 rows): the
    # call fails, the plain jit runs instead and the entry is dropped
    jax_backend.lower(small_model(2.0, W))(X[:2], IDS)
    (two_rows,) = [directory / n for n in entries(directory) if n != name]
    path.write_bytes(two_rows.read_bytes())
    traces.clear()
    _, again = run(small_model(2.0, W))
    assert traces
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not path.exists()


def test_a_failed_write_leaves_no_file_and_runs_the_program(cache):
    directory, _ = cache
    _, first = run(small_model(2.0, W))
    (name,) = entries(directory)
    (directory / name).unlink()
    (directory / name).mkdir()  # neither readable as a file nor replaceable by one
    _, again = run(small_model(2.0, W))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert os.listdir(directory) == [name] and (directory / name).is_dir()  # no temporary left


def test_cache_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", "off")
    monkeypatch.chdir(tmp_path)
    assert export_cache.export_cache_dir() is None
    _, out = run(small_model(2.0, W))
    assert_same(out, reference(small_model(2.0, W)))
    assert os.listdir(tmp_path) == []


def test_programs_that_export_fast_are_not_stored(cache, monkeypatch):
    directory, traces = cache
    monkeypatch.setattr(export_cache, "MIN_EXPORT_SECONDS", 1e9)
    prog, out = run(small_model(2.0, W))
    assert_same(out, reference(small_model(2.0, W)))
    assert entries(directory) == []
    traces.clear()
    prog(X, IDS)  # the exported program stays in use for this shape
    assert traces == []


def test_an_unwritable_cache_runs_the_program(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(blocker / "cache"))
    assert export_cache.export_cache_dir() is None
    assert_same(run(small_model(2.0, W))[1], reference(small_model(2.0, W)))


def test_traced_calls_inline_and_do_not_use_the_cache(cache):
    directory, _ = cache
    prog = jax_backend.lower(small_model(2.0, W))

    @jax.jit
    def outer(x, ids):
        h, total = prog(x, ids)  # tracers: the plain jit path, inlined into this trace
        return h.sum(), total

    with jax.enable_x64(True):
        h, total = outer(jnp.asarray(X), jnp.asarray(IDS))
    want = reference(small_model(2.0, W))
    np.testing.assert_allclose(np.asarray(h), want[0].sum(), rtol=1e-5)
    assert int(total) == int(want[1])
    assert not directory.exists() or entries(directory) == []
