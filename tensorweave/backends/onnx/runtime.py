"""What every ONNX Runtime session of tensorweave shares."""

from __future__ import annotations

from typing import Any


def session_options() -> Any:
    """The ``SessionOptions`` every tensorweave session uses (warnings and errors only)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return opts
