"""Shared fixtures, taken from the public plugin ``tensorweave.testing`` (the one users load).

Backends may skip on a user's machine that lacks a framework, never in CI (``CI=true``): there a
missing backend fails the session before any test runs. ``BACKENDS``, ``NON_REFERENCE``,
``IN_CI`` and ``require_backend`` stay importable from here (``from conftest import ...``).
"""

from __future__ import annotations

import pytest

from tensorweave.backends import registry
from tensorweave.testing import (
    BACKENDS,
    IN_CI,
    NON_REFERENCE,
    backend,
    framework_backend,
    require_backend,
    rng,
)

# pytester runs a user's suite in a temporary directory (tests/test_testing_plugin.py)
pytest_plugins = ["pytester"]

__all__ = ["BACKENDS", "IN_CI", "NON_REFERENCE", "backend", "framework_backend", "require_backend", "rng"]


def pytest_sessionstart(session):
    if IN_CI:
        missing = [b for b in BACKENDS if not registry.is_installed(b)]
        if missing:
            raise pytest.UsageError(
                "CI=true but these backends are missing: "
                + "; ".join(registry.missing_message(b) for b in missing)
            )
