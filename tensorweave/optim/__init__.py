"""``tensorweave.optim``: update rules and schedules written once (``tensorweave.frontends.optim``).

Framework adapters, imported lazily so this package needs no framework (spec/optim.md, "Adapters"):
``tensorweave.optim.torch`` (``torch_adapter``: ``AdamW``, ``Adafactor``, ``TorchOptimizer``,
``lambda_lr``), ``tensorweave.optim.optax`` (``optax_adapter``: ``adamw``, ``adafactor``,
``transformation``, ``optax_schedule``), ``tensorweave.optim.keras`` (``keras_adapter``: ``AdamW``,
``Adafactor``, ``KerasOptimizer``, ``KerasSchedule``) and ``tensorweave.optim.onnx``
(``onnx_export``: ``export_step``, ``initial_state``).
"""

from ..frontends.optim import *  # noqa: F401,F403
from ..frontends.optim import __all__  # noqa: F401

_ADAPTERS = {
    "torch": "torch_adapter",
    "optax": "optax_adapter",
    "keras": "keras_adapter",
    "onnx": "onnx_export",
    "torch_adapter": "torch_adapter",
    "optax_adapter": "optax_adapter",
    "keras_adapter": "keras_adapter",
    "onnx_export": "onnx_export",
}


def __getattr__(name: str):
    """``tensorweave.optim.torch`` / ``.optax`` / ``.keras`` / ``.onnx``: the adapter module, imported on first use."""
    if name in _ADAPTERS:
        import importlib

        return importlib.import_module(f"{__name__}.{_ADAPTERS[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
