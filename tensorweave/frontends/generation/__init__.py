"""Generation written once: logits processors and warpers, GenerationConfig, streamers and the traced
decode math (beam bookkeeping, decode loops, contrastive search, step-wise strategy steps)."""

from .configuration import GENERATION_CONFIG_NAME, GenerationConfig, load_generation_config  # noqa: F401,E402
from .logits_process import *  # noqa: F401,F403
from .logits_process import __all__  # noqa: F401
from .streamers import BaseStreamer, TextIteratorStreamer, TextStreamer, TokenCollector  # noqa: F401,E402
from .transition_scores import compute_transition_scores  # noqa: F401,E402
