"""``tensorweave.optim``: update rules and schedules written once (``tensorweave.frontends.optim``).

Framework adapters, one module per framework, imported lazily so this package needs no framework
(spec/optim.md, "Adapters"): ``tensorweave.optim.torch`` (``AdamW``, ``Adafactor``,
``TorchOptimizer``, ``lambda_lr``), ``tensorweave.optim.optax`` (``adamw``, ``adafactor``,
``transformation``, ``optax_schedule``), ``tensorweave.optim.keras`` (``AdamW``, ``Adafactor``,
``KerasOptimizer``, ``KerasSchedule``) and ``tensorweave.optim.onnx`` (``export_step``,
``initial_state``). ``import tensorweave.optim.torch`` and ``tensorweave.optim.torch`` (attribute
access) both work; a missing framework is one ``ImportError`` line naming the pip extra.
"""

from ..frontends.optim import *  # noqa: F401,F403
from ..frontends.optim import __all__  # noqa: F401

#: adapter module -> (top-level modules it needs, the framework's name, how to install it)
ADAPTERS = {
    "torch": (("torch",), "PyTorch", "pip install 'tensorweave[torch]'"),
    "optax": (("jax", "jaxlib", "optax"), "JAX and optax", "pip install 'tensorweave[jax]' optax"),
    "keras": (("keras", "tensorflow"), "TensorFlow (Keras 3)", "pip install 'tensorweave[tensorflow]'"),
    "onnx": (("onnx", "onnxruntime"), "ONNX and ONNX Runtime", "pip install 'tensorweave[onnx]'"),
}


def __getattr__(name: str):
    """``tensorweave.optim.torch`` / ``.optax`` / ``.keras`` / ``.onnx``: the adapter module, imported on first use."""
    if name not in ADAPTERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    needs, framework, install = ADAPTERS[name]
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in needs:
            raise
        raise ImportError(f"{__name__}.{name} needs {framework}: {install}") from None
