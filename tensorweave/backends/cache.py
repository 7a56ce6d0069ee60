"""Where tensorweave keeps compiled programs across processes (every backend's persistent cache:
JAX's compilation cache and export cache, TensorFlow's XLA cache): ``$TENSORWEAVE_CACHE``, else
``$XDG_CACHE_HOME/tensorweave`` (``~/.cache/tensorweave``); ``off`` disables them all."""

from __future__ import annotations

import os

from ..log import logger

#: the environment variable that places (or, set to ``off``, disables) the compile cache
CACHE_ENV = "TENSORWEAVE_CACHE"


def cache_root() -> str | None:
    """Where tensorweave keeps compiled programs across processes: ``$TENSORWEAVE_CACHE``, else
    ``$XDG_CACHE_HOME/tensorweave`` (``~/.cache/tensorweave``); None when ``TENSORWEAVE_CACHE``
    is ``off`` / ``0`` / empty."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "false", "no") else os.path.abspath(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tensorweave")


def cache_subdir(name: str) -> str | None:
    """``<cache_root()>/<name>``, created if missing; None when the cache is off or the directory
    cannot be created (a read-only home, ...: run without that cache)."""
    root = cache_root()
    if root is None:
        return None
    path = os.path.join(root, name)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        logger.debug("tensorweave cache %s off: cannot create %s (%s)", name, path, exc)
        return None
    return path
