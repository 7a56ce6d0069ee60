"""``tensorweave.optim``: update rules and schedules written once (``tensorweave.frontends.optim``).

Framework adapters, one module per framework, imported lazily so this package needs no framework
(spec/optim.md, "Adapters"): ``tensorweave.optim.torch`` (``AdamW``, ``Adafactor``,
``TorchOptimizer``, ``lambda_lr``), ``tensorweave.optim.optax`` (``adamw``, ``adafactor``,
``transformation``, ``optax_schedule``), ``tensorweave.optim.keras`` (``AdamW``, ``Adafactor``,
``AdamWeightDecay``, ``create_optimizer``, ``KerasOptimizer``, ``WarmUp``, ``PolynomialDecay``,
``LambdaSchedule``, ``KerasSchedule``; any Keras 3 backend) and ``tensorweave.optim.onnx`` (``export_step``,
``initial_state``). ``import tensorweave.optim.torch`` and ``tensorweave.optim.torch`` (attribute
access) both work; a missing framework is one ``ImportError`` line naming the pip extra.
"""

import sys
from typing import Any

from ..frontends.optim import *  # noqa: F401,F403
from ..frontends.optim import __all__  # noqa: F401
from ..frontends.optim import schedules as _schedules

#: adapter module -> (top-level modules it needs, the framework's name, how to install it)
ADAPTERS = {
    "torch": (("torch",), "PyTorch", "pip install 'tensorweave[torch]'"),
    "optax": (("jax", "jaxlib", "optax"), "JAX and optax", "pip install 'tensorweave[jax]' optax"),
    "keras": (
        ("keras", "tensorflow"),
        "Keras 3",
        "pip install 'tensorweave[tensorflow]' (or keras with jax / torch)",
    ),
    "onnx": (("onnx", "onnxruntime"), "ONNX and ONNX Runtime", "pip install 'tensorweave[onnx]'"),
}


def _torch_scheduler_hook(kind: str, optimizer: Any, args: Any) -> Any:
    """torch optimizers get torch schedulers (Transformers' return types): ``LambdaLR``,
    ``ReduceLROnPlateau``, the torch ``AdafactorSchedule``. torch is never imported here: an object
    can only be a torch optimizer when torch is already loaded."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(optimizer, torch.optim.Optimizer):
        return None
    adapter = __getattr__("torch")
    if kind == "lambda":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, args.lr_lambda, last_epoch=args.last_epoch)
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **args)
    if kind == "adafactor":
        return adapter.AdafactorSchedule(optimizer, args)
    return None


_schedules.NATIVE_SCHEDULER_HOOKS.append(_torch_scheduler_hook)


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
