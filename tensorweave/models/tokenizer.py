"""Tokenizers through the ``tokenizers`` package, and chat templates through jinja2.

:class:`Tokenizer` wraps a ``tokenizers.Tokenizer`` (from a ``tokenizer.json`` file, or built
from a GGUF vocabulary and merges) with Hugging Face's call shape: ``tokenizer(text or texts,
padding=, truncation=, max_length=, return_tensors=)`` returns a :class:`BatchEncoding` (python
lists without ``return_tensors``; numpy / torch / tensorflow / jax arrays with ``"np"`` /
``"pt"`` / ``"tf"`` / ``"jax"``), padded on the tokenizer's ``padding_side`` (left for decoders,
so that generation appends to the right). ``decode``, ``batch_decode``,
``convert_ids_to_tokens`` and ``apply_chat_template`` follow Hugging Face's signatures and
defaults too, so code written for a ``transformers`` tokenizer works with this one and the
other way round (spec/models.md, "Tokenizers").

Chat templates are rendered in a sandboxed jinja2 environment with ``trim_blocks`` /
``lstrip_blocks`` (as Hugging Face renders them) and a work bound: at most
``CHAT_TEMPLATE_MAX_STEPS`` executed template lines and ``CHAT_TEMPLATE_MAX_SECONDS`` of wall
clock, and no single string, list or number above ``CHAT_TEMPLATE_MAX_SIZE`` made by an
operator, a filter or a namespace assignment.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from typing import Any, Sequence

import numpy as np

from ..errors import ModelLoadError

CHAT_TEMPLATE_MAX_STEPS = 2_000_000  # executed lines of the compiled template
CHAT_TEMPLATE_MAX_SECONDS = 1.0
CHAT_TEMPLATE_MAX_SIZE = 10_000_000  # characters / items / digits of one value
_RETURN_TENSORS = {"np": "numpy", "pt": "torch", "tf": "tensorflow", "jax": "jax"}
_EXTRAS = {"pt": "torch", "tf": "tensorflow", "jax": "jax"}
_RAGGED = (
    "Unable to create tensor, you should probably activate truncation and/or padding with "
    "'padding=True' 'truncation=True' to have batched tensors with the same length. Perhaps your "
    "features (`input_ids` in this case) have excessive nesting (inputs type `list` where type `int` is "
    "expected)."
)


class BatchEncoding(dict):
    """Hugging Face's ``BatchEncoding``: a dict of ``input_ids``, ``attention_mask`` (and
    ``token_type_ids``) that also answers attribute access (``enc.input_ids``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data(self) -> dict:
        return dict(self)

    def convert_to_tensors(self, tensor_type: str | None = None) -> "BatchEncoding":
        """Convert every entry to ``tensor_type``'s arrays in place (ragged rows are an error)."""
        if tensor_type is not None:
            for key in list(self):
                self[key] = _as_tensor(self[key], tensor_type)
        return self


def _framework(return_tensors: str) -> Any:
    if return_tensors not in _RETURN_TENSORS:
        raise ValueError(
            f"return_tensors must be None or one of {sorted(_RETURN_TENSORS)}, got {return_tensors!r}"
        )
    if return_tensors == "np":
        return np
    module = {"pt": "torch", "tf": "tensorflow", "jax": "jax.numpy"}[return_tensors]
    try:
        import importlib

        return importlib.import_module(module)
    except ImportError:
        extra = _EXTRAS[return_tensors]
        raise ImportError(
            f"return_tensors={return_tensors!r} needs {_RETURN_TENSORS[return_tensors]}, which is not "
            f"installed: pip install 'tensorweave[{extra}]'"
        ) from None


def _as_tensor(value: Any, return_tensors: str) -> Any:
    fw = _framework(return_tensors)
    rows = value if isinstance(value, list) else None
    if rows is not None and rows and isinstance(rows[0], list):
        if len({len(r) for r in rows}) > 1:
            raise ValueError(_RAGGED)
    arr = np.asarray(value, dtype=np.int64)
    if return_tensors == "np":
        return arr
    if return_tensors == "pt":
        return fw.from_numpy(arr)
    if return_tensors == "tf":
        return fw.constant(arr)
    return fw.asarray(arr)


def _ids_list(ids: Any) -> list[int]:
    if isinstance(ids, (int, np.integer)):
        return [int(ids)]
    if hasattr(ids, "detach"):  # a torch tensor
        ids = ids.detach().cpu().numpy()
    return [int(i) for i in np.asarray(ids).reshape(-1)]


def clean_up_tokenization(text: str) -> str:
    """Hugging Face's ``clean_up_tokenization``: no space before punctuation and contractions."""
    for a, b in (
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ):
        text = text.replace(a, b)
    return text


class Tokenizer:
    """Text <-> ids with Hugging Face's call shape (see the module docstring)."""

    def __init__(
        self,
        backend: Any,
        *,
        chat_template: str | None = None,
        bos_token: str | None = None,
        eos_token: str | None = None,
        pad_token: str | None = None,
        unk_token: str | None = None,
        padding_side: str = "left",
        truncation_side: str = "right",
        model_max_length: int | None = None,
        model_input_names: Sequence[str] = ("input_ids", "attention_mask"),
    ):
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if truncation_side not in ("left", "right"):
            raise ValueError(f"truncation_side must be 'left' or 'right', got {truncation_side!r}")
        self.backend = backend
        backend.no_padding()
        backend.no_truncation()
        declared = [
            t
            for t in (bos_token, eos_token, pad_token, unk_token)
            if t and backend.token_to_id(t) is not None
        ]
        if declared:  # as Hugging Face does: declared special tokens are matched whole and skippable
            from tokenizers import AddedToken

            backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in declared])
        self.chat_template = chat_template
        self.bos_token, self.eos_token, self.pad_token = bos_token, eos_token, pad_token
        self.unk_token = unk_token
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self.model_max_length = model_max_length
        self.model_input_names = list(model_input_names)
        self._lock = threading.Lock()  # truncation is backend state, set per call

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_file(cls, path: str, **kwargs: Any) -> "Tokenizer":
        """From a ``tokenizer.json``; special tokens, the chat template and ``model_max_length``
        come from a ``tokenizer_config.json`` beside it when there is one."""
        from tokenizers import Tokenizer as _Tok

        try:
            backend = _Tok.from_file(path)
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(f"{path} is not a valid tokenizer.json ({reason})") from None
        cfg_path = os.path.join(os.path.dirname(path), "tokenizer_config.json")
        if os.path.isfile(cfg_path):
            try:
                with open(cfg_path, encoding="utf-8") as f:
                    cfg = json.load(f)
            except (ValueError, RecursionError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ModelLoadError(
                    f"{cfg_path} is not valid JSON text ({reason}); fix or delete it"
                ) from None
            if not isinstance(cfg, dict):
                raise ModelLoadError(f"{cfg_path} must hold a JSON object")
            for key in ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template"):
                value = cfg.get(key)
                if isinstance(value, dict):  # an AddedToken record
                    value = value.get("content")
                if value is not None and not isinstance(value, str):
                    raise ModelLoadError(
                        f"{cfg_path}: field `{key}` must be a string (or an AddedToken object), got {value!r}"
                    )
                if isinstance(value, str):
                    kwargs.setdefault(key, value)
            length = cfg.get("model_max_length")
            if isinstance(length, int) and not isinstance(length, bool) and 0 < length < 10**9:
                kwargs.setdefault("model_max_length", length)
            names = cfg.get("model_input_names")
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                kwargs.setdefault("model_input_names", names)
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
        try:
            backend = _Tok(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
        except Exception as exc:  # tokenizers raises a bare Exception (e.g. a merge of unknown tokens)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(
                f"the tokenizer's vocabulary and merges do not fit together ({reason})"
            ) from None
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        backend.pre_tokenizer = (
            pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
            if split_digits
            else byte_level
        )
        backend.decoder = decoders.ByteLevel()
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
        return cls(backend, **kwargs)

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    def get_vocab(self) -> dict[str, int]:
        return dict(self.backend.get_vocab(with_added_tokens=True))

    def token_to_id(self, token: str | None) -> int | None:
        return None if token is None else self.backend.token_to_id(token)

    @property
    def pad_token_id(self) -> int | None:
        return self.token_to_id(self.pad_token)

    @property
    def eos_token_id(self) -> int | None:
        return self.token_to_id(self.eos_token)

    @property
    def bos_token_id(self) -> int | None:
        return self.token_to_id(self.bos_token)

    @property
    def unk_token_id(self) -> int | None:
        return self.token_to_id(self.unk_token)

    @property
    def all_special_tokens(self) -> list[str]:
        found = [t for t in (self.bos_token, self.eos_token, self.unk_token, self.pad_token) if t]
        added = [t.content for t in self.backend.get_added_tokens_decoder().values() if t.special]
        return list(dict.fromkeys(found + added))

    @property
    def all_special_ids(self) -> list[int]:
        return [i for i in (self.token_to_id(t) for t in self.all_special_tokens) if i is not None]

    def convert_ids_to_tokens(self, ids: Any, skip_special_tokens: bool = False) -> Any:
        """``id -> token`` (None for an id outside the vocabulary); a list in, a list out."""
        if isinstance(ids, (int, np.integer)):
            return self.backend.id_to_token(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self.backend.id_to_token(i) for i in _ids_list(ids) if i not in special]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> Any:
        """``token -> id`` (the unknown token's id, or None, for a token outside the vocabulary)."""
        if isinstance(tokens, str):
            found = self.backend.token_to_id(tokens)
            return self.unk_token_id if found is None else found
        return [self.convert_tokens_to_ids(t) for t in tokens]

    # ------------------------------------------------------------------ encode / decode
    def encode(
        self,
        text: str,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
    ) -> Any:
        """The ids of one text (a list; ``[1, n]`` arrays with ``return_tensors``)."""
        return self(
            text,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            return_tensors=return_tensors,
        )["input_ids"]

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        text = self.backend.decode(_ids_list(token_ids), skip_special_tokens=skip_special_tokens)
        return clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    def batch_decode(
        self,
        sequences: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[str]:
        if hasattr(sequences, "detach"):
            sequences = sequences.detach().cpu().numpy()
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in list(sequences)]

    def __call__(
        self,
        text: str | Sequence[str],
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
        add_special_tokens: bool = True,
        return_attention_mask: bool | None = None,
        return_token_type_ids: bool | None = None,
    ) -> BatchEncoding:
        """Hugging Face's ``tokenizer(...)``: ``input_ids``, ``attention_mask`` (and
        ``token_type_ids`` when ``model_input_names`` has them or they are asked for).

        ``padding``: False / ``"do_not_pad"``, True / ``"longest"`` (to the longest text),
        ``"max_length"`` (to ``max_length``, else ``model_max_length``). ``truncation``: True /
        ``"longest_first"`` / ``"only_first"`` cut each text to ``max_length`` (special tokens
        included) on ``truncation_side``; with ``max_length`` given and neither padding nor
        truncation asked for, truncation is on (Hugging Face's rule). Without ``return_tensors``
        the values are python lists (one list for a single text, a list of lists for a batch);
        with ``"np"`` / ``"pt"`` / ``"tf"`` / ``"jax"`` they are ``[batch, length]`` int arrays
        of that framework, and a ragged batch (no padding) is an error."""
        batched = not isinstance(text, str)
        texts = list(text) if batched else [text]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError(
                "text input must be of type `str` (single example) or `list[str]` (batch of examples)"
            )
        if padding in (False, None, "do_not_pad"):
            pad_to: int | str | None = None
        elif padding in (True, "longest"):
            pad_to = "longest"
        elif padding == "max_length":
            pad_to = max_length if max_length is not None else self.model_max_length
            if pad_to is None:
                raise ValueError(
                    "padding='max_length' needs max_length (this tokenizer has no model_max_length)"
                )
        else:
            raise ValueError(
                f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}"
            )
        if truncation is None:
            truncation = max_length is not None and pad_to is None
        if truncation in (True, "longest_first", "only_first"):
            cut = max_length if max_length is not None else self.model_max_length
        elif truncation in (False, "do_not_truncate"):
            cut = None
        else:
            raise ValueError(
                f"truncation must be True, False, 'longest_first', 'only_first' or 'do_not_truncate', got {truncation!r}"
            )
        if cut is not None and (not isinstance(cut, int) or isinstance(cut, bool) or cut <= 0):
            raise ValueError(f"max_length must be a positive integer, got {cut!r}")
        if pad_to is not None and self.pad_token_id is None:
            raise ValueError(
                "Asking to pad but the tokenizer does not have a padding token. Please select a token to use "
                "as `pad_token` (e.g. `tokenizer.pad_token = tokenizer.eos_token`)."
            )
        with self._lock:
            try:
                if cut is not None:
                    self.backend.enable_truncation(cut, direction=self.truncation_side)
                encs = self.backend.encode_batch(texts, add_special_tokens=add_special_tokens)
            finally:
                self.backend.no_truncation()
        ids = [list(e.ids) for e in encs]
        types = [list(e.type_ids) for e in encs]
        mask = [[1] * len(r) for r in ids]
        if pad_to is not None:
            width = max(len(r) for r in ids) if pad_to == "longest" else int(pad_to)
            pad = self.pad_token_id
            for rows, value in ((ids, pad), (types, 0), (mask, 0)):
                for i, r in enumerate(rows):
                    fill = [value] * max(width - len(r), 0)
                    rows[i] = fill + r if self.padding_side == "left" else r + fill
        out = BatchEncoding(input_ids=ids)
        if return_token_type_ids or (
            return_token_type_ids is None and "token_type_ids" in self.model_input_names
        ):
            out["token_type_ids"] = types
        if return_attention_mask or (
            return_attention_mask is None and "attention_mask" in self.model_input_names
        ):
            out["attention_mask"] = mask
        if return_tensors is not None:
            return out.convert_to_tensors(return_tensors)
        if not batched:
            for key in list(out):
                out[key] = out[key][0]
        return out

    # ------------------------------------------------------------------ chat
    def apply_chat_template(
        self,
        conversation: Sequence[Any],
        tokenize: bool = True,
        add_generation_prompt: bool = False,
        return_tensors: str | None = None,
        *,
        chat_template: str | None = None,
        return_dict: bool = False,
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        **template_kwargs: Any,
    ) -> Any:
        """Hugging Face's ``apply_chat_template`` (its defaults: ``tokenize=True``,
        ``add_generation_prompt=False``). ``conversation``: a list of ``{"role", "content"}``
        dicts, or a list of such lists (a batch). Returns the rendered text (``tokenize=False``),
        the ids (a list, or arrays with ``return_tensors``), or the whole :class:`BatchEncoding`
        with ``return_dict=True``. The template already holds the special tokens, so none are
        added. Extra keyword arguments are template variables."""
        template = chat_template or self.chat_template
        if not template:
            raise ValueError("this tokenizer has no chat template; pass chat_template= or the prompt text")
        if (
            isinstance(conversation, (list, tuple))
            and conversation
            and isinstance(conversation[0], (list, tuple))
        ):
            conversations, batched = list(conversation), True
        else:
            conversations, batched = [conversation], False
        extra = {"bos_token": self.bos_token or "", "eos_token": self.eos_token or ""}
        extra.update({k: v for k, v in (("pad_token", self.pad_token), ("unk_token", self.unk_token)) if v})
        extra.update(template_kwargs)  # template variables win, as in Hugging Face
        texts = [render_chat_template(template, c, add_generation_prompt, **extra) for c in conversations]
        if not tokenize:
            return texts if batched else texts[0]
        out = self(
            texts if batched else texts[0],
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            return_tensors=return_tensors,
            add_special_tokens=False,
        )
        return out if return_dict else out["input_ids"]


# ---------------------------------------------------------------------- bounded chat templates
class _Exhausted(BaseException):
    """Raised inside the render when a bound is hit (a BaseException: nothing in jinja swallows it)."""


class _Budget:
    def __init__(self, max_steps: int, max_seconds: float):
        self.steps = 0
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.deadline = time.perf_counter() + max_seconds

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise _Exhausted(f"it ran more than {self.max_steps:,} template steps")
        if not self.steps & 255 and time.perf_counter() > self.deadline:
            raise _Exhausted(f"it ran longer than {self.max_seconds:g} s")

    def tracer(self) -> Any:
        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                self.tick()
            return local

        def call(frame: Any, event: str, arg: Any) -> Any:
            if frame.f_code.co_filename == "<template>":
                self.tick()
                return local
            return None

        return call


def _size(value: Any) -> int:
    if isinstance(value, (str, bytes, list, tuple, dict)):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3  # ~ decimal digits
    return 0


def _check_size(value: Any, what: str) -> Any:
    if _size(value) > CHAT_TEMPLATE_MAX_SIZE:
        raise _Exhausted(f"{what} made a value of more than {CHAT_TEMPLATE_MAX_SIZE:,} items")
    return value


_BIG_WIDTH = re.compile(r"\d{7,}")


def _check_args(args: Sequence[Any], kwargs: dict, what: str) -> None:
    for a in (*args, *kwargs.values()):
        if isinstance(a, int) and not isinstance(a, bool) and abs(a) > CHAT_TEMPLATE_MAX_SIZE:
            raise _Exhausted(f"{what} was passed the number {a}, above the bound {CHAT_TEMPLATE_MAX_SIZE:,}")


def _check_format(fmt: Any, what: str) -> None:
    if isinstance(fmt, str) and _BIG_WIDTH.search(fmt):
        raise _Exhausted(f"{what} has a field width or precision above the size bound")


def _bounded_environment() -> Any:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import Namespace

    class BoundedNamespace(Namespace):
        def __setitem__(self, name: str, value: Any) -> None:
            super().__setitem__(name, _check_size(value, "a namespace assignment"))

    class BoundedEnvironment(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["+", "*", "**", "%", "//"])

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                n = right if isinstance(right, int) else left if isinstance(left, int) else 1
                other = left if n is right else right
                if (
                    isinstance(other, (str, list, tuple))
                    and len(other) * max(int(n), 0) > CHAT_TEMPLATE_MAX_SIZE
                ):
                    raise _Exhausted("a repetition (`*`) would make a value above the size bound")
            if operator == "**" and isinstance(left, int) and isinstance(right, int):
                if (
                    abs(right) > 1
                    and max(abs(left), 2).bit_length() * abs(right) > 3 * CHAT_TEMPLATE_MAX_SIZE
                ):
                    raise _Exhausted("a power (`**`) would make a number above the size bound")
            if operator == "%":
                _check_format(left, "a `%` format")
            return _check_size(
                super().call_binop(context, operator, left, right), f"the operator {operator!r}"
            )

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
            _check_args(args, kwargs, f"the call of {getattr(__obj, '__name__', 'a function')}")
            result = super().call(__context, __obj, *args, **kwargs)
            return _check_size(result, f"the call of {getattr(__obj, '__name__', 'a function')}")

        def wrap_str_format(self, value: Any) -> Any:
            if getattr(value, "__name__", None) in ("format", "format_map"):
                _check_format(getattr(value, "__self__", None), "str.format")
            return super().wrap_str_format(value)

    env = BoundedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    for name, fn in list(env.filters.items()):
        env.filters[name] = _bounded_filter(name, fn)
    env.globals["namespace"] = BoundedNamespace
    return env


def _bounded_filter(name: str, fn: Any) -> Any:
    import functools

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        _check_args(args[1:], kwargs, f"the filter {name}")  # the filtered value itself may be anything
        if name == "format":
            _check_format(next((a for a in args if isinstance(a, str)), None), "the filter format")
        return _check_size(fn(*args, **kwargs), f"the filter {name}")

    return run


def render_chat_template(
    template: str, messages: Sequence[dict], add_generation_prompt: bool = False, **extra: Any
) -> str:
    """Render a Hugging Face chat template (jinja2, sandboxed; ``raise_exception`` available),
    bounded in steps, time and value sizes (see the module docstring)."""
    from jinja2 import TemplateError

    if not isinstance(messages, (list, tuple)) or not all(
        isinstance(m, dict) and "role" in m for m in messages
    ):
        raise ValueError("messages must be a list of {'role': ..., 'content': ...} dicts")

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = _bounded_environment()
    env.globals["raise_exception"] = raise_exception
    budget = _Budget(CHAT_TEMPLATE_MAX_STEPS, CHAT_TEMPLATE_MAX_SECONDS)
    previous = sys.gettrace()
    sys.settrace(budget.tracer())
    try:
        try:  # compiling folds constant filters, so it runs under the bounds too
            compiled = env.from_string(template)
        except TemplateError as exc:
            raise ValueError(f"chat template is not valid jinja2: {str(exc).splitlines()[0]}") from None
        return compiled.render(messages=list(messages), add_generation_prompt=add_generation_prompt, **extra)
    except _Exhausted as exc:
        raise ValueError(
            f"chat template stopped: {exc} (bounds: {CHAT_TEMPLATE_MAX_STEPS:,} steps, "
            f"{CHAT_TEMPLATE_MAX_SECONDS:g} s, values of {CHAT_TEMPLATE_MAX_SIZE:,} items); the template "
            "loops or grows without bound: fix or replace tokenizer.chat_template"
        ) from None
    except RecursionError:
        raise ValueError(
            "chat template stopped: it recursed too deeply; fix or replace tokenizer.chat_template"
        ) from None
    except ValueError as exc:
        if str(exc).startswith("chat template is not valid jinja2"):
            raise
        raise ValueError(
            f"chat template failed: ValueError: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    except Exception as exc:  # TemplateError (raise_exception, sandbox refusals) or a Python error in it
        reason = str(exc).splitlines()[0] if str(exc) else ""
        kind = "" if isinstance(exc, TemplateError) else f"{type(exc).__name__}: "
        raise ValueError(
            f"chat template failed: {kind}{reason}; check the messages (roles, order) the template expects"
        ) from None
    finally:
        sys.settrace(previous)
