"""The ONNX-config layer written once (signatures as IR specs); public under ``tensorweave.onnx``."""

from .config import (
    DEFAULT_ONNX_OPSET,
    EXTERNAL_DATA_FORMAT_SIZE_LIMIT,
    OnnxConfig,
    OnnxConfigWithPast,
    OnnxSeq2SeqConfigWithPast,
    ParameterFormat,
    PatchingSpec,
    compute_effective_axis_dimension,
    compute_serialized_parameters_size,
)
from .features import FeaturesManager, supported_features_mapping
from .models import BertOnnxConfig, GPT2OnnxConfig, LlamaOnnxConfig, T5OnnxConfig

__all__ = [
    "DEFAULT_ONNX_OPSET",
    "EXTERNAL_DATA_FORMAT_SIZE_LIMIT",
    "OnnxConfig",
    "OnnxConfigWithPast",
    "OnnxSeq2SeqConfigWithPast",
    "ParameterFormat",
    "PatchingSpec",
    "compute_effective_axis_dimension",
    "compute_serialized_parameters_size",
    "BertOnnxConfig",
    "GPT2OnnxConfig",
    "LlamaOnnxConfig",
    "T5OnnxConfig",
    "FeaturesManager",
    "supported_features_mapping",
]
