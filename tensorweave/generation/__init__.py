"""Generation, the public layer: ``generate`` and the plan it runs (see spec/generation.md).

- ``plan.py``: ``resolve_plan`` turns (model defaults, GenerationConfig, kwargs) into a frozen
  ``GenerationPlan``; every decision and validation of a call is made there, once.
- ``fused.py``: the fused program (prompt step + decode ``while_loop``), one per shape and plan.
- ``stepwise.py`` / ``contrastive.py``: the step-wise host loops (``run_*``) around strategy
  programs traced from ``frontends/generation/steps.py``; ``native.py``: native model callables.
- ``programs.py``: the one program cache and the ``Backend`` value.
- ``api.py``: ``generate`` and ``GenerateOutput``.

The math they trace (processors, warpers, beam bookkeeping, decode loops, strategy steps) is written
once in ``tensorweave.frontends.generation``, whose public names are re-exported here.
"""

from ..frontends.generation import *  # noqa: F401,F403
from ..frontends.generation import (  # noqa: F401
    GENERATION_CONFIG_NAME,
    BaseStreamer,
    GenerationConfig,
    TextIteratorStreamer,
    TextStreamer,
    TokenCollector,
    load_generation_config,
)
from ..frontends.generation import __all__ as _frontend_names
from .api import GenerateOutput, compute_transition_scores, generate
from .plan import GenerationPlan, Mode, is_tensorweave_model, resolve_plan
from .programs import PROGRAMS, Backend, clear_cache

__all__ = [
    *_frontend_names,
    "GENERATION_CONFIG_NAME",
    "BaseStreamer",
    "GenerationConfig",
    "TextIteratorStreamer",
    "TextStreamer",
    "TokenCollector",
    "compute_transition_scores",
    "load_generation_config",
    "GenerateOutput",
    "generate",
    "GenerationPlan",
    "Mode",
    "is_tensorweave_model",
    "resolve_plan",
    "PROGRAMS",
    "Backend",
    "clear_cache",
]
