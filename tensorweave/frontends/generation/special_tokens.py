"""Special token ids: the one place an eos argument (an int, a list of ints or None) is normalised."""

from __future__ import annotations

from typing import Any


def eos_ids(eos_token_id: Any) -> tuple[int, ...]:
    """``None`` -> ``()``; an int -> ``(eos,)``; a list or tuple -> a tuple of ints (Hugging Face
    accepts an int or a list wherever an eos id is given)."""
    if eos_token_id is None:
        return ()
    if isinstance(eos_token_id, int):
        return (eos_token_id,)
    return tuple(int(e) for e in eos_token_id)
