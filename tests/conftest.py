"""Shared fixtures. Backends may skip on a user's machine that lacks a framework, never in CI."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tensorweave.backends import registry

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = list(registry.ALL)
NON_REFERENCE = [b for b in BACKENDS if b != "numpy"]


def pytest_sessionstart(session):
    if IN_CI:
        missing = [b for b in BACKENDS if not registry.is_installed(b)]
        if missing:
            raise pytest.UsageError(
                "CI=true but these backends are missing: "
                + "; ".join(registry.missing_message(b) for b in missing)
            )


def require_backend(name: str) -> None:
    """Skip (outside CI only) when the backend's framework is not installed."""
    if not registry.is_installed(name):
        if IN_CI:
            pytest.fail(registry.missing_message(name))
        pytest.skip(registry.missing_message(name))


@pytest.fixture(params=BACKENDS)
def backend(request):
    require_backend(request.param)
    return request.param


@pytest.fixture(params=NON_REFERENCE)
def framework_backend(request):
    require_backend(request.param)
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
