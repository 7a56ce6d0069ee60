"""Tokenizers through the ``tokenizers`` package, and chat templates through jinja2.

:class:`Tokenizer` wraps a ``tokenizers.Tokenizer`` (from a ``tokenizer.json`` file, or built
from a GGUF vocabulary and merges) and returns numpy ``input_ids`` / ``attention_mask`` batches
padded on the tokenizer's ``padding_side`` (left for decoders, so that generation appends to
the right). Chat templates are rendered in a sandboxed jinja2 environment with
``trim_blocks`` / ``lstrip_blocks`` (as Hugging Face renders them).
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from ..errors import ModelLoadError


class Tokenizer:
    """Text <-> ids. ``tokenizer(texts)`` gives a padded numpy batch."""

    def __init__(
        self,
        backend: Any,
        *,
        chat_template: str | None = None,
        bos_token: str | None = None,
        eos_token: str | None = None,
        pad_token: str | None = None,
        padding_side: str = "left",
    ):
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        self.backend = backend
        backend.no_padding()
        self.chat_template = chat_template
        self.bos_token, self.eos_token, self.pad_token = bos_token, eos_token, pad_token
        self.padding_side = padding_side

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_file(cls, path: str, **kwargs: Any) -> "Tokenizer":
        """From a ``tokenizer.json``; special tokens and the chat template come from a
        ``tokenizer_config.json`` beside it when there is one."""
        from tokenizers import Tokenizer as _Tok

        try:
            backend = _Tok.from_file(path)
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ModelLoadError(
                f"{path} is not a valid tokenizer.json ({str(exc).splitlines()[0]})"
            ) from None
        cfg_path = os.path.join(os.path.dirname(path), "tokenizer_config.json")
        if os.path.isfile(cfg_path):
            with open(cfg_path, encoding="utf-8") as f:
                cfg = json.load(f)
            for key in ("bos_token", "eos_token", "pad_token", "chat_template"):
                value = cfg.get(key)
                if isinstance(value, dict):  # an AddedToken record
                    value = value.get("content")
                if isinstance(value, str):
                    kwargs.setdefault(key, value)
        return cls(backend, **kwargs)

    @classmethod
    def from_bpe(
        cls,
        tokens: Sequence[str],
        merges: Sequence[str],
        special: Sequence[str],
        *,
        split_digits: bool,
        **kwargs: Any,
    ) -> "Tokenizer":
        """A byte-level BPE (GPT-2 style) from a vocabulary (``id -> token``), merges
        (``"left right"`` strings, highest priority first) and the special tokens, matched whole
        before BPE runs. ``split_digits`` splits every digit into its own piece first."""
        from tokenizers import AddedToken, decoders, models, pre_tokenizers
        from tokenizers import Tokenizer as _Tok

        vocab = {t: i for i, t in enumerate(tokens)}
        pairs = []
        for m in merges:
            left, sep, right = m.partition(" ")
            if not sep:
                raise ModelLoadError(
                    f"bad BPE merge {m!r} in the tokenizer's merges: expected two tokens separated by a space"
                )
            pairs.append((left, right))
        backend = _Tok(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        backend.pre_tokenizer = (
            pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
            if split_digits
            else byte_level
        )
        backend.decoder = decoders.ByteLevel()
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
        return cls(backend, **kwargs)

    # ------------------------------------------------------------------ use
    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str | None) -> int | None:
        return None if token is None else self.backend.token_to_id(token)

    @property
    def pad_token_id(self) -> int | None:
        return self.token_to_id(self.pad_token)

    @property
    def eos_token_id(self) -> int | None:
        return self.token_to_id(self.eos_token)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.backend.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        return self.backend.decode(
            [int(i) for i in np.asarray(ids).reshape(-1)], skip_special_tokens=skip_special_tokens
        )

    def __call__(self, texts: str | Sequence[str], add_special_tokens: bool = True) -> dict[str, np.ndarray]:
        """``{"input_ids", "attention_mask", "token_type_ids"}`` int64 ``[batch, longest]`` arrays,
        padded with the pad token (id 0 when there is none) on ``padding_side``."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError("tokenizer input must be a string or a non-empty list of strings")
        encs = self.backend.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        width = max(len(e.ids) for e in encs)
        pad = self.pad_token_id or 0
        ids = np.full((len(encs), width), pad, np.int64)
        mask = np.zeros((len(encs), width), np.int64)
        types = np.zeros((len(encs), width), np.int64)
        for row, e in enumerate(encs):
            n = len(e.ids)
            cols = slice(width - n, width) if self.padding_side == "left" else slice(0, n)
            ids[row, cols], mask[row, cols], types[row, cols] = e.ids, 1, e.type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def apply_chat_template(
        self, messages: Sequence[dict], add_generation_prompt: bool = True, tokenize: bool = False
    ) -> Any:
        """Render ``messages`` (``[{"role": ..., "content": ...}]``) with the chat template; with
        ``tokenize`` return the ids (the template already holds the special tokens)."""
        if not self.chat_template:
            raise ValueError("this tokenizer has no chat template; pass the prompt text directly")
        text = render_chat_template(
            self.chat_template,
            messages,
            add_generation_prompt,
            bos_token=self.bos_token or "",
            eos_token=self.eos_token or "",
        )
        return self.encode(text, add_special_tokens=False) if tokenize else text


def render_chat_template(
    template: str, messages: Sequence[dict], add_generation_prompt: bool = True, **extra: Any
) -> str:
    """Render a Hugging Face chat template (jinja2, sandboxed; ``raise_exception`` available)."""
    from jinja2 import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if not isinstance(messages, (list, tuple)) or not all(
        isinstance(m, dict) and "role" in m for m in messages
    ):
        raise ValueError("messages must be a list of {'role': ..., 'content': ...} dicts")

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=list(messages), add_generation_prompt=add_generation_prompt, **extra
        )
    except TemplateError as exc:
        raise ValueError(
            f"chat template failed: {exc}; check the messages (roles, order) the template expects"
        ) from None
