"""One validation layer before any work, identical on every backend; the caller's framework in and
out; typed JAX keys and ``params=``; ``token_type_ids``; model generation defaults; streaming that
switches to step-wise (spec/generation.md, "Validation" and "Streaming")."""

from __future__ import annotations

import logging
import sys
import time
import warnings

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.generation import TokenCollector
from tensorweave.frontends.models import PARAMETER_SHAPES, config_from_dict
from tensorweave.generation import resolve_plan, stepwise
from tensorweave.generation.frameworks import framework_of
from tensorweave.generation.programs import PROGRAMS
from tensorweave.ir.types import IRError
from tensorweave.models import Model

from conftest import require_backend

VOCAB, EOS, PAD, BOS, POSITIONS = 40, 3, 2, 1, 16
IDS = np.array([[5, 6, 7, 8], [9, 10, 11, 12]], np.int64)
MASK = np.array([[1, 1, 1, 1], [0, 1, 1, 1]], np.int64)


def _params(kind: str, cfg, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        k: (rng.standard_normal(s) * 0.3).astype(np.float32) for k, s in PARAMETER_SHAPES[kind](cfg).items()
    }


def tiny_llama(seed: int = 0) -> Model:
    cfg = config_from_dict(
        dict(
            model_type="llama",
            vocab_size=VOCAB,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=POSITIONS,
            eos_token_id=EOS,
            pad_token_id=PAD,
            bos_token_id=BOS,
        )
    )
    return Model(cfg, _params("llama", cfg, seed))


def tiny_gpt2() -> Model:
    cfg = config_from_dict(
        dict(
            model_type="gpt2",
            vocab_size=VOCAB,
            n_positions=12,
            n_embd=8,
            n_layer=1,
            n_head=2,
            eos_token_id=EOS,
        )
    )
    return Model(cfg, _params("gpt2", cfg, 1))


def tiny_t5() -> Model:
    cfg = config_from_dict(
        dict(model_type="t5", vocab_size=VOCAB, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2)
    )
    return Model(cfg, _params("t5", cfg, 2))


MODEL = tiny_llama()


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def raises_before_work(match, model=MODEL, ids=IDS, exc=ValueError, **kwargs):
    """``tw.generate`` raises ``exc`` matching ``match`` and no program was built for the model."""
    before = (PROGRAMS.count(model), len(PROGRAMS))
    with pytest.raises(exc, match=match) as info:
        quiet(tw.generate, model, ids, **kwargs)
    assert "\n" not in str(info.value), "a one-line error"
    assert (PROGRAMS.count(model), len(PROGRAMS)) == before
    return info.value


# ------------------------------------------------------------------------------------- input_ids
@pytest.mark.parametrize(
    "ids,match",
    [
        (np.array([[5, -1, 7]]), r"negative id -1.*vocab_size=40"),
        (np.array([[5, 40, 7]]), r"id 40, outside the model's vocabulary \(vocab_size=40\)"),
        (np.array([[5, 99]]), r"id 99.*vocab_size=40"),
        (np.array([[5.0, 6.0]]), r"input_ids must be an integer \[batch, length\] array"),
        (np.array([[True, False]]), r"input_ids must be an integer"),
        (np.array([5, 6]), r"input_ids must be an integer \[batch, length\]"),
        (np.zeros((1, 0), np.int64), r"input_ids is empty .*at least one prompt token"),
        (np.zeros((0, 3), np.int64), r"input_ids is empty"),
    ],
    ids=["negative", "vocab", "far", "float", "bool", "rank1", "no-columns", "no-rows"],
)
def test_bad_input_ids(backend, ids, match):
    err = raises_before_work(match, ids=ids, exc=IRError, backend=backend, max_new_tokens=2)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    "mask,match",
    [
        (np.array([[1, 0.5, 1, 1], [1, 1, 1, 1]]), r"exactly 0 \(padding\) or 1 \(token\), got 0.5"),
        (np.array([[1, 2, 1, 1], [1, 1, 1, 1]]), r"exactly 0 \(padding\) or 1 \(token\), got 2"),
        (np.array([[1, -1, 1, 1], [1, 1, 1, 1]]), r"got -1"),
        (np.ones((2, 3), np.int64), r"attention_mask shape \(2, 3\) must equal input_ids shape \(2, 4\)"),
    ],
    ids=["half", "two", "minus-one", "shape"],
)
def test_bad_attention_mask(backend, mask, match):
    raises_before_work(match, exc=IRError, attention_mask=mask, backend=backend, max_new_tokens=2)


def test_bool_and_float_masks_of_zeros_and_ones_are_accepted():
    ref = quiet(tw.generate, MODEL, IDS, MASK, backend="numpy", max_new_tokens=2)
    for mask in (MASK.astype(bool), MASK.astype(np.float32)):
        np.testing.assert_array_equal(
            quiet(tw.generate, MODEL, IDS, mask, backend="numpy", max_new_tokens=2), ref
        )


def test_prompt_plus_new_tokens_beyond_the_positions(backend):
    raises_before_work(
        rf"prompt length 4 \+ new tokens = 17 positions exceed the model's max_position_embeddings "
        rf"\({POSITIONS}\); lower max_new_tokens to at most 12",
        backend=backend,
        max_new_tokens=13,
    )
    raises_before_work(
        r"exceed the model's max_position_embeddings", backend=backend, max_length=POSITIONS + 1
    )
    gpt2 = tiny_gpt2()  # GPT-2 names its limit n_positions (exposed as max_position_embeddings)
    raises_before_work(r"exceed the model's .*\(12\)", model=gpt2, backend=backend, max_new_tokens=9)
    long = np.full((1, POSITIONS), 5, np.int64)
    raises_before_work(r"truncate the prompt", ids=long, backend=backend, max_new_tokens=1)


def test_exactly_the_positions_runs():
    out = quiet(
        tw.generate, MODEL, IDS, MASK, backend="numpy", max_new_tokens=POSITIONS - 4, eos_token_id=None
    )
    assert out.shape == (2, POSITIONS)


# ------------------------------------------------------------------------------ generation scalars
class _Constraint:
    """A stand-in constraint with a stable repr (test ids must be equal in every xdist worker)."""

    def __repr__(self) -> str:
        return "Constraint()"


SCALARS = [
    (dict(max_new_tokens=2.5), r"`max_new_tokens` must be an int >= 1, got 2.5 \(float\)"),
    (dict(max_new_tokens="3"), r"`max_new_tokens` must be an int >= 1, got '3' \(str\)"),
    (dict(max_new_tokens=True), r"`max_new_tokens` must be an int >= 1, got True \(bool\)"),
    (dict(max_new_tokens=0), r"`max_new_tokens` must be an int >= 1, got 0"),
    (dict(max_length=10.0), r"`max_length` must be an int"),
    (dict(max_new_tokens=None, max_length=None), r"`max_length` must be an int >= 1, got None"),
    (dict(min_length="2"), r"`min_length` must be an int >= 0"),
    (dict(min_new_tokens=-1), r"`min_new_tokens` must be an int >= 0, got -1"),
    (dict(num_beams=0), r"`num_beams` must be an int >= 1, got 0"),
    (dict(num_beams=-2), r"`num_beams` must be an int >= 1, got -2"),
    (dict(num_beams=2.5), r"`num_beams` must be an int"),
    (dict(num_beams=False), r"`num_beams` must be an int .*\(bool\)"),
    (dict(num_return_sequences=0, do_sample=True), r"`num_return_sequences` must be an int >= 1, got 0"),
    (dict(num_beams=2, num_return_sequences=3), r"`num_return_sequences` \(3\) has to be smaller or equal"),
    (dict(top_k=-1, do_sample=True), r"`top_k` must be an int >= 0, got -1"),
    (dict(top_k=2.5, do_sample=True), r"`top_k` must be an int"),
    (dict(no_repeat_ngram_size=1.5), r"`no_repeat_ngram_size` must be an int"),
    (dict(temperature="hot", do_sample=True), r"`temperature` must be a finite float, got 'hot'"),
    (dict(temperature=0.0, do_sample=True), r"`temperature` \(=0.0\) has to be a strictly positive float"),
    (dict(temperature=-1.0), r"`temperature` must be a float >= 0.0"),
    (dict(top_p=1.5, do_sample=True), r"`top_p` must be a float in \[0.0, 1.0\], got 1.5"),
    (dict(top_p=float("nan"), do_sample=True), r"`top_p` must be a finite float"),
    (dict(repetition_penalty=0.0), r"`repetition_penalty` must be a float > 0.0, got 0.0"),
    (dict(repetition_penalty=True), r"`repetition_penalty` must be a finite float"),
    (dict(min_length=30, max_new_tokens=3), r"`min_length` \(30\) is larger than `max_length` \(7\)"),
    (dict(force_words_ids=[[5]], num_beams=2), r"constrained beam search is not implemented"),
    (dict(force_words_ids=[[5]]), r"constrained beam search is not implemented"),
    (dict(constraints=[_Constraint()], num_beams=2), r"constrained beam search is not implemented"),
]


@pytest.mark.parametrize("kwargs,match", SCALARS, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_generation_scalars(backend, kwargs, match):
    kw = {"max_new_tokens": 2, **kwargs}
    raises_before_work(match, backend=backend, **kw)


@pytest.mark.parametrize("kwargs,match", SCALARS[:5], ids=str)
def test_scalars_in_a_generation_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tw.GenerationConfig(**kwargs)


def test_numpy_ints_and_none_where_hf_allows_it():
    p = quiet(resolve_plan, MODEL, IDS.shape, None, dict(max_new_tokens=np.int64(3), num_beams=np.int32(2)))
    assert p.max_length == 7 and p.num_beams == 2
    p = quiet(resolve_plan, MODEL, IDS.shape, None, dict(max_new_tokens=3, top_k=None, temperature=None))
    assert p.max_length == 7


def test_greedy_with_temperature_zero_only_warns():
    """Hugging Face builds the temperature warper only when sampling: greedy with 0.0 warns."""
    with pytest.warns(UserWarning, match="`temperature` is set to `0.0`"):
        resolve_plan(MODEL, IDS.shape, None, dict(max_new_tokens=2, temperature=0.0))


def test_export_rejects_force_words_ids():
    from tensorweave.generation.plan import _validate_for_export

    with pytest.raises(ValueError, match="greedy search and beam search only"):
        _validate_for_export(tw.GenerationConfig(force_words_ids=[[5]]))


# ------------------------------------------------------------------ the caller's framework out
def _as(framework: str, x: np.ndarray):
    if framework == "torch":
        torch = pytest.importorskip("torch")
        return torch.from_numpy(x)
    if framework == "tensorflow":
        tf = pytest.importorskip("tensorflow")
        return tf.constant(x.astype(np.int32))
    if framework == "jax":
        jnp = pytest.importorskip("jax.numpy")
        return jnp.asarray(x.astype(np.int32))
    return x


FRAMEWORKS = ["numpy", "torch", "tensorflow", "jax"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_framework_in_framework_out(backend, framework):
    ids, mask = _as(framework, IDS), _as(framework, MASK)
    ref = quiet(
        tw.generate,
        MODEL,
        IDS,
        MASK,
        backend=backend,
        max_new_tokens=3,
        return_dict_in_generate=True,
        output_scores=True,
    )
    out = quiet(
        tw.generate,
        MODEL,
        ids,
        mask,
        backend=backend,
        max_new_tokens=3,
        return_dict_in_generate=True,
        output_scores=True,
    )
    assert framework_of(out.sequences) == framework
    assert all(framework_of(s) == framework for s in out.scores)
    np.testing.assert_array_equal(np.asarray(out.sequences), ref.sequences)
    np.testing.assert_array_equal(np.stack([np.asarray(s) for s in out.scores]), np.stack(ref.scores))
    seqs = quiet(tw.generate, MODEL, ids, mask, backend=backend, max_new_tokens=3)
    assert framework_of(seqs) == framework
    if framework == "numpy":
        assert isinstance(seqs, np.ndarray) and seqs.dtype == np.int64
    else:
        assert np.asarray(seqs).dtype == np.asarray(ids).dtype  # the caller's integer dtype
    beams = quiet(
        tw.generate,
        MODEL,
        ids,
        mask,
        backend=backend,
        max_new_tokens=3,
        num_beams=2,
        return_dict_in_generate=True,
        output_scores=True,
    )
    for value in (beams.sequences, beams.sequences_scores, beams.beam_indices, beams.scores[0]):
        assert framework_of(value) == framework
    scores = tw.compute_transition_scores(beams.sequences, beams.scores, beams.beam_indices)
    assert framework_of(scores) == framework
    expected = tw.frontends.generation.compute_transition_scores(
        np.asarray(beams.sequences), [np.asarray(s) for s in beams.scores], np.asarray(beams.beam_indices)
    )
    np.testing.assert_array_equal(np.asarray(scores), expected)


def test_transition_scores_with_tensorflow_input():
    """Hugging Face's TF example: ``score.numpy()`` on the transition scores."""
    tf = pytest.importorskip("tensorflow")
    require_backend("tensorflow")
    out = quiet(
        tw.generate,
        MODEL,
        tf.constant(IDS[:1]),
        backend="tensorflow",
        max_new_tokens=3,
        return_dict_in_generate=True,
        output_scores=True,
    )
    scores = tw.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    generated = out.sequences[:, IDS.shape[1] :]
    for tok, score in zip(generated[0], scores[0]):
        assert isinstance(score.numpy(), np.floating) and int(tok) >= 0 and score.numpy() <= 0


def test_framework_detection_imports_nothing():
    assert framework_of([1, 2]) == "numpy" and framework_of(np.zeros(1)) == "numpy"
    assert "tensorweave.generation.frameworks" in sys.modules


# ------------------------------------------------------------------------------- JAX keys, params
def test_typed_jax_keys_give_the_uint32_key_tokens(backend):
    jax = pytest.importorskip("jax")
    raw = np.asarray(jax.random.key_data(jax.random.key(3)))
    kw = dict(backend=backend, max_new_tokens=4, do_sample=True, eos_token_id=None)
    ref = quiet(tw.generate, MODEL, IDS, MASK, prng_key=raw, **kw)
    for key in (jax.random.key(3), jax.random.PRNGKey(3)):
        np.testing.assert_array_equal(quiet(tw.generate, MODEL, IDS, MASK, prng_key=key, **kw), ref)


def test_bad_prng_key_before_work(backend):
    raises_before_work(
        r"prng_key must be a uint32 array of shape \[2\]",
        backend=backend,
        max_new_tokens=2,
        prng_key=np.zeros(3, np.uint32),
    )


def test_params_replace_the_weights_for_one_call(backend):
    other = tiny_llama(seed=7)
    kw = dict(backend=backend, max_new_tokens=4, eos_token_id=None)
    own = quiet(tw.generate, MODEL, IDS, MASK, **kw)
    expected = quiet(tw.generate, other, IDS, MASK, **kw)
    got = quiet(tw.generate, MODEL, IDS, MASK, params=dict(other.params), **kw)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(quiet(tw.generate, MODEL, IDS, MASK, params=MODEL.params, **kw), own)
    np.testing.assert_array_equal(quiet(tw.generate, MODEL, IDS, MASK, **kw), own)  # the model is unchanged


def test_bad_params_before_work(backend):
    p = dict(MODEL.params)
    name = next(iter(p))
    raises_before_work(r"nested Flax tree .*not accepted", backend=backend, params={"params": p})
    raises_before_work(r"missing \[", backend=backend, params={k: v for k, v in p.items() if k != name})
    raises_before_work(r"unexpected \['extra'\]", backend=backend, params={**p, "extra": np.zeros(1)})
    raises_before_work(
        rf"`params\['{name}'\]` has shape", backend=backend, params={**p, name: np.zeros((1, 1), np.float32)}
    )


# ---------------------------------------------------------------------------------- token_type_ids
def test_token_type_ids_are_ignored_for_decoder_only(backend):
    kw = dict(backend=backend, max_new_tokens=2)
    ref = quiet(tw.generate, MODEL, IDS, MASK, **kw)
    got = quiet(
        tw.generate, MODEL, input_ids=IDS, attention_mask=MASK, token_type_ids=np.zeros_like(IDS), **kw
    )
    np.testing.assert_array_equal(got, ref)


def test_token_type_ids_are_an_error_for_encoder_decoders(backend):
    raises_before_work(
        r"model_kwargs` are not used by the model: \['token_type_ids'\]",
        model=tiny_t5(),
        backend=backend,
        max_new_tokens=2,
        token_type_ids=np.zeros_like(IDS),
    )


# ---------------------------------------------------------------------------------- model defaults
def _model_with(generation_config) -> Model:
    m = tiny_llama()
    m.generation_config = generation_config
    return m


def test_model_generation_config_is_the_starting_point():
    m = _model_with(tw.GenerationConfig(eos_token_id=[5, 6], max_new_tokens=3, repetition_penalty=1.5))
    p = quiet(resolve_plan, m, IDS.shape, None, {})
    assert p.eos == (5, 6) and p.max_length == 7 and p.pad == PAD  # pad from the model config
    assert p.config.repetition_penalty == 1.5
    p = quiet(resolve_plan, m, IDS.shape, None, dict(eos_token_id=9, max_new_tokens=2))  # kwargs win
    assert p.eos == (9,) and p.max_length == 6
    p = quiet(resolve_plan, _model_with(None), IDS.shape, None, dict(max_new_tokens=2))
    assert p.eos == (EOS,)


def test_user_config_takes_the_models_special_tokens():
    m = _model_with(tw.GenerationConfig(eos_token_id=5, pad_token_id=7, max_new_tokens=9))
    p = quiet(resolve_plan, m, IDS.shape, tw.GenerationConfig(max_new_tokens=2), {})
    assert p.eos == (5,) and p.pad == 7 and p.max_length == 6  # not the model's max_new_tokens
    p = quiet(resolve_plan, m, IDS.shape, tw.GenerationConfig(max_new_tokens=2, eos_token_id=11), {})
    assert p.eos == (11,)
    p = quiet(resolve_plan, MODEL, IDS.shape, tw.GenerationConfig(max_new_tokens=2), {})
    assert p.eos == (EOS,) and p.pad == PAD  # a model without a generation_config: its config


def test_generation_config_must_be_one():
    raises_before_work(
        r"`generation_config` must be a GenerationConfig", generation_config={"max_new_tokens": 2}
    )


def test_model_defaults_run(backend):
    m = _model_with(tw.GenerationConfig(max_new_tokens=3, eos_token_id=None, pad_token_id=PAD))
    out = quiet(tw.generate, m, IDS, MASK, backend=backend)
    assert out.shape == (2, 7)
    np.testing.assert_array_equal(
        out, quiet(tw.generate, MODEL, IDS, MASK, backend=backend, max_new_tokens=3, eos_token_id=None)
    )


# ---------------------------------------------------------------------------------------- streaming
class Timed(TokenCollector):
    def __init__(self, steps):
        super().__init__()
        self.times, self.steps_seen, self.steps = [], [], steps

    def put(self, value):
        super().put(value)
        self.times.append(time.perf_counter())
        self.steps_seen.append(len(self.steps))


@pytest.fixture
def count_steps(monkeypatch):
    calls: list = []
    original = stepwise.StaticCacheModelStep.step

    def step(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(stepwise.StaticCacheModelStep, "step", step)
    return calls


def test_streamer_streams_as_tokens_are_produced(backend, count_steps, caplog):
    kw = dict(backend=backend, max_new_tokens=5, eos_token_id=None)
    fused = quiet(tw.generate, MODEL, IDS[:1], **kw)
    s = Timed(count_steps)
    with caplog.at_level(logging.INFO, logger="tensorweave"):
        logging.getLogger("tensorweave").addHandler(caplog.handler)
        try:
            out = quiet(tw.generate, MODEL, IDS[:1], streamer=s, **kw)
        finally:
            logging.getLogger("tensorweave").removeHandler(caplog.handler)
        returned = time.perf_counter()
    np.testing.assert_array_equal(out, fused)
    np.testing.assert_array_equal(np.concatenate([s.prompt, np.stack(s.tokens, 1)], 1), out)
    assert s.ended and len(s.tokens) == 5
    # the first new token came after the prefill, before any decode step and before the call returned
    assert s.steps_seen[1] == 0 and len(count_steps) == 4
    assert s.times[1] < s.times[-1] < returned
    assert any("runs step-wise" in r.getMessage() for r in caplog.records)


def test_streamer_with_trace_true_stays_fused(count_steps):
    s = Timed(count_steps)
    out = quiet(
        tw.generate,
        MODEL,
        IDS[:1],
        backend="numpy",
        trace=True,
        streamer=s,
        max_new_tokens=3,
        eos_token_id=None,
    )
    assert not count_steps and s.ended  # no step-wise model step: every token delivered after the program
    np.testing.assert_array_equal(np.concatenate([s.prompt, np.stack(s.tokens, 1)], 1), out)


def test_model_config_fields_set_to_none_keep_the_defaults():
    """transformers v5 writes every generation field of a config, most as None ("unset")."""
    config = tw.GenerationConfig.from_model_config({"max_length": None, "num_beams": None, "eos_token_id": 3})
    assert config.max_length == 20 and config.num_beams == 1 and config.eos_token_id == 3
