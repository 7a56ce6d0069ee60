"""Fuzzing the readers of untrusted files: safetensors (``tensorweave.ir.safetensors_io`` and the
checkpoint loader), GGUF and config.json. Valid files are mutated (byte flips, truncation, header
and field changes); the only exceptions allowed are the documented clear ones (``ModelLoadError``
/ ``IRError``, both ``ValueError`` subclasses, with a one-line message), nothing may hang (a hard
per-example alarm besides hypothesis' deadline) and nothing may be written outside the test's
temporary directory (an audit hook watches every file opened for writing).

Hypothesis runs derandomized (a fixed seed) with small example counts: the file runs in well
under a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import sys
import tempfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_model_loading_validation import LLAMA, tiny_params, write_checkpoint, write_gguf  # noqa: E402

from tensorweave.errors import ModelLoadError  # noqa: E402
from tensorweave.ir import IRError, safetensors_io  # noqa: E402
from tensorweave.models import from_gguf, from_pretrained  # noqa: E402

HARD_TIMEOUT_S = 10  # one example; a hang fails the test instead of stalling the suite
MEMORY_HEADROOM = 3 * 2**30  # address space an example may add (a runaway allocation fails, not the machine)


def fuzz_settings(n: int):
    return settings(
        derandomize=True,
        max_examples=n,
        deadline=5000,  # ms per example
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# ------------------------------------------------------------------ the guards
_WATCH: dict = {"root": None, "bad": []}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple) -> None:
    root = _WATCH["root"]
    if root is None or event != "open":
        return
    path, mode, flags = (list(args) + [None, None, None])[:3]
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and flags & _WRITE_FLAGS
    )
    if writing and isinstance(path, (str, bytes, os.PathLike)):
        full = os.path.realpath(os.fsdecode(path))
        if not (full == root or full.startswith(root + os.sep)):
            _WATCH["bad"].append(full)


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one is idle outside `guarded`


@contextlib.contextmanager
def guarded(root: str):
    """Watch writes outside ``root`` and stop an example that runs past HARD_TIMEOUT_S."""

    def alarm(signum, frame):
        raise TimeoutError(f"a reader ran longer than {HARD_TIMEOUT_S} s (hang)")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HARD_TIMEOUT_S)
    limits = _limit_memory()
    _WATCH["root"], _WATCH["bad"] = os.path.realpath(root), []
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        _WATCH["root"] = None
        if limits is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, limits)
    assert not _WATCH["bad"], f"files opened for writing outside the temporary directory: {_WATCH['bad']}"


def _limit_memory():
    """Lower the soft address-space limit to the current size + MEMORY_HEADROOM (Linux); returns
    the limits to restore, or None where that is not possible."""
    try:
        import resource

        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = vm + MEMORY_HEADROOM
        if hard != resource.RLIM_INFINITY and want > hard:
            return None
        resource.setrlimit(resource.RLIMIT_AS, (want, hard))
        return soft, hard
    except (OSError, ValueError, StopIteration, ImportError):
        return None


def expect_clear_error_or_success(fn, allowed: tuple, root: str):
    """Run ``fn``; it may succeed or raise one of ``allowed`` with a one-line message."""
    with guarded(root):
        try:
            fn()
        except allowed as exc:
            msg = str(exc)
            assert msg and "\n" not in msg, f"{type(exc).__name__} message is not one line: {msg!r}"
            return exc
    return None


def flips():
    return st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1, max_size=6)


def apply_flips(data: bytes, changes, limit: int | None = None) -> bytes:
    buf = bytearray(data)
    span = min(len(buf), limit or len(buf))
    for pos, xor in changes:
        buf[pos % span] ^= xor
    return bytes(buf)


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="tw-fuzz-") as d:
        yield d


# ------------------------------------------------------------------ safetensors (tensorweave.ir.safetensors_io)
def _valid_safetensors() -> bytes:
    import ml_dtypes

    rng = np.random.default_rng(0)
    return safetensors_io.encode(
        {
            "a.weight": rng.standard_normal((3, 4)).astype(np.float32),
            "b.ids": np.arange(5, dtype=np.int64),
            "c.mask": np.array([True, False, True]),
            "d.half": rng.standard_normal(4).astype(np.float16),
            "e.bf16": rng.standard_normal(2).astype(ml_dtypes.bfloat16),
            "f.empty": np.zeros((0, 3), np.float32),
        },
        {"format": "pt"},
    )


SAFETENSORS = _valid_safetensors()
HEADER_LEN = struct.unpack("<Q", SAFETENSORS[:8])[0]


def _load_st(workdir: str, data: bytes):
    path = os.path.join(workdir, "fuzz.safetensors")
    with open(path, "wb") as f:
        f.write(data)
    return expect_clear_error_or_success(lambda: safetensors_io.load_file(path), (IRError,), workdir)


@fuzz_settings(300)
@given(changes=flips(), in_header=st.booleans())
def test_safetensors_byte_flips(workdir, changes, in_header):
    _load_st(workdir, apply_flips(SAFETENSORS, changes, 8 + HEADER_LEN if in_header else None))


@fuzz_settings(80)
@given(length=st.integers(0, len(SAFETENSORS) - 1))
def test_safetensors_truncation(workdir, length):
    assert isinstance(_load_st(workdir, SAFETENSORS[:length]), IRError)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)


@fuzz_settings(400)
@given(
    tensor=st.sampled_from(
        ["a.weight", "b.ids", "c.mask", "d.half", "e.bf16", "f.empty", "__metadata__", "new"]
    ),
    field=st.sampled_from(["dtype", "shape", "data_offsets", "extra", None]),
    value=JSON_VALUES
    | st.sampled_from(["F32", "I64", "BOOL", "F16", "BF16", "U8", "F8_E4M3", "I32"])
    | st.lists(st.integers(-3, 2**40), max_size=4),
    length_delta=st.sampled_from([0, 0, 0, -1, 1, 8, -(2**20), 2**63]),
)
def test_safetensors_header_field_changes(workdir, tensor, field, value, length_delta):
    header = json.loads(SAFETENSORS[8 : 8 + HEADER_LEN])
    if field is None:
        header[tensor] = value
    elif isinstance(header.get(tensor), dict):
        header[tensor][field] = value
    else:
        header[tensor] = {field: value}
    head = json.dumps(header).encode()
    n = max(0, min(len(head) + length_delta, 2**64 - 1))
    data = struct.pack("<Q", n) + head + SAFETENSORS[8 + HEADER_LEN :]
    _load_st(workdir, data)


# ------------------------------------------------------------------ safetensors and config.json through the checkpoint loader
@pytest.fixture(scope="module")
def checkpoint(workdir):
    d = write_checkpoint(os.path.join(workdir, "ckpt"), LLAMA, tiny_params())
    with open(os.path.join(d, "model.safetensors"), "rb") as f:
        weights = f.read()
    with open(os.path.join(d, "config.json"), "rb") as f:
        config = f.read()
    return d, weights, config


def _load_dir(checkpoint, weights: bytes | None = None, config: bytes | None = None):
    d, good_weights, good_config = checkpoint
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(good_weights if weights is None else weights)
    with open(os.path.join(d, "config.json"), "wb") as f:
        f.write(good_config if config is None else config)
    return expect_clear_error_or_success(lambda: from_pretrained(d), (ModelLoadError,), os.path.dirname(d))


@fuzz_settings(150)
@given(changes=flips(), length=st.none() | st.integers(0, 4000))
def test_checkpoint_safetensors_mutations(checkpoint, changes, length):
    _, weights, _ = checkpoint
    data = apply_flips(weights, changes, 8 + struct.unpack("<Q", weights[:8])[0])
    _load_dir(checkpoint, weights=data if length is None else data[:length])


@fuzz_settings(300)
@given(changes=flips(), length=st.none() | st.integers(0, 400))
def test_config_json_byte_flips_and_truncation(checkpoint, changes, length):
    _, _, config = checkpoint
    data = apply_flips(config, changes)
    _load_dir(checkpoint, config=data if length is None else data[:length])


@fuzz_settings(300)
@given(
    field=st.sampled_from(
        sorted(LLAMA) + ["rope_scaling", "rope_parameters", "head_dim", "pretraining_tp", "mlp_bias"]
    ),
    value=JSON_VALUES,
)
def test_config_json_field_changes(checkpoint, field, value):
    cfg = dict(LLAMA, **{field: value})
    try:
        text = json.dumps(cfg).encode()
    except ValueError:  # (not JSON-encodable: cannot be in a file)
        return
    _load_dir(checkpoint, config=text)


# ------------------------------------------------------------------ GGUF
@pytest.fixture(scope="module")
def gguf_file(workdir):
    pytest.importorskip("gguf")
    path = write_gguf(os.path.join(workdir, "tiny.gguf"))
    with open(path, "rb") as f:
        data = f.read()
    meta_end = data.find(b"token_embd")  # the tensor infos start near here; metadata is before
    return path, data, meta_end if meta_end > 0 else len(data)


def _load_gguf(workdir: str, data: bytes):
    path = os.path.join(workdir, "fuzz.gguf")
    with open(path, "wb") as f:
        f.write(data)
    return expect_clear_error_or_success(lambda: from_gguf(path), (ModelLoadError,), workdir)


@fuzz_settings(400)
@given(changes=flips(), region=st.sampled_from(["metadata", "tensor infos", "anywhere"]))
def test_gguf_byte_flips(workdir, gguf_file, changes, region):
    _, data, meta_end = gguf_file
    if region == "metadata":
        mutated = apply_flips(data, changes, meta_end)
    elif region == "tensor infos":
        buf = bytearray(data)
        span = max(1, min(len(buf) - meta_end, 600))
        for pos, xor in changes:
            buf[meta_end + pos % span] ^= xor
        mutated = bytes(buf)
    else:
        mutated = apply_flips(data, changes)
    _load_gguf(workdir, mutated)


@fuzz_settings(80)
@given(length=st.integers(0, 10**9))
def test_gguf_truncation(workdir, gguf_file, length):
    _, data, _ = gguf_file
    assert isinstance(_load_gguf(workdir, data[: length % len(data)]), ModelLoadError)


@fuzz_settings(120)
@given(
    key=st.sampled_from(
        [
            "llama.block_count",
            "llama.embedding_length",
            "llama.attention.head_count",
            "llama.attention.head_count_kv",
            "llama.rope.freq_base",
            "llama.context_length",
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.merges",
            "tokenizer.ggml.token_type",
            "tokenizer.ggml.model",
            "tokenizer.chat_template",
            "general.architecture",
        ]
    ),
    kind=st.sampled_from(
        [
            ("add_uint32", st.integers(0, 2**32 - 1)),
            ("add_int32", st.integers(-(2**31), 2**31 - 1)),
            ("add_uint64", st.integers(0, 2**64 - 1)),
            ("add_float32", st.floats(width=32)),
            ("add_bool", st.booleans()),
            ("add_string", st.text(max_size=12)),
            ("add_array", st.lists(st.integers(0, 100), min_size=1, max_size=5)),
            ("add_array", st.lists(st.text(max_size=4), min_size=1, max_size=5)),
        ]
    ),
    data=st.data(),
)
def test_gguf_metadata_of_any_type(workdir, key, kind, data):
    method, values = kind
    value = data.draw(values)
    path = os.path.join(workdir, "typed.gguf")
    if os.path.exists(path):
        os.remove(path)
    write_gguf(path, {key: (method, value)})
    expect_clear_error_or_success(lambda: from_gguf(path), (ModelLoadError,), workdir)


def test_a_huge_gguf_array_length_is_refused_at_once(workdir, gguf_file):
    """The gguf reader trusts array lengths (a corrupt one makes it loop and allocate for minutes):
    the structure check refuses it first."""
    _, data, _ = gguf_file
    key = b"tokenizer.ggml.token_type"
    at = data.index(key) + len(key) + 4 + 4  # value type ARRAY (u32), item type (u32), then the u64 count
    for count in (2**40, 2**63, len(data)):
        mutated = data[:at] + struct.pack("<Q", count) + data[at + 8 :]
        exc = _load_gguf(workdir, mutated)
        assert isinstance(exc, ModelLoadError) and "not a readable GGUF file" in str(exc)


def test_the_guards_catch_writes_outside_and_report_them(workdir, tmp_path):
    with pytest.raises(AssertionError, match="outside the temporary directory"):
        with guarded(workdir):
            (tmp_path / "escaped.txt").write_text("x")
    with guarded(workdir):  # inside is fine
        with open(os.path.join(workdir, "inside.txt"), "w") as f:
            f.write("x")
