"""Generation written once: logits processors and warpers (strategies and GenerationConfig follow)."""
from .logits_process import *  # noqa: F401,F403
from .logits_process import __all__  # noqa: F401
