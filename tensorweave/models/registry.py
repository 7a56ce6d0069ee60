"""Bring your own architecture: register a decoder-only language model written against ``xp``.

``register(model_type, forward=..., parameter_shapes=..., config_class=...)`` adds a model type to
the tables the built-in families live in, so that everything that dispatches on
``config.model_type`` knows it:

- ``tensorweave.frontends.models.ARCHITECTURES`` / ``FORWARD`` / ``PARAMETER_SHAPES``: the
  forward pass (``Model.forward``, ``tw.generate``, ``tw.export``) and the strict parameter check
  of every loader (``check_params``: names and shapes);
- ``tensorweave.frontends.models.CONFIGS``: ``config.json`` dispatch (``from_pretrained`` of a
  safetensors checkpoint directory, reading back an ONNX export folder);
- ``FeaturesManager``: the export features and the ``OnnxConfig`` of the type.

A registered type is a decoder-only causal LM (``Model.is_decoder`` is true). The protocol its
``forward`` and config follow is spec/models.md, "Bring your own architecture". Nothing is
imported from a framework here; the registration itself is a few dict entries, undone by
:func:`unregister`. Built-in model types cannot be replaced.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import threading
from typing import Any, Callable, Iterable

from ..frontends.models import ARCHITECTURES, CONFIGS, DECODERS, FORWARD, PARAMETER_SHAPES
from ..frontends.onnx.config import OnnxConfig, OnnxConfigWithPast
from ..frontends.onnx.features import DECODER_FEATURES, FeaturesManager
from ..frontends.onnx.models import LlamaOnnxConfig

#: the config attributes the generic machinery reads (static KV cache, export signature, limits)
CONFIG_FIELDS = (
    "model_type",
    "vocab_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "max_position_embeddings",
)
_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One registered model type: what :func:`register` was given, with the attribute names of a
    built-in architecture module (``forward``, ``parameter_shapes``, ``BASE_PREFIX``,
    ``IGNORED_SUFFIXES``), which is how the loaders read it."""

    model_type: str
    forward: Callable[..., Any]
    parameter_shapes: Callable[[Any], dict]
    config_class: type
    base_prefix: str = ""
    ignored_suffixes: tuple[str, ...] = ()
    features: tuple[str, ...] = DECODER_FEATURES
    onnx_config: type = LlamaOnnxConfig

    @property
    def BASE_PREFIX(self) -> str:  # noqa: N802 - the attribute name of an architecture module
        return self.base_prefix

    @property
    def IGNORED_SUFFIXES(self) -> tuple[str, ...]:  # noqa: N802
        return self.ignored_suffixes


_REGISTERED: dict[str, Architecture] = {}
_LOCK = threading.Lock()


def registered() -> dict[str, Architecture]:
    """The registered model types (a copy): ``model_type -> Architecture``."""
    with _LOCK:
        return dict(_REGISTERED)


def is_registered(model_type: str) -> bool:
    """True when ``model_type`` was added by :func:`register` (built-in types are not)."""
    return model_type in _REGISTERED


def is_decoder_type(model_type: str) -> bool:
    """A built-in decoder (``DECODERS``) or a registered type."""
    return model_type in DECODERS or model_type in _REGISTERED


def register(
    model_type: str,
    *,
    forward: Callable[..., Any],
    parameter_shapes: Callable[[Any], dict],
    config_class: type,
    base_prefix: str = "",
    ignored_suffixes: Iterable[str] = (),
    features: Iterable[str] = DECODER_FEATURES,
    onnx_config: type | None = None,
    replace: bool = False,
) -> Architecture:
    """Make ``model_type`` a decoder-only model type tensorweave loads, generates with, exports
    and checks, exactly as the built-in ones. Returns the stored :class:`Architecture`.

    ``forward(params, config, input_ids, attention_mask, position_ids, cache=None, offset=0,
    output_hidden_states=False) -> (logits, cache[, hidden_states])`` is written against the
    namespace of its inputs (``xp = array_namespace(input_ids)``) and stores keys/values with
    ``tensorweave.frontends.models.cache.update_cache`` (spec/models.md, "Bring your own
    architecture"). ``parameter_shapes(config) -> {name: shape}`` lists every parameter
    ``forward`` reads. ``config_class`` is a dataclass whose ``model_type`` default is
    ``model_type`` and which has the fields (or properties) in ``tensorweave.models.registry.CONFIG_FIELDS``; its fields
    are what ``config.json`` may set. ``base_prefix``: the prefix a base-model checkpoint omits
    (added back on load, as ``transformer.`` for GPT-2); ``ignored_suffixes``: checkpoint tensors
    that are not parameters. ``features``: export features among ``tensorweave.models.registry.DECODER_FEATURES``
    (Optimum task names accepted), registered with ``FeaturesManager``; ``onnx_config``: their
    ``OnnxConfig`` class (default ``LlamaOnnxConfig``: ``input_ids``, ``attention_mask`` and
    grouped-query ``past_key_values.{i}.key/value``). ``replace=True`` replaces an earlier
    registration of the same type.

    Every argument is checked before anything is registered; a bad one is a one-line
    ``ValueError`` (``TypeError`` for a wrong kind of object)."""
    with _LOCK:
        _check_name(model_type, replace)
        arch = _checked(
            model_type,
            forward,
            parameter_shapes,
            config_class,
            base_prefix,
            ignored_suffixes,
            features,
            onnx_config,
        )
        if arch.features:
            FeaturesManager.register(model_type, arch.features, arch.onnx_config, replace=True)
        elif model_type in FeaturesManager._REGISTERED_MODEL_TYPES:  # now registered without features
            FeaturesManager.unregister(model_type)
        ARCHITECTURES[model_type] = arch  # type: ignore[assignment]  # module-like: the same attributes
        FORWARD[model_type] = arch.forward
        PARAMETER_SHAPES[model_type] = arch.parameter_shapes
        CONFIGS[model_type] = arch.config_class
        _REGISTERED[model_type] = arch
    return arch


def unregister(model_type: str) -> None:
    """Remove a type :func:`register` added (its tables entries and its ``FeaturesManager`` row);
    the tables are then as they were before. Models of that type already loaded stop working.
    Built-in and unknown types are a ``ValueError``."""
    with _LOCK:
        if model_type not in _REGISTERED:
            what = "a built-in model type" if model_type in CONFIGS else "not a registered model type"
            raise ValueError(f"{model_type!r} is {what}; registered: {sorted(_REGISTERED) or 'none'}")
        del _REGISTERED[model_type]
        for table in (ARCHITECTURES, FORWARD, PARAMETER_SHAPES, CONFIGS):
            table.pop(model_type, None)
        if model_type in FeaturesManager._REGISTERED_MODEL_TYPES:
            FeaturesManager.unregister(model_type)


# ------------------------------------------------------------------ checks
def _in_features_table(model_type: str) -> bool:
    return model_type in FeaturesManager._SUPPORTED_MODEL_TYPE


def _check_name(model_type: Any, replace: bool) -> None:
    if not isinstance(model_type, str) or not _NAME.match(model_type):
        raise ValueError(
            "model_type must be a lower-case name of letters, digits and '-' starting with a letter "
            f"(FeaturesManager reads '_' as '-'), got {model_type!r}"
        )
    if model_type in _REGISTERED or model_type in FeaturesManager._REGISTERED_MODEL_TYPES:
        if not replace:
            raise ValueError(
                f"model type {model_type!r} is already registered; pass replace=True to replace it "
                f"(or call tw.models.unregister({model_type!r}) first)"
            )
    elif model_type in CONFIGS or model_type in ARCHITECTURES or _in_features_table(model_type):
        # a type of the package itself (an entry no registration made)
        raise ValueError(
            f"{model_type!r} is a built-in model type and cannot be replaced; register your "
            "architecture under another model_type (and write that name in its config.json)"
        )


def _checked(
    model_type: Any,
    forward: Any,
    parameter_shapes: Any,
    config_class: Any,
    base_prefix: Any,
    ignored_suffixes: Any,
    features: Any,
    onnx_config: Any,
) -> Architecture:
    _check_callable(
        "forward",
        forward,
        ("params", "config", "input_ids", "attention_mask", "position_ids", None, 0),
        {"output_hidden_states": False},
        "forward(params, config, input_ids, attention_mask, position_ids, cache=None, offset=0, "
        "output_hidden_states=False)",
    )
    _check_callable("parameter_shapes", parameter_shapes, ("config",), {}, "parameter_shapes(config)")
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise TypeError(
            f"config_class must be a dataclass (its fields are the config.json fields), got {config_class!r}"
        )
    names = {f.name for f in dataclasses.fields(config_class)} | set(dir(config_class))
    missing = [n for n in CONFIG_FIELDS if n not in names]
    if missing:
        raise ValueError(
            f"config_class {config_class.__name__} lacks {missing}; generation and export read "
            f"{list(CONFIG_FIELDS)} (fields or properties)"
        )
    if getattr(config_class, "model_type", None) != model_type:
        raise ValueError(
            f"config_class {config_class.__name__} must default model_type to {model_type!r} "
            f"(model_type: str = {model_type!r}), got {getattr(config_class, 'model_type', None)!r}"
        )
    if not isinstance(base_prefix, str):
        raise TypeError(f"base_prefix must be a str such as 'model.', got {base_prefix!r}")
    suffixes = (ignored_suffixes,) if isinstance(ignored_suffixes, str) else tuple(ignored_suffixes)
    if not all(isinstance(s, str) and s for s in suffixes):
        raise TypeError(f"ignored_suffixes must be non-empty strings, got {ignored_suffixes!r}")
    feats = _checked_features(features)
    cls = LlamaOnnxConfig if onnx_config is None else onnx_config
    need = OnnxConfigWithPast if any(f.endswith("-with-past") for f in feats) else OnnxConfig
    if not (isinstance(cls, type) and issubclass(cls, need)):
        raise TypeError(
            f"onnx_config must be a subclass of {need.__name__}"
            + (" (a '-with-past' feature is asked for)" if need is OnnxConfigWithPast else "")
            + f", got {cls!r}"
        )
    return Architecture(
        model_type, forward, parameter_shapes, config_class, base_prefix, suffixes, feats, cls
    )


def _checked_features(features: Any) -> tuple[str, ...]:
    items = (features,) if isinstance(features, str) else tuple(features)
    out: list[str] = []
    for f in items:
        name = FeaturesManager.canonical_feature(f) if isinstance(f, str) else f
        if name not in DECODER_FEATURES:
            raise ValueError(
                f"unknown feature {f!r} for a registered decoder; choose from {', '.join(DECODER_FEATURES)} "
                "(or the Optimum names text-generation[-with-past], feature-extraction[-with-past])"
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def _check_callable(what: str, fn: Any, args: tuple, kwargs: dict, signature: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what} must be a function {signature}, got {type(fn).__name__}")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trusted
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{what} must accept {signature}: {exc}") from None


__all__ = [
    "CONFIG_FIELDS",
    "DECODER_FEATURES",
    "Architecture",
    "is_decoder_type",
    "is_registered",
    "register",
    "registered",
    "unregister",
]
