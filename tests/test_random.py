"""The counter-based RNG: Threefry-2x32-20 known-answer vectors, traced == eager, distributions."""

from __future__ import annotations

import numpy as np
import pytest

from tensorweave.backends.numpy import lower
from tensorweave.ir import TensorSpec, random, trace

# Known-answer vectors for Threefry-2x32 with 20 rounds, published with the Random123
# library (Salmon et al., SC'11): (key, counter) -> output.
KAT = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key,ctr,expect", KAT)
def test_threefry_known_answers_eager(key, ctr, expect):
    a, b = random.threefry2x32(
        np.uint32(key[0]), np.uint32(key[1]), np.array([ctr[0]], np.uint32), np.array([ctr[1]], np.uint32)
    )
    assert (int(a[0]), int(b[0])) == expect


def test_threefry_known_answers_traced():
    def f(k, x0, x1):
        return random.threefry2x32(k[0], k[1], x0, x1)

    prog = lower(trace(f, TensorSpec((2,), "uint32"), TensorSpec((3,), "uint32"), TensorSpec((3,), "uint32")))
    for key, ctr, expect in KAT:
        a, b = prog(np.array(key, np.uint32), np.full(3, ctr[0], np.uint32), np.full(3, ctr[1], np.uint32))
        assert a.tolist() == [expect[0]] * 3 and b.tolist() == [expect[1]] * 3


def test_traced_sampling_equals_eager_bits():
    key = random.key(1234)

    def f(k):
        k1, k2 = random.split(k)[0], random.split(k)[1]
        return (
            random.random_bits(k1, (4, 5)),
            random.uniform(k2, (4, 5)),
            random.gumbel(k1, (3,)),
            random.categorical(k2, np.log(np.array([[0.1, 0.2, 0.7]] * 6, np.float32))),
            random.fold_in(k, 7),
            random.normal(k1, (2, 3)),
        )

    traced = lower(trace(f, TensorSpec((2,), "uint32")))(key)
    eager = f(key)
    for t, e in zip(traced, eager):
        if t.dtype.kind in "iu":
            np.testing.assert_array_equal(t, e)
        else:
            np.testing.assert_allclose(t, e, rtol=1e-6)


def test_keys_and_distributions():
    assert random.key(5).tolist() == [0, 5]
    assert random.key(2**33 + 1).tolist() == [2, 1]
    k = random.key(0)
    ks = random.split(k, 3)
    assert ks.shape == (3, 2) and len({tuple(r) for r in ks.tolist()}) == 3
    u = random.uniform(k, (20000,))
    assert u.dtype == np.float32 and u.min() >= 0.0 and u.max() < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01
    logits = np.log(np.array([0.1, 0.2, 0.7], np.float32))
    draws = random.categorical(k, np.broadcast_to(logits, (20000, 3)).copy())
    freq = np.bincount(draws, minlength=3) / draws.size
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.7], atol=0.015)
    z = random.normal(k, (20000,))
    assert abs(float(z.mean())) < 0.03 and abs(float(z.std()) - 1.0) < 0.03


def test_symbolic_shape_bits():
    def f(k, x):
        return random.random_bits(k, x.shape)

    prog = lower(trace(f, TensorSpec((2,), "uint32"), TensorSpec(("batch", 4), "float32")))
    k = random.key(9)
    a = prog(k, np.zeros((2, 4), np.float32))
    b = prog(k, np.zeros((3, 4), np.float32))
    np.testing.assert_array_equal(a, b[:2])  # row-major counters: a prefix of the larger draw
