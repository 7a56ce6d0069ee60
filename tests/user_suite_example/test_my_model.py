"""A user's test file, written as docs/testing.md tells a user to write it (the code below is the
first example there, word for word; tests/test_testing_plugin.py checks that).

In a user's project the fixtures come from one line in the top-level ``conftest.py``::

    pytest_plugins = ["tensorweave.testing"]

Here, inside tensorweave's own suite, ``tests/conftest.py`` provides the same fixtures (it takes
them from ``tensorweave.testing``), so this file runs unchanged in the project's CI;
``tests/test_testing_plugin.py`` also runs it on its own, the way a user's suite runs.
"""

import numpy as np

import tensorweave as tw
from tensorweave.ir import array_namespace
from tensorweave.testing import assert_parity


def rms_norm(x, weight, eps=1e-6):
    """My model's layer, written once against the Array-API namespace of its input."""
    xp = array_namespace(x)
    variance = xp.mean(x * x, axis=-1, keepdims=True)
    return x / xp.sqrt(variance + eps) * weight


def test_rms_norm_matches_numpy_on_every_backend(rng):
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    weight = rng.standard_normal(8).astype(np.float32)
    assert_parity(rms_norm, (x, weight))  # every installed backend against the numpy reference


def test_rms_norm_on_each_backend(backend, rng):
    x = rng.standard_normal((3, 8)).astype(np.float32)
    weight = np.ones(8, np.float32)
    got = np.asarray(tw.function(rms_norm, backend=backend)(x, weight))
    np.testing.assert_allclose(got, rms_norm(x, weight), rtol=1e-5, atol=1e-6)
