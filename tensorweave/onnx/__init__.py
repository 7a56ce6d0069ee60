"""``tensorweave.onnx``: Hugging Face's ONNX-config API, describing signatures once for every target."""

from ..export import export, validate_model_outputs  # noqa: E402
from ..frontends.onnx import *  # noqa: F401,F403
from ..frontends.onnx import __all__ as _config_all
from .features import FeaturesManager, supported_features_mapping

__all__ = list(_config_all) + [
    "FeaturesManager",
    "supported_features_mapping",
    "export",
    "validate_model_outputs",
]
