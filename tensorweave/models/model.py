"""A loaded model: config + flat numpy parameters (Hugging Face names) + optional tokenizer.

``model(input_ids, attention_mask)`` runs the forward pass on any backend; the traced program
(symbolic ``batch`` / ``sequence`` dims, parameters as named constants converted once) is
lowered once per (backend, kind) and cached on the model. ``tw.generate(model, ...)`` uses
``model.forward`` / ``model.params`` / ``model.config`` directly.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..frontends.models import (
    ARCHITECTURES,
    DECODERS,
    ENCODER_DECODERS,
    ENCODERS,
    MULTIMODAL,
    VISION_ENCODERS,
    bert,
)
from ..frontends.models.attention import position_ids_from_mask
from ..frontends.models.weights import bind_params
from ..ir.types import TensorSpec
from .tokenizer import Tokenizer

#: encoder-decoder heads that do not generate (bart.py: bart, mbart, bigbird_pegasus)
SEQ2SEQ_CLASSIFIERS = ("sequence-classification", "question-answering")


@dataclass(eq=False)
class Model:
    """``config`` (a GPT2Config / rotary family config (LlamaConfig, MistralConfig, Qwen2Config,
    Qwen3Config, Phi3Config, GemmaConfig) / BertConfig / T5Config, or the config of a type added
    with ``tw.models.register``), ``params`` (name -> float32 array),
    ``head`` (BERT only), ``tokenizer`` (when the checkpoint has one: a :class:`Tokenizer`, or any
    object with Hugging Face's tokenizer protocol), ``generation_config`` (a
    ``tensorweave.frontends.generation.GenerationConfig`` with the checkpoint's generation defaults,
    None for models that do not generate)."""

    config: Any
    params: dict[str, np.ndarray]
    head: str | None = None
    tokenizer: Tokenizer | Any | None = None
    source: str | None = None
    generation_config: Any = None
    _programs: dict = field(default_factory=dict, repr=False)
    _programs_lock: Any = field(default_factory=threading.RLock, repr=False)

    @property
    def model_type(self) -> str:
        return self.config.model_type

    @property
    def is_decoder(self) -> bool:
        """A built-in decoder type or one added with ``tw.models.register``."""
        from .registry import is_registered

        return self.model_type in DECODERS or is_registered(self.model_type)

    @property
    def is_encoder_decoder(self) -> bool:
        return self.model_type in ENCODER_DECODERS

    @property
    def is_vision(self) -> bool:
        """A vision encoder (vit.py), or a head of another type whose input is pixels (its
        module's ``PIXEL_HEADS``: perceiver's image-classification): ``pixel_values [batch,
        channels, height, width]`` in."""
        pixel_heads = getattr(ARCHITECTURES.get(self.model_type), "PIXEL_HEADS", ())
        return self.model_type in VISION_ENCODERS or (self.head is not None and self.head in pixel_heads)

    @property
    def is_multimodal(self) -> bool:
        """Text and image in (clip.py): ``input_ids``, ``attention_mask`` and ``pixel_values``."""
        return self.model_type in MULTIMODAL

    @property
    def seq2seq_module(self) -> Any:
        """An encoder-decoder's architecture module (``t5`` or ``bart``): ``encode``, ``decode``,
        ``init_cache``, ``cross_attention_cache``, ``reorder_cache``, ``forward``."""
        self._need_seq2seq()
        return ARCHITECTURES[self.model_type]

    @property
    def encoder_input(self) -> str:
        """An encoder-decoder's encoder input: ``input_ids`` (with ``attention_mask``), or
        Whisper's ``input_features [batch, num_mel_bins, frames]`` (float32, no mask)."""
        return getattr(self.seq2seq_module, "ENCODER_INPUT", "input_ids")

    def encoder_input_spec(self, batch: Any = "batch") -> TensorSpec:
        """The encoder input's spec (``input_ids [batch, sequence]`` or ``input_features``)."""
        if self.encoder_input == "input_features":
            cfg = self.config
            return TensorSpec((batch, cfg.num_mel_bins, cfg.num_frames), "float32", "input_features")
        return TensorSpec((batch, "sequence"), "int64", "input_ids")

    @property
    def forward(self) -> Callable:
        """The architecture's forward (BERT: bound to this model's head; T5: ``t5.forward``, with
        ``t5.encode`` / ``t5.decode`` for step-wise use)."""
        fn = ARCHITECTURES[self.model_type].forward
        plain = (self.is_decoder and self.head is None) or self.is_encoder_decoder  # imagegpt: a head
        return fn if plain else functools.partial(fn, head=self.head)

    def num_parameters(self) -> int:
        return int(sum(v.size for v in self.params.values()))

    def __repr__(self) -> str:
        head = f", head={self.head!r}" if self.head else ""
        return f"Model({self.model_type}{head}, {self.num_parameters():,} parameters, source={self.source!r})"

    # ------------------------------------------------------------------ programs
    def _program(self, kind: str, backend: str | None, build: Callable[[], Any]) -> Any:
        from ..backends import registry

        name = registry.resolve(backend)
        key = (kind, name)
        prog = self._programs.get(key)
        if prog is None:
            with self._programs_lock:  # concurrent first calls build (trace + lower) once
                prog = self._programs.get(key)
                if prog is None:
                    prog = self._programs[key] = registry.lower(build(), name)
        return prog

    def _ids_spec(self, name: str) -> TensorSpec:
        shape = ("batch", "choice", "sequence") if self.head == "multiple-choice" else ("batch", "sequence")
        return TensorSpec(shape, "int64", name)

    def program(
        self, backend: str | None = None, output_hidden_states: bool = False, extra_inputs: tuple = ()
    ) -> Any:
        """The lowered forward program: ``(input_ids, attention_mask[, token_type_ids][, bbox],
        *extra_inputs) -> outputs``; ``extra_inputs`` names optional inputs of the type's forward
        (:attr:`extra_input_names`: xlm's ``langs``, longformer's ``global_attention_mask``),
        each shaped like ``input_ids``."""
        from ..ir.trace import trace

        kind = ("forward+hidden" if output_hidden_states else "forward") + "".join(
            f"+{n}" for n in extra_inputs
        )
        if self.is_vision:
            return self._vision_program(backend, output_hidden_states)
        if self.is_multimodal:
            return self._multimodal_program(backend, output_hidden_states)
        if self.is_encoder_decoder:
            return self._seq2seq_program(backend, output_hidden_states)

        def fn(input_ids: Any, attention_mask: Any, *rest: Any) -> dict:
            params = bind_params(self.params)
            if self.is_decoder:
                pos = position_ids_from_mask(attention_mask)
                out = self.forward(
                    params,
                    self.config,
                    input_ids,
                    attention_mask,
                    pos,
                    output_hidden_states=output_hidden_states,
                )
                res = {"logits": out[0]}
                if output_hidden_states:
                    res.update({f"hidden_states.{i}": h for i, h in enumerate(out[2])})
                return res
            out = self.forward(
                params,
                self.config,
                input_ids,
                attention_mask,
                rest[0],
                output_hidden_states=output_hidden_states,
                **({"bbox": rest[1]} if self._has_bbox else {}),
                **dict(zip(extra_inputs, rest[len(rest) - len(extra_inputs) :])),
            )
            hidden = out.pop("hidden_states", ())
            out.update({f"hidden_states.{i}": h for i, h in enumerate(hidden)})
            return out

        specs = [self._ids_spec("input_ids"), self._ids_spec("attention_mask")]
        if not self.is_decoder:
            specs.append(self._ids_spec("token_type_ids"))
        if self._has_bbox:  # layoutlm's boxes
            specs.append(TensorSpec(("batch", "sequence", 4), "int64", "bbox"))
        specs += [self._ids_spec(n) for n in extra_inputs]
        return self._program(kind, backend, lambda: trace(fn, *specs, name=f"{self.model_type}_{kind}"))

    @property
    def extra_input_names(self) -> tuple[str, ...]:
        """Optional inputs shaped like ``input_ids`` that the type's forward takes (its module's
        ``EXTRA_INPUTS``: xlm / flaubert ``langs``, longformer ``global_attention_mask``)."""
        if self.is_decoder or self.is_encoder_decoder or self.is_vision or self.is_multimodal:
            return ()
        return tuple(getattr(ARCHITECTURES[self.model_type], "EXTRA_INPUTS", ()))

    @property
    def _has_bbox(self) -> bool:
        """An encoder with a ``bbox [batch, sequence, 4]`` input (layoutlm)."""
        return bool(getattr(self.config, "has_bbox", False)) and not self.is_decoder

    def __call__(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        *,
        backend: str | None = None,
        output_hidden_states: bool = False,
        decoder_input_ids: Any = None,
        bbox: Any = None,
        pixel_values: Any = None,
        langs: Any = None,
        global_attention_mask: Any = None,
        pixel_mask: Any = None,
    ) -> dict:
        """Outputs as a dict of arrays (decoders: ``logits``; BERT: the head's outputs), plus
        ``hidden_states`` (a tuple) when asked. Arrays in = arrays out of the same kind.
        T5: ``model(input_ids, attention_mask, decoder_input_ids)`` (third positional argument or
        keyword) returns ``logits`` and ``encoder_last_hidden_state`` (plus
        ``encoder_hidden_states`` / ``decoder_hidden_states`` when asked). LayoutLM also takes
        ``bbox [batch, sequence, 4]`` (int boxes; zeros when not given), LayoutLMv3 ``bbox`` and
        ``pixel_values [batch, channels, size, size]`` (without it, the text alone). Vision encoders (vit.py,
        resnet.py, convnext.py) take ``model(pixel_values [batch, channels, height, width])``.
        XLM / FlauBERT also take ``langs`` (language ids), Longformer ``global_attention_mask``
        (nonzero: global; None: the head's default), each shaped like ``input_ids``. DETR also
        takes ``pixel_mask [batch, height, width]`` (1 = real pixel; None: all ones)."""
        extras = self._extra_inputs(input_ids, langs=langs, global_attention_mask=global_attention_mask)
        if pixel_mask is not None and not self.has_pixel_mask:
            raise ValueError(f"{self.model_type} takes no pixel_mask (only detr does)")
        if self.is_vision:  # the first argument is pixel_values
            return self._call_vision(input_ids, backend, output_hidden_states, pixel_mask)
        if self.is_multimodal:  # clip: model(input_ids, attention_mask, pixel_values=...)
            return self._call_multimodal(
                input_ids, attention_mask, pixel_values, backend, output_hidden_states, bbox
            )
        if self.is_encoder_decoder:
            return self._call_seq2seq(
                input_ids,
                attention_mask,
                token_type_ids if decoder_input_ids is None else decoder_input_ids,
                backend,
                output_hidden_states,
            )
        ids, mask, types = self._check_inputs(input_ids, attention_mask, token_type_ids)
        prog = self.program(backend, output_hidden_states, tuple(extras))
        args = (ids, mask) if self.is_decoder else (ids, mask, types)
        if self._has_bbox:
            shape = tuple(getattr(ids, "shape", np.shape(ids)))
            args = (*args, np.zeros((*shape, 4), np.int64) if bbox is None else bbox)
        elif bbox is not None:
            raise ValueError(f"{self.model_type} takes no bbox input (only layoutlm does)")
        outs = prog(*args, *extras.values())
        outs = outs if isinstance(outs, tuple) else (outs,)
        named = dict(zip(prog.output_names, outs))
        keys = sorted(
            (k for k in named if k.startswith("hidden_states.")), key=lambda k: int(k.rsplit(".", 1)[1])
        )
        hidden = tuple(named.pop(k) for k in keys)
        if output_hidden_states:
            named["hidden_states"] = hidden
        return named

    def _extra_inputs(self, input_ids: Any, **given: Any) -> dict:
        """The optional inputs passed (not None), checked: the type takes them
        (:attr:`extra_input_names`) and each has the shape of ``input_ids``."""
        extras = {k: v for k, v in given.items() if v is not None}
        if not extras:
            return extras
        takes = self.extra_input_names
        shape = tuple(getattr(input_ids, "shape", np.shape(input_ids)))
        for name, value in extras.items():
            if name not in takes:
                which = "xlm and flaubert do" if name == "langs" else "longformer does"
                raise ValueError(f"{self.model_type} takes no {name} input (only {which})")
            got = tuple(getattr(value, "shape", np.shape(value)))
            if got != shape:
                raise ValueError(f"{name} must have the shape of input_ids {shape}, got {got}")
        return extras

    def _check_inputs(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> tuple:
        rank = 3 if self.head == "multiple-choice" else 2
        shape = tuple(getattr(input_ids, "shape", np.shape(input_ids)))
        if len(shape) != rank:
            raise ValueError(
                f"input_ids must have rank {rank} ({'[batch, choice, sequence]' if rank == 3 else '[batch, sequence]'}), "
                f"got shape {shape}"
            )
        limit = getattr(self.config, "max_position_embeddings", None) if self.is_decoder else None
        if isinstance(limit, int) and shape[1] > limit:
            raise ValueError(
                f"sequence length {shape[1]} exceeds max_position_embeddings ({limit}); truncate the input"
            )
        if attention_mask is None:
            attention_mask = np.ones(shape, np.int64)
        if not self.is_decoder and token_type_ids is None:
            token_type_ids = np.zeros(shape, np.int64)
        return input_ids, attention_mask, token_type_ids

    # ------------------------------------------------------------------ vision encoders (vit.py)
    def _vision_program(self, backend: str | None, output_hidden_states: bool, size: Any = None) -> Any:
        """``pixel_values [batch, num_channels, *image_size]`` (float32) -> the head's outputs
        (``hidden_states.{i}`` too when asked). A type without a fixed image size (resnet,
        convnext) has one program per image ``size`` (default: its ``export_image_size``)."""
        from ..ir.trace import trace

        cfg = self.config
        fixed = cfg.fixed_image_size
        size = tuple(cfg.image_size if fixed else (size or cfg.export_image_size))
        kind = ("forward+hidden" if output_hidden_states else "forward") + ("" if fixed else f"@{size}")

        def fn(pixel_values: Any, *mask: Any) -> dict:
            out = self.forward(
                bind_params(self.params),
                self.config,
                pixel_values,
                output_hidden_states=output_hidden_states,
                **({"pixel_mask": mask[0]} if mask else {}),
            )
            out.update({f"hidden_states.{i}": h for i, h in enumerate(out.pop("hidden_states", ()))})
            return out

        specs = [TensorSpec(("batch", cfg.num_channels, *size), "float32", "pixel_values")]
        if self.has_pixel_mask:  # detr: pixel_mask [batch, height, width]
            specs.append(TensorSpec(("batch", *size), "int64", "pixel_mask"))
        return self._program(kind, backend, lambda: trace(fn, *specs, name=f"{self.model_type}_{kind}"))

    @property
    def has_pixel_mask(self) -> bool:
        """A vision type that also takes ``pixel_mask [batch, height, width]`` (detr)."""
        return self.is_vision and bool(getattr(ARCHITECTURES[self.model_type], "PIXEL_MASK", False))

    def _call_vision(
        self, pixel_values: Any, backend: str | None, output_hidden_states: bool, pixel_mask: Any = None
    ) -> dict:
        shape = tuple(getattr(pixel_values, "shape", np.shape(pixel_values)))
        prog = self._vision_program(backend, output_hidden_states, shape[2:] if len(shape) == 4 else None)
        if self.has_pixel_mask and pixel_mask is None and len(shape) == 4:
            pixel_mask = np.ones((shape[0], *shape[2:]), np.int64)
        outs = prog(pixel_values) if not self.has_pixel_mask else prog(pixel_values, pixel_mask)
        named = dict(zip(prog.output_names, outs if isinstance(outs, tuple) else (outs,)))
        keys = sorted(
            (k for k in named if k.startswith("hidden_states.")), key=lambda k: int(k.rsplit(".", 1)[1])
        )
        hidden = tuple(named.pop(k) for k in keys)
        if output_hidden_states:
            named["hidden_states"] = hidden
        return named

    # ------------------------------------------------------------------ text + image (clip.py)
    @property
    def multimodal_inputs(self) -> tuple[str, ...]:
        """The inputs of a multimodal type, in order (clip: ``input_ids``, ``attention_mask``,
        ``pixel_values``; its text-only and vision-only classes one side of them)."""
        return ARCHITECTURES[self.model_type].INPUTS[self.model_type]

    def _multimodal_program(
        self, backend: str | None, output_hidden_states: bool = False, names: tuple[str, ...] | None = None
    ) -> Any:
        """``(input_ids [batch, sequence], attention_mask [batch, sequence], pixel_values
        [image_batch, num_channels, image_size, image_size]) -> the head's outputs`` (the inputs
        the type takes; images alone have the axis ``batch``, as do a module's whose
        ``IMAGE_BATCH`` says so; layoutlmv3's ``bbox`` is ``[batch, sequence, 4]``). ``names``: a
        subset of the inputs (layoutlmv3 without ``pixel_values``), a program of its own."""
        from ..ir.trace import trace

        if output_hidden_states:
            raise ValueError(
                f"{self.model_type} models do not return hidden_states; call without output_hidden_states"
            )
        every = self.multimodal_inputs
        names = every if names is None else names
        shared = getattr(ARCHITECTURES[self.model_type], "IMAGE_BATCH", None) == "batch"

        def fn(*args: Any) -> dict:
            return self.forward(bind_params(self.params), self.config, **dict(zip(names, args)))

        specs = []
        for name in names:
            if name == "pixel_values":
                v = getattr(self.config, "vision", self.config)
                batch = "image_batch" if "input_ids" in names and not shared else "batch"
                shape: tuple = (batch, v.num_channels, v.image_size, v.image_size)
                specs.append(TensorSpec(shape, "float32", name))
            elif name == "bbox":
                specs.append(TensorSpec(("batch", "sequence", 4), "int64", name))
            else:
                specs.append(TensorSpec(("batch", "sequence"), "int64", name))
        kind = "forward" if names == every else "forward:" + ",".join(names)
        return self._program(kind, backend, lambda: trace(fn, *specs, name=f"{self.model_type}_forward"))

    def _call_multimodal(
        self,
        input_ids: Any,
        attention_mask: Any,
        pixel_values: Any,
        backend: str | None,
        hidden: bool,
        bbox: Any = None,
    ) -> dict:
        names = self.multimodal_inputs
        if bbox is not None and "bbox" not in names:
            raise ValueError(f"{self.model_type} takes no bbox input (layoutlm and layoutlmv3 do)")
        optional = getattr(ARCHITECTURES[self.model_type], "OPTIONAL_INPUTS", ())
        if pixel_values is None and "pixel_values" in optional:  # layoutlmv3: the text alone
            names = tuple(n for n in names if n != "pixel_values")
        if "input_ids" not in names:  # images only: model(pixel_values)
            feeds = {"pixel_values": input_ids if pixel_values is None else pixel_values}
        else:
            if pixel_values is None and "pixel_values" in names:
                raise ValueError(
                    f"{self.model_type} needs pixel_values [batch, channels, height, width] as well as input_ids"
                )
            if pixel_values is not None and "pixel_values" not in names:
                raise ValueError(f"{self.model_type} takes no pixel_values (text only)")
            ids, mask, _ = self._check_inputs(input_ids, attention_mask, None)
            text = getattr(self.config, "text", self.config)
            limit = getattr(text, "max_text_length", text.max_position_embeddings)
            length = np.shape(ids)[1]
            if length > limit:
                raise ValueError(
                    f"sequence length {length} exceeds the {limit} tokens {self.model_type} takes; truncate the input"
                )
            feeds = {"input_ids": ids, "attention_mask": mask, "pixel_values": pixel_values}
            if "bbox" in names:  # layoutlmv3: zeros when not given
                feeds["bbox"] = np.zeros((*np.shape(ids), 4), np.int64) if bbox is None else bbox
        prog = self._multimodal_program(backend, hidden, names)
        outs = prog(*[feeds[n] for n in names])
        return dict(zip(prog.output_names, outs if isinstance(outs, tuple) else (outs,)))

    # ------------------------------------------------------------------ T5 (encoder-decoder)
    def _seq2seq_program(self, backend: str | None, output_hidden_states: bool) -> Any:
        """``(input_ids [batch, sequence], attention_mask [batch, sequence], decoder_input_ids
        [batch, decoder_sequence]) -> logits, encoder_last_hidden_state[, hidden states]``."""
        from ..ir.trace import trace

        kind = "seq2seq+hidden" if output_hidden_states else "seq2seq"

        features = self.encoder_input == "input_features"  # whisper: no encoder mask

        def fn(*args: Any) -> dict:
            encoder_input, attention_mask, decoder_input_ids = (args[0], None, args[1]) if features else args
            out = self.seq2seq_module.forward(
                bind_params(self.params),
                self.config,
                encoder_input,
                attention_mask,
                decoder_input_ids,
                output_hidden_states=output_hidden_states,
                **({"head": self.head} if self.head in SEQ2SEQ_CLASSIFIERS else {}),  # bart.py's heads
            )
            for name in ("encoder_hidden_states", "decoder_hidden_states"):
                out.update({f"{name}.{i}": h for i, h in enumerate(out.pop(name, ()))})
            return out

        specs = [self.encoder_input_spec()]
        if not features:
            specs.append(TensorSpec(("batch", "sequence"), "int64", "attention_mask"))
        specs.append(TensorSpec(("batch", "decoder_sequence"), "int64", "decoder_input_ids"))
        return self._program(kind, backend, lambda: trace(fn, *specs, name=f"{self.model_type}_{kind}"))

    def _call_seq2seq(
        self,
        input_ids: Any,
        attention_mask: Any,
        decoder_input_ids: Any,
        backend: str | None,
        output_hidden_states: bool,
    ) -> dict:
        shape = tuple(getattr(input_ids, "shape", np.shape(input_ids)))
        features = self.encoder_input == "input_features"
        if features:
            self.seq2seq_module.check_features(self.config, shape)
        elif len(shape) != 2:
            raise ValueError(f"input_ids must have rank 2 ([batch, sequence]), got shape {shape}")
        if decoder_input_ids is None and self.head in SEQ2SEQ_CLASSIFIERS:  # Hugging Face's default
            decoder_input_ids = np.asarray(
                self.seq2seq_module.shift_tokens_right(self.config, np.asarray(input_ids))
            )
        if decoder_input_ids is None:
            raise ValueError(
                f"{self.model_type} needs decoder_input_ids [batch, decoder_sequence]; start them with "
                f"decoder_start_token_id ({self.config.decoder_start_token_id})"
            )
        dshape = tuple(getattr(decoder_input_ids, "shape", np.shape(decoder_input_ids)))
        if len(dshape) != 2 or dshape[0] != shape[0]:
            raise ValueError(
                f"decoder_input_ids must be [batch, decoder_sequence] with batch {shape[0]}, got shape "
                f"{dshape}"
            )
        if attention_mask is None:
            attention_mask = np.ones(shape, np.int64)
        prog = self.program(backend, output_hidden_states)
        args = (input_ids, decoder_input_ids) if features else (input_ids, attention_mask, decoder_input_ids)
        outs = prog(*args)
        named = dict(zip(prog.output_names, outs if isinstance(outs, tuple) else (outs,)))
        for name in ("encoder_hidden_states", "decoder_hidden_states"):
            keys = sorted(
                (k for k in named if k.startswith(name + ".")), key=lambda k: int(k.rsplit(".", 1)[1])
            )
            if keys:
                named[name] = tuple(named.pop(k) for k in keys)
        return named

    def seq2seq_past_names(self, prefix: str = "past_key_values") -> list[str]:
        """T5 cache names in Hugging Face's ONNX order: ``{prefix}.{i}.decoder.key``,
        ``.decoder.value``, ``.encoder.key``, ``.encoder.value`` per decoder layer."""
        return [
            f"{prefix}.{i}.{part}.{kv}"
            for i in range(self.config.num_decoder_layers)
            for part in ("decoder", "encoder")
            for kv in ("key", "value")
        ]

    def encoder_program(self, backend: str | None = None) -> Any:
        """T5's encoder: ``(input_ids, attention_mask [batch, encoder_sequence]) ->
        last_hidden_state [batch, encoder_sequence, d_model]``."""
        from ..ir.trace import trace

        self._need_seq2seq()

        def fn(input_ids: Any, attention_mask: Any = None) -> dict:
            return {
                "last_hidden_state": self.seq2seq_module.encode(
                    bind_params(self.params), self.config, input_ids, attention_mask
                )
            }

        if self.encoder_input == "input_features":  # whisper: (input_features) -> last_hidden_state
            feats = self.encoder_input_spec()
            return self._program("encoder", backend, lambda: trace(fn, feats, name="whisper_encoder"))
        spec = TensorSpec(("batch", "encoder_sequence"), "int64")
        return self._program(
            "encoder",
            backend,
            lambda: trace(
                fn, spec.with_name("input_ids"), spec.with_name("attention_mask"), name="t5_encoder"
            ),
        )

    def decoder_program(self, backend: str | None = None, with_past: bool = False) -> Any:
        """T5's decoder step with a growing cache, Hugging Face's ONNX names.

        Without past (first call): ``(input_ids [batch, sequence], encoder_hidden_states,
        encoder_attention_mask) -> (logits, present.{i}.decoder.key/value [batch, heads,
        sequence, d_kv], present.{i}.encoder.key/value [batch, heads, encoder_sequence, d_kv])``.
        With past: ``(input_ids, encoder_attention_mask, past_key_values.{i}.decoder.* [batch,
        heads, past_sequence, d_kv], past_key_values.{i}.encoder.*) -> (logits,
        present.{i}.decoder.*)`` (the cross-attention keys/values are not recomputed or
        returned); decoder positions start at ``past_sequence``."""
        from ..ir import namespace as xp
        from ..ir.trace import trace

        self._need_seq2seq()
        cfg = self.config
        L = cfg.num_decoder_layers

        def run(input_ids: Any, enc: Any, enc_mask: Any, past: tuple) -> dict:
            params = bind_params(self.params)
            if past:
                cache = {
                    "self": [(past[4 * i], past[4 * i + 1]) for i in range(L)],
                    "cross": [(past[4 * i + 2], past[4 * i + 3]) for i in range(L)],
                }
                offset = xp.sum(xp.ones((past[0].shape[2],), dtype=xp.int64))  # past_sequence as an array
            else:
                cache = self.seq2seq_module.init_cache(params, cfg, enc, "growing")
                offset = 0
            logits, cache = self.seq2seq_module.decode(params, cfg, input_ids, enc, enc_mask, cache, offset)
            out = {"logits": logits}
            for i in range(L):
                out[f"present.{i}.decoder.key"], out[f"present.{i}.decoder.value"] = cache["self"][i]
                if not past:
                    out[f"present.{i}.encoder.key"], out[f"present.{i}.encoder.value"] = cache["cross"][i]
            return out

        ids = TensorSpec(("batch", "sequence"), "int64", "input_ids")
        mask = TensorSpec(("batch", "encoder_sequence"), "int64", "encoder_attention_mask")
        if not with_past:
            enc = TensorSpec(("batch", "encoder_sequence", cfg.d_model), "float32", "encoder_hidden_states")
            return self._program(
                "decoder",
                backend,
                lambda: trace(lambda i, e, m: run(i, e, m, ()), ids, enc, mask, name="t5_decoder"),
            )
        specs = []
        for name in self.seq2seq_past_names():
            seq = "past_sequence" if ".decoder." in name else "encoder_sequence"
            specs.append(TensorSpec(("batch", cfg.num_heads, seq, cfg.d_kv), "float32", name))
        return self._program(
            "decoder-with-past",
            backend,
            lambda: trace(
                lambda i, m, *past: run(i, None, m, past), ids, mask, *specs, name="t5_decoder_with_past"
            ),
        )

    def _need_seq2seq(self) -> None:
        if not self.is_encoder_decoder:
            raise ValueError(f"{self.model_type} is not an encoder-decoder; use program / with_past_program")

    # ------------------------------------------------------------------ step-wise with a growing cache
    def past_names(self) -> list[str]:
        """``past_key_values.{i}.key`` / ``.value`` per layer (Hugging Face's ONNX names)."""
        return [
            f"past_key_values.{i}.{kv}"
            for i in range(self.config.num_hidden_layers)
            for kv in ("key", "value")
        ]

    def with_past_program(self, backend: str | None = None) -> Any:
        """The step-wise decoder program with a growing cache:
        ``(input_ids [batch, sequence], attention_mask [batch, past_sequence + sequence],
        past_key_values.{i}.key/value [batch, kv_heads, past_sequence, head_dim]) ->
        (logits, present.{i}.key/value [batch, kv_heads, past_sequence + sequence, head_dim])``.
        The first step passes ``past_sequence = 0`` (empty arrays, see :meth:`empty_past`)."""
        from ..ir import namespace as xp
        from ..ir.trace import trace

        if not self.is_decoder or self.head is not None:
            what = self.model_type + (f" with the {self.head!r} head" if self.head else "")
            raise ValueError(f"{what} is not a decoder; it has no key/value cache")
        cfg = self.config
        L = cfg.num_hidden_layers

        def fn(input_ids: Any, attention_mask: Any, *past: Any) -> dict:
            params = bind_params(self.params)
            cache = [(past[2 * i], past[2 * i + 1]) for i in range(L)]
            offset = xp.sum(xp.ones((past[0].shape[2],), dtype=xp.int64))  # past_sequence as an array
            pos = position_ids_from_mask(attention_mask, offset, input_ids.shape[1])
            logits, cache = self.forward(params, cfg, input_ids, attention_mask, pos, cache, offset)
            out = {"logits": logits}
            for i, (k, v) in enumerate(cache):
                out[f"present.{i}.key"], out[f"present.{i}.value"] = k, v
            return out

        kv = TensorSpec(("batch", cfg.num_key_value_heads, "past_sequence", cfg.head_dim), "float32")
        specs = [
            TensorSpec(("batch", "sequence"), "int64", "input_ids"),
            TensorSpec(("batch", "past_sequence + sequence"), "int64", "attention_mask"),
        ]
        specs += [kv.with_name(n) for n in self.past_names()]
        return self._program(
            "with-past", backend, lambda: trace(fn, *specs, name=f"{self.model_type}_with_past")
        )

    def empty_past(self, batch: int) -> list[np.ndarray]:
        """Zero-length past keys/values for the first call of :meth:`with_past_program`."""
        cfg = self.config
        return [
            np.zeros((batch, cfg.num_key_value_heads, 0, cfg.head_dim), np.float32)
            for _ in range(2 * cfg.num_hidden_layers)
        ]

    # ------------------------------------------------------------------ BERT sentence embeddings
    def embed(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        *,
        normalize: bool = True,
        backend: str | None = None,
    ) -> Any:
        """Mean-pooled (and L2-normalised) sentence embeddings ``[batch, hidden]`` (BERT only);
        ``input_ids`` may also be a list of strings when the model has a tokenizer."""
        from ..ir.trace import trace

        if self.model_type not in ENCODERS:
            raise ValueError(f"embed needs an encoder (BERT family) model, this is {self.model_type}")
        if isinstance(input_ids, (str, list)) and (
            isinstance(input_ids, str) or isinstance(input_ids[0], str)
        ):
            if self.tokenizer is None:
                raise ValueError("this model has no tokenizer; pass input_ids")
            batch = self.tokenizer(input_ids, padding=True, return_tensors="np")
            input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
            token_type_ids = batch.get("token_type_ids")
        ids, mask, types = self._check_inputs(input_ids, attention_mask, token_type_ids)

        arch = ARCHITECTURES[self.model_type]

        def fn(input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            params = bind_params(self.params)
            if arch is bert:
                return bert.sentence_embedding(
                    params, self.config, input_ids, attention_mask, token_type_ids, normalize=normalize
                )
            # the other encoder modules: their default head's last_hidden_state, the same pooling
            out = arch.forward(params, self.config, input_ids, attention_mask, token_type_ids, head="default")
            e = bert.mean_pool(out["last_hidden_state"], attention_mask)
            return bert.l2_normalize(e) if normalize else e

        spec = TensorSpec(("batch", "sequence"), "int64")
        prog = self._program(
            f"embed{'+norm' if normalize else ''}",
            backend,
            lambda: trace(fn, spec, spec, spec, name="sentence_embedding"),
        )
        return prog(ids, mask, types)

    # ------------------------------------------------------------------ generation
    def generate(self, input_ids: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
        """``tensorweave.generation.generate(self, input_ids, attention_mask, **kwargs)`` (Hugging
        Face's ``model.generate``); ``self.generation_config`` gives the defaults."""
        from ..generation import generate

        if not (self.is_decoder or self.is_encoder_decoder) or self.head in (
            *SEQ2SEQ_CLASSIFIERS,
            "image-classification",  # imagegpt's classifier
        ):
            raise ValueError(f"{self.model_type} models do not generate; call the model for its outputs")
        return generate(self, input_ids, attention_mask, **kwargs)

    # ------------------------------------------------------------------ chat
    def chat(
        self,
        messages: list[dict],
        *,
        max_new_tokens: int = 32,
        backend: str | None = None,
        **generate_kwargs: Any,
    ) -> str:
        """Greedy (by default) reply to a chat, through the tokenizer's chat template."""
        from ..generation import generate

        if self.tokenizer is None or not self.is_decoder:
            raise ValueError("chat needs a decoder model with a tokenizer (e.g. tw.models.load('smollm2'))")
        ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # a BatchEncoding (transformers v5's default)
            ids = ids["input_ids"]
        ids = np.asarray(ids.detach().cpu().numpy() if hasattr(ids, "detach") else ids, np.int64)
        ids = ids.reshape(1, -1)
        out = generate(self, ids, max_new_tokens=max_new_tokens, backend=backend, **generate_kwargs)
        return self.tokenizer.decode(np.asarray(out)[0, ids.shape[1] :], skip_special_tokens=True)
