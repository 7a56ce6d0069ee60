"""``tensorweave.optim``: update rules and schedules written once (``tensorweave.frontends.optim``).

Framework adapters (a ``torch.optim.Optimizer``, an optax transformation, a Keras optimizer, an
ONNX training-step export) are not implemented yet; the pure rules run traced on every backend.
"""
from ..frontends.optim import *  # noqa: F401,F403
from ..frontends.optim import __all__  # noqa: F401
