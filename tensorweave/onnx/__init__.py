"""``tensorweave.onnx``: Hugging Face's ONNX-config API, describing signatures once for every target.

The configs and ``FeaturesManager`` are written once in ``tensorweave.frontends.onnx``; ``export`` and
``validate_model_outputs`` come from ``tensorweave.export``. Nothing here imports onnx or any
framework (the backends do, when an export runs).
"""

from ..export import export, validate_model_outputs
from ..frontends.onnx import *  # noqa: F401,F403
from ..frontends.onnx import __all__ as config_names

__all__ = list(config_names) + ["export", "validate_model_outputs"]
del config_names
