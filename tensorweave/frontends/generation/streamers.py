"""Streamers: Hugging Face's ``BaseStreamer`` protocol for ``tw.generate(..., streamer=...)``.

``generate`` calls ``streamer.put(prompt_ids)`` once with the ``[batch, prompt]`` prompt (numpy
int64), then ``streamer.put(next_tokens)`` with each generated ``[rows]`` token batch (finished
rows carry ``pad_token_id``), then ``streamer.end()``. Step-wise generation calls ``put`` as each
token is produced; the fused program is one call, so it replays the same calls after it returns.
Beam search does not stream (Hugging Face raises the same ``ValueError``).
"""

from __future__ import annotations

import queue
from typing import Any

import numpy as np


class BaseStreamer:
    """The protocol: ``put(value)`` for the prompt and every new token batch, ``end()`` once."""

    def put(self, value: Any) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


def _is_cjk(cp: int) -> bool:
    """Code points of the CJK ideograph blocks (text in them has no spaces to wait for)."""
    return any(
        lo <= cp <= hi
        for lo, hi in (
            (0x4E00, 0x9FFF),
            (0x3400, 0x4DBF),
            (0x20000, 0x2A6DF),
            (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F),
            (0x2B820, 0x2CEAF),
            (0xF900, 0xFAFF),
            (0x2F800, 0x2FA1F),
        )
    )


class TextStreamer(BaseStreamer):
    """Decode tokens with a tokenizer (``decode(ids, **decode_kwargs) -> str``) and emit text in
    whole words: text up to the last space is released, a trailing newline releases everything,
    CJK characters are released one by one; ``end()`` flushes the rest. Batch size 1 only.
    ``skip_prompt`` drops the first ``put`` (the prompt). Prints by default; override
    :meth:`on_finalized_text` to send the text elsewhere."""

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, **decode_kwargs: Any):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value: Any) -> None:
        arr = np.asarray(value)
        if arr.ndim > 1 and arr.shape[0] > 1:
            raise ValueError("TextStreamer only supports batch size 1")
        arr = arr.reshape(-1)
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.next_tokens_are_prompt = False
        self.token_cache.extend(int(t) for t in arr)
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):
            printable = text[self.print_len :]
            self.token_cache, self.print_len = [], 0
        elif text and _is_cjk(ord(text[-1])):
            printable = text[self.print_len :]
            self.print_len += len(printable)
        else:
            printable = text[self.print_len : text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self) -> None:
        if self.token_cache:
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            printable = text[self.print_len :]
        else:
            printable = ""
        self.token_cache, self.print_len = [], 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        print(text, flush=True, end="" if not stream_end else None)


class TextIteratorStreamer(TextStreamer):
    """A :class:`TextStreamer` whose text pieces are read by iterating over it (e.g. while
    ``generate`` runs in another thread); ``timeout`` (seconds) bounds each wait."""

    def __init__(
        self, tokenizer: Any, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs: Any
    ):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: queue.Queue = queue.Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self) -> "TextIteratorStreamer":
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self.stop_signal:
            raise StopIteration()
        return value


class TokenCollector(BaseStreamer):
    """Keeps every ``put`` (``prompt`` then ``tokens``, a list of ``[rows]`` arrays) and whether
    ``end`` was called: handy for tests and for callers that want the raw token stream."""

    def __init__(self) -> None:
        self.prompt: np.ndarray | None = None
        self.tokens: list[np.ndarray] = []
        self.ended = False

    def put(self, value: Any) -> None:
        arr = np.asarray(value)
        if self.ended:  # a new generate call starts a new stream
            self.prompt, self.tokens, self.ended = None, [], False
        if self.prompt is None:
            self.prompt = arr
        else:
            self.tokens.append(arr)

    def end(self) -> None:
        self.ended = True


__all__ = ["BaseStreamer", "TextStreamer", "TextIteratorStreamer", "TokenCollector"]
