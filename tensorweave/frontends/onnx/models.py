"""Concrete ONNX configs for the model types tensorweave implements: GPT-2, Llama, BERT, T5."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

from .config import OnnxConfig, OnnxConfigWithPast, OnnxSeq2SeqConfigWithPast, config_field, to_framework


class GPT2OnnxConfig(OnnxConfigWithPast):
    """input_ids {batch, sequence}, [past], attention_mask {batch, past_sequence + sequence} (with past)."""

    def __init__(
        self, config: Any, task: str = "default", patching_specs: Any = None, use_past: bool = False
    ):
        super().__init__(config, task=task, patching_specs=patching_specs, use_past=use_past)
        if not config_field(self._config, "pad_token_id", None):
            if isinstance(self._config, dict):
                self._config["pad_token_id"] = 0
            else:
                setattr(self._config, "pad_token_id", 0)

    @property
    def inputs(self) -> Mapping[str, Mapping[int, str]]:
        common = OrderedDict({"input_ids": {0: "batch", 1: "sequence"}})
        if self.use_past:
            self.fill_with_past_key_values_(common, direction="inputs")
            common["attention_mask"] = {0: "batch", 1: "past_sequence + sequence"}
        else:
            common["attention_mask"] = {0: "batch", 1: "sequence"}
        return common

    @property
    def num_layers(self) -> int:
        return config_field(self._config, "n_layer")

    @property
    def num_attention_heads(self) -> int:
        return config_field(self._config, "n_head")

    @property
    def default_onnx_opset(self) -> int:
        return 13

    def generate_dummy_inputs(
        self,
        tokenizer: Any,
        batch_size: int = -1,
        seq_length: int = -1,
        is_pair: bool = False,
        framework: Any = None,
    ) -> Mapping[str, Any]:
        common = super().generate_dummy_inputs(tokenizer, batch_size, seq_length, is_pair, None)
        ordered = OrderedDict({"input_ids": common["input_ids"]})
        if self.use_past:
            ordered["past_key_values"] = common["past_key_values"]
        ordered["attention_mask"] = common["attention_mask"]
        return to_framework(ordered, framework)


class LlamaOnnxConfig(GPT2OnnxConfig):
    """Llama (and SmolLM2): GPT-2's signature with grouped-query past (num_key_value_heads)."""

    @property
    def num_layers(self) -> int:
        return config_field(self._config, "num_hidden_layers")

    @property
    def num_attention_heads(self) -> int:
        return config_field(self._config, "num_attention_heads")

    @property
    def default_onnx_opset(self) -> int:
        return 18

    @property
    def atol_for_validation(self) -> float:
        """``2e-4 * num_layers`` (SmolLM2-135M's 30 layers: 6e-3; a 1-layer test model: 2e-4).

        Hugging Face (and optimum) keep 1e-5 for Llama, and optimum only warns when a real model
        misses it. Here validation raises, so the tolerance must cover float32 summation-order
        differences between backends, which grow with depth and with the logits' size: measured
        on SmolLM2 (logits up to ~31) the max logits difference is 8e-4 (ONNX), 1.3e-3 (TF),
        2.2e-3 (JAX); see spec/onnx-config.md. A wrong weight or op moves logits by O(1)."""
        return 2e-4 * max(1, int(self.num_layers))


class BertOnnxConfig(OnnxConfig):
    """input_ids, attention_mask, token_type_ids: {batch, sequence} ({batch, choice, sequence} for multiple-choice)."""

    @property
    def inputs(self) -> Mapping[str, Mapping[int, str]]:
        if self.task == "multiple-choice":
            axis = {0: "batch", 1: "choice", 2: "sequence"}
        else:
            axis = {0: "batch", 1: "sequence"}
        return OrderedDict(
            [("input_ids", dict(axis)), ("attention_mask", dict(axis)), ("token_type_ids", dict(axis))]
        )

    @property
    def outputs(self) -> Mapping[str, Mapping[int, str]]:
        out = super().outputs
        if self.task == "default":
            out["pooler_output"] = {0: "batch"}
        return out


class T5OnnxConfig(OnnxSeq2SeqConfigWithPast):
    """Encoder inputs {batch, encoder_sequence}; decoder inputs {batch, decoder_sequence} (one token with past)."""

    @property
    def inputs(self) -> Mapping[str, Mapping[int, str]]:
        common = OrderedDict(
            {
                "input_ids": {0: "batch", 1: "encoder_sequence"},
                "attention_mask": {0: "batch", 1: "encoder_sequence"},
            }
        )
        if self.use_past:
            common["attention_mask"][1] = "past_encoder_sequence + sequence"
            common["decoder_input_ids"] = {0: "batch"}
            common["decoder_attention_mask"] = {0: "batch", 1: "past_decoder_sequence + sequence"}
        else:
            common["decoder_input_ids"] = {0: "batch", 1: "decoder_sequence"}
            common["decoder_attention_mask"] = {0: "batch", 1: "decoder_sequence"}
        if self.use_past:
            self.fill_with_past_key_values_(common, "inputs")
        return common

    def input_ranks(self) -> dict[str, int]:
        ranks = super().input_ranks()
        if self.use_past:
            ranks["decoder_input_ids"] = 2
        return ranks

    def fixed_input_axes(self, name: str) -> dict[int, int]:
        return {1: 1} if (self.use_past and name == "decoder_input_ids") else {}

    @property
    def default_onnx_opset(self) -> int:
        return 13


class WhisperOnnxConfig(OnnxSeq2SeqConfigWithPast):
    """``input_features [batch, num_mel_bins, 2 * max_source_positions]`` (only the batch is
    dynamic: Whisper's encoder takes a fixed number of frames) and ``decoder_input_ids {batch,
    decoder_sequence}`` (one token per step with past, after the past keys/values)."""

    @property
    def inputs(self) -> Mapping[str, Mapping[int, str]]:
        common = OrderedDict({"input_features": {0: "batch"}})
        if self.use_past:
            common["decoder_input_ids"] = {0: "batch"}
            self.fill_with_past_key_values_(common, "inputs")
        else:
            common["decoder_input_ids"] = {0: "batch", 1: "decoder_sequence"}
        return common

    def input_ranks(self) -> dict[str, int]:
        ranks = super().input_ranks()
        ranks["input_features"] = 3
        ranks["decoder_input_ids"] = 2
        return ranks

    def fixed_input_axes(self, name: str) -> dict[int, int]:
        if name == "input_features":
            mel = config_field(self._config, "num_mel_bins")
            return {1: mel, 2: 2 * config_field(self._config, "max_source_positions")}
        return {1: 1} if (self.use_past and name == "decoder_input_ids") else {}

    @property
    def default_onnx_opset(self) -> int:
        return 13
