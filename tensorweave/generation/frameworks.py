"""The caller's framework in, the caller's framework out: ``tw.generate`` and
``tw.compute_transition_scores`` work on numpy inside and convert only at the boundary.

The framework of an array is read from the module of its type (``torch``, ``tensorflow``, ``jax`` /
``jaxlib``); a framework is never imported here: an array of it exists, so its module is already in
``sys.modules``. Anything else (numpy arrays, lists) is numpy.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

_ROOTS = {"torch": "torch", "tensorflow": "tensorflow", "keras": "tensorflow", "jax": "jax", "jaxlib": "jax"}


def framework_of(x: Any) -> str:
    """``"torch"``, ``"tensorflow"``, ``"jax"`` or ``"numpy"`` (anything else)."""
    return _ROOTS.get(type(x).__module__.split(".")[0], "numpy")


def to_numpy(x: Any) -> np.ndarray:
    """A host numpy copy of a torch / TensorFlow / JAX array (numpy and lists as ``np.asarray``)."""
    fw = framework_of(x)
    if fw == "torch":
        return x.detach().cpu().numpy()
    if fw == "tensorflow" and hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)


class Boundary:
    """Converts numpy results back to the framework (and integer dtype, device) of ``like``."""

    def __init__(self, like: Any):
        self.framework = framework_of(like)
        self.like = like

    def __call__(self, arr: Any) -> Any:
        if arr is None or self.framework == "numpy":
            return arr
        if isinstance(arr, tuple):
            return tuple(self(a) for a in arr)
        arr = np.ascontiguousarray(arr)
        if arr.dtype.kind in "iu":
            dtype = getattr(self.like, "dtype", None)
            target = _numpy_dtype(dtype)
            if target is not None and target.kind in "iu":
                arr = arr.astype(target, copy=False)
        if self.framework == "torch":
            torch = sys.modules["torch"]
            out = torch.from_numpy(arr)
            device = getattr(self.like, "device", None)
            return out if device is None or device.type == "cpu" else out.to(device)
        if self.framework == "tensorflow":
            return sys.modules["tensorflow"].convert_to_tensor(arr)
        return sys.modules["jax"].numpy.asarray(arr)


def _numpy_dtype(dtype: Any) -> np.dtype | None:
    """The numpy dtype of a framework dtype (torch.int32, tf.int32, a numpy / jax dtype)."""
    if dtype is None:
        return None
    for attr in ("as_numpy_dtype",):  # TensorFlow
        if hasattr(dtype, attr):
            return np.dtype(getattr(dtype, attr))
    try:
        return np.dtype(dtype)
    except TypeError:
        name = str(dtype).rsplit(".", 1)[-1]  # torch.int64 -> int64
        try:
            return np.dtype(name)
        except TypeError:
            return None
